//! Wire types of protocol `huashu.v1`: JSON text frames tagged by `type`. The only place
//! that knows JSON (the CLI's `--json` output uses [`suggestions_body`] too, so the two
//! never drift apart).
//!
//! Parsing never fails silently: [`parse_client`] names what is wrong (bad JSON, unknown
//! `type`, missing or invalid field) and echoes the request `id` so the client can match
//! the error to its request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compliance::Report;
use crate::engine::Suggestions;

pub const PROTOCOL: &str = "huashu.v1";

/// A conversation id: 1–128 characters, no control characters.
pub fn valid_conversation(id: &str) -> bool {
    let n = id.chars().count();
    (1..=128).contains(&n) && !id.chars().any(char::is_control)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    pub conversation: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerMessage {
    pub conversation: String,
    pub text: String,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub buyer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMessage {
    pub conversation: String,
    pub text: String,
    #[serde(default)]
    pub phrase_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub conversation: String,
    #[serde(default)]
    pub order_state: Option<String>,
    #[serde(default)]
    pub buyer: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub tracking_no: Option<String>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub item: Option<String>,
    #[serde(default)]
    pub eta: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub text: String,
}

/// A parsed client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    Subscribe(Subscribe),
    Unsubscribe(Subscribe),
    CustomerMessage(CustomerMessage),
    AgentMessage(AgentMessage),
    Context(Context),
    Check(Check),
    Ping,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: String,
    /// The request's `id`, when it had one.
    pub id: Option<Value>,
    /// The request's `type`, when it had one.
    pub request: Option<String>,
}

pub const CLIENT_TYPES: [&str; 7] = [
    "subscribe",
    "unsubscribe",
    "customer_message",
    "agent_message",
    "context",
    "ping",
    "check",
];

/// Parses one text frame. Returns the request id (to echo) with the message.
pub fn parse_client(frame: &str) -> Result<(Option<Value>, ClientMsg), ProtocolError> {
    let err = |code, message: String, id: Option<Value>, request: Option<String>| ProtocolError {
        code,
        message,
        id,
        request,
    };
    let value: Value = serde_json::from_str(frame).map_err(|e| {
        err(
            "bad_json",
            format!("frame is not valid JSON: {e}"),
            None,
            None,
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(err(
            "bad_json",
            "frame must be a JSON object".into(),
            None,
            None,
        ));
    };
    let id = obj.remove("id");
    if let Some(v) = &id
        && !(v.is_string() || v.is_number())
    {
        return Err(err(
            "invalid",
            "`id` must be a string or a number".into(),
            None,
            None,
        ));
    }
    let ty = match obj.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(err("invalid", "`type` must be a string".into(), id, None)),
        None => {
            return Err(err(
                "missing_field",
                "missing field `type`".into(),
                id,
                None,
            ));
        }
    };
    let body = Value::Object(obj);
    let fail = |e: serde_json::Error| {
        let msg = e.to_string();
        let code = if msg.starts_with("missing field") {
            "missing_field"
        } else {
            "invalid"
        };
        err(code, format!("{ty}: {msg}"), id.clone(), Some(ty.clone()))
    };
    let msg = match ty.as_str() {
        "subscribe" => ClientMsg::Subscribe(serde_json::from_value(body).map_err(fail)?),
        "unsubscribe" => ClientMsg::Unsubscribe(serde_json::from_value(body).map_err(fail)?),
        "customer_message" => {
            ClientMsg::CustomerMessage(serde_json::from_value(body).map_err(fail)?)
        }
        "agent_message" => ClientMsg::AgentMessage(serde_json::from_value(body).map_err(fail)?),
        "context" => ClientMsg::Context(serde_json::from_value(body).map_err(fail)?),
        "check" => ClientMsg::Check(serde_json::from_value(body).map_err(fail)?),
        "ping" => ClientMsg::Ping,
        other => {
            return Err(err(
                "unknown_type",
                format!(
                    "unknown type `{other}` (expected one of {})",
                    CLIENT_TYPES.join(", ")
                ),
                id.clone(),
                Some(other.to_string()),
            ));
        }
    };
    Ok((id, msg))
}

#[derive(Debug, Serialize)]
pub struct IntentOut<'a> {
    pub intent: &'a str,
    pub confidence: f32,
    pub asked: f32,
}

#[derive(Debug, Serialize)]
pub struct SuggestionOut<'a> {
    pub phrase_id: &'a str,
    pub intent: &'a str,
    pub text: &'a str,
    pub score: f32,
    pub confidence: f32,
    pub missing: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
}

