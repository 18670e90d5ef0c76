//! Reading a phrasebook from disk and validating it.
//!
//! Layout: `<root>/<shop>/shop.toml` and `<root>/<shop>/intents/<intent>.toml`. Every error
//! names the file and line and says what is wrong, so an owner can fix it by hand.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::{
    CONVERSATION_VARIABLES, Intent, OrderState, Phrase, REQUIRED_INTENTS, Shop, Stage, Window,
    valid_id,
};
use crate::compliance::{Lexicon, Severity, Source, Violation};
use crate::render::Template;
use crate::{Error, Result};

/// The compliance lexicon file: at the phrasebook root (default) and in a shop (override).
pub const LEXICON_FILE: &str = "compliance.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShop {
    name: String,
    #[serde(default)]
    policy: BTreeMap<String, toml::Value>,
    #[serde(default)]
    dict: RawDict,
    revision: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDict {
    #[serde(default)]
    words: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    label: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    stage: Vec<Spanned<String>>,
    #[serde(default)]
    examples: Vec<Spanned<String>>,
    #[serde(default, rename = "phrase")]
    phrases: Vec<Spanned<RawPhrase>>,
    revision: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhrase {
    id: Spanned<String>,
    text: Spanned<String>,
    #[serde(default)]
    keywords: Vec<String>,
    stage: Option<Spanned<String>>,
    #[serde(default)]
    order_state: Vec<Spanned<String>>,
    priority: Option<Spanned<i64>>,
    code: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    valid_from: Option<Spanned<toml::value::Datetime>>,
    valid_until: Option<Spanned<toml::value::Datetime>>,
    enabled: Option<bool>,
    revision: Option<u64>,
}

/// Longest phrase text accepted, in characters: a reply, not an essay.
const MAX_TEXT_CHARS: usize = 500;

/// Loads every shop under `root` (each directory holding a `shop.toml`), sorted by id.
pub fn load_root(root: &Path) -> Result<Vec<Shop>> {
    let lexicon = default_lexicon(root)?;
    let dirs = shop_dirs(root)?;
    for dir in &dirs {
        // Finish a multi-file write a crash interrupted before reading anything.
        if super::store::recover(dir)
            .map_err(|e| Error::io(format!("recovering {}", dir.display()), e))?
        {
            tracing::warn!(shop = %dir.display(), "finished an interrupted multi-file write");
        }
    }
    crate::par_map(dirs.iter().collect(), |d| load_shop(d, &lexicon))
        .into_iter()
        .collect()
}

/// Every compliance finding (block and warn) in the phrases and policy values of every shop
/// under `root`. Structural errors still fail; compliance findings are collected.
pub fn lint_root(root: &Path) -> Result<Vec<Finding>> {
    let lexicon = default_lexicon(root)?;
    let mut all = Vec::new();
    for dir in shop_dirs(root)? {
        let (_, findings) = read_shop(&dir, &lexicon)?;
        all.extend(findings);
    }
    Ok(all)
}

/// Reads `<root>/compliance.toml`, the default lexicon every shop starts from.
pub fn default_lexicon(root: &Path) -> Result<Source> {
    let path = root.join(LEXICON_FILE);
    let src = read(&path)?;
    Source::parse(&src, &path.display().to_string()).map_err(lexicon_error)
}

fn lexicon_error(e: crate::compliance::LexiconError) -> Error {
    Error::Phrasebook {
        location: e.label,
        message: format!("compliance lexicon: {}", e.message),
    }
}

fn shop_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(root).map_err(|e| Error::io(format!("reading {}", root.display()), e))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", root.display()), e))?;
        let path = entry.path();
        if path.join("shop.toml").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Loads and validates one shop directory against the default lexicon (plus the shop's own
/// `compliance.toml`). A phrase or policy value with a `block` violation is an error naming
/// the file, line, phrase, what matched and the suggested rewrite.
pub fn load_shop(dir: &Path, default_lexicon: &Source) -> Result<Shop> {
    load_shop_with(dir, default_lexicon, &[], None)
}

/// Like [`load_shop`], but with `overlay` standing in for some files' contents (files that
/// do not exist yet are added): how an edit is validated before anything is written.
///
/// `served` is the shop as it is being served from `dir`, if it is (another directory's is
/// ignored). An intent whose file is byte for byte the one it was read from, under the same
/// policy, is taken from it instead of parsed again (ids and codes are still checked across
/// all files). A reply text it has already passed the compliance check under the same
/// lexicon when it loaded (no `block` finding, or it would not be served), so only the texts
/// an edit changes are checked again. On a 10k-phrase shop the parse of every file was
/// most of an edit's time, and the check of every text a third of what was left.
pub fn load_shop_with(
    dir: &Path,
    default_lexicon: &Source,
    overlay: &[(&Path, Option<&str>)],
    served: Option<&Shop>,
) -> Result<Shop> {
    let (shop, findings) = read_shop_with(dir, default_lexicon, overlay, served)?;
    if let Some(f) = findings
        .iter()
        .find(|f| f.violation.severity == Severity::Block)
    {
        return Err(Error::Phrasebook {
            location: f.location.clone(),
            message: f.describe(),
        });
    }
    Ok(shop)
}

fn read_shop(dir: &Path, default_lexicon: &Source) -> Result<(Shop, Vec<Finding>)> {
    read_shop_with(dir, default_lexicon, &[], None)
}

/// Reads a shop and every compliance finding in it, except for reply texts `served` already
/// has under the same lexicon (see [`load_shop_with`]): their findings, none of them `block`,
/// are left out, so a lint passes no `served`.
fn read_shop_with(
    dir: &Path,
    default_lexicon: &Source,
    overlay: &[(&Path, Option<&str>)],
    served: Option<&Shop>,
) -> Result<(Shop, Vec<Finding>)> {
    let read = |path: &Path| match overlay.iter().find(|(p, _)| *p == path) {
        Some((_, Some(src))) => Ok(src.to_string()),
        _ => read(path),
    };
    let id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if !valid_id(&id) {
        return Err(Error::Phrasebook {
            location: dir.display().to_string(),
            message: format!("shop directory name `{id}` must be 1-64 of [a-z0-9_-]"),
        });
    }
    let mut hasher = Sha256::new();
    let shop_path = dir.join("shop.toml");
    let src = read(&shop_path)?;
    hash_file(&mut hasher, "shop.toml", &src);
    let raw: RawShop = parse(&shop_path, &src)?;
    let mut policy = BTreeMap::new();
    for (key, value) in &raw.policy {
        if let Some(text) = policy_text(value) {
            policy.insert(key.clone(), text);
        }
    }
    policy.insert("shop".to_string(), raw.name.clone());
    let zone_name = policy
        .get("timezone")
        .map_or(DEFAULT_TIMEZONE, String::as_str);
    let zone = jiff::tz::TimeZone::get(zone_name).map_err(|_| Error::Phrasebook {
        location: format!("{}: policy.timezone", shop_path.display()),
        message: format!(
            "unknown time zone `{zone_name}`: use an IANA name such as `Asia/Shanghai`"
        ),
    })?;

    let intents_dir = dir.join("intents");
    // A missing intents directory is a shop with no intents (the required-intent check
    // names what is missing); a new shop's intents arrive in the overlay.
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&intents_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(format!("reading {}", intents_dir.display()), e)),
    };
    for (p, content) in overlay {
        match content {
            Some(_)
                if p.parent() == Some(intents_dir.as_path()) && !files.iter().any(|f| f == p) =>
            {
                files.push(p.to_path_buf());
            }
            None => files.retain(|f| f != p),
            _ => {}
        }
    }
    files.sort();

    // The served shop's intents, to take as they are when their file is byte for byte the
    // same: an intent's reading depends on nothing else but the policy (variables, time zone).
    // On a 10k-phrase shop the TOML parse of every file was most of an edit's time.
    let reusable: HashMap<&str, &Intent> = served
        .filter(|s| s.dir == dir && s.policy == policy)
        .map(|s| s.intents.iter().map(|i| (i.id.as_str(), i)).collect())
        .unwrap_or_default();
    let mut intents = Vec::new();
    let mut reused = Vec::new();
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    let mut seen_codes: HashMap<String, String> = HashMap::new();
    for path in &files {
        let src = read(path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let digest = hash_file(&mut hasher, name, &src);
        let stem = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match reusable.get(stem) {
            Some(old) if old.digest == digest && claim(old, &mut seen_ids, &mut seen_codes) => {
                intents.push((*old).clone());
                reused.push(true);
            }
            // A clash with another file is reported by the parse, which knows where.
            _ => {
                let intent = load_intent(
                    path,
                    &src,
                    digest,
                    &policy,
                    &zone,
                    &mut seen_ids,
                    &mut seen_codes,
                )?;
                intents.push(intent);
                reused.push(false);
            }
        }
    }
    for required in REQUIRED_INTENTS {
        if !intents.iter().any(|i| i.id == required) {
            return Err(Error::Phrasebook {
                location: intents_dir.display().to_string(),
                message: format!("required intent `{required}` is missing (add {required}.toml)"),
            });
        }
    }
    let override_path = dir.join(LEXICON_FILE);
    let override_src = if override_path.is_file() {
        let src = read(&override_path)?;
        Some(Source::parse(&src, &override_path.display().to_string()).map_err(lexicon_error)?)
    } else {
        None
    };
    let lexicon = Lexicon::shared(default_lexicon, override_src.as_ref()).map_err(lexicon_error)?;
    let mut findings = Vec::new();
    for (key, value) in &policy {
        for violation in lexicon.check(value).violations {
            findings.push(Finding {
                shop: id.clone(),
                location: format!("{}", shop_path.display()),
                phrase_id: None,
                field: format!("policy.{key}"),
                violation,
            });
        }
    }
    // The lexicon is shared while its sources are unchanged: the same one means the same
    // rules, which every served text passed. An intent taken from the served shop is checked
    // no further; of a changed one, only the texts its served version did not have.
    let served = served.filter(|s| Arc::ptr_eq(&s.lexicon, &lexicon));
    let fresh = intents
        .iter()
        .zip(&reused)
        .filter(|(_, r)| !**r || served.is_none())
        .map(|(i, _)| i);
    for intent in fresh {
        let passed: HashSet<&str> = served
            .and_then(|s| s.intent(&intent.id))
            .map(|i| i.phrases.iter().map(|p| p.text.as_str()).collect())
            .unwrap_or_default();
        for p in &intent.phrases {
            if passed.contains(p.text.as_str()) {
                continue;
            }
            for violation in lexicon.check(&p.template.literal()).violations {
                findings.push(Finding {
                    shop: id.clone(),
                    location: p.location(),
                    phrase_id: Some(p.id.clone()),
                    field: "text".into(),
                    violation,
                });
            }
        }
    }
    let version = intents
        .iter()
        .flat_map(|i| std::iter::once(i.revision).chain(i.phrases.iter().map(|p| p.revision)))
        .chain(raw.revision)
        .chain(history_versions(dir))
        .max()
        .unwrap_or(0);
    let shop = Shop {
        id,
        version,
        name: raw.name,
        policy,
        words: raw.dict.words,
        intents,
        lexicon,
        fingerprint: hex_digest(hasher),
        dir: dir.to_path_buf(),
    };
    Ok((shop, findings))
}

/// Versions recorded in `<shop>/history/` (file stems are versions): a revert restores old
/// revisions into the files, and the version must still never go back.
pub fn history_versions(dir: &Path) -> impl Iterator<Item = u64> {
    std::fs::read_dir(dir.join(super::HISTORY_DIR))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.path().file_stem()?.to_str()?.parse::<u64>().ok())
}

