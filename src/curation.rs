//! Curation: edits of a shop's phrasebook while agents are chatting.
//!
//! Every write takes one path: validate (the whole shop is loaded with the edited file in
//! place of the old one: schema, duplicate ids, unknown variables, compliance `block` rules)
//! → write the file atomically and durably ([`crate::phrasebook::store`]) → reload the
//! shop into the engine (index updated in place, classifier retrained if examples changed)
//! → return the new shop version. A write that fails validation touches nothing; one whose
//! reload fails puts the old file back. Writes to one shop are serialized; different shops
//! do not wait on each other. Blocking: call it from a blocking thread.
//!
//! Each write bumps the shop version and stamps it as the `revision` of what it changed
//! (a phrase, an intent, the shop policy), so an edit based on an older revision is refused
//! as a conflict instead of silently overwriting someone else's change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::engine::{Engine, ShopRef};
use crate::phrasebook::edit::{IntentDoc, PhraseFields};
use crate::phrasebook::qianniu::{self, Row};
use crate::phrasebook::{Phrase, Shop, default_lexicon, load_shop_with, store, valid_id};
use crate::render::Template;

/// The shop a new shop may start from: the shipped demo phrasebook.
pub const TEMPLATE_SHOP: &str = "demo";

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CurationError {
    #[error("{0}")]
    NotFound(String),
    /// The edit was based on `base`; the thing is now at `current`.
    #[error(
        "stale revision: based on {base}, but it is now at revision {current}; reload and retry"
    )]
    Conflict { base: u64, current: u64 },
    /// The edit would make the phrasebook invalid; `field` says where.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Io(String),
}

pub type Result<T> = std::result::Result<T, CurationError>;

fn check_intent_id(intent: &str) -> Result<()> {
    if valid_id(intent) {
        Ok(())
    } else {
        Err(invalid(
            "intent",
            format!("`{intent}` must be 1-64 of [a-z0-9_-]"),
        ))
    }
}

fn invalid(field: &str, message: impl Into<String>) -> CurationError {
    CurationError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The curation service over an engine's phrasebook root.
pub struct Curator {
    engine: Arc<Engine>,
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// A phrase as the API takes it (id and revision are managed here).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhraseInput {
    pub intent: String,
    pub fields: PhraseFields,
}

/// Changes to an intent's own fields; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntentInput {
    pub label: Option<String>,
    pub description: Option<String>,
    pub stages: Option<Vec<String>>,
    pub examples: Option<Vec<String>>,
}

/// Whether a write is carried out or only validated (`?dry_run=true`): a validated write
/// goes through exactly the checks of a real one and touches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Validate,
}

