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

use crate::engine::Engine;
use crate::phrasebook::edit::{IntentDoc, PhraseFields};
use crate::phrasebook::{Phrase, Shop, default_lexicon, load_shop_with, store, valid_id};

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

    fn shop(&self, shop: &str) -> Result<Shop> {
        if !valid_id(shop) {
            return Err(CurationError::NotFound(format!("no shop `{shop}`")));
        }
        self.engine
            .shop(shop)
            .map_err(|_| CurationError::NotFound(format!("no shop `{shop}`")))
    }

    fn intent_path(&self, shop: &str, intent: &str) -> PathBuf {
        self.root
            .join(shop)
            .join("intents")
            .join(format!("{intent}.toml"))
    }

    /// Validates `new_src` as the content of `path`, writes it, reloads the shop.
    fn commit(&self, shop: &str, path: &Path, old_src: Option<&str>, new_src: &str) -> Result<u64> {
        let lexicon = default_lexicon(&self.root).map_err(|e| CurationError::Io(e.to_string()))?;
        load_shop_with(&self.root.join(shop), &lexicon, Some((path, new_src))).map_err(
            |e| match e {
                crate::Error::Phrasebook { location, message } => CurationError::Invalid {
                    field: location,
                    message,
                },
                other => invalid("phrasebook", other.to_string()),
            },
        )?;
        store::write_atomic(path, new_src.as_bytes())
            .map_err(|e| CurationError::Io(format!("writing {}: {e}", path.display())))?;
        match self.engine.reload_shop(shop) {
            Ok(r) => Ok(r.version),
            Err(e) => {
                // Validation passed but the reload did not (the index, most likely): put the
                // old file back so disk and memory agree.
                let restored = match old_src {
                    Some(old) => store::write_atomic(path, old.as_bytes()),
                    None => store::remove_durable(path),
                };
                if let Err(io) = restored {
                    tracing::error!(shop, error = %io, "could not restore {} after a failed reload", path.display());
                }
                Err(CurationError::Io(format!("reloading shop `{shop}`: {e}")))
            }
        }
    }

    /// Reads an intent file, applies `f`, and commits the result.
    fn edit_intent(
        &self,
        shop: &str,
        intent: &str,
        create: bool,
        f: impl FnOnce(&mut IntentDoc, u64) -> Result<()>,
    ) -> Result<u64> {
        if !valid_id(intent) {
            return Err(invalid(
                "intent",
                format!("`{intent}` must be 1-64 of [a-z0-9_-]"),
            ));
        }
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
        self.commit(shop, &path, old.as_deref(), &doc.render())
    }

    /// Creates a phrase; a missing id becomes `<intent>-<n>`. Returns (id, version).
    pub fn create_phrase(&self, shop: &str, input: PhraseInput) -> Result<(String, u64)> {
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
        let version = self.edit_intent(shop, &input.intent, false, |doc, v| {
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

    /// Replaces a phrase's fields, if `base_revision` is still its revision. Moving it to
    /// another intent is not an update: the intent must stay the same.
    pub fn update_phrase(
        &self,
        shop: &str,
        id: &str,
        base_revision: u64,
        input: PhraseInput,
    ) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.find(shop, id)?;
        if current.revision != base_revision {
            return Err(CurationError::Conflict {
                base: base_revision,
                current: current.revision,
            });
        }
        if !input.intent.is_empty() && input.intent != current.intent {
            return Err(invalid(
                "intent",
                "moving a phrase to another intent is not supported by update; delete and create it",
            ));
        }
        let mut fields = input.fields;
        fields.id = id.to_string();
        self.edit_intent(shop, &current.intent, false, |doc, v| {
            fields.revision = v;
            doc.upsert_phrase(&fields)
                .map_err(|e| invalid("phrase", e.0))
        })
    }

    /// Deletes a phrase, if `base_revision` is still its revision.
    pub fn delete_phrase(&self, shop: &str, id: &str, base_revision: u64) -> Result<u64> {
        let lock = self.lock(shop);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.find(shop, id)?;
        if current.revision != base_revision {
            return Err(CurationError::Conflict {
                base: base_revision,
                current: current.revision,
            });
        }
        self.edit_intent(shop, &current.intent, false, |doc, v| {
            doc.remove_phrase(id).map_err(|e| invalid("phrase", e.0))?;
            // The intent file changed: record the version there, so the shop's version
            // (the highest revision in its files) moves on even when the deleted phrase
            // held it.
            doc.set_revision(v);
            Ok(())
        })
    }

    /// Creates an intent or changes its fields. `base_revision` guards an update like a
    /// phrase's; creating needs `label`.
    pub fn put_intent(
        &self,
        shop: &str,
        intent: &str,
        base_revision: Option<u64>,
        input: IntentInput,
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
        self.edit_intent(shop, intent, true, |doc, v| {
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
        self.commit(shop, &path, Some(&old), &doc.to_string())
    }
}