/// A compliance finding in a phrasebook file.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub shop: String,
    /// `file:line` of the phrase (or the shop file for policy values).
    pub location: String,
    pub phrase_id: Option<String>,
    /// `text` or `policy.<key>`.
    pub field: String,
    pub violation: Violation,
}

impl Finding {
    /// One line: what, where, why, and the fix.
    pub fn describe(&self) -> String {
        let v = &self.violation;
        let subject = match &self.phrase_id {
            Some(id) => format!("phrase `{id}`"),
            None => format!("`{}`", self.field),
        };
        let fix = match &v.rewrite {
            Some(r) if r.is_empty() => "; rewrite: delete it".to_string(),
            Some(r) => format!("; rewrite: `{r}`"),
            None => "; rewrite: reword without it".to_string(),
        };
        format!(
            "{subject}: {} {} `{}` (rule {}{}){fix}",
            v.severity.as_str(),
            v.category,
            v.matched,
            v.rule,
            if v.message.is_empty() {
                String::new()
            } else {
                format!(": {}", v.message)
            },
        )
    }
}

/// Records the ids and codes of an intent taken from the served shop, as its parse would
/// have; false, recording nothing, if one is already taken by an earlier file.
fn claim(
    intent: &Intent,
    seen_ids: &mut HashMap<String, String>,
    seen_codes: &mut HashMap<String, String>,
) -> bool {
    let clash = intent.phrases.iter().any(|p| {
        seen_ids.contains_key(&p.id) || p.code.as_ref().is_some_and(|c| seen_codes.contains_key(c))
    });
    if clash {
        return false;
    }
    for p in &intent.phrases {
        seen_ids.insert(p.id.clone(), p.location());
        if let Some(c) = &p.code {
            seen_codes.insert(c.clone(), p.id.clone());
        }
    }
    true
}

