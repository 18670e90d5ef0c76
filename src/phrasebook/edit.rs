//! Edits of intent files that keep what the owner wrote: comments, key order, layout and
//! every phrase not touched stay byte for byte. Pure: source text in, source text out; the
//! caller validates the result (by loading it) before anything is written.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

/// The fields of a phrase as the curation API sets them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhraseFields {
    pub id: String,
    pub text: String,
    pub keywords: Vec<String>,
    pub stage: Option<String>,
    pub order_state: Vec<String>,
    pub priority: Option<u8>,
    pub code: Option<String>,
    pub tags: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub enabled: Option<bool>,
    /// The shop version of the write that last changed this phrase.
    pub revision: u64,
}

/// An intent file being edited.
#[derive(Debug, Clone)]
pub struct IntentDoc {
    doc: DocumentMut,
}

/// Why an intent file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EditError(pub String);

fn strings(items: &[String]) -> Array {
    let mut a = Array::new();
    for s in items {
        a.push(s.as_str());
    }
    a
}

impl IntentDoc {
    pub fn parse(src: &str) -> Result<Self, EditError> {
        src.parse::<DocumentMut>()
            .map(|doc| IntentDoc { doc })
            .map_err(|e| EditError(format!("not valid TOML: {e}")))
    }

    /// A new intent file.
    pub fn new(label: &str, description: &str, stages: &[String]) -> Self {
        let mut doc = DocumentMut::new();
        doc["label"] = value(label);
        doc["description"] = value(description);
        doc["stage"] = value(strings(stages));
        doc["examples"] = value(Array::new());
        IntentDoc { doc }
    }

    /// Records the shop version of this write on the intent itself.
    pub fn set_revision(&mut self, revision: u64) {
        self.doc["revision"] = value(i64::try_from(revision).unwrap_or(i64::MAX));
    }

    pub fn set_label(&mut self, label: &str) {
        self.doc["label"] = value(label);
    }

    pub fn set_description(&mut self, description: &str) {
        self.doc["description"] = value(description);
    }

    pub fn set_stages(&mut self, stages: &[String]) {
        self.doc["stage"] = value(strings(stages));
    }

    /// Replaces the examples, one per line so diffs stay readable.
    pub fn set_examples(&mut self, examples: &[String]) {
        let mut a = strings(examples);
        for v in a.iter_mut() {
            v.decor_mut().set_prefix("\n  ");
        }
        a.set_trailing("\n");
        a.set_trailing_comma(true);
        self.doc["examples"] = value(a);
    }

    fn phrases_mut(&mut self) -> Result<&mut ArrayOfTables, EditError> {
        if self.doc.get("phrase").is_none() {
            self.doc["phrase"] = Item::ArrayOfTables(ArrayOfTables::new());
        }
        self.doc["phrase"]
            .as_array_of_tables_mut()
            .ok_or_else(|| EditError("`phrase` must be an array of tables ([[phrase]])".into()))
    }

    fn position(&mut self, id: &str) -> Result<Option<usize>, EditError> {
        Ok(self
            .phrases_mut()?
            .iter()
            .position(|t| t.get("id").and_then(|v| v.as_str()) == Some(id)))
    }

    /// Ids of the phrases, in file order.
    pub fn phrase_ids(&mut self) -> Result<Vec<String>, EditError> {
        Ok(self
            .phrases_mut()?
            .iter()
            .filter_map(|t| t.get("id").and_then(|v| v.as_str()).map(str::to_string))
            .collect())
    }

    /// Replaces the phrase with the same id in place (keeping its comments and keys the API
    /// does not know), or appends it.
    pub fn upsert_phrase(&mut self, p: &PhraseFields) -> Result<(), EditError> {
        let at = self.position(&p.id)?;
        let phrases = self.phrases_mut()?;
        let table = match at {
            Some(i) => phrases
                .get_mut(i)
                .ok_or_else(|| EditError(format!("phrase `{}` vanished", p.id)))?,
            None => {
                phrases.push(Table::new());
                let last = phrases.len() - 1;
                phrases
                    .get_mut(last)
                    .ok_or_else(|| EditError("could not append a phrase".into()))?
            }
        };
        fill(table, p)
    }

