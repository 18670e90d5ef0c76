//! The phrasebook: a shop's curated replies, its intents with example utterances, and its
//! policy. Files on disk are the source of truth (see [`load`]); everything else (the
//! search index, the classifier) is derived from them.
//!
//! Invariant: a [`Shop`] value has passed validation — ids are safe path components and
//! unique, every template variable is known, the required intents exist.

pub mod edit;
mod load;
pub mod qianniu;
pub mod store;

pub use load::{
    Finding, LEXICON_FILE, default_lexicon, hex_digest, history_versions, lint_root, load_root,
    load_shop, load_shop_with,
};

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::render::Template;

/// Where a shop keeps one file per write: what changed, before and after.
pub const HISTORY_DIR: &str = "history";

/// Intents every shop must have: the five the product promises to recognise.
pub const REQUIRED_INTENTS: [&str; 5] = [
    "greeting",
    "price_change",
    "logistics",
    "complaint",
    "closing",
];

/// The intent the engine answers with when it abstains. A shop may ship phrases for it
/// (clarifying questions) and examples of messages that mean nothing alone.
pub const UNKNOWN_INTENT: &str = "unknown";

/// Variables a conversation can fill; shop policy keys add to these.
pub const CONVERSATION_VARIABLES: [&str; 7] = [
    "buyer",
    "order_id",
    "tracking_no",
    "carrier",
    "item",
    "eta",
    "amount",
];

/// Sales stage of a phrase or intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// 售前: before payment.
    PreSale,
    /// 售中: paid, not yet received.
    InSale,
    /// 售后: after delivery.
    AfterSale,
}

impl Stage {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "售前" => Some(Stage::PreSale),
            "售中" => Some(Stage::InSale),
            "售后" => Some(Stage::AfterSale),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PreSale => "售前",
            Stage::InSale => "售中",
            Stage::AfterSale => "售后",
        }
    }
}

/// State of the buyer's order, as reported by the front end's `context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum OrderState {
    #[default]
    None,
    Unpaid,
    Paid,
    Shipped,
    Delivered,
    Refunding,
    Closed,
}

impl OrderState {
    pub const ALL: [OrderState; 7] = [
        OrderState::None,
        OrderState::Unpaid,
        OrderState::Paid,
        OrderState::Shipped,
        OrderState::Delivered,
        OrderState::Refunding,
        OrderState::Closed,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Every state's name, comma-separated: what an error about a wrong state lists.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::None => "none",
            OrderState::Unpaid => "unpaid",
            OrderState::Paid => "paid",
            OrderState::Shipped => "shipped",
            OrderState::Delivered => "delivered",
            OrderState::Refunding => "refunding",
            OrderState::Closed => "closed",
        }
    }
}

/// One shop, validated.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Directory name under the phrasebook root; safe as a path component.
    pub id: String,
    /// The highest revision written anywhere in the shop's files: bumped by every edit
    /// through the curation API.
    pub version: u64,
    pub name: String,
    /// Policy values by key, rendered as text (`free_shipping_threshold` → "99"); every key
    /// is also a template variable.
    pub policy: BTreeMap<String, String>,
    /// Words jieba keeps whole for this shop.
    pub words: Vec<String>,
    /// Intents sorted by id.
    pub intents: Vec<Intent>,
    /// The default compliance lexicon with the shop's overrides.
    pub lexicon: std::sync::Arc<crate::compliance::Lexicon>,
    /// Hex SHA-256 over every file the shop was loaded from; the index records it.
    pub fingerprint: String,
    pub dir: PathBuf,
}

impl Shop {
    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// Every phrase of the shop with its intent, in file order.
    pub fn phrases(&self) -> impl Iterator<Item = &Phrase> {
        self.intents.iter().flat_map(|i| i.phrases.iter())
    }
}

#[derive(Debug, Clone)]
pub struct Intent {
    /// File stem of `intents/<id>.toml`.
    pub id: String,
    pub label: String,
    pub description: String,
    pub stages: Vec<Stage>,
    /// Buyer utterances meaning this intent; the classifier is trained on them.
    /// Shared between shops whose intent has the same examples (most start from the same
    /// template), so 100 shops hold one copy.
    pub examples: std::sync::Arc<[String]>,
    pub phrases: Vec<Phrase>,
    /// Shop version of the last write to the intent's own fields (label, examples…).
    pub revision: u64,
    /// SHA-256 of the file the intent was read from: a reload takes an unchanged file's
    /// intent from the shop being served instead of parsing it again.
    pub digest: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct Phrase {
    pub id: String,
    pub intent: String,
    pub text: String,
    pub template: Template,
    pub keywords: Vec<String>,
    pub stage: Option<Stage>,
    /// Order states this phrase applies to; empty means any.
    pub order_states: Vec<OrderState>,
    /// 1..=9, higher preferred among equally relevant phrases.
    pub priority: u8,
    /// 快捷编码 (quick code) the agent can type.
    pub code: Option<String>,
    pub tags: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// `valid_from`/`valid_until` as instants, resolved in the shop's time zone.
    pub window: Window,
    pub enabled: bool,
    /// Shop version of the write that last changed the phrase (0: never changed by the API).
    pub revision: u64,
    /// The intent file the phrase is in (shared by its phrases) and the phrase's line there,
    /// for messages that point the owner at it ([`Phrase::location`]).
    pub file: std::sync::Arc<str>,
    pub line: u32,
}

/// When a phrase may be suggested (a campaign window), in Unix seconds: from `from`
/// inclusive to `until` exclusive; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    pub fn contains(&self, unix_seconds: i64) -> bool {
        self.from.is_none_or(|f| unix_seconds >= f) && self.until.is_none_or(|u| unix_seconds < u)
    }
}

impl Phrase {
    /// `file:line` of the phrase.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Whether the phrase's campaign window is open at `unix_seconds`.
    pub fn live_at(&self, unix_seconds: i64) -> bool {
        self.window.contains(unix_seconds)
    }

    /// Whether the phrase may be suggested when the order is in `state`.
    pub fn allowed_in(&self, state: OrderState) -> bool {
        self.order_states.is_empty() || self.order_states.contains(&state)
    }
}

/// Whether `id` is safe as a shop, intent or phrase id: 1–64 of `[a-z0-9_-]`, not starting
/// with `-` or `_`. Being a safe path component is the point: no `..`, `/`, NUL or case
/// tricks reach the disk.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !id.starts_with(['-', '_'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_table() {
        let cases: &[(&str, bool)] = &[
            ("demo", true),
            ("logistics-001", true),
            ("shop_2", true),
            ("", false),
            ("..", false),
            ("../etc", false),
            ("a/b", false),
            ("Demo", false),
            ("-x", false),
            ("a\0b", false),
            ("%2e%2e", false),
            ("演示", false),
        ];
        for (id, ok) in cases {
            assert_eq!(valid_id(id), *ok, "valid_id({id:?})");
        }
        assert!(!valid_id(&"a".repeat(65)));
    }
}
