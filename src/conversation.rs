//! Per-conversation memory: variables the front end reported (buyer nick, order and
//! tracking numbers, carrier…), the order state, the phrases already sent, and the last
//! suggestions (to recognise which one the agent sent).
//!
//! Invariant: bounded. At most `capacity` conversations are kept; the least recently used
//! go first, and a conversation idle longer than `ttl` starts afresh. Each conversation keeps
//! at most [`MAX_SENT`] sent phrases. Time is passed in, so the module stays pure.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::phrasebook::OrderState;

/// Sent phrases remembered per conversation.
pub const MAX_SENT: usize = 32;
/// Buyer fragments sent in quick succession are read together when they arrive within
/// this long of each other (在吗 / 我买的那个 / 什么时候发).
pub const RAPID_WINDOW: Duration = Duration::from_secs(8);
/// Fragments merged at most (the oldest is dropped).
pub const MAX_FRAGMENTS: usize = 3;
/// How long the agent's question stays open for the buyer's answer.
pub const QUESTION_TTL: Duration = Duration::from_secs(300);
/// Longest value accepted for a variable, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// What the engine needs to know about a conversation for one suggestion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub vars: BTreeMap<String, String>,
    pub order_state: OrderState,
    pub sent: Vec<String>,
    /// Primary intent of the buyer's last message the engine was sure about.
    pub last_intent: Option<String>,
    /// The agent's open question (asked within [`QUESTION_TTL`], not yet answered).
    pub question: Option<Question>,
    /// The buyer's preceding fragments, oldest first, each within [`RAPID_WINDOW`] of the
    /// next and the last within it of now.
    pub fragments: Vec<String>,
}

/// A question the agent asked: its topic, and whether it asks to choose (您要哪个颜色?) or
/// for a yes or no (需要帮您催一下吗?). Each kind has its own answers: an option (黑色) or a
/// bare yes (可以).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub intent: String,
    pub yes_no: bool,
}

/// A `context` update: `Some` values replace, `None` leaves as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextUpdate {
    pub vars: BTreeMap<String, String>,
    pub order_state: Option<OrderState>,
}

impl ContextUpdate {
    /// An update that sets the order state and nothing else.
    pub fn of_order_state(state: OrderState) -> Self {
        ContextUpdate {
            order_state: Some(state),
            ..ContextUpdate::default()
        }
    }
}

#[derive(Debug, Default)]
struct Conversation {
    view: View,
    /// (phrase id, rendered text) of the last suggestions pushed.
    last_suggested: Vec<(String, String)>,
    last_seen: Option<Instant>,
    question_at: Option<Instant>,
    /// (text, when) of recent buyer fragments, bounded by [`MAX_FRAGMENTS`].
    fragments: VecDeque<(String, Instant)>,
}

/// All conversations of the process, keyed by (shop, conversation id).
#[derive(Debug)]
pub struct Store {
    inner: Mutex<HashMap<(String, String), Conversation>>,
    capacity: usize,
    ttl: Duration,
}

impl Store {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Store {
            inner: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn with<R>(
        &self,
        shop: &str,
        conv: &str,
        now: Instant,
        f: impl FnOnce(&mut Conversation) -> R,
    ) -> R {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (shop.to_string(), conv.to_string());
        if !map.contains_key(&key) && map.len() >= self.capacity {
            evict(&mut map, self.capacity, self.ttl, now);
        }
        let c = map.entry(key).or_default();
        if c.last_seen
            .is_some_and(|t| now.saturating_duration_since(t) > self.ttl)
        {
            *c = Conversation::default();
        }
        c.last_seen = Some(now);
        f(c)
    }

    /// The conversation as the engine needs it now.
    pub fn view(&self, shop: &str, conv: &str, now: Instant) -> View {
        self.with(shop, conv, now, |c| {
            let mut view = c.view.clone();
            if c.question_at
                .is_none_or(|t| now.saturating_duration_since(t) > QUESTION_TTL)
            {
                view.question = None;
            }
            // The chain of fragments, walking back from now while each is within the
            // window of the one after it.
            let mut next = now;
            let mut chain = Vec::new();
            for (text, at) in c.fragments.iter().rev() {
                if next.saturating_duration_since(*at) > RAPID_WINDOW {
                    break;
                }
                chain.push(text.clone());
                next = *at;
            }
            chain.reverse();
            view.fragments = chain;
            view
        })
    }

    /// Records a buyer message: it answers any open question, and it is kept for merging
    /// with the next message if it is a `fragment`; otherwise the fragments are done.
    pub fn buyer_said(&self, shop: &str, conv: &str, text: &str, fragment: bool, now: Instant) {
        self.with(shop, conv, now, |c| {
            c.view.question = None;
            c.question_at = None;
            if fragment {
                let text: String = text.chars().take(MAX_VALUE_CHARS).collect();
                c.fragments.push_back((text, now));
                while c.fragments.len() > MAX_FRAGMENTS {
                    c.fragments.pop_front();
                }
            } else {
                c.fragments.clear();
            }
        });
    }

    /// Applies a `context` update. Values are trimmed and cut to [`MAX_VALUE_CHARS`]; an
    /// empty value removes the variable.
    pub fn update(&self, shop: &str, conv: &str, update: ContextUpdate, now: Instant) {
        self.with(shop, conv, now, |c| {
            for (k, v) in update.vars {
                let v: String = v.trim().chars().take(MAX_VALUE_CHARS).collect();
                if v.is_empty() {
                    c.view.vars.remove(&k);
                } else {
                    c.view.vars.insert(k, v);
                }
            }
            if let Some(s) = update.order_state {
                c.view.order_state = s;
            }
        });
    }