    /// Removes the phrase; false if there was none.
    pub fn remove_phrase(&mut self, id: &str) -> Result<bool, EditError> {
        match self.position(id)? {
            Some(i) => {
                self.phrases_mut()?.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The phrase's fields as stored, for moving it to another file.
    pub fn phrase(&mut self, id: &str) -> Result<Option<Table>, EditError> {
        let at = self.position(id)?;
        Ok(at.and_then(|i| self.phrases_mut().ok()?.get(i).cloned()))
    }

    /// Appends a phrase table as it was stored elsewhere (a move keeps unknown keys).
    pub fn push_table(&mut self, table: Table) -> Result<(), EditError> {
        self.phrases_mut()?.push(table);
        Ok(())
    }

    pub fn render(&self) -> String {
        self.doc.to_string()
    }
}

fn set_or_remove<T: Into<toml_edit::Value>>(t: &mut Table, key: &str, v: Option<T>) {
    match v {
        Some(v) => {
            t[key] = value(v);
        }
        None => {
            t.remove(key);
        }
    }
}

fn set_list(t: &mut Table, key: &str, items: &[String]) {
    if items.is_empty() {
        t.remove(key);
    } else {
        t[key] = value(strings(items));
    }
}

fn fill(t: &mut Table, p: &PhraseFields) -> Result<(), EditError> {
    t["id"] = value(p.id.as_str());
    t["text"] = value(p.text.as_str());
    set_list(t, "keywords", &p.keywords);
    set_or_remove(t, "stage", p.stage.as_deref());
    set_list(t, "order_state", &p.order_state);
    set_or_remove(t, "priority", p.priority.map(i64::from));
    set_or_remove(t, "code", p.code.as_deref());
    set_list(t, "tags", &p.tags);
    for (key, v) in [
        ("valid_from", &p.valid_from),
        ("valid_until", &p.valid_until),
    ] {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => {
                let d = s.parse::<toml_edit::Datetime>().map_err(|_| {
                    EditError(format!(
                        "{key} `{s}` is not a date or date-time (2026-12-01, 2026-12-01T20:00:00, 2026-12-01T20:00:00+08:00)"
                    ))
                })?;
                t[key] = value(d);
            }
            None => {
                t.remove(key);
            }
        }
    }
    set_or_remove(t, "enabled", p.enabled);
    t["revision"] = value(i64::try_from(p.revision).unwrap_or(i64::MAX));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"# 物流: the owner's comment stays
label = "物流查询"
examples = ["到哪了"]

# the first phrase, hand-written
[[phrase]]
id = "l1"
text = "马上为您查询" # inline comment
custom = "kept"

[[phrase]]
id = "l2"
text = "已发出"
"#;

    fn fields(id: &str, text: &str) -> PhraseFields {
        PhraseFields {
            id: id.into(),
            text: text.into(),
            revision: 7,
            ..Default::default()
        }
    }

    #[test]
    fn update_keeps_comments_and_other_phrases() {
        let mut d = IntentDoc::parse(SRC).unwrap();
        let mut f = fields("l2", "包裹已发出~");
        f.keywords = vec!["发货".into()];
        d.upsert_phrase(&f).unwrap();
        let out = d.render();
        assert!(out.contains("# 物流: the owner's comment stays"));
        assert!(out.contains("# the first phrase, hand-written"));
        assert!(out.contains("text = \"马上为您查询\" # inline comment"));
        assert!(out.contains("custom = \"kept\""));
        assert!(out.contains("text = \"包裹已发出~\""));
        assert!(out.contains("revision = 7"));
        let back: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(back["phrase"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn add_remove_move() {
        let mut d = IntentDoc::parse(SRC).unwrap();
        d.upsert_phrase(&fields("l3", "新的")).unwrap();
        assert_eq!(d.phrase_ids().unwrap(), ["l1", "l2", "l3"]);
        let moved = d.phrase("l1").unwrap().unwrap();
        assert!(d.remove_phrase("l1").unwrap());
        assert!(!d.remove_phrase("nope").unwrap());
        let mut other = IntentDoc::new("其他", "", &[]);
        other.push_table(moved).unwrap();
        assert!(other.render().contains("custom = \"kept\""));
        assert_eq!(d.phrase_ids().unwrap(), ["l2", "l3"]);
    }

    #[test]
    fn examples_one_per_line() {
        let mut d = IntentDoc::parse(SRC).unwrap();
        d.set_examples(&["在吗".into(), "有人吗".into()]);
        let out = d.render();
        assert!(
            out.contains("examples = [\n  \"在吗\",\n  \"有人吗\",\n]"),
            "{out}"
        );
    }

    #[test]
    fn rejects_broken_files() {
        assert!(IntentDoc::parse("label = ").is_err());
        let mut d = IntentDoc::parse("phrase = 1\n").unwrap();
        assert!(d.upsert_phrase(&fields("x", "y")).is_err());
    }
}