fn load_intent(
    path: &Path,
    src: &str,
    digest: [u8; 32],
    policy: &BTreeMap<String, String>,
    zone: &jiff::tz::TimeZone,
    seen_ids: &mut HashMap<String, String>,
    seen_codes: &mut HashMap<String, String>,
) -> Result<Intent> {
    let id = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    // Line starts once per file: a phrase's location is then a binary search, not a scan of
    // the file up to it.
    let newlines: Vec<usize> = src.match_indices('\n').map(|(i, _)| i).collect();
    let at = |span: std::ops::Range<usize>| {
        format!(
            "{}:{}",
            path.display(),
            newlines.partition_point(|&n| n < span.start) + 1
        )
    };
    if !valid_id(&id) {
        return Err(Error::Phrasebook {
            location: path.display().to_string(),
            message: format!("intent file name `{id}` must be 1-64 of [a-z0-9_-]"),
        });
    }
    let raw: RawIntent = parse(path, src)?;
    let stages = raw
        .stage
        .iter()
        .map(|s| {
            Stage::parse(s.get_ref()).ok_or_else(|| Error::Phrasebook {
                location: at(s.span()),
                message: format!("stage `{}` must be one of 售前, 售中, 售后", s.get_ref()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut examples = Vec::with_capacity(raw.examples.len());
    for ex in &raw.examples {
        let text = ex.get_ref().trim();
        if text.is_empty() {
            return Err(Error::Phrasebook {
                location: at(ex.span()),
                message: "empty example utterance".into(),
            });
        }
        examples.push(text.to_string());
    }

    let file: std::sync::Arc<str> = path.display().to_string().into();
    let mut phrases = Vec::with_capacity(raw.phrases.len());
    for sp in raw.phrases {
        let line = at(sp.span());
        let line_no = newlines.partition_point(|&n| n < sp.span().start) as u32 + 1;
        let sp_span = sp.span();
        let p = sp.into_inner();
        let pid = p.id.get_ref().clone();
        let err = |span: std::ops::Range<usize>, message: String| Error::Phrasebook {
            location: at(span),
            message: format!("phrase `{pid}`: {message}"),
        };
        if !valid_id(&pid) {
            return Err(err(p.id.span(), "id must be 1-64 of [a-z0-9_-]".into()));
        }
        if let Some(first) = seen_ids.insert(pid.clone(), line.clone()) {
            return Err(err(
                p.id.span(),
                format!("duplicate id, first defined at {first}"),
            ));
        }
        let text = p.text.get_ref().trim().to_string();
        if text.is_empty() {
            return Err(err(p.text.span(), "text is empty".into()));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(err(
                p.text.span(),
                format!("text is longer than {MAX_TEXT_CHARS} characters"),
            ));
        }
        let template =
            Template::parse(&text).map_err(|e| err(p.text.span(), format!("text: {e}")))?;
        for var in template.variables() {
            if !CONVERSATION_VARIABLES.contains(&var) && !policy.contains_key(var) {
                return Err(err(
                    p.text.span(),
                    format!(
                        "unknown variable `{{{var}}}` (conversation variables: {}; shop policy keys: {})",
                        CONVERSATION_VARIABLES.join(", "),
                        policy.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        let stage = match &p.stage {
            Some(s) => Some(Stage::parse(s.get_ref()).ok_or_else(|| {
                err(
                    s.span(),
                    format!("stage `{}` must be one of 售前, 售中, 售后", s.get_ref()),
                )
            })?),
            None => None,
        };
        let order_states = p
            .order_state
            .iter()
            .map(|s| {
                OrderState::parse(s.get_ref()).ok_or_else(|| {
                    err(
                        s.span(),
                        format!(
                            "order_state `{}` must be one of {}",
                            s.get_ref(),
                            OrderState::names()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let priority = match &p.priority {
            Some(v) if (1..=9).contains(v.get_ref()) => *v.get_ref() as u8,
            Some(v) => {
                return Err(err(
                    v.span(),
                    format!("priority {} must be 1..=9", v.get_ref()),
                ));
            }
            None => 5,
        };
        let code = match &p.code {
            Some(c) => {
                let code = c.get_ref().trim().to_lowercase();
                if code.is_empty()
                    || code.len() > 16
                    || !code.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(err(
                        c.span(),
                        format!(
                            "code `{}` must be 1-16 ASCII letters or digits",
                            c.get_ref()
                        ),
                    ));
                }
                if let Some(other) = seen_codes.insert(code.clone(), pid.clone()) {
                    return Err(err(
                        c.span(),
                        format!("code `{code}` is already used by phrase `{other}`"),
                    ));
                }
                Some(code)
            }
            None => None,
        };
        let instant = |d: &Option<Spanned<toml::value::Datetime>>, field: &str, end: bool| {
            d.as_ref()
                .map(|d| {
                    instant(d.get_ref(), zone, end)
                        .map_err(|m| err(d.span(), format!("{field} {}: {m}", d.get_ref())))
                })
                .transpose()
        };
        let window = Window {
            from: instant(&p.valid_from, "valid_from", false)?,
            until: instant(&p.valid_until, "valid_until", true)?,
        };
        if let (Some(f), Some(u)) = (window.from, window.until)
            && u <= f
        {
            let span = p.valid_until.as_ref().map_or(sp_span.clone(), |d| d.span());
            return Err(err(span, "valid_until is not after valid_from".into()));
        }
        phrases.push(Phrase {
            id: pid,
            intent: id.clone(),
            text,
            template,
            keywords: p
                .keywords
                .into_iter()
                .filter(|k| !k.trim().is_empty())
                .collect(),
            stage,
            order_states,
            priority,
            code,
            tags: p.tags,
            valid_from: p.valid_from.as_ref().map(|d| d.get_ref().to_string()),
            valid_until: p.valid_until.as_ref().map(|d| d.get_ref().to_string()),
            window,
            enabled: p.enabled.unwrap_or(true),
            revision: p.revision.unwrap_or(0),
            file: file.clone(),
            line: line_no,
        });
    }
    Ok(Intent {
        id,
        label: raw.label,
        description: raw.description,
        stages,
        examples: shared_examples(examples),
        phrases,
        revision: raw.revision.unwrap_or(0),
        digest,
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, src: &str) -> Result<T> {
    toml::from_str(src).map_err(|e| Error::Phrasebook {
        location: location(path, src, e.span().map_or(0, |s| s.start)),
        message: e.message().trim().to_string(),
    })
}

/// `file:line` for a byte offset.
fn location(path: &Path, src: &str, offset: usize) -> String {
    let upto = src.get(..offset.min(src.len())).unwrap_or(src);
    format!("{}:{}", path.display(), upto.matches('\n').count() + 1)
}

/// The examples as a shared list: identical lists (the same intent in shops made from one
/// template) are held once while any shop uses them.
fn shared_examples(examples: Vec<String>) -> std::sync::Arc<[String]> {
    use std::sync::{Arc, Mutex, OnceLock, Weak};
    type Cache = Mutex<HashMap<String, Weak<[String]>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut h = Sha256::new();
    for e in &examples {
        h.update(e.as_bytes());
        h.update([0xff]);
    }
    let key = super::hex_digest(h);
    let mut map = CACHE
        .get_or_init(Cache::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = map.get(&key).and_then(Weak::upgrade) {
        return shared;
    }
    let shared: Arc<[String]> = examples.into();
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&shared));
    shared
}

/// Time zone of campaign windows when the shop names none: the platforms' own.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// A TOML date or date-time as Unix seconds. A date alone is the start of that day in
/// `zone`, or with `end_of_day` the start of the next (so `valid_until = 2026-11-11` includes
/// the whole of 11 November); a local date-time is read in `zone`; one with an offset is
/// absolute.
fn instant(
    d: &toml::value::Datetime,
    zone: &jiff::tz::TimeZone,
    end_of_day: bool,
) -> std::result::Result<i64, String> {
    let Some(date) = d.date else {
        return Err("needs a date (a time of day alone is not a window)".into());
    };
    let civil = jiff::civil::Date::new(date.year as i16, date.month as i8, date.day as i8)
        .map_err(|e| e.to_string())?;
    let datetime = match d.time {
        Some(t) => civil.at(
            t.hour as i8,
            t.minute as i8,
            t.second.unwrap_or(0) as i8,
            t.nanosecond.unwrap_or(0) as i32,
        ),
        None if end_of_day => civil.tomorrow().map_err(|e| e.to_string())?.at(0, 0, 0, 0),
        None => civil.at(0, 0, 0, 0),
    };
    let stamp = match d.offset {
        Some(toml::value::Offset::Z) => jiff::tz::Offset::UTC.to_timestamp(datetime),
        Some(toml::value::Offset::Custom { minutes }) => {
            jiff::tz::Offset::from_seconds(i32::from(minutes) * 60)
                .and_then(|o| o.to_timestamp(datetime))
        }
        None => datetime.to_zoned(zone.clone()).map(|z| z.timestamp()),
    }
    .map_err(|e| e.to_string())?;
    Ok(stamp.as_second())
}

/// Policy values as template text; nested tables are not variables.
fn policy_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(policy_text)
                .collect::<Vec<_>>()
                .join("、"),
        ),
        toml::Value::Table(_) => None,
    }
}

/// Adds a file to the shop's fingerprint and returns the file's own SHA-256.
fn hash_file(hasher: &mut Sha256, name: &str, src: &str) -> [u8; 32] {
    let digest: [u8; 32] = Sha256::digest(src.as_bytes()).into();
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(digest);
    digest
}

/// Lowercase hex of a finished SHA-256.
pub fn hex_digest(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = "name = \"测试店\"\n[policy]\nfree_shipping_threshold = 99\ncarriers = [\"中通\", \"顺丰\"]\n";

    fn test_lexicon() -> Source {
        Source::parse(
            "[[rule]]\nid = \"guarantee\"\ncategory = \"absolute_promise\"\nseverity = \"block\"\npatterns = [\"保证\"]\nrewrite = \"尽量\"\n\n[[rule]]\nid = \"refuse\"\ncategory = \"blunt_refusal\"\nseverity = \"warn\"\npatterns = [\"不还价\"]\n",
            "test-lexicon",
        )
        .unwrap()
    }

    #[test]
    fn compliance_blocks_at_load_and_warns_in_lint() {
        let (_d, result) = shop_with(&intent_file(
            "[[phrase]]\nid = \"g1\"\ntext = \"您好\"\n[[phrase]]\nid = \"g2\"\ntext = \"{buyer|亲}我们保 证明天发货\"\n",
        ));
        let err = result.unwrap_err().to_string();
        for want in [
            "greeting.toml:6",
            "phrase `g2`",
            "block",
            "absolute_promise",
            "`保 证`",
            "rewrite: `尽量`",
        ] {
            assert!(err.contains(want), "{err} lacks {want}");
        }
        // A fallback is checked too: a variable value cannot be relied on to be clean.
        let (_d, result) = shop_with(&intent_file(
            "[[phrase]]\nid = \"g1\"\ntext = \"{buyer|保证}\"\n",
        ));
        assert!(result.is_err());
        // Warnings load, and lint reports them.
        let (dir, result) = shop_with(&intent_file(
            "[[phrase]]\nid = \"g1\"\ntext = \"我们不还价哦\"\n",
        ));
        assert!(result.is_ok());
        let (_, findings) = read_shop(&dir.path().join("s1"), &test_lexicon()).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].violation.severity, Severity::Warn);
        assert!(
            findings[0]
                .describe()
                .contains("phrase `g1`: warn blunt_refusal `不还价`"),
            "{}",
            findings[0].describe()
        );
    }

    #[test]
    fn shop_override_lexicon_applies() {
        let files: Vec<(&str, String)> = REQUIRED_INTENTS
            .iter()
            .map(|id| (*id, intent_file("")))
            .collect();
        let (_dir, shop) = write_shop(&files);
        std::fs::write(
            shop.join("intents/greeting.toml"),
            intent_file("[[phrase]]\nid = \"g1\"\ntext = \"保证\"\n"),
        )
        .unwrap();
        assert!(load_shop(&shop, &test_lexicon()).is_err());
        std::fs::write(shop.join("compliance.toml"), "disable = [\"guarantee\"]\n").unwrap();
        assert!(load_shop(&shop, &test_lexicon()).is_ok());
        std::fs::write(shop.join("compliance.toml"), "bogus = 1\n").unwrap();
        let err = load_shop(&shop, &test_lexicon()).unwrap_err().to_string();
        assert!(
            err.contains("compliance.toml:1") && err.contains("bogus"),
            "{err}"
        );
    }

    fn intent_file(phrases: &str) -> String {
        format!("label = \"x\"\nexamples = [\"在吗\"]\n{phrases}")
    }

    /// Writes shop `s1` with the given intent files (file stem, contents).
    fn write_shop(intents: &[(&str, String)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let shop = dir.path().join("s1");
        std::fs::create_dir_all(shop.join("intents")).unwrap();
        std::fs::write(shop.join("shop.toml"), SHOP).unwrap();
        for (id, src) in intents {
            std::fs::write(shop.join(format!("intents/{id}.toml")), src).unwrap();
        }
        (dir, shop)
    }

    /// A shop with the required intents, `greeting` as `greeting.toml`, loaded.
    fn shop_with(greeting: &str) -> (tempfile::TempDir, Result<Shop>) {
        let mut files: Vec<(&str, String)> = REQUIRED_INTENTS
            .iter()
            .map(|id| (*id, intent_file("")))
            .collect();
        files.push(("greeting", greeting.to_string()));
        let (dir, shop) = write_shop(&files);
        let result = load_shop(&shop, &test_lexicon());
        (dir, result)
    }

    #[test]
    fn a_reload_takes_unchanged_intents_from_the_served_shop_as_a_full_read_would() {
        let mut files: Vec<(&str, String)> = REQUIRED_INTENTS
            .iter()
            .map(|id| (*id, intent_file("")))
            .collect();
        files.push((
            "greeting",
            intent_file("[[phrase]]\nid = \"g1\"\ntext = \"您好\"\n"),
        ));
        // Sorted before and after greeting, unchanged in every edit below.
        files.push((
            "aa",
            intent_file("[[phrase]]\nid = \"a1\"\ntext = \"在的亲\"\ncode = \"aa\"\n"),
        ));
        files.push((
            "zz",
            intent_file(
                "[[phrase]]\nid = \"z1\"\ntext = \"满{free_shipping_threshold}包邮\"\ncode = \"zz\"\nvalid_from = 2026-12-01\n",
            ),
        ));
        let (_dir, dir) = write_shop(&files);
        let lexicon = test_lexicon();
        let served = load_shop(&dir, &lexicon).unwrap();
        let greeting_path = dir.join("intents/greeting.toml");
        let shop_path = dir.join("shop.toml");
        let greeting = |phrases: &str| {
            intent_file(&format!(
                "[[phrase]]\nid = \"g1\"\ntext = \"您好\"\n{phrases}"
            ))
        };
        let new_phrase = greeting("[[phrase]]\nid = \"g2\"\ntext = \"在的\"\n");
        let same_id = greeting("[[phrase]]\nid = \"z1\"\ntext = \"在的\"\n");
        let same_code = greeting("[[phrase]]\nid = \"g2\"\ntext = \"在的\"\ncode = \"zz\"\n");
        // Clashes with an earlier, reused file: the error names where it was first defined.
        let earlier_id = greeting("[[phrase]]\nid = \"a1\"\ntext = \"在的\"\n");
        let earlier_code = greeting("[[phrase]]\nid = \"g2\"\ntext = \"在的\"\ncode = \"aa\"\n");
        let utc = SHOP.replace("[policy]", "[policy]\ntimezone = \"UTC\"");
        let no_threshold = SHOP.replace("free_shipping_threshold = 99\n", "");
        // (file, new contents, the error names this, or "" for no error)
        let edits: [(&Path, &str, &str); 7] = [
            (&greeting_path, &new_phrase, ""),
            (&greeting_path, &same_id, "zz.toml:"),
            (&greeting_path, &same_code, "zz.toml:"),
            (&greeting_path, &earlier_id, "first defined at"),
            (&greeting_path, &earlier_code, "used by phrase `a1`"),
            (&shop_path, &utc, ""),
            (&shop_path, &no_threshold, "zz.toml:"),
        ];
        for (path, src, names) in edits {
            let ok = names.is_empty();
            let overlay = [(path, Some(src))];
            let full = load_shop_with(&dir, &lexicon, &overlay, None);
            let reload = load_shop_with(&dir, &lexicon, &overlay, Some(&served));
            match (full, reload) {
                (Ok(full), Ok(reload)) => {
                    assert!(ok, "{src}");
                    assert_eq!(
                        format!("{:?}", full.intents),
                        format!("{:?}", reload.intents)
                    );
                    assert_eq!(
                        (full.version, &full.fingerprint),
                        (reload.version, &reload.fingerprint)
                    );
                    // Taken over, not parsed again, when the policy is the same.
                    let taken = |shop: &Shop| {
                        Arc::ptr_eq(
                            &shop.intent("zz").unwrap().phrases[0].file,
                            &served.intent("zz").unwrap().phrases[0].file,
                        )
                    };
                    assert_eq!(taken(&reload), path == greeting_path.as_path(), "{src}");
                    assert!(!taken(&full));
                }
                (Err(full), Err(reload)) => {
                    assert!(!ok, "{src}: {full}");
                    assert_eq!(full.to_string(), reload.to_string());
                    assert!(full.to_string().contains(names), "{full}");
                }
                (full, reload) => panic!("{src}: {full:?} vs {reload:?}"),
            }
        }
    }

    #[test]
    fn loads_valid_phrase_with_policy_variables() {
        let (_d, shop) = shop_with(&intent_file(
            "[[phrase]]\nid = \"g1\"\ntext = \"{buyer|亲}满{free_shipping_threshold}包邮,发{carriers}\"\ncode = \"HY1\"\n",
        ));
        let shop = shop.unwrap();
        assert_eq!(shop.policy["carriers"], "中通、顺丰");
        let p = shop.phrases().next().unwrap();
        assert_eq!(p.code.as_deref(), Some("hy1"));
        assert_eq!(p.priority, 5);
        assert!(
            p.location().ends_with("greeting.toml:3"),
            "{}",
            p.location()
        );
    }

    #[test]
    fn errors_name_file_line_and_cause() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"{nope}\"\n",
                "greeting.toml:5",
                "unknown variable `{nope}`",
            ),
            (
                "[[phrase]]\nid = \"G 1\"\ntext = \"hi\"\n",
                "greeting.toml:4",
                "id must be",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"a\"\n[[phrase]]\nid = \"g1\"\ntext = \"b\"\n",
                "greeting.toml:7",
                "duplicate id",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"  \"\n",
                "greeting.toml:5",
                "text is empty",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"{buyer\"\n",
                "greeting.toml:5",
                "never closed",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"a\"\npriority = 12\n",
                "greeting.toml:6",
                "priority 12",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"a\"\norder_state = [\"sent\"]\n",
                "greeting.toml:6",
                "order_state `sent`",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"a\"\nstage = \"售完\"\n",
                "greeting.toml:6",
                "stage `售完`",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"a\"\ncolour = 1\n",
                "greeting.toml:6",
                "unknown field `colour`",
            ),
            (
                "[[phrase]]\nid = \"g1\"\ntext = \"a\"\ncode = \"x\"\n[[phrase]]\nid = \"g2\"\ntext = \"b\"\ncode = \"X\"\n",
                "greeting.toml:10",
                "already used",
            ),
            ("label = \n", "greeting.toml:1", ""),
        ];
        for (body, loc, msg) in cases {
            let src = if body.starts_with("label") {
                body.to_string()
            } else {
                intent_file(body)
            };
            let (_d, result) = shop_with(&src);
            let err = result.expect_err(body).to_string();
            assert!(err.contains(loc) && err.contains(msg), "{body:?} → {err}");
        }
    }

    #[test]
    fn campaign_windows_are_read_in_the_shop_time_zone() {
        let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let utc = jiff::tz::TimeZone::UTC;
        // 2026-12-01T00:00:00+08:00 (Python: datetime(2026, 12, 1, tzinfo=+8h).timestamp()).
        let midnight_cn = 1_796_054_400;
        let cases: &[(&str, &jiff::tz::TimeZone, bool, i64)] = &[
            ("2026-12-01", &shanghai, false, midnight_cn),
            ("2026-12-01", &shanghai, true, midnight_cn + 86_400),
            ("2026-12-01", &utc, false, midnight_cn + 8 * 3600),
            (
                "2026-12-01T10:30:00",
                &shanghai,
                false,
                midnight_cn + 37_800,
            ),
            ("2026-12-01T10:30:00", &shanghai, true, midnight_cn + 37_800),
            (
                "2026-12-01T10:30:00Z",
                &shanghai,
                false,
                midnight_cn + 8 * 3600 + 37_800,
            ),
            (
                "2026-12-01T10:30:00+08:00",
                &utc,
                false,
                midnight_cn + 37_800,
            ),
            ("2026-12-31", &shanghai, true, midnight_cn + 31 * 86_400),
        ];
        for (text, zone, end, want) in cases {
            let d: toml::value::Datetime = text.parse().unwrap();
            assert_eq!(instant(&d, zone, *end), Ok(*want), "{text} end={end}");
        }
        let time_only: toml::value::Datetime = "10:30:00".parse().unwrap();
        assert!(instant(&time_only, &shanghai, false).is_err());
        let w = Window {
            from: Some(10),
            until: Some(20),
        };
        let open = [(9, false), (10, true), (19, true), (20, false)];
        for (t, want) in open {
            assert_eq!(w.contains(t), want, "t={t}");
        }
        assert!(Window::default().contains(i64::MIN));
    }

    #[test]
    fn bad_windows_and_zones_are_named() {
        let (_d, result) = shop_with(&intent_file(
            "[[phrase]]\nid = \"g1\"\ntext = \"a\"\nvalid_from = 2026-12-12\nvalid_until = 2026-12-01\n",
        ));
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("greeting.toml:7") && err.contains("not after"),
            "{err}"
        );
        let (_d, result) = shop_with(&intent_file(
            "[[phrase]]\nid = \"g1\"\ntext = \"a\"\nvalid_from = 10:00:00\n",
        ));
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("greeting.toml:6") && err.contains("needs a date"),
            "{err}"
        );
        let (dir, shop) = write_shop(&[("greeting", intent_file(""))]);
        std::fs::write(
            shop.join("shop.toml"),
            SHOP.replace("[policy]", "[policy]\ntimezone = \"Mars/Olympus\""),
        )
        .unwrap();
        let err = load_shop(&shop, &test_lexicon()).unwrap_err().to_string();
        assert!(
            err.contains("policy.timezone") && err.contains("Mars/Olympus"),
            "{err}"
        );
        drop(dir);
    }

    #[test]
    fn missing_required_intent_is_named() {
        let (_dir, shop) = write_shop(&[("greeting", intent_file(""))]);
        let err = load_shop(&shop, &test_lexicon()).unwrap_err().to_string();
        assert!(err.contains("required intent"), "{err}");
    }

    #[test]
    fn shipped_demo_shop_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
        let shops = load_root(&root).unwrap();
        let demo = shops.iter().find(|s| s.id == "demo").expect("demo shop");
        assert!(demo.phrases().count() >= 200);
        for i in &demo.intents {
            assert!(
                i.examples.len() >= 40,
                "{} has {} examples",
                i.id,
                i.examples.len()
            );
        }
    }
}