    /// Remembers what was suggested (to recognise it in a later agent message) and the
    /// message's intent when the engine was sure of it.
    pub fn suggested(
        &self,
        shop: &str,
        conv: &str,
        items: Vec<(String, String)>,
        intent: Option<String>,
        now: Instant,
    ) {
        self.with(shop, conv, now, |c| {
            c.last_suggested = items;
            if intent.is_some() {
                c.view.last_intent = intent;
            }
        });
    }

    /// Records a message the agent sent. `phrase_id` is the phrase the front end says it
    /// came from; otherwise a message equal (ignoring surrounding space) to one of the last
    /// suggestions counts as that phrase. Returns the phrase recorded, if any.
    ///
    /// `question` is the question the message asks, if it asks one: the buyer's next
    /// message may be its answer. Any message from the agent ends a run of
    /// buyer fragments.
    pub fn agent_sent(
        &self,
        shop: &str,
        conv: &str,
        text: &str,
        phrase_id: Option<&str>,
        question: Option<Question>,
        now: Instant,
    ) -> Option<String> {
        self.with(shop, conv, now, |c| {
            c.fragments.clear();
            c.question_at = question.as_ref().map(|_| now);
            c.view.question = question;
            let id = phrase_id.map(str::to_string).or_else(|| {
                let t = text.trim();
                c.last_suggested
                    .iter()
                    .find(|(_, rendered)| rendered.trim() == t)
                    .map(|(id, _)| id.clone())
            })?;
            c.view.sent.retain(|s| s != &id);
            c.view.sent.push(id.clone());
            if c.view.sent.len() > MAX_SENT {
                c.view.sent.remove(0);
            }
            Some(id)
        })
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops expired conversations, then the least recently used until a tenth of the capacity
/// is free, so eviction's O(n) scan runs once per many insertions.
fn evict(
    map: &mut HashMap<(String, String), Conversation>,
    capacity: usize,
    ttl: Duration,
    now: Instant,
) {
    map.retain(|_, c| {
        c.last_seen
            .is_none_or(|t| now.saturating_duration_since(t) <= ttl)
    });
    let target = capacity - (capacity / 10).max(1);
    if map.len() > target {
        let mut ages: VecDeque<(Instant, (String, String))> = {
            let mut v: Vec<_> = map
                .iter()
                .map(|(k, c)| (c.last_seen.unwrap_or(now), k.clone()))
                .collect();
            v.sort();
            v.into()
        };
        while map.len() > target {
            match ages.pop_front() {
                Some((_, k)) => {
                    map.remove(&k);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn context_updates_replace_and_clear() {
        let s = Store::new(10, Duration::from_secs(60));
        let t = Instant::now();
        s.update(
            "a",
            "c1",
            ContextUpdate {
                vars: vars(&[("buyer", " 小王 "), ("carrier", "顺丰")]),
                order_state: Some(OrderState::Shipped),
            },
            t,
        );
        s.update(
            "a",
            "c1",
            ContextUpdate {
                vars: vars(&[("carrier", "")]),
                order_state: None,
            },
            t,
        );
        let v = s.view("a", "c1", t);
        assert_eq!(v.vars, vars(&[("buyer", "小王")]));
        assert_eq!(v.order_state, OrderState::Shipped);
        assert_eq!(s.view("b", "c1", t), View::default(), "shops are separate");
    }

    #[test]
    fn recognises_sent_suggestion() {
        let s = Store::new(10, Duration::from_secs(60));
        let t = Instant::now();
        let items = || vec![("p1".into(), "您好".into()), ("p2".into(), "稍等".into())];
        s.suggested("a", "c", items(), Some("greeting".into()), t);
        s.suggested("a", "c", items(), None, t);
        assert_eq!(
            s.view("a", "c", t).last_intent.as_deref(),
            Some("greeting"),
            "an unsure message keeps the last intent"
        );
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (" 稍等 ", None, Some("p2")),
            ("自己写的", None, None),
            ("随便", Some("p9"), Some("p9")),
        ];
        for (text, pid, want) in cases {
            assert_eq!(
                s.agent_sent("a", "c", text, *pid, None, t).as_deref(),
                *want,
                "{text}"
            );
        }
        assert_eq!(s.view("a", "c", t).sent, ["p2", "p9"]);
    }

    #[test]
    fn bounded_by_capacity_and_ttl() {
        let s = Store::new(20, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..100 {
            s.view("a", &format!("c{i}"), t0 + Duration::from_millis(i));
        }
        assert!(s.len() <= 20, "{}", s.len());
        s.update(
            "a",
            "old",
            ContextUpdate {
                vars: vars(&[("buyer", "x")]),
                order_state: None,
            },
            t0,
        );
        let later = t0 + Duration::from_secs(120);
        assert_eq!(
            s.view("a", "old", later),
            View::default(),
            "expired conversation starts afresh"
        );
    }

    #[test]
    fn sent_list_is_bounded() {
        let s = Store::new(10, Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..(MAX_SENT + 10) {
            s.agent_sent("a", "c", "", Some(&format!("p{i}")), None, t);
        }
        assert_eq!(s.view("a", "c", t).sent.len(), MAX_SENT);
    }
}