impl Curator {
    pub fn new(engine: Arc<Engine>, root: impl Into<PathBuf>) -> Self {
        Curator {
            engine,
            root: root.into(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self, shop: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(shop.to_string()).or_default().clone()
    }

    fn shop(&self, shop: &str) -> Result<ShopRef> {
        if !valid_id(shop) {
            return Err(CurationError::NotFound(format!("no shop `{shop}`")));
        }
        self.engine
            .shop_ref(shop)
            .map_err(|_| CurationError::NotFound(format!("no shop `{shop}`")))
    }

    fn intent_path(&self, shop: &str, intent: &str) -> PathBuf {
        self.root
            .join(shop)
            .join("intents")
            .join(format!("{intent}.toml"))
    }

    /// The one way a write reaches the disk: validate the shop with the new contents, write
    /// them and a history entry as one journaled change, reload the shop. If the reload
    /// fails, the old contents are put back.
    fn commit(
        &self,
        shop: &str,
        version: u64,
        action: &str,
        files: Vec<(PathBuf, Option<String>)>,
        mode: Mode,
    ) -> Result<u64> {
        let dir = self.root.join(shop);
        let lexicon = default_lexicon(&self.root).map_err(|e| CurationError::Io(e.to_string()))?;
        let overlay: Vec<(&Path, Option<&str>)> = files
            .iter()
            .map(|(p, c)| (p.as_path(), c.as_deref()))
            .collect();
        // What the served shop already has is not parsed or checked again (`load_shop_with`).
        let served = self.engine.shop_ref(shop).ok();
        let staged = load_shop_with(&dir, &lexicon, &overlay, served.as_deref());
        drop(served);
        let mut staged = staged.map_err(|e| match e {
            crate::Error::Phrasebook { location, message } => CurationError::Invalid {
                field: location,
                message,
            },
            other => invalid("phrasebook", other.to_string()),
        })?;
        if mode == Mode::Validate {
            return Ok(version - 1);
        }
        let mut entry = HistoryEntry {
            version,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            action: action.to_string(),
            file: Vec::with_capacity(files.len()),
        };
        let mut befores = Vec::with_capacity(files.len());
        for (path, after) in &files {
            let before = match std::fs::read_to_string(path) {
                Ok(s) => Some(s),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(CurationError::Io(format!(
                        "reading {}: {e}",
                        path.display()
                    )));
                }
            };
            let rel = path
                .strip_prefix(&dir)
                .map_err(|_| invalid("path", "outside the shop"))?;
            entry.file.push(HistoryFile {
                path: rel.to_string_lossy().into_owned(),
                before: before.clone(),
                after: after.clone(),
            });
            befores.push((path.clone(), before));
        }
        let history_path = history_path(&dir, version);
        let entry_text = toml::to_string(&entry).map_err(|e| CurationError::Io(e.to_string()))?;
        let mut all = files;
        all.push((history_path.clone(), Some(entry_text)));
        // An edit of examples retrains the classifier: on another thread while the files
        // are written and synced, held until the install below picks it up.
        let (_trained, written) = std::thread::scope(|scope| {
            let training = scope.spawn(|| self.engine.train_ahead(&staged));
            let written = store::write_many(&dir, &all);
            let trained = training
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (trained, written)
        });
        written.map_err(|e| CurationError::Io(format!("writing shop `{shop}`: {e}")))?;
        // What was validated is what is now on disk, but for the history entry just written,
        // which only counts towards the version.
        staged.version = staged.version.max(version);
        match self.engine.install_shop(staged) {
            Ok(r) => Ok(r.version),
            Err(e) => {
                befores.push((history_path, None));
                if let Err(io) = store::write_many(&dir, &befores) {
                    tracing::error!(shop, error = %io, "could not restore files after a failed reload");
                }
                Err(CurationError::Io(format!("reloading shop `{shop}`: {e}")))
            }
        }
    }

    /// Creates a shop at run time: `shop.toml` with `name`, and either the intents and
    /// policy of the shipped template shop [`TEMPLATE_SHOP`] (`from`) or the required
    /// intents with nothing in them. Only the template can be copied: another tenant's
    /// phrasebook is not a template. The new shop is served at once.
    pub fn create_shop(&self, shop: &str, name: &str, from: Option<&str>) -> Result<u64> {
        if !valid_id(shop) {
            return Err(invalid(
                "shop",
                format!("`{shop}` must be 1-64 of [a-z0-9_-]"),
            ));
        }
        if name.trim().is_empty() {
            return Err(invalid("name", "required"));
        }
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.root.join(shop);
        if dir.exists() || self.engine.has_shop(shop) {
            return Err(CurationError::Conflict {
                base: 0,
                current: self.engine.version(shop).unwrap_or(0),
            });
        }
        let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
        let mut policy = toml_edit::Table::new();
        match from {
            Some(other) if other != TEMPLATE_SHOP => {
                return Err(invalid(
                    "from",
                    format!("only the `{TEMPLATE_SHOP}` template can be copied"),
                ));
            }
            Some(template) => {
                let t = self.shop(template)?;
                let tdir = self.root.join(template);
                let src = std::fs::read_to_string(tdir.join("shop.toml"))
                    .map_err(|e| CurationError::Io(e.to_string()))?;
                let doc: toml_edit::DocumentMut = src
                    .parse()
                    .map_err(|e| CurationError::Io(format!("{template}/shop.toml: {e}")))?;
                if let Some(p) = doc.get("policy").and_then(|p| p.as_table()) {
                    policy = p.clone();
                }
                for i in &t.intents {
                    let path = tdir.join("intents").join(format!("{}.toml", i.id));
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| CurationError::Io(format!("{}: {e}", path.display())))?;
                    files.push((
                        dir.join("intents").join(format!("{}.toml", i.id)),
                        Some(text),
                    ));
                }
            }
            None => {
                for (id, label) in [
                    ("greeting", "问候"),
                    ("price_change", "改价"),
                    ("logistics", "物流查询"),
                    ("complaint", "投诉/质量问题"),
                    ("closing", "致谢/结束"),
                ] {
                    files.push((
                        dir.join("intents").join(format!("{id}.toml")),
                        Some(IntentDoc::new(label, "", &[]).render()),
                    ));
                }
            }
        }
        let mut doc = toml_edit::DocumentMut::new();
        doc["name"] = toml_edit::value(name.trim());
        doc["policy"] = toml_edit::Item::Table(policy);
        files.push((dir.join("shop.toml"), Some(doc.to_string())));
        store::create_dir_durable(&dir)
            .map_err(|e| CurationError::Io(format!("creating {}: {e}", dir.display())))?;
        let result = self.commit(
            shop,
            1,
            &format!("create shop from {}", from.unwrap_or("nothing")),
            files,
            Mode::Apply,
        );
        if result.is_err() && !self.engine.has_shop(shop) {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    /// The shop's writes, newest first (at most `limit`).
    pub fn history(&self, shop: &str, limit: usize) -> Result<Vec<HistoryItem>> {
        self.shop(shop)?;
        let mut versions: Vec<u64> =
            crate::phrasebook::history_versions(&self.root.join(shop)).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for v in versions.into_iter().take(limit) {
            let e = read_entry(&self.root.join(shop), v)?;
            out.push(HistoryItem {
                version: e.version,
                time: e.time,
                action: e.action,
                files: e.file.into_iter().map(|f| f.path).collect(),
            });
        }
        Ok(out)
    }

    /// Brings the shop's files back to how they were right after `version`, as a new
    /// write (itself revertible). Every file changed since is restored (or removed, if it
    /// did not exist then).
    pub fn revert(&self, shop: &str, to: u64) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.shop(shop)?;
        if to >= current.version {
            return Err(invalid(
                "version",
                format!(
                    "{to} is not older than the current version {}",
                    current.version
                ),
            ));
        }
        let dir = self.root.join(shop);
        let mut restore: Vec<(PathBuf, Option<String>)> = Vec::new();
        for v in (to + 1)..=current.version {
            let Ok(e) = read_entry(&dir, v) else { continue };
            for f in e.file {
                let path = dir.join(&f.path);
                if !restore.iter().any(|(p, _)| *p == path) {
                    restore.push((path, f.before));
                }
            }
        }
        if restore.is_empty() {
            return Err(invalid(
                "version",
                format!("no recorded change after version {to}"),
            ));
        }
        self.commit(
            shop,
            current.version + 1,
            &format!("revert to {to}"),
            restore,
            Mode::Apply,
        )
    }

    /// Reads an intent file, applies `f`, and commits the result.
    fn edit_intent(
        &self,
        shop: &str,
        intent: &str,
        create: bool,
        mode: Mode,
        action: &str,
        f: impl FnOnce(&mut IntentDoc, u64) -> Result<()>,
    ) -> Result<u64> {
        check_intent_id(intent)?;
        let current = self.shop(shop)?;
        let path = self.intent_path(shop, intent);
        let old = match std::fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(CurationError::Io(format!(
                    "reading {}: {e}",
                    path.display()
                )));
            }
        };
        let mut doc = match &old {
            Some(src) => {
                IntentDoc::parse(src).map_err(|e| invalid(&path.display().to_string(), e.0))?
            }
            None if create => IntentDoc::new(intent, "", &[]),
            None => {
                return Err(CurationError::NotFound(format!(
                    "no intent `{intent}` in shop `{shop}`"
                )));
            }
        };
        let version = current.version + 1;
        f(&mut doc, version)?;
        self.commit(
            shop,
            version,
            action,
            vec![(path, Some(doc.render()))],
            mode,
        )
    }

    /// Creates a phrase; a missing id becomes `<intent>-<n>`. Returns (id, version).
    pub fn create_phrase(
        &self,
        shop: &str,
        input: PhraseInput,
        mode: Mode,
    ) -> Result<(String, u64)> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.shop(shop)?;
        let mut fields = input.fields;
        if fields.id.is_empty() {
            let prefix = input.intent.replace('_', "-");
            let taken: std::collections::HashSet<&str> =
                current.phrases().map(|p| p.id.as_str()).collect();
            let n = (1..)
                .find(|n| !taken.contains(format!("{prefix}-{n:03}").as_str()))
                .unwrap_or(0);
            fields.id = format!("{prefix}-{n:03}");
        }
        if !valid_id(&fields.id) {
            return Err(invalid(
                "id",
                format!("`{}` must be 1-64 of [a-z0-9_-]", fields.id),
            ));
        }
        if let Some(p) = current.phrases().find(|p| p.id == fields.id) {
            return Err(invalid(
                "id",
                format!(
                    "phrase `{}` already exists (in intent `{}`)",
                    p.id, p.intent
                ),
            ));
        }
        let id = fields.id.clone();
        let action = format!("create phrase {id}");
        let version = self.edit_intent(shop, &input.intent, false, mode, &action, |doc, v| {
            fields.revision = v;
            doc.upsert_phrase(&fields)
                .map_err(|e| invalid("phrase", e.0))
        })?;
        Ok((id, version))
    }

    fn find(&self, shop: &str, id: &str) -> Result<Phrase> {
        if !valid_id(id) {
            return Err(CurationError::NotFound(format!("no phrase `{id}`")));
        }
        self.shop(shop)?
            .phrases()
            .find(|p| p.id == id)
            .cloned()
            .ok_or_else(|| CurationError::NotFound(format!("no phrase `{id}` in shop `{shop}`")))
    }

    /// The phrase, if `base_revision` is still its revision (else 409 with the current one).
    /// Call with the shop's lock held.
    fn unchanged_since(&self, shop: &str, id: &str, base_revision: u64) -> Result<Phrase> {
        let current = self.find(shop, id)?;
        if current.revision != base_revision {
            return Err(CurationError::Conflict {
                base: base_revision,
                current: current.revision,
            });
        }
        Ok(current)
    }

    /// Replaces a phrase's fields, if `base_revision` is still its revision; a different
    /// `intent` moves it there.
    pub fn update_phrase(
        &self,
        shop: &str,
        id: &str,
        base_revision: u64,
        input: PhraseInput,
        mode: Mode,
    ) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.unchanged_since(shop, id, base_revision)?;
        let mut fields = input.fields;
        fields.id = id.to_string();
        if !input.intent.is_empty() && input.intent != current.intent {
            return self.move_phrase(shop, &current.intent, &input.intent, fields, mode);
        }
        let action = format!("update phrase {id}");
        self.edit_intent(shop, &current.intent, false, mode, &action, |doc, v| {
            fields.revision = v;
            doc.upsert_phrase(&fields)
                .map_err(|e| invalid("phrase", e.0))
        })
    }

    /// Moves a phrase to another intent with new fields: both intent files change as one
    /// journaled write, so a crash leaves the phrase in exactly one of them.
    fn move_phrase(
        &self,
        shop: &str,
        from: &str,
        to: &str,
        mut fields: PhraseFields,
        mode: Mode,
    ) -> Result<u64> {
        check_intent_id(to)?;
        let current = self.shop(shop)?;
        if current.intent(to).is_none() {
            return Err(CurationError::NotFound(format!(
                "no intent `{to}` in shop `{shop}`"
            )));
        }
        let version = current.version + 1;
        fields.revision = version;
        let (from_path, to_path) = (self.intent_path(shop, from), self.intent_path(shop, to));
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| CurationError::Io(format!("reading {}: {e}", p.display())))
                .and_then(|s| {
                    IntentDoc::parse(&s).map_err(|e| invalid(&p.display().to_string(), e.0))
                })
        };
        let (mut src, mut dst) = (read(&from_path)?, read(&to_path)?);
        src.remove_phrase(&fields.id)
            .map_err(|e| invalid("phrase", e.0))?;
        src.set_revision(version);
        dst.upsert_phrase(&fields)
            .map_err(|e| invalid("phrase", e.0))?;
        let files = vec![(from_path, src.render()), (to_path, dst.render())];
        self.commit(
            shop,
            version,
            &format!("move phrase {} to {to}", fields.id),
            files.into_iter().map(|(p, c)| (p, Some(c))).collect(),
            mode,
        )
    }

    /// Deletes a phrase, if `base_revision` is still its revision.
    pub fn delete_phrase(&self, shop: &str, id: &str, base_revision: u64) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.unchanged_since(shop, id, base_revision)?;
        let action = format!("delete phrase {id}");
        self.edit_intent(
            shop,
            &current.intent,
            false,
            Mode::Apply,
            &action,
            |doc, v| {
                doc.remove_phrase(id).map_err(|e| invalid("phrase", e.0))?;
                // The intent file changed: record the version there, so the shop's version
                // (the highest revision in its files) moves on even when the deleted phrase
                // held it.
                doc.set_revision(v);
                Ok(())
            },
        )
    }

    /// Creates an intent or changes its fields. `base_revision` guards an update like a
    /// phrase's; creating needs `label`.
    pub fn put_intent(
        &self,
        shop: &str,
        intent: &str,
        base_revision: Option<u64>,
        input: IntentInput,
        mode: Mode,
    ) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let existing = self.shop(shop)?.intent(intent).map(|i| i.revision);
        match (existing, base_revision) {
            (Some(cur), Some(base)) if cur != base => {
                return Err(CurationError::Conflict { base, current: cur });
            }
            (None, _) if input.label.as_deref().is_none_or(str::is_empty) => {
                return Err(invalid("label", "a new intent needs a label"));
            }
            _ => {}
        }
        let action = format!("edit intent {intent}");
        self.edit_intent(shop, intent, true, mode, &action, |doc, v| {
            if let Some(l) = &input.label {
                doc.set_label(l);
            }
            if let Some(d) = &input.description {
                doc.set_description(d);
            }
            if let Some(s) = &input.stages {
                doc.set_stages(s);
            }
            if let Some(e) = &input.examples {
                if e.iter().any(|x| x.trim().is_empty()) {
                    return Err(invalid("examples", "an example is empty"));
                }
                doc.set_examples(e);
            }
            doc.set_revision(v);
            Ok(())
        })
    }

    /// Sets shop policy values (strings, numbers, booleans, lists of strings) and returns the
    /// new version. Keys not given stay as they are.
    pub fn put_policy(&self, shop: &str, values: &[(String, toml_edit::Value)]) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.shop(shop)?;
        let path = self.root.join(shop).join("shop.toml");
        let old = std::fs::read_to_string(&path)
            .map_err(|e| CurationError::Io(format!("reading {}: {e}", path.display())))?;
        let mut doc: toml_edit::DocumentMut = old
            .parse()
            .map_err(|e| invalid(&path.display().to_string(), format!("not valid TOML: {e}")))?;
        if doc.get("policy").is_none() {
            doc["policy"] = toml_edit::table();
        }
        for (key, value) in values {
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid("policy", format!("key `{key}` must be [a-z0-9_]+")));
            }
            doc["policy"][key.as_str()] = toml_edit::value(value.clone());
        }
        doc["revision"] = toml_edit::value(i64::try_from(current.version + 1).unwrap_or(i64::MAX));
        self.commit(
            shop,
            current.version + 1,
            "edit policy",
            vec![(path, Some(doc.to_string()))],
            Mode::Apply,
        )
    }

    /// Imports a TOML bundle (see [`export_toml`]): every intent in it replaces the shop's
    /// intent of the same id (or is added), all or nothing, validated like any edit.
    /// Intents the bundle does not name are left as they are; shop policy is not touched.
    pub fn import_toml(&self, shop: &str, src: &str) -> Result<u64> {
        let doc: toml_edit::DocumentMut = src
            .parse()
            .map_err(|e| invalid("file", format!("not valid TOML: {e}")))?;
        let intents = doc
            .get("intent")
            .and_then(|i| i.as_array_of_tables())
            .ok_or_else(|| invalid("file", "no [[intent]] tables: not a huashu bundle"))?;
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.shop(shop)?;
        let version = current.version + 1;
        let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
        for (n, t) in intents.iter().enumerate() {
            let id = t
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            if !valid_id(&id) {
                return Err(invalid(
                    &format!("intent #{}", n + 1),
                    format!("id `{id}` must be 1-64 of [a-z0-9_-]"),
                ));
            }
            if files.iter().any(|(p, _)| p.ends_with(format!("{id}.toml"))) {
                return Err(invalid(
                    &format!("intent #{}", n + 1),
                    format!("intent `{id}` appears twice"),
                ));
            }
            let mut table = t.clone();
            table.remove("id");
            table.set_position(None);
            if let Some(phrases) = table
                .get_mut("phrase")
                .and_then(|p| p.as_array_of_tables_mut())
            {
                for p in phrases.iter_mut() {
                    p.set_position(None);
                }
            }
            let mut out = toml_edit::DocumentMut::from(table);
            out["revision"] = toml_edit::value(i64::try_from(version).unwrap_or(i64::MAX));
            if let Some(phrases) = out
                .get_mut("phrase")
                .and_then(|p| p.as_array_of_tables_mut())
            {
                for p in phrases.iter_mut() {
                    p["revision"] = toml_edit::value(i64::try_from(version).unwrap_or(i64::MAX));
                }
            }
            files.push((self.intent_path(shop, &id), Some(out.to_string())));
        }
        if files.is_empty() {
            return Err(invalid("file", "the bundle has no intents"));
        }
        self.commit(shop, version, "import TOML bundle", files, Mode::Apply)
    }

    /// Imports a 千牛 quick-phrase sheet, all or nothing. Every row is mapped to an intent
    /// (known group names to the default ids, other groups to new intents labeled with the
    /// group), linted, and checked against the shop (codes in use, same text already in
    /// the intent). If any row is rejected nothing is written and the report says why, with
    /// the compliant rewrite where there is one. `dry_run` only reports.
    pub fn import_qianniu(&self, shop: &str, bytes: &[u8], dry_run: bool) -> Result<ImportReport> {
        let rows = qianniu::parse(bytes).map_err(|e| invalid("file", e.message))?;
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.shop(shop)?;
        let mut report = ImportReport::default();
        let mut codes: HashMap<String, String> = current
            .phrases()
            .filter_map(|p| p.code.clone().map(|c| (c, p.id.clone())))
            .collect();
        let mut texts: std::collections::HashSet<(String, String)> = current
            .phrases()
            .map(|p| (p.intent.clone(), p.text.clone()))
            .collect();
        let mut by_intent: std::collections::BTreeMap<String, Vec<(usize, PhraseFields)>> =
            Default::default();
        let mut ids: std::collections::HashSet<String> =
            current.phrases().map(|p| p.id.clone()).collect();
        let known_vars = |v: &str| {
            crate::phrasebook::CONVERSATION_VARIABLES.contains(&v) || current.policy.contains_key(v)
        };
        for row in &rows {
            let (intent, label) = intent_for_row(&current, row);
            let reject = |reason: String, rewritten: Option<String>| Rejected {
                line: row.line,
                group: row.group.clone(),
                text: row.text.clone(),
                reason,
                rewritten,
            };
            if row.text.is_empty() {
                report
                    .rejected
                    .push(reject("the phrase is empty".into(), None));
                continue;
            }
            let template = match Template::parse(&row.text) {
                Ok(t) => t,
                Err(e) => {
                    report.rejected.push(reject(format!("text: {e}"), None));
                    continue;
                }
            };
            if let Some(v) = template.variables().find(|v| !known_vars(v)) {
                report
                    .rejected
                    .push(reject(format!("unknown variable `{{{v}}}`"), None));
                continue;
            }
            let code = row.code.trim().to_lowercase();
            if !code.is_empty() {
                if code.len() > 16 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    report.rejected.push(reject(
                        format!(
                            "快捷编码 `{}` must be 1-16 ASCII letters or digits",
                            row.code
                        ),
                        None,
                    ));
                    continue;
                }
                if let Some(other) = codes.get(&code) {
                    report.rejected.push(reject(
                        format!("快捷编码 `{code}` is already used by `{other}`"),
                        None,
                    ));
                    continue;
                }
            }
            let verdict = current.lexicon.check(&template.literal());
            if verdict.blocked() {
                let what: Vec<String> = verdict
                    .violations
                    .iter()
                    .filter(|v| v.severity == crate::compliance::Severity::Block)
                    .map(|v| format!("{} `{}`", v.category, v.matched))
                    .collect();
                let rewritten = current.lexicon.check(&row.text).rewritten;
                let fixable = !current.lexicon.check(&rewritten).blocked();
                report.rejected.push(reject(
                    format!("compliance: {}", what.join(", ")),
                    fixable.then_some(rewritten),
                ));
                continue;
            }
            if !texts.insert((intent.clone(), row.text.clone())) {
                report.duplicates += 1;
                continue;
            }
            let prefix = format!("{}-q", intent.replace('_', "-"));
            let id = (1..)
                .map(|n| format!("{prefix}{n:03}"))
                .find(|id| !ids.contains(id))
                .unwrap_or_default();
            ids.insert(id.clone());
            if !code.is_empty() {
                codes.insert(code.clone(), id.clone());
            }
            if current.intent(&intent).is_none()
                && !report.new_intents.iter().any(|(i, _)| i == &intent)
            {
                report.new_intents.push((intent.clone(), label.clone()));
            }
            report.accepted.push(Accepted {
                line: row.line,
                intent: intent.clone(),
                id: id.clone(),
                warnings: verdict
                    .violations
                    .iter()
                    .map(|v| format!("{} `{}`", v.category, v.matched))
                    .collect(),
            });
            by_intent.entry(intent).or_default().push((
                row.line,
                PhraseFields {
                    id,
                    text: row.text.clone(),
                    code: (!code.is_empty()).then_some(code),
                    tags: if row.group.is_empty() {
                        Vec::new()
                    } else {
                        vec![row.group.clone()]
                    },
                    ..Default::default()
                },
            ));
        }
        if !report.rejected.is_empty() || dry_run || report.accepted.is_empty() {
            return Ok(report);
        }
        let version = current.version + 1;
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        for (intent, phrases) in by_intent {
            let path = self.intent_path(shop, &intent);
            let mut doc = match std::fs::read_to_string(&path) {
                Ok(src) => {
                    IntentDoc::parse(&src).map_err(|e| invalid(&path.display().to_string(), e.0))?
                }
                Err(_) => {
                    let label = report
                        .new_intents
                        .iter()
                        .find(|(i, _)| i == &intent)
                        .map_or(intent.as_str(), |(_, l)| l.as_str());
                    IntentDoc::new(label, "imported from a 千牛 quick-phrase sheet", &[])
                }
            };
            for (_, mut f) in phrases {
                f.revision = version;
                doc.upsert_phrase(&f).map_err(|e| invalid("phrase", e.0))?;
            }
            doc.set_revision(version);
            files.push((path, doc.render()));
        }
        let version = self.commit(
            shop,
            version,
            "import 千牛 sheet",
            files.into_iter().map(|(p, c)| (p, Some(c))).collect(),
            Mode::Apply,
        )?;
        report.applied = true;
        report.version = Some(version);
        Ok(report)
    }
}

