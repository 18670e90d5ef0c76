//! The service: one port for the WebSocket protocol, the REST API and health checks.
//!
//! | module | concern |
//! |---|---|
//! | [`protocol`] | JSON wire types of `huashu.v1`; the only serde wire types |
//! | [`auth`] | bearer tokens → shop + role |
//! | [`hub`] | fan-out of pushes to subscribers, bounded per connection |
//! | `ws` | one WebSocket session: read, dispatch, push, heartbeat |
//! | `http` | REST routes |
//! | `web` | the browser pages and their assets, read from the web directory |
//!
//! Invariants: engine work (tokenize, classify, search) runs on the blocking pool behind a
//! bounded semaphore, never on the async workers that drive connections; every wait on a
//! peer has a timeout; every queue is bounded; tokens are never logged.

pub mod auth;
pub mod curate;
mod http;
pub mod hub;
pub mod protocol;
mod web;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::engine::{Engine, Options, Suggestions};
use crate::{Error, Result};
use auth::{Access, Role};
use protocol::{ServerMsg, now_us, suggestions_body};

/// Inputs (buyer message, agent message, draft) up to this many characters run the engine
/// inline on the async worker; longer ones, whose work grows with their clauses and query
/// terms, go to the blocking pool.
const INLINE_CHARS: usize = 200;
/// Engine calls in flight at once; beyond this a request is answered `overloaded`.
const ENGINE_PERMITS: usize = 256;
/// Longest an engine call may take before the request is answered with an error.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the service.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub phrasebook: PathBuf,
    pub index: PathBuf,
    /// Access file; without one the demo shop gets development tokens.
    pub access: Option<PathBuf>,
    /// Fixed development tokens (otherwise random).
    pub demo_agent_token: Option<String>,
    pub demo_owner_token: Option<String>,
    /// Pushes queued per connection before it counts as too slow.
    pub push_queue: usize,
    /// Directory of the browser front ends (sidebar, admin, demo chat).
    pub web: PathBuf,
}

impl Config {
    /// Defaults for everything but where the data lives.
    pub fn new(
        listen: SocketAddr,
        phrasebook: impl Into<PathBuf>,
        index: impl Into<PathBuf>,
    ) -> Self {
        Config {
            listen,
            phrasebook: phrasebook.into(),
            index: index.into(),
            access: None,
            demo_agent_token: None,
            demo_owner_token: None,
            push_queue: hub::QUEUE,
            web: PathBuf::from("web"),
        }
    }
}

/// Shared state of a running service.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub curator: Arc<crate::curation::Curator>,
    /// Answers of writes by (shop, idempotency key), so a retried write is not applied twice.
    idempotent: std::sync::Mutex<curate::Replays>,
    pub access: auth::LiveAccess,
    pub hub: hub::Hub,
    work: Arc<Semaphore>,
    push_queue: usize,
    web: PathBuf,
    next_conn: AtomicU64,
    next_message: AtomicU64,
}

