//! One WebSocket session: authenticate before the upgrade, then read frames, dispatch them,
//! forward pushes from the hub, and keep the connection alive.
//!
//! A bad frame gets an `error` and the session goes on. Writes time out; a client silent
//! for longer than [`IDLE`] is closed; a subscriber that cannot keep up with pushes is
//! closed with code [`CLOSE_TOO_SLOW`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use super::auth::{self, Grant};
use super::hub::Outlet;
use super::protocol::{self, ClientMsg, PROTOCOL, ServerMsg, now_us};
use super::{AppState, Failure};
use crate::conversation::ContextUpdate;
use crate::phrasebook::OrderState;

/// Largest frame accepted from a client.
pub const MAX_FRAME: usize = 64 * 1024;
/// Initial read and write buffer of a connection.
const CONN_BUFFER: usize = 4096;
/// A write that takes longer means the client is gone or stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Server pings this often.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client that sends nothing (not even a pong) for this long is closed.
const IDLE: Duration = Duration::from_secs(90);
/// Conversations one connection may subscribe to.
const MAX_SUBSCRIPTIONS: usize = 1000;
/// Close code for a subscriber that could not keep up with pushes.
pub const CLOSE_TOO_SLOW: u16 = 4008;

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let grant = auth::ws_token(offered, q.token.as_deref()).and_then(|t| state.access.check(t));
    let Some(grant) = grant else {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or invalid token: offer subprotocols `huashu.v1, bearer.<token>` or add ?token=",
        )
            .into_response();
    };
    ws.protocols([PROTOCOL])
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        // Frames are small and a busy shop holds thousands of sidebars open: small
        // per-connection buffers (they grow for a large frame) instead of 128 KiB each.
        .read_buffer_size(CONN_BUFFER)
        .write_buffer_size(CONN_BUFFER)
        .on_upgrade(move |socket| session(state, grant, socket))
}

async fn session(state: Arc<AppState>, grant: Grant, socket: WebSocket) {
    let conn = state.conn_id();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(state.push_queue);
    let kick = Arc::new(Notify::new());
    let outlet = Outlet {
        conn,
        tx,
        kick: kick.clone(),
    };
    let mut subscriptions: Vec<String> = Vec::new();
    state.hub.join_shop(&grant.shop, outlet.clone());
    let (mut sink, mut stream) = socket.split();
    tracing::debug!(conn, shop = %grant.shop, role = grant.role.as_str(), "session open");

    let welcome = ServerMsg::Welcome {
        protocol: PROTOCOL,
        server: concat!("huashu/", env!("CARGO_PKG_VERSION")),
        shop: &grant.shop,
        role: grant.role.as_str(),
        max_frame_bytes: MAX_FRAME,
    }
    .to_json();
    let mut open = send(&mut sink, Message::Text(welcome.into())).await;
    let mut heartbeat = tokio::time::interval(PING_EVERY);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    while open {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(msg)) = incoming else { break };
                last_heard = Instant::now();
                match msg {
                    Message::Text(text) => {
                        for reply in handle(&state, &grant, &outlet, &mut subscriptions, &text).await {
                            if !send(&mut sink, Message::Text(reply)).await {
                                open = false;
                                break;
                            }
                        }
                    }
                    Message::Binary(_) => {
                        let e = error_frame("invalid", "binary frames are not supported; send JSON text", None, None);
                        open = send(&mut sink, Message::Text(e)).await;
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            Some(frame) = rx.recv() => {
                open = send(&mut sink, Message::Text(frame)).await;
            }
            _ = kick.notified() => {
                let close = CloseFrame { code: CLOSE_TOO_SLOW, reason: "too slow: push queue full".into() };
                let _ = send(&mut sink, Message::Close(Some(close))).await;
                break;
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > IDLE {
                    let close = CloseFrame { code: 1001, reason: "idle".into() };
                    let _ = send(&mut sink, Message::Close(Some(close))).await;
                    break;
                }
                open = send(&mut sink, Message::Ping(Default::default())).await;
            }
        }
    }
    state.hub.remove(&grant.shop, &subscriptions, conn);
    state.hub.leave_shop(&grant.shop, conn);
    tracing::debug!(conn, "session closed");
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: Message,
) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await,
        Ok(Ok(()))
    )
}

fn error_frame(code: &str, message: &str, id: Option<&Value>, request: Option<&str>) -> Utf8Bytes {
    ServerMsg::Error {
        code,
        message,
        id,
        request,
    }
    .to_json()
    .into()
}