/// The intent a sheet row goes to, and the label of a new one.
fn intent_for_row(shop: &Shop, row: &Row) -> (String, String) {
    let group = row.group.trim();
    if group.is_empty() {
        return ("imported".into(), "导入".into());
    }
    if let Some(id) = qianniu::intent_for_group(group).filter(|id| shop.intent(id).is_some()) {
        return (id.to_string(), group.to_string());
    }
    if let Some(i) = shop
        .intents
        .iter()
        .find(|i| i.label == group || i.id == group)
    {
        return (i.id.clone(), i.label.clone());
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(group.as_bytes());
    let id = format!(
        "group-{}",
        digest
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    (id, group.to_string())
}

/// The shop's intents as one TOML document (a bundle): `[[intent]]` tables holding each
/// intent file's content (comments included) with its `id`, without `revision` stamps
/// (those are history, not content).
pub fn export_toml(root: &Path, shop: &Shop) -> Result<String> {
    let mut doc = toml_edit::DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# huashu phrasebook bundle: shop `{}` ({}), version {}\n",
        shop.id, shop.name, shop.version
    ));
    let mut intents = toml_edit::ArrayOfTables::new();
    for i in &shop.intents {
        let path = root
            .join(&shop.id)
            .join("intents")
            .join(format!("{}.toml", i.id));
        let src = std::fs::read_to_string(&path)
            .map_err(|e| CurationError::Io(format!("{}: {e}", path.display())))?;
        let parsed: toml_edit::DocumentMut = src
            .parse()
            .map_err(|e| CurationError::Io(format!("{}: {e}", path.display())))?;
        let mut table = parsed.as_table().clone();
        table.remove("revision");
        if let Some(phrases) = table
            .get_mut("phrase")
            .and_then(|p| p.as_array_of_tables_mut())
        {
            for p in phrases.iter_mut() {
                p.remove("revision");
                // Positions come from the source file; in the bundle, order is insertion.
                p.set_position(None);
            }
        }
        let mut t = toml_edit::Table::new();
        t.set_position(None);
        t["id"] = toml_edit::value(i.id.as_str());
        for (k, v) in table.iter() {
            t[k] = v.clone();
        }
        intents.push(t);
    }
    doc["intent"] = toml_edit::Item::ArrayOfTables(intents);
    Ok(doc.to_string())
}

