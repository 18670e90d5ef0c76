//! REST routes and the router. Errors are JSON `{"error": {"code", "message"}}` with a
//! status that says whose fault it was.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, Grant};
use super::protocol::{check_body, suggestions_body};
use super::{AppState, Failure, web, ws};
use crate::index::Opened;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/v1/whoami", get(whoami))
        .route("/v1/shops/{shop}/messages", post(post_message))
        .route("/v1/check", post(post_check))
        .route(
            "/v1/shops/{shop}/phrases",
            get(super::curate::list_phrases).post(super::curate::create_phrase),
        )
        .route(
            "/v1/shops/{shop}/phrases/{id}",
            get(super::curate::get_phrase)
                .put(super::curate::update_phrase)
                .delete(super::curate::delete_phrase),
        )
        .route("/v1/shops/{shop}/intents", get(super::curate::list_intents))
        .route(
            "/v1/shops/{shop}/intents/{intent}",
            axum::routing::put(super::curate::put_intent),
        )
        .route("/v1/shops/{shop}", post(super::curate::create_shop))
        .route("/v1/shops/{shop}/import", post(super::curate::import))
        .route("/v1/shops/{shop}/history", get(super::curate::history))
        .route("/v1/shops/{shop}/revert", post(super::curate::revert))
        .route("/v1/shops/{shop}/export", get(super::curate::export))
        .route(
            "/v1/shops/{shop}/policy",
            get(super::curate::get_policy).put(super::curate::put_policy),
        )
        .route("/", get(web::page))
        .route("/admin", get(web::page))
        .route("/demo/chat", get(web::page))
        .route("/web/{*path}", get(web::asset))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        // Frames and edits are small; a quick-phrase sheet of a few thousand rows fits in 4 MiB.
        .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(state)
}

pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn failure(f: Failure) -> Response {
    let status = match f.code {
        "unknown_shop" => StatusCode::NOT_FOUND,
        "invalid" => StatusCode::UNPROCESSABLE_ENTITY,
        "overloaded" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, f.code, &f.message)
}

/// The grant of the request's bearer token, whatever its shop.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Grant, Box<Response>> {
    let token = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    match token.and_then(|t| state.access.check(t)) {
        Some(grant) => Ok(grant),
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        ))),
    }
}

/// The grant of the request's bearer token, if it may act on `shop`.
pub(super) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    shop: &str,
) -> Result<Grant, Box<Response>> {
    let grant = authenticate(state, headers)?;
    if grant.shop != shop {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token is for another shop",
        )));
    }
    Ok(grant)
}

/// `GET /v1/whoami`: the shop and role of the bearer token, so a page can tell an agent
/// from an owner (and a bad token from a server that is down) without a WebSocket.
async fn whoami(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match authenticate(&state, &headers) {
        Ok(grant) => {
            let name = state.engine.shop_name(&grant.shop).unwrap_or_default();
            Json(json!({"shop": grant.shop, "name": name, "role": grant.role.as_str()}))
                .into_response()
        }
        Err(r) => *r,
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let shops: Vec<_> = state
        .engine
        .shops()
        .into_iter()
        .map(|s| {
            let index = match s.index {
                Opened::Reused => "reused",
                Opened::BuiltMissing => "built",
                Opened::RebuiltStale => "rebuilt_stale",
                Opened::RebuiltDamaged(_) => "rebuilt_damaged",
            };
            json!({"id": s.id, "name": s.name, "phrases": s.phrases, "intents": s.intents, "index": index})
        })
        .collect();
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "shops": shops}))
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    conversation: String,
    text: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    buyer: Option<String>,
}

/// A platform bridge posts a buyer message; suggestions go to the conversation's
/// subscribers and back in the answer.
async fn post_message(
    State(state): State<Arc<AppState>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PostMessage>, JsonRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &shop) {
        return *r;
    }
    let Json(m) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &e.body_text()),
    };
    match state
        .customer_message(&shop, &m.conversation, &m.text, m.message_id, m.buyer)
        .await
    {
        Ok((pushed, s)) => Json(json!({
            "conversation": m.conversation,
            "message_id": pushed.message_id,
            "delivered": pushed.delivered,
            "abstained": s.abstained,
            "engine_us": s.elapsed.as_micros() as u64,
            "result": suggestions_body(&m.text, &s),
        }))
        .into_response(),
        Err(f) => failure(f),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostCheck {
    text: String,
}

/// Checks a draft against the compliance lexicon of the token's shop.
async fn post_check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<PostCheck>, JsonRejection>,
) -> Response {
    let grant = match authenticate(&state, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let Json(c) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &e.body_text()),
    };
    let text = c.text.clone();
    match state
        .run_engine(c.text.chars().count(), move |e| e.check(&grant.shop, &text))
        .await
    {
        Ok(report) => Json(check_body(&c.text, &report)).into_response(),
        Err(f) => failure(f),
    }
}
