//! REST routes of the curation API: phrases, intents, policy. Reads need any token of the
//! shop; writes need an owner token. Every successful write is pushed to the shop's
//! connected sidebars as `phrasebook_updated {shop, version}`. A write with an
//! `Idempotency-Key` header that was already answered gets the same answer again without
//! being applied twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Grant, Role};
use super::http::{authorize, error};
use super::protocol::ServerMsg;
use crate::curation::{CurationError, Curator, IntentInput, Mode, PhraseInput};
use crate::phrasebook::Phrase;
use crate::phrasebook::edit::PhraseFields;

/// Answers remembered per (shop, key).
const REPLAYS: usize = 10_000;
/// Longest a write may take (validation, fsync, reindex) before the client is told.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounded memory of answered idempotent writes.
#[derive(Debug, Default)]
pub struct Replays {
    answers: HashMap<(String, String), (u16, Value)>,
    order: VecDeque<(String, String)>,
}

impl Replays {
    fn get(&self, shop: &str, key: &str) -> Option<(u16, Value)> {
        self.answers
            .get(&(shop.to_string(), key.to_string()))
            .cloned()
    }

    fn put(&mut self, shop: &str, key: &str, answer: (u16, Value)) {
        let k = (shop.to_string(), key.to_string());
        if self.answers.insert(k.clone(), answer).is_none() {
            self.order.push_back(k);
        }
        while self.order.len() > REPLAYS {
            if let Some(old) = self.order.pop_front() {
                self.answers.remove(&old);
            }
        }
    }
}

fn phrase_json(p: &Phrase) -> Value {
    json!({
        "id": p.id, "intent": p.intent, "text": p.text, "keywords": p.keywords,
        "stage": p.stage.map(|s| s.as_str()),
        "order_state": p.order_states.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "priority": p.priority, "code": p.code, "tags": p.tags,
        "valid_from": p.valid_from, "valid_until": p.valid_until,
        "enabled": p.enabled, "revision": p.revision,
    })
}

fn curation_error(e: CurationError) -> (u16, Value) {
    let (status, body) = match &e {
        CurationError::NotFound(m) => (404, json!({"code": "not_found", "message": m})),
        CurationError::Conflict { current, .. } => (
            409,
            json!({"code": "conflict", "message": e.to_string(), "current_revision": current}),
        ),
        CurationError::Invalid { field, message } => (
            422,
            json!({"code": "invalid", "field": field, "message": message}),
        ),
        CurationError::Io(m) => (500, json!({"code": "internal", "message": m})),
    };
    (status, json!({ "error": body }))
}

fn respond((status, body): (u16, Value)) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn owner(state: &AppState, headers: &HeaderMap, shop: &str) -> Result<Grant, Box<Response>> {
    let grant = authorize(state, headers, shop)?;
    if grant.role != Role::Owner {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "editing needs an owner token",
        )));
    }
    Ok(grant)
}

/// Runs a write on the blocking pool; on success tells the shop's sidebars.
async fn write(
    state: Arc<AppState>,
    headers: &HeaderMap,
    shop: String,
    mode: Mode,
    f: impl FnOnce(&Curator) -> Result<(u16, Value), CurationError> + Send + 'static,
) -> Response {
    // A dry run is neither replayed nor remembered: the key belongs to the real write.
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| mode == Mode::Apply && !k.is_empty() && k.len() <= 200)
        .map(str::to_string);
    let replays = || state.idempotent.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = &key
        && let Some(answer) = replays().get(&shop, k)
    {
        return respond(answer);
    }
    let curator = state.curator.clone();
    let job = tokio::task::spawn_blocking(move || f(&curator));
    let answer = match tokio::time::timeout(WRITE_TIMEOUT, job).await {
        Ok(Ok(Ok(answer))) => answer,
        Ok(Ok(Err(e))) => curation_error(e),
        Ok(Err(e)) => (
            500,
            json!({"error": {"code": "internal", "message": e.to_string()}}),
        ),
        Err(_) => (
            500,
            json!({"error": {"code": "internal", "message": "the write took too long"}}),
        ),
    };
    if answer.0 < 300 && mode == Mode::Apply {
        if let Some(version) = answer.1["version"].as_u64() {
            let frame = ServerMsg::PhrasebookUpdated {
                shop: &shop,
                version,
            }
            .to_json();
            state.hub.broadcast_shop(&shop, &frame.into());
        }
        if let Some(k) = &key {
            replays().put(&shop, k, answer.clone());
        }
    }
    respond(answer)
}