/// Handles one text frame; returns the frames to send back to this client.
async fn handle(
    state: &AppState,
    grant: &Grant,
    outlet: &Outlet,
    subscriptions: &mut Vec<String>,
    text: &str,
) -> Vec<Utf8Bytes> {
    let (id, msg) = match protocol::parse_client(text) {
        Ok(x) => x,
        Err(e) => {
            return vec![error_frame(
                e.code,
                &e.message,
                e.id.as_ref(),
                e.request.as_deref(),
            )];
        }
    };
    let id = id.as_ref();
    let fail = |f: Failure, request: &str| vec![error_frame(f.code, &f.message, id, Some(request))];
    let invalid_conv = |request: &str| {
        vec![error_frame(
            "invalid",
            "conversation must be 1-128 characters without control characters",
            id,
            Some(request),
        )]
    };
    let shop = grant.shop.as_str();
    match msg {
        ClientMsg::Ping => vec![
            ServerMsg::Pong {
                id,
                server_time_us: now_us(),
            }
            .to_json()
            .into(),
        ],
        ClientMsg::Subscribe(s) => {
            if !protocol::valid_conversation(&s.conversation) {
                return invalid_conv("subscribe");
            }
            if !subscriptions.contains(&s.conversation) {
                if subscriptions.len() >= MAX_SUBSCRIPTIONS {
                    return vec![error_frame(
                        "too_many",
                        &format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
                        id,
                        Some("subscribe"),
                    )];
                }
                subscriptions.push(s.conversation.clone());
            }
            state.hub.subscribe(shop, &s.conversation, outlet.clone());
            vec![
                ServerMsg::Subscribed {
                    id,
                    conversation: &s.conversation,
                }
                .to_json()
                .into(),
            ]
        }
        ClientMsg::Unsubscribe(s) => {
            subscriptions.retain(|c| c != &s.conversation);
            state.hub.unsubscribe(shop, &s.conversation, outlet.conn);
            vec![
                ServerMsg::Unsubscribed {
                    id,
                    conversation: &s.conversation,
                }
                .to_json()
                .into(),
            ]
        }
        ClientMsg::CustomerMessage(m) => {
            match state
                .customer_message(shop, &m.conversation, &m.text, m.message_id, m.buyer)
                .await
            {
                // Subscribers (this client included, if subscribed) get the push through the
                // hub; a sender that is not subscribed gets it as the answer.
                Ok((pushed, _)) if !state.hub.is_subscribed(shop, &m.conversation, outlet.conn) => {
                    vec![pushed.frame]
                }
                Ok(_) => Vec::new(),
                Err(f) => fail(f, "customer_message"),
            }
        }
        ClientMsg::AgentMessage(m) => {
            if !protocol::valid_conversation(&m.conversation) {
                return invalid_conv("agent_message");
            }
            let (s, c, text) = (shop.to_string(), m.conversation.clone(), m.text.clone());
            let r = state
                .run_engine(m.text.chars().count(), move |e| {
                    let report = e.check(&s, &text)?;
                    let phrase = e.agent_message(&s, &c, &text, m.phrase_id.as_deref())?;
                    Ok((phrase, report))
                })
                .await;
            match r {
                Ok((phrase, report)) => vec![
                    ServerMsg::Ack {
                        id,
                        request: "agent_message",
                        phrase_id: phrase.as_deref(),
                        check: Some(protocol::check_body(&m.text, &report)),
                    }
                    .to_json()
                    .into(),
                ],
                Err(f) => fail(f, "agent_message"),
            }
        }
        ClientMsg::Check(c) => {
            let (s, text) = (shop.to_string(), c.text.clone());
            match state
                .run_engine(c.text.chars().count(), move |e| e.check(&s, &text))
                .await
            {
                Ok(report) => vec![
                    ServerMsg::CheckResult {
                        id,
                        body: protocol::check_body(&c.text, &report),
                    }
                    .to_json()
                    .into(),
                ],
                Err(f) => fail(f, "check"),
            }
        }
        ClientMsg::Context(c) => {
            if !protocol::valid_conversation(&c.conversation) {
                return invalid_conv("context");
            }
            let order_state = match c.order_state.as_deref().map(|s| (s, OrderState::parse(s))) {
                None => None,
                Some((_, Some(st))) => Some(st),
                Some((bad, None)) => {
                    return vec![error_frame(
                        "invalid",
                        &format!(
                            "context: order_state `{bad}` must be one of {}",
                            OrderState::names()
                        ),
                        id,
                        Some("context"),
                    )];
                }
            };
            let mut update = ContextUpdate {
                order_state,
                ..Default::default()
            };
            for (k, v) in [
                ("buyer", c.buyer),
                ("order_id", c.order_id),
                ("tracking_no", c.tracking_no),
                ("carrier", c.carrier),
                ("item", c.item),
                ("eta", c.eta),
                ("amount", c.amount),
            ] {
                if let Some(v) = v {
                    update.vars.insert(k.to_string(), v);
                }
            }
            let (s, conv) = (shop.to_string(), c.conversation.clone());
            match state
                .run_engine(0, move |e| e.context(&s, &conv, update))
                .await
            {
                Ok(()) => vec![
                    ServerMsg::Ack {
                        id,
                        request: "context",
                        phrase_id: None,
                        check: None,
                    }
                    .to_json()
                    .into(),
                ],
                Err(f) => fail(f, "context"),
            }
        }
    }
}
