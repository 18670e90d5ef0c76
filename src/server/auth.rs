//! Access: bearer tokens bound to one shop and a role.
//!
//! Tokens are never stored or logged in clear: the access file holds SHA-256 hashes and a
//! presented token is hashed before lookup. Without an access file, the demo shop gets an
//! agent and an owner token (fresh random ones, or fixed by `HUASHU_DEMO_AGENT_TOKEN` /
//! `HUASHU_DEMO_OWNER_TOKEN`), printed once at startup.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads suggestions and subscribes.
    Agent,
    /// Also edits the phrasebook.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Owner => "owner",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Role::Agent),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub shop: String,
    pub role: Role,
}

/// The token table.
#[derive(Debug, Default, Clone)]
pub struct Access {
    by_hash: HashMap<[u8; 32], Grant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    sha256: String,
    shop: String,
    role: String,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Access {
    /// Reads an access file: `[[token]]` tables with `sha256` (hex of the token's SHA-256),
    /// `shop` and `role` (`agent` or `owner`).
    pub fn load(path: &Path) -> Result<Self> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading access file {}", path.display()), e))?;
        Self::load_str(&src, path)
    }

    fn load_str(src: &str, path: &Path) -> Result<Self> {
        let file: AccessFile = toml::from_str(src).map_err(|e| Error::Invalid {
            field: "access file",
            message: format!("{}: {}", path.display(), e.message()),
        })?;
        let mut access = Access::default();
        for (n, t) in file.token.into_iter().enumerate() {
            let bad = |message: String| Error::Invalid {
                field: "access file",
                message: format!("{} token #{}: {message}", path.display(), n + 1),
            };
            let role = Role::parse(&t.role)
                .ok_or_else(|| bad(format!("role `{}` must be agent or owner", t.role)))?;
            if !crate::phrasebook::valid_id(&t.shop) {
                return Err(bad(format!("shop `{}` is not a valid shop id", t.shop)));
            }
            let digest =
                parse_hex32(&t.sha256).ok_or_else(|| bad("sha256 must be 64 hex digits".into()))?;
            access.by_hash.insert(digest, Grant { shop: t.shop, role });
        }
        Ok(access)
    }

    /// Grants `token` the given shop and role.
    pub fn insert(&mut self, token: &str, shop: &str, role: Role) {
        self.by_hash.insert(
            hash(token),
            Grant {
                shop: shop.to_string(),
                role,
            },
        );
    }