/// The prologue of every write with a JSON body: owner token of the shop, body parsed,
/// then `f` runs as a [`write`].
async fn owner_write<T: Send + 'static>(
    state: Arc<AppState>,
    headers: &HeaderMap,
    shop: String,
    b: Result<Json<T>, JsonRejection>,
    mode: Mode,
    f: impl FnOnce(&Curator, &str, T) -> Result<(u16, Value), CurationError> + Send + 'static,
) -> Response {
    if let Err(r) = owner(&state, headers, &shop) {
        return *r;
    }
    let b = match body(b) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let s = shop.clone();
    write(state, headers, shop, mode, move |c| f(c, &s, b)).await
}

/// The prologue of every read: any token of the shop, then the shop as it is served.
fn readable(
    state: &AppState,
    headers: &HeaderMap,
    shop: &str,
) -> Result<crate::phrasebook::Shop, Box<Response>> {
    authorize(state, headers, shop)?;
    state
        .engine
        .shop(shop)
        .map_err(|_| Box::new(error(StatusCode::NOT_FOUND, "not_found", "no such shop")))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    intent: Option<String>,
    q: Option<String>,
    code: Option<String>,
}

pub async fn list_phrases(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let data = match readable(&state, &headers, &shop) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let needle = q.q.as_deref().map(str::to_lowercase);
    let phrases: Vec<Value> = data
        .phrases()
        .filter(|p| q.intent.as_deref().is_none_or(|i| p.intent == i))
        .filter(|p| {
            q.code
                .as_deref()
                .is_none_or(|c| p.code.as_deref() == Some(&c.to_lowercase()))
        })
        .filter(|p| {
            needle.as_deref().is_none_or(|n| {
                p.text.to_lowercase().contains(n)
                    || p.id.contains(n)
                    || p.keywords.iter().any(|k| k.contains(n))
            })
        })
        .map(phrase_json)
        .collect();
    Json(json!({"shop": shop, "version": data.version, "phrases": phrases})).into_response()
}

pub async fn get_phrase(
    State(state): State<Arc<AppState>>,
    Path((shop, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let data = match readable(&state, &headers, &shop) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    match data.phrases().find(|p| p.id == id) {
        Some(p) => Json(phrase_json(p)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such phrase"),
    }
}

/// A phrase in a request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhraseBody {
    #[serde(default)]
    intent: String,
    #[serde(default)]
    id: String,
    text: String,
    #[serde(default)]
    keywords: Vec<String>,
    stage: Option<String>,
    #[serde(default)]
    order_state: Vec<String>,
    priority: Option<u8>,
    code: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    enabled: Option<bool>,
    /// Required on update: the revision the edit was based on.
    base_revision: Option<u64>,
}

impl PhraseBody {
    fn input(self) -> PhraseInput {
        PhraseInput {
            intent: self.intent,
            fields: PhraseFields {
                id: self.id,
                text: self.text,
                keywords: self.keywords,
                stage: self.stage,
                order_state: self.order_state,
                priority: self.priority,
                code: self.code,
                tags: self.tags,
                valid_from: self.valid_from,
                valid_until: self.valid_until,
                enabled: self.enabled,
                revision: 0,
            },
        }
    }
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    b.map(|Json(t)| t).map_err(|e| {
        Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            &e.body_text(),
        ))
    })
}

/// `?dry_run=true` on a phrase or intent write: validate it exactly as the real write
/// would, write nothing, answer `{"valid": true, "version": <current>}` or the write's error.
#[derive(Debug, Deserialize, Default)]
pub struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