/// A started service.
pub struct Running {
    pub addr: SocketAddr,
    /// Development tokens when no access file was given: (agent, owner).
    pub demo_tokens: Option<(String, String)>,
    pub state: Arc<AppState>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Loads the engine, binds, and serves in a background task.
pub async fn start(config: Config) -> Result<Running> {
    let options = Options::new(&config.phrasebook, &config.index);
    let engine = tokio::task::spawn_blocking(move || Engine::load(&options))
        .await
        .map_err(|e| Error::Invalid {
            field: "startup",
            message: format!("loading the engine failed: {e}"),
        })??;
    let (access, demo_tokens) = match &config.access {
        Some(path) => {
            let abs =
                |x: &std::path::Path| std::path::absolute(x).unwrap_or_else(|_| x.to_path_buf());
            if abs(path).starts_with(abs(&config.phrasebook)) {
                return Err(Error::Invalid {
                    field: "access",
                    message: format!(
                        "{} is inside the phrasebook; keep secrets elsewhere",
                        path.display()
                    ),
                });
            }
            (auth::LiveAccess::from_file(path)?, None)
        }
        None => {
            let shop = "demo";
            if !engine.has_shop(shop) {
                return Err(Error::Invalid {
                    field: "access",
                    message:
                        "no access file given and no `demo` shop to issue development tokens for"
                            .into(),
                });
            }
            let agent = match &config.demo_agent_token {
                Some(t) if !t.is_empty() => t.clone(),
                _ => auth::new_token()?,
            };
            let owner = match &config.demo_owner_token {
                Some(t) if !t.is_empty() => t.clone(),
                _ => auth::new_token()?,
            };
            let mut access = Access::default();
            access.insert(&agent, shop, Role::Agent);
            access.insert(&owner, shop, Role::Owner);
            (auth::LiveAccess::fixed(access), Some((agent, owner)))
        }
    };
    let engine = Arc::new(engine);
    let state = Arc::new(AppState {
        curator: Arc::new(crate::curation::Curator::new(
            engine.clone(),
            &config.phrasebook,
        )),
        idempotent: std::sync::Mutex::new(curate::Replays::default()),
        engine,
        access,
        hub: hub::Hub::default(),
        work: Arc::new(Semaphore::new(ENGINE_PERMITS)),
        push_queue: config.push_queue.max(1),
        web: config.web.clone(),
        next_conn: AtomicU64::new(1),
        next_message: AtomicU64::new(1),
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("binding {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    let app = http::router(state.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!(%addr, "huashu listening");
    Ok(Running {
        addr,
        demo_tokens,
        state,
        task,
    })
}

/// A request that failed, as the client sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::UnknownShop(_) => "unknown_shop",
            Error::Invalid { .. } => "invalid",
            _ => "internal",
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// A buyer message, processed: the push frame (serialized once) and how many subscribers
/// got it.
pub struct Pushed {
    pub frame: Utf8Bytes,
    pub delivered: usize,
    pub message_id: String,
}

impl AppState {
    fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs the engine, bounded: on the async worker for an input of at most
    /// `INLINE_CHARS` characters, else on the blocking pool with a timeout.
    async fn run_engine<T: Send + 'static>(
        &self,
        input_chars: usize,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T, Failure> {
        let permit = self.work.clone().try_acquire_owned().map_err(|_| Failure {
            code: "overloaded",
            message: "too many requests in flight; retry shortly".into(),
        })?;
        if input_chars <= INLINE_CHARS {
            // A buyer message of ordinary length is 30-90 µs of engine work (p99 < 0.3 ms on
            // a 10k-phrase shop), less than the hop to the blocking pool and back costs
            // (~50 µs of end-to-end latency at p50, measured) and well inside the time a
            // worker may run between awaits. Engine calls take no lock for longer than a
            // map lookup or a swap, so nothing here waits on a reload.
            let _permit = permit;
            return f(&self.engine).map_err(Failure::from);
        }
        let engine = self.engine.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&engine)
        });
        match tokio::time::timeout(ENGINE_TIMEOUT, job).await {
            Ok(Ok(r)) => r.map_err(Failure::from),
            Ok(Err(e)) => Err(Failure {
                code: "internal",
                message: format!("engine task failed: {e}"),
            }),
            Err(_) => Err(Failure {
                code: "internal",
                message: "engine took too long".into(),
            }),
        }
    }

    /// Suggests replies for a buyer message and pushes them to the conversation's
    /// subscribers.
    pub async fn customer_message(
        &self,
        shop: &str,
        conversation: &str,
        text: &str,
        message_id: Option<String>,
        buyer: Option<String>,
    ) -> Result<(Pushed, Suggestions), Failure> {
        if !protocol::valid_conversation(conversation) {
            return Err(Failure {
                code: "invalid",
                message: "conversation must be 1-128 characters without control characters".into(),
            });
        }
        let message_id = message_id
            .filter(|m| !m.is_empty() && m.len() <= 128)
            .unwrap_or_else(|| format!("m{}", self.next_message.fetch_add(1, Ordering::Relaxed)));
        let (s, c, t) = (shop.to_string(), conversation.to_string(), text.to_string());
        let nick = buyer.clone();
        let suggestions = self
            .run_engine(text.chars().count(), move |engine| {
                if let Some(nick) = buyer {
                    let mut update = crate::conversation::ContextUpdate::default();
                    update.vars.insert("buyer".into(), nick);
                    // A nick that is a phone number (common on some platforms) is kept out
                    // of replies; the message itself is still answered.
                    match engine.context(&s, &c, update) {
                        Err(crate::Error::Invalid { message, .. }) => {
                            tracing::warn!(shop = %s, %message, "buyer nick not kept");
                        }
                        other => other?,
                    }
                }
                engine.suggest(&s, Some(&c), &t)
            })
            .await?;
        let frame: Utf8Bytes = ServerMsg::Suggestions {
            conversation,
            message_id: &message_id,
            buyer: nick.as_deref(),
            body: suggestions_body(text, &suggestions),
            abstained: suggestions.abstained,
            server_time_us: now_us(),
            engine_us: suggestions.elapsed.as_micros() as u64,
        }
        .to_json()
        .into();
        let delivered = self.hub.publish(shop, conversation, &frame);
        Ok((
            Pushed {
                frame,
                delivered,
                message_id,
            },
            suggestions,
        ))
    }
}