    /// What `token` grants, if anything.
    pub fn check(&self, token: &str) -> Option<&Grant> {
        if token.is_empty() {
            return None;
        }
        self.by_hash.get(&hash(token))
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Issues a new token for `shop` and `role`, appends its hash to the access file at `path`
/// (created if missing; written atomically), and returns the token — the only time it
/// exists in clear. `phrasebook` is refused as a home for the file: secrets never live there.
pub fn add_token(path: &Path, phrasebook: &Path, shop: &str, role: &str) -> Result<String> {
    let inside = |p: &Path| {
        let abs = |x: &Path| std::path::absolute(x).unwrap_or_else(|_| x.to_path_buf());
        abs(p).starts_with(abs(phrasebook))
    };
    if inside(path) {
        return Err(Error::Invalid {
            field: "access file",
            message: format!(
                "{} is inside the phrasebook; keep secrets elsewhere",
                path.display()
            ),
        });
    }
    if Role::parse(role).is_none() {
        return Err(Error::Invalid {
            field: "role",
            message: format!("`{role}` must be agent or owner"),
        });
    }
    if !crate::phrasebook::valid_id(shop) {
        return Err(Error::Invalid {
            field: "shop",
            message: format!("`{shop}` must be 1-64 of [a-z0-9_-]"),
        });
    }
    let mut src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "# huashu access file: SHA-256 hashes of bearer tokens, never the tokens.\n".to_string()
        }
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    // Refuse to append to a file that does not parse: the result would not either.
    Access::load_str(&src, path)?;
    let token = new_token()?;
    let digest: String = hash(&token).iter().map(|b| format!("{b:02x}")).collect();
    if !src.ends_with('\n') {
        src.push('\n');
    }
    src.push_str(&format!(
        "\n[[token]]\nsha256 = \"{digest}\"\nshop = \"{shop}\"\nrole = \"{role}\"\n"
    ));
    crate::phrasebook::store::write_atomic(path, src.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(token)
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The token table of a running service: re-read from its access file when the file
/// changes (checked on a miss), so `huashu token add` takes effect without a restart.
#[derive(Debug)]
pub struct LiveAccess {
    path: Option<std::path::PathBuf>,
    state: std::sync::RwLock<(Access, Option<std::time::SystemTime>)>,
}

impl LiveAccess {
    pub fn fixed(access: Access) -> Self {
        LiveAccess {
            path: None,
            state: std::sync::RwLock::new((access, None)),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(LiveAccess {
            path: Some(path.to_path_buf()),
            state: std::sync::RwLock::new((Access::load(path)?, mtime)),
        })
    }

    /// What `token` grants. An unknown token re-reads the access file if it changed since
    /// it was last read; a file that no longer parses keeps the table as it was.
    pub fn check(&self, token: &str) -> Option<Grant> {
        if let Some(g) = self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .check(token)
        {
            return Some(g.clone());
        }
        let path = self.path.as_ref()?;
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if mtime != state.1 {
            match Access::load(path) {
                Ok(fresh) => *state = (fresh, mtime),
                Err(e) => {
                    tracing::warn!(error = %e, "access file changed but does not load; keeping the old one")
                }
            }
        }
        state.0.check(token).cloned()
    }
}

/// A new random token: 32 lowercase hex characters from the OS's random source.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Invalid {
        field: "token",
        message: format!("no randomness available: {e}"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The token a WebSocket upgrade presents: `bearer.<token>` among the offered subprotocols,
/// else `?token=`.
pub fn ws_token<'a>(protocols: Option<&'a str>, query_token: Option<&'a str>) -> Option<&'a str> {
    protocols
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
        .or(query_token)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_table() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("huashu.v1, bearer.abc"), None, Some("abc")),
            (Some("bearer.abc,huashu.v1"), Some("q"), Some("abc")),
            (Some("huashu.v1"), Some("q"), Some("q")),
            (None, None, None),
        ];
        for (h, q, want) in cases {
            assert_eq!(ws_token(*h, *q), *want, "{h:?} {q:?}");
        }
        assert_eq!(bearer(Some("Bearer xyz")), Some("xyz"));
        assert_eq!(bearer(Some("bearer  xyz ")), Some("xyz"));
        assert_eq!(bearer(Some("Basic xyz")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn access_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.toml");
        let digest: String = hash("secret").iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            &path,
            format!("[[token]]\nsha256 = \"{digest}\"\nshop = \"demo\"\nrole = \"owner\"\n"),
        )
        .unwrap();
        let a = Access::load(&path).unwrap();
        assert_eq!(
            a.check("secret"),
            Some(&Grant {
                shop: "demo".into(),
                role: Role::Owner
            })
        );
        assert_eq!(a.check("other"), None);
        assert_eq!(a.check(""), None);
        std::fs::write(
            &path,
            "[[token]]\nsha256 = \"zz\"\nshop = \"demo\"\nrole = \"agent\"\n",
        )
        .unwrap();
        assert!(
            Access::load(&path)
                .unwrap_err()
                .to_string()
                .contains("token #1")
        );
        std::fs::write(
            &path,
            format!("[[token]]\nsha256 = \"{digest}\"\nshop = \"../x\"\nrole = \"agent\"\n"),
        )
        .unwrap();
        assert!(Access::load(&path).is_err());
    }

    #[test]
    fn token_add_stores_only_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("phrasebook");
        std::fs::create_dir(&pb).unwrap();
        let path = dir.path().join("access.toml");
        let t1 = add_token(&path, &pb, "demo", "owner").unwrap();
        let t2 = add_token(&path, &pb, "shop2", "agent").unwrap();
        let src = std::fs::read_to_string(&path).unwrap();
        assert!(
            !src.contains(&t1) && !src.contains(&t2),
            "tokens never stored in clear"
        );
        let a = Access::load(&path).unwrap();
        assert_eq!(
            a.check(&t1),
            Some(&Grant {
                shop: "demo".into(),
                role: Role::Owner
            })
        );
        assert_eq!(
            a.check(&t2),
            Some(&Grant {
                shop: "shop2".into(),
                role: Role::Agent
            })
        );
        for (p, shop, role) in [
            (pb.join("access.toml"), "demo", "owner"),
            (path.clone(), "../x", "owner"),
            (path.clone(), "demo", "admin"),
        ] {
            assert!(
                add_token(&p, &pb, shop, role).is_err(),
                "{p:?} {shop} {role}"
            );
        }
    }

    #[test]
    fn new_tokens_differ() {
        let a = new_token().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_token().unwrap());
    }
}