impl DryRun {
    fn mode(&self) -> Mode {
        if self.dry_run {
            Mode::Validate
        } else {
            Mode::Apply
        }
    }
}

/// The answer of a write, or of its dry run.
fn written(mode: Mode, status: u16, answer: Value) -> (u16, Value) {
    match mode {
        Mode::Apply => (status, answer),
        Mode::Validate => (200, json!({"valid": true, "version": answer["version"]})),
    }
}

pub async fn create_phrase(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    Query(q): Query<DryRun>,
    headers: HeaderMap,
    b: Result<Json<PhraseBody>, JsonRejection>,
) -> Response {
    let mode = q.mode();
    owner_write(state, &headers, shop, b, mode, move |c, shop, b| {
        if b.intent.is_empty() {
            return Err(CurationError::Invalid {
                field: "intent".into(),
                message: "required".into(),
            });
        }
        let (id, version) = c.create_phrase(shop, b.input(), mode)?;
        Ok(written(mode, 201, json!({"id": id, "version": version})))
    })
    .await
}

pub async fn update_phrase(
    State(state): State<Arc<AppState>>,
    Path((shop, id)): Path<(String, String)>,
    Query(q): Query<DryRun>,
    headers: HeaderMap,
    b: Result<Json<PhraseBody>, JsonRejection>,
) -> Response {
    let mode = q.mode();
    owner_write(state, &headers, shop, b, mode, move |c, shop, b| {
        let Some(base) = b.base_revision else {
            return Err(CurationError::Invalid {
                field: "base_revision".into(),
                message: "required: the revision this edit is based on".into(),
            });
        };
        let version = c.update_phrase(shop, &id, base, b.input(), mode)?;
        Ok(written(mode, 200, json!({"id": id, "version": version})))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct RevisionQuery {
    revision: Option<u64>,
}

pub async fn delete_phrase(
    State(state): State<Arc<AppState>>,
    Path((shop, id)): Path<(String, String)>,
    Query(q): Query<RevisionQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = owner(&state, &headers, &shop) {
        return *r;
    }
    let Some(base) = q.revision else {
        return respond(curation_error(CurationError::Invalid {
            field: "revision".into(),
            message: "required query parameter: the revision being deleted".into(),
        }));
    };
    let s = shop.clone();
    write(state, &headers, shop, Mode::Apply, move |c| {
        let version = c.delete_phrase(&s, &id, base)?;
        Ok((200, json!({"id": id, "version": version})))
    })
    .await
}

pub async fn list_intents(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
) -> Response {
    let data = match readable(&state, &headers, &shop) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let intents: Vec<Value> = data
        .intents
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "label": i.label, "description": i.description,
                "stages": i.stages.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "examples": &i.examples[..], "phrases": i.phrases.len(), "revision": i.revision,
            })
        })
        .collect();
    Json(json!({"shop": shop, "version": data.version, "intents": intents})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentBody {
    label: Option<String>,
    description: Option<String>,
    stages: Option<Vec<String>>,
    examples: Option<Vec<String>>,
    base_revision: Option<u64>,
}

pub async fn put_intent(
    State(state): State<Arc<AppState>>,
    Path((shop, intent)): Path<(String, String)>,
    Query(q): Query<DryRun>,
    headers: HeaderMap,
    b: Result<Json<IntentBody>, JsonRejection>,
) -> Response {
    let mode = q.mode();
    owner_write(state, &headers, shop, b, mode, move |c, shop, b| {
        let input = IntentInput {
            label: b.label,
            description: b.description,
            stages: b.stages,
            examples: b.examples,
        };
        let version = c.put_intent(shop, &intent, b.base_revision, input, mode)?;
        Ok(written(
            mode,
            200,
            json!({"intent": intent, "version": version}),
        ))
    })
    .await
}

pub async fn get_policy(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
) -> Response {
    match readable(&state, &headers, &shop) {
        Ok(data) => Json(json!({"shop": shop, "name": data.name, "version": data.version, "policy": data.policy})).into_response(),
        Err(r) => *r,
    }
}

pub async fn put_policy(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    b: Result<Json<serde_json::Map<String, Value>>, JsonRejection>,
) -> Response {
    owner_write(state, &headers, shop, b, Mode::Apply, |c, shop, b| {
        let mut values = Vec::new();
        for (k, v) in b {
            let value: toml_edit::Value = match &v {
                Value::String(s) => s.as_str().into(),
                Value::Bool(x) => (*x).into(),
                Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default().into(),
                Value::Number(n) => n.as_f64().unwrap_or_default().into(),
                Value::Array(items) if items.iter().all(Value::is_string) => {
                    toml_edit::Value::Array(items.iter().filter_map(Value::as_str).collect())
                }
                _ => {
                    return Err(CurationError::Invalid {
                        field: format!("policy.{k}"),
                        message: "must be a string, number, boolean or list of strings".into(),
                    });
                }
            };
            values.push((k, value));
        }
        let version = c.put_policy(shop, &values)?;
        Ok((200, json!({"version": version})))
    })
    .await
}

pub fn import_json(r: &crate::curation::ImportReport) -> Value {
    json!({
        "applied": r.applied,
        "version": r.version,
        "accepted": r.accepted.iter().map(|a| json!({"line": a.line, "intent": a.intent, "id": a.id, "warnings": a.warnings})).collect::<Vec<_>>(),
        "rejected": r.rejected.iter().map(|x| json!({"line": x.line, "group": x.group, "text": x.text, "reason": x.reason, "rewritten": x.rewritten})).collect::<Vec<_>>(),
        "duplicates": r.duplicates,
        "new_intents": r.new_intents.iter().map(|(id, label)| json!({"id": id, "label": label})).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// A 千牛 quick-phrase sheet in the body (CSV; UTF-8 with or without BOM, or GBK).
pub async fn import(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    if let Err(r) = owner(&state, &headers, &shop) {
        return *r;
    }
    let s = shop.clone();
    write(state, &headers, shop, Mode::Apply, move |c| {
        let report = c.import_qianniu(&s, &bytes, q.dry_run)?;
        let status = if report.rejected.is_empty() { 200 } else { 422 };
        let mut body = import_json(&report);
        if let Some(v) = report.version {
            body["version"] = json!(v);
        }
        Ok((status, body))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
) -> Response {
    let data = match readable(&state, &headers, &shop) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    if q.format.as_deref().is_some_and(|f| f != "qianniu") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "format must be qianniu",
        );
    }
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{shop}-qianniu.csv\""),
            ),
        ],
        crate::curation::export_qianniu(&data),
    )
        .into_response()
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &shop) {
        return *r;
    }
    let curator = state.curator.clone();
    let s = shop.clone();
    let r = tokio::task::spawn_blocking(move || curator.history(&s, 200)).await;
    match r {
        Ok(Ok(items)) => Json(json!({
            "shop": shop,
            "history": items.iter().map(|h| json!({"version": h.version, "time": h.time, "action": h.action, "files": h.files})).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => respond(curation_error(e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    version: u64,
}

pub async fn revert(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    b: Result<Json<RevertBody>, JsonRejection>,
) -> Response {
    owner_write(state, &headers, shop, b, Mode::Apply, |c, shop, b| {
        let version = c.revert(shop, b.version)?;
        Ok((200, json!({"reverted_to": b.version, "version": version})))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopBody {
    name: String,
    /// An existing shop to copy intents and policy from.
    from: Option<String>,
}

/// Creates a shop at run time (owner token of the new shop, from the access file).
pub async fn create_shop(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    b: Result<Json<ShopBody>, JsonRejection>,
) -> Response {
    owner_write(state, &headers, shop, b, Mode::Apply, |c, shop, b| {
        let version = c.create_shop(shop, &b.name, b.from.as_deref())?;
        Ok((201, json!({"shop": shop, "version": version})))
    })
    .await
}