/// The shop's phrases as a 千牛 sheet: group = intent label, code, text as written.
pub fn export_qianniu(shop: &Shop) -> Vec<u8> {
    let rows: Vec<Row> = shop
        .intents
        .iter()
        .flat_map(|i| {
            i.phrases.iter().map(|p| Row {
                line: 0,
                group: i.label.clone(),
                code: p.code.clone().unwrap_or_default(),
                text: p.text.clone(),
            })
        })
        .collect();
    qianniu::write(&rows)
}

/// One write as recorded in `<shop>/history/<version>.toml`.
#[derive(serde::Serialize, serde::Deserialize)]
struct HistoryEntry {
    version: u64,
    time: u64,
    action: String,
    file: Vec<HistoryFile>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HistoryFile {
    /// Relative to the shop directory.
    path: String,
    before: Option<String>,
    after: Option<String>,
}

/// A write, as `history` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub version: u64,
    /// Unix seconds.
    pub time: u64,
    pub action: String,
    pub files: Vec<String>,
}

fn history_path(shop_dir: &Path, version: u64) -> PathBuf {
    shop_dir
        .join(crate::phrasebook::HISTORY_DIR)
        .join(format!("{version:010}.toml"))
}

fn read_entry(shop_dir: &Path, version: u64) -> Result<HistoryEntry> {
    let path = history_path(shop_dir, version);
    let src = std::fs::read_to_string(&path)
        .map_err(|e| CurationError::Io(format!("reading {}: {e}", path.display())))?;
    toml::from_str(&src).map_err(|e| CurationError::Io(format!("{}: {e}", path.display())))
}

/// What an import did or would do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
    /// Rows whose text the intent already has: skipped.
    pub duplicates: usize,
    /// (id, label) of intents the import creates.
    pub new_intents: Vec<(String, String)>,
    pub applied: bool,
    pub version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub line: usize,
    pub intent: String,
    pub id: String,
    /// Warn-level compliance findings.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub line: usize,
    pub group: String,
    pub text: String,
    pub reason: String,
    /// A compliant rewrite, when the lexicon has one.
    pub rewritten: Option<String>,
}