/// The fields shared by the WebSocket `suggestions` push, the REST answer and
/// `huashu suggest --json`.
#[derive(Debug, Serialize)]
pub struct SuggestionsBody<'a> {
    pub text: &'a str,
    pub intents: Vec<IntentOut<'a>>,
    /// How the conversation shaped the intents: `as_written`, `fragments` (read with the
    /// buyer's preceding fragments), `answer` (to the agent's question), `last_intent`.
    pub reading: &'static str,
    pub suggestions: Vec<SuggestionOut<'a>>,
}

pub fn suggestions_body<'a>(text: &'a str, s: &'a Suggestions) -> SuggestionsBody<'a> {
    SuggestionsBody {
        text,
        intents: s
            .intents
            .iter()
            .map(|i| IntentOut {
                intent: &i.intent,
                confidence: round3(i.confidence),
                asked: round3(i.asked),
            })
            .collect(),
        reading: s.reading.as_str(),
        suggestions: s
            .items
            .iter()
            .map(|x| SuggestionOut {
                phrase_id: &x.phrase_id,
                intent: &x.intent,
                text: &x.text,
                score: round3(x.score),
                confidence: round3(x.confidence),
                missing: &x.missing,
                code: x.code.as_deref(),
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
pub struct ViolationOut<'a> {
    pub rule: &'a str,
    pub category: &'a str,
    pub severity: &'static str,
    /// Character offsets in the checked text.
    pub start: usize,
    pub end: usize,
    pub matched: &'a str,
    pub rewrite: Option<&'a str>,
    pub message: &'a str,
}

/// The verdict on a text: shared by `check_result`, `POST /v1/check`, the `agent_message`
/// ack and `huashu check --json`.
#[derive(Debug, Serialize)]
pub struct CheckBody<'a> {
    pub text: &'a str,
    pub blocked: bool,
    pub violations: Vec<ViolationOut<'a>>,
    pub rewritten: &'a str,
}

pub fn check_body<'a>(text: &'a str, r: &'a Report) -> CheckBody<'a> {
    CheckBody {
        text,
        blocked: r.blocked(),
        violations: r
            .violations
            .iter()
            .map(|v| ViolationOut {
                rule: &v.rule,
                category: &v.category,
                severity: v.severity.as_str(),
                start: v.start,
                end: v.end,
                matched: &v.matched,
                rewrite: v.rewrite.as_deref(),
                message: &v.message,
            })
            .collect(),
        rewritten: &r.rewritten,
    }
}

/// `huashu eval --json`.
/// `rows` are the rows `r` scored, so a miss can name its row's id.
pub fn eval_body(r: &crate::eval::Report, rows: &[crate::eval::Labeled]) -> Value {
    serde_json::json!({
        "rows": r.rows,
        "accuracy": r.accuracy,
        "macro_f1": r.macro_f1,
        "top3": r.top3,
        "unknown_abstained": r.unknown_abstained,
        "wrongly_abstained": r.wrongly_abstained,
        "latency_p50_us": r.latency_p50.as_micros() as u64,
        "latency_p99_us": r.latency_p99.as_micros() as u64,
        "per_intent": r.per_intent.iter().map(|s| serde_json::json!({
            "intent": s.intent, "support": s.support, "predicted": s.predicted,
            "precision": s.precision, "recall": s.recall, "f1": s.f1,
        })).collect::<Vec<_>>(),
        "confusions": r.confusions.iter().map(|(g, p, n)| serde_json::json!({"gold": g, "predicted": p, "count": n})).collect::<Vec<_>>(),
        "misses": r.misses.iter().map(|m| serde_json::json!({"row": m.row, "id": rows.get(m.row).map(|l| l.id.as_str()), "predicted": m.predicted})).collect::<Vec<_>>(),
        "replies": r.replies.as_ref().map(|s| serde_json::json!({
            "rows": s.rows, "hit1": s.hit1, "hit3": s.hit3,
            "misses": s.misses.iter().map(|&i| rows.get(i).map(|l| l.id.as_str())).collect::<Vec<_>>(),
        })),
        "calibration": {
            "ece": r.calibration.ece,
            "bins": r.calibration.bins.iter().map(|(lo, n, conf, hit)| serde_json::json!({"from": lo, "rows": n, "confidence": conf, "hit_rate": hit})).collect::<Vec<_>>(),
        },
    })
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// Server → client messages.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    Welcome {
        protocol: &'static str,
        server: &'static str,
        shop: &'a str,
        role: &'a str,
        max_frame_bytes: usize,
    },
    Suggestions {
        conversation: &'a str,
        message_id: &'a str,
        /// The buyer's nick, when the sender gave one, so every sidebar can name the chat.
        #[serde(skip_serializing_if = "Option::is_none")]
        buyer: Option<&'a str>,
        #[serde(flatten)]
        body: SuggestionsBody<'a>,
        abstained: bool,
        /// Server wall clock when the push was made, µs since the Unix epoch.
        server_time_us: u64,
        /// Time the engine took for this message, µs.
        engine_us: u64,
    },
    Subscribed {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        conversation: &'a str,
    },
    Unsubscribed {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        conversation: &'a str,
    },
    /// Answer to `agent_message` (with the phrase it was recognised as and the compliance
    /// verdict on what the agent sent) and `context`.
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        request: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        phrase_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        check: Option<CheckBody<'a>>,
    },
    CheckResult {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        #[serde(flatten)]
        body: CheckBody<'a>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<&'a str>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        server_time_us: u64,
    },
    /// The shop's phrasebook changed; `version` is its new version.
    PhrasebookUpdated { shop: &'a str, version: u64 },
}

impl ServerMsg<'_> {
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and every value
        // is plain data. Fall back to a fixed error frame rather than panic regardless.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"could not encode reply"}"#.to_string()
        })
    }
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok: &[(&str, ClientMsg)] = &[
            (r#"{"type":"ping"}"#, ClientMsg::Ping),
            (
                r#"{"type":"subscribe","id":1,"conversation":"c1"}"#,
                ClientMsg::Subscribe(Subscribe {
                    conversation: "c1".into(),
                }),
            ),
            (
                r#"{"type":"customer_message","conversation":"c","text":"在吗"}"#,
                ClientMsg::CustomerMessage(CustomerMessage {
                    conversation: "c".into(),
                    text: "在吗".into(),
                    message_id: None,
                    buyer: None,
                }),
            ),
        ];
        for (frame, want) in ok {
            assert_eq!(&parse_client(frame).unwrap().1, want, "{frame}");
        }
        let bad: &[(&str, &str, Option<Value>)] = &[
            ("not json", "bad_json", None),
            ("[1,2]", "bad_json", None),
            (r#"{"id":"r1"}"#, "missing_field", Some(Value::from("r1"))),
            (
                r#"{"type":"nope","id":7}"#,
                "unknown_type",
                Some(Value::from(7)),
            ),
            (
                r#"{"type":"subscribe","id":"x"}"#,
                "missing_field",
                Some(Value::from("x")),
            ),
            (
                r#"{"type":"customer_message","conversation":"c","text":5}"#,
                "invalid",
                None,
            ),
            (
                r#"{"type":"subscribe","conversation":"c","extra":1}"#,
                "invalid",
                None,
            ),
            (r#"{"type":7}"#, "invalid", None),
            (r#"{"type":"ping","id":{"a":1}}"#, "invalid", None),
        ];
        for (frame, code, id) in bad {
            let e = parse_client(frame).unwrap_err();
            assert_eq!(e.code, *code, "{frame}: {}", e.message);
            assert_eq!(&e.id, id, "{frame}");
        }
    }

    #[test]
    fn conversation_ids() {
        for (id, ok) in [
            ("c1", true),
            ("", false),
            ("a\nb", false),
            (&*"x".repeat(129), false),
            ("买家-小王", true),
        ] {
            assert_eq!(valid_conversation(id), ok, "{id:?}");
        }
    }
}
