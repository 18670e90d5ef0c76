//! The WebSocket load generator: N agent connections across S shops, two subscribers per
//! conversation, an open-loop schedule of buyer messages, end-to-end latency from the send
//! to the moment every subscriber has the push, and a bare tokio-tungstenite echo measured
//! in the same run as the yardstick: paced on the load's ticks, so that like each push it
//! pays the wake-up of a server that idled since the last message, and back to back.
//!
//! Invariants: loopback only (a target that is not a loopback address is refused); bounded
//! in time (warm-up + duration + drain, then the echo: at most 20 000 paced rounds of 1 ms
//! and as many back to back; every handshake, read and write under a timeout) and in
//! memory (one pending entry per message in flight, per-connection queues bounded).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Stats;
use crate::{Error, Result};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for a handshake, a welcome or an acknowledgement.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a reader waits for any frame before it gives the connection up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames queued for one connection's writer.
const WRITE_QUEUE: usize = 4096;
/// Handshakes in flight at once while connecting.
const CONNECT_PARALLEL: usize = 32;
/// Clock ticks per second in /proc (USER_HZ, fixed at 100 by the Linux ABI).
const USER_HZ: f64 = 100.0;

/// The load's schedule: buyer messages go out on ticks of this length (open loop), and the
/// echo baseline is paced on the same ticks.
const TICK: Duration = Duration::from_millis(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub connections: usize,
    /// Buyer messages per second, across all conversations.
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Longest wait for outstanding pushes after the last send.
    pub drain: Duration,
    pub messages: Vec<String>,
    /// Round trips of the echo baseline.
    pub echo_rounds: usize,
}

/// Where to send: a `ws://` URL on loopback, one agent token per shop, and the server's
/// process id when it is local (for RSS and CPU).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tokens: Vec<String>,
    pub pid: Option<u32>,
}

/// Server resource use over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    /// Share of one core, in percent, over the measured window.
    pub cpu_percent: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub connections: usize,
    pub shops: usize,
    pub conversations: usize,
    pub subscribers_per_conversation: usize,
    pub rate: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub connect_ms: f64,
    /// Buyer messages sent (warm-up included) and those measured.
    pub sent: u64,
    pub measured: u64,
    pub pushes_expected: u64,
    pub pushes_received: u64,
    pub lost: u64,
    pub errors: u64,
    pub closes: u64,
    /// Send → the last subscriber has the push.
    pub e2e: Stats,
    /// The server's clock at the push → a subscriber has it (same machine's clock).
    pub push_to_client: Stats,
    /// Engine time the server reported per message.
    pub engine: Stats,
    /// The echo paced on the load's ticks: the yardstick of the ratios.
    pub echo: Stats,
    /// The echo with each round trip sent as the last returns.
    pub echo_back_to_back: Stats,
    pub echo_frame_bytes: usize,
    pub e2e_over_echo_p50: f64,
    pub e2e_over_echo_p99: f64,
    pub e2e_over_back_to_back_echo_p50: f64,
    pub server: Option<Usage>,
}

/// A started local server (a child process), killed on drop.
pub struct LocalServer {
    child: std::process::Child,
    pub addr: SocketAddr,
    pub tokens: Vec<String>,
    pub shops: Vec<String>,
    pub startup: Duration,
    _access: tempfile::TempDir,
}

impl LocalServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `exe serve` on 127.0.0.1:0 over `phrasebook` (index under `index`), with one agent
/// token for each of the first `shops` shops (all when `None`), and waits (bounded) until
/// it listens.
pub fn start_server(
    exe: &Path,
    phrasebook: &Path,
    index: &Path,
    shops: Option<usize>,
    startup_limit: Duration,
) -> Result<LocalServer> {
    let mut ids: Vec<String> = std::fs::read_dir(phrasebook)
        .map_err(|e| Error::io(format!("reading {}", phrasebook.display()), e))?
        .flatten()
        .filter(|e| e.path().join("shop.toml").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    ids.sort();
    if let Some(n) = shops {
        ids.truncate(n);
    }
    if ids.is_empty() {
        return Err(Error::Invalid {
            field: "phrasebook",
            message: format!("no shops under {}", phrasebook.display()),
        });
    }
    let access = tempfile::tempdir().map_err(|e| Error::io("creating a temp dir", e))?;
    let access_file = access.path().join("access.toml");
    let mut tokens = Vec::with_capacity(ids.len());
    for shop in &ids {
        tokens.push(crate::server::auth::add_token(
            &access_file,
            phrasebook,
            shop,
            "agent",
        )?);
    }
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--phrasebook")
        .arg(phrasebook)
        .arg("--index")
        .arg(index)
        .arg("--access")
        .arg(&access_file)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io(format!("starting {}", exe.display()), e))?;
    let stdout = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Some(out) = stdout else { return };
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line
                .strip_prefix("huashu listening on http://")
                .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = match rx.recv_timeout(startup_limit) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Invalid {
                field: "server",
                message: format!("the server did not start listening within {startup_limit:?}"),
            });
        }
    };
    Ok(LocalServer {
        child,
        addr,
        tokens,
        shops: ids,
        startup: started.elapsed(),
        _access: access,
    })
}

async fn connect(addr: SocketAddr, token: &str) -> Result<Ws> {
    let err = |m: String| Error::Invalid {
        field: "connect",
        message: m,
    };
    let mut req = format!("ws://{addr}/v1/ws")
        .into_client_request()
        .map_err(|e| err(e.to_string()))?;
    let protocols = format!("huashu.v1, bearer.{token}")
        .parse()
        .map_err(|_| err("the token is not a valid header value".into()))?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocols);
    let (ws, _) = tokio::time::timeout(PEER_TIMEOUT, tokio_tungstenite::connect_async(req))
        .await
        .map_err(|_| err(format!("handshake with {addr} timed out")))?
        .map_err(|e| err(format!("handshake with {addr}: {e}")))?;
    Ok(ws)
}

/// Reads frames until one of `ty` arrives (bounded); an `error` frame fails.
async fn expect(ws: &mut Ws, ty: &str) -> Result<()> {
    let deadline = Instant::now() + PEER_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next()).await;
        let text = match msg {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => {
                return Err(Error::Invalid {
                    field: "connection",
                    message: e.to_string(),
                });
            }
            Ok(None) | Err(_) => {
                return Err(Error::Invalid {
                    field: "connection",
                    message: format!("no `{ty}` within {PEER_TIMEOUT:?}"),
                });
            }
        };
        let head: Head = serde_json::from_str(&text).unwrap_or_default();
        if head.kind == ty {
            return Ok(());
        }
        if head.kind == "error" {
            return Err(Error::Invalid {
                field: "connection",
                message: format!("server answered an error while waiting for `{ty}`: {text}"),
            });
        }
    }
}

/// The fields of a server frame the generator reads.
#[derive(Debug, Default, Deserialize)]
struct Head {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    server_time_us: u64,
    #[serde(default)]
    engine_us: u64,
}

struct Pending {
    sent: Instant,
    left: u8,
    measured: bool,
}

#[derive(Default)]
struct Samples {
    e2e: Vec<Duration>,
    push: Vec<Duration>,
    engine: Vec<Duration>,
    /// e2e samples since the last progress line.
    recent: Vec<Duration>,
}

struct Shared {
    pending: Mutex<HashMap<u64, Pending>>,
    samples: Mutex<Samples>,
    drained: Notify,
    /// Set when the run is over: closes from then on are the generator's own.
    stopping: std::sync::atomic::AtomicBool,
    received: AtomicU64,
    errors: AtomicU64,
    closes: AtomicU64,
    frame_bytes: AtomicU64,
    subscribers: u8,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<Ws>,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
) {
    loop {
        let next = tokio::select! {
            _ = stop.notified() => return,
            n = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => n,
        };
        let text = match next {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.closes.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Ok(Some(Ok(_))) => continue,
        };
        let arrived = Instant::now();
        let head: Head = match serde_json::from_str(&text) {
            Ok(h) => h,
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        match head.kind.as_str() {
            "suggestions" => {}
            "error" => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            _ => continue,
        }
        shared.received.fetch_add(1, Ordering::Relaxed);
        shared
            .frame_bytes
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        let Some(seq) = head
            .message_id
            .as_deref()
            .and_then(|m| m.strip_prefix('b'))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let push = Duration::from_micros(now_us().saturating_sub(head.server_time_us));
        let done = {
            let mut pending = lock(&shared.pending);
            let Some(p) = pending.get_mut(&seq) else {
                continue;
            };
            p.left = p.left.saturating_sub(1);
            let done = (p.left == 0).then_some((p.sent, p.measured));
            if done.is_some() {
                pending.remove(&seq);
                if pending.is_empty() {
                    shared.drained.notify_waiters();
                }
            }
            done
        };
        // The last subscriber's copy completes the message; engine and push times are the
        // same in every copy, so they are recorded once, with it.
        if let Some((sent, true)) = done {
            let mut s = lock(&shared.samples);
            let e2e = arrived.saturating_duration_since(sent);
            s.e2e.push(e2e);
            s.recent.push(e2e);
            s.push.push(push);
            s.engine.push(Duration::from_micros(head.engine_us));
        }
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<(u64, bool, Message)>,
    shared: Arc<Shared>,
) {
    while let Some((seq, measured, frame)) = rx.recv().await {
        lock(&shared.pending).insert(
            seq,
            Pending {
                sent: Instant::now(),
                left: shared.subscribers,
                measured,
            },
        );
        let sent = tokio::time::timeout(PEER_TIMEOUT, sink.send(frame)).await;
        if !matches!(sent, Ok(Ok(()))) {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    let _ = tokio::time::timeout(PEER_TIMEOUT, sink.close()).await;
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

/// A live progress line, once a second.
pub struct Progress {
    pub elapsed: Duration,
    pub warming: bool,
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    pub recent: Stats,
}

/// Runs the load against `target` and the echo baseline, and reports.
pub async fn run(target: &Target, spec: &Spec, progress: impl Fn(&Progress)) -> Result<Report> {
    if !target.addr.ip().is_loopback() {
        return Err(Error::Invalid {
            field: "target",
            message: format!("{} is not a loopback address", target.addr),
        });
    }
    let shops = target.tokens.len();
    if shops == 0 || spec.connections < 2 * shops {
        return Err(Error::Invalid {
            field: "connections",
            message: format!(
                "need at least 2 connections per shop (2 subscribers per conversation): {} for {shops} shops",
                2 * shops.max(1)
            ),
        });
    }
    if spec.messages.is_empty() || spec.rate.is_nan() || spec.rate <= 0.0 {
        return Err(Error::Invalid {
            field: "rate",
            message: "need a positive rate and at least one message".into(),
        });
    }
    let shared = Arc::new(Shared {
        pending: Mutex::new(HashMap::new()),
        samples: Mutex::new(Samples::default()),
        drained: Notify::new(),
        stopping: std::sync::atomic::AtomicBool::new(false),
        received: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        closes: AtomicU64::new(0),
        frame_bytes: AtomicU64::new(0),
        subscribers: 2,
    });
    // Connection i serves shop i % S; within a shop of k connections, conversation j is
    // watched by connections j and j+1 (mod k) and sent by j.
    let connect_start = Instant::now();
    let mut by_shop: Vec<Vec<usize>> = vec![Vec::new(); shops];
    for i in 0..spec.connections {
        by_shop[i % shops].push(i);
    }
    let mut subs: Vec<Vec<String>> = vec![Vec::new(); spec.connections];
    let mut conversations: Vec<(usize, String)> = Vec::with_capacity(spec.connections);
    for (s, members) in by_shop.iter().enumerate() {
        let k = members.len();
        for j in 0..k {
            let conv = format!("bench-{s}-{j}");
            subs[members[j]].push(conv.clone());
            subs[members[(j + 1) % k]].push(conv.clone());
            conversations.push((members[j], conv));
        }
    }
    let mut wss: Vec<Option<Ws>> = (0..spec.connections).map(|_| None).collect();
    let order: Vec<usize> = (0..spec.connections).collect();
    for chunk in order.chunks(CONNECT_PARALLEL) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let token = target.tokens[i % shops].clone();
            let convs = subs[i].clone();
            let addr = target.addr;
            set.spawn(async move {
                let mut ws = connect(addr, &token).await?;
                expect(&mut ws, "welcome").await?;
                for c in convs {
                    let frame = serde_json::json!({"type": "subscribe", "conversation": c});
                    ws.send(Message::text(frame.to_string()))
                        .await
                        .map_err(|e| Error::Invalid {
                            field: "subscribe",
                            message: e.to_string(),
                        })?;
                    expect(&mut ws, "subscribed").await?;
                }
                Ok::<_, Error>((i, ws))
            });
        }
        while let Some(joined) = set.join_next().await {
            let (i, ws) = joined.map_err(|e| Error::Invalid {
                field: "connect",
                message: e.to_string(),
            })??;
            wss[i] = Some(ws);
        }
    }
    let connect_ms = connect_start.elapsed().as_secs_f64() * 1e3;
    let stop = Arc::new(Notify::new());
    let mut writers = Vec::with_capacity(spec.connections);
    let mut tasks = tokio::task::JoinSet::new();
    for ws in wss.into_iter().flatten() {
        let (sink, stream) = ws.split();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        writers.push(tx);
        tasks.spawn(read_loop(stream, shared.clone(), stop.clone()));
        tasks.spawn(write_loop(sink, rx, shared.clone()));
    }
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut cpu_start = None;
    let mut window_start = None;
    let mut seq: u64 = 0;
    let mut measured: u64 = 0;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_progress = start;
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= measure_from && window_start.is_none() {
            window_start = Some(now);
            cpu_start = target.pid.and_then(proc_cpu_ticks);
        }
        let due = ((now - start).as_secs_f64() * spec.rate) as u64;
        while seq < due {
            let (conn, conv) = &conversations[(seq as usize) % conversations.len()];
            let text = &spec.messages[(seq as usize) % spec.messages.len()];
            let is_measured = now >= measure_from;
            let frame = serde_json::json!({
                "type": "customer_message",
                "conversation": conv,
                "message_id": format!("b{seq}"),
                "text": text,
            });
            if writers[*conn]
                .try_send((seq, is_measured, Message::text(frame.to_string())))
                .is_err()
            {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            measured += u64::from(is_measured);
            seq += 1;
        }
        if now.duration_since(last_progress) >= Duration::from_secs(1) {
            last_progress = now;
            let mut recent = std::mem::take(&mut lock(&shared.samples).recent);
            progress(&Progress {
                elapsed: now - start,
                warming: now < measure_from,
                sent: seq,
                received: shared.received.load(Ordering::Relaxed),
                errors: shared.errors.load(Ordering::Relaxed),
                recent: Stats::of(&mut recent),
            });
        }
    }
    let window = window_start.map_or(Duration::ZERO, |w| w.elapsed());
    let cpu_end = target.pid.and_then(proc_cpu_ticks);
    let server = target.pid.and_then(|pid| {
        let (rss, peak) = proc_rss_mb(pid)?;
        let cpu = match (cpu_start, cpu_end) {
            (Some(a), Some(b)) if window > Duration::ZERO => {
                (b.saturating_sub(a)) as f64 / USER_HZ / window.as_secs_f64() * 100.0
            }
            _ => 0.0,
        };
        Some(Usage {
            rss_mb: rss,
            peak_rss_mb: peak,
            cpu_percent: cpu,
        })
    });
    // Drain: wait (bounded) until every push of every message has arrived.
    let drained = async {
        loop {
            let wait = shared.drained.notified();
            if lock(&shared.pending).is_empty() {
                return;
            }
            wait.await;
        }
    };
    let _ = tokio::time::timeout(spec.drain, drained).await;
    shared.stopping.store(true, Ordering::Relaxed);
    stop.notify_waiters();
    drop(writers);
    let _ = tokio::time::timeout(PEER_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let received = shared.received.load(Ordering::Relaxed);
    let expected = seq * u64::from(shared.subscribers);
    let frame_bytes = match received {
        0 => 1024,
        n => (shared.frame_bytes.load(Ordering::Relaxed) / n) as usize,
    };
    let echo = echo_baseline(frame_bytes, spec.echo_rounds, Some(TICK)).await?;
    let echo_back_to_back = echo_baseline(frame_bytes, spec.echo_rounds, None).await?;
    let mut s = std::mem::take(&mut *lock(&shared.samples));
    let e2e = Stats::of(&mut s.e2e);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(Report {
        connections: spec.connections,
        shops,
        conversations: conversations.len(),
        subscribers_per_conversation: usize::from(shared.subscribers),
        rate: spec.rate,
        warmup_s: spec.warmup.as_secs_f64(),
        duration_s: spec.duration.as_secs_f64(),
        connect_ms,
        sent: seq,
        measured,
        pushes_expected: expected,
        pushes_received: received,
        lost: expected.saturating_sub(received),
        errors: shared.errors.load(Ordering::Relaxed),
        closes: shared.closes.load(Ordering::Relaxed),
        e2e_over_echo_p50: ratio(e2e.p50_us, echo.p50_us),
        e2e_over_echo_p99: ratio(e2e.p99_us, echo.p99_us),
        e2e_over_back_to_back_echo_p50: ratio(e2e.p50_us, echo_back_to_back.p50_us),
        e2e,
        push_to_client: Stats::of(&mut s.push),
        engine: Stats::of(&mut s.engine),
        echo,
        echo_back_to_back,
        echo_frame_bytes: frame_bytes,
        server,
    })
}

/// Round trips of a `bytes`-long text frame through a bare tokio-tungstenite echo server
/// on its own thread and runtime: what loopback, the WebSocket framing and two tokio
/// runtimes cost on this machine right now. With `pace`, each round trip starts a tick
/// after the one before started (or at once when that took longer): both ends idle between
/// them, as the server does between the load's messages. Back to back they can stay hot, and the
/// round trip then drops to a fraction of what a push pays.
pub async fn echo_baseline(bytes: usize, rounds: usize, pace: Option<Duration>) -> Result<Stats> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("binding the echo server", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the echo address", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("configuring the echo server", e))?;
    let stop = Arc::new(Notify::new());
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let accepted = tokio::select! {
                _ = server_stop.notified() => return,
                a = tokio::time::timeout(PEER_TIMEOUT, listener.accept()) => a,
            };
            let Ok(Ok((tcp, _))) = accepted else { return };
            let Ok(Ok(mut ws)) =
                tokio::time::timeout(PEER_TIMEOUT, tokio_tungstenite::accept_async(tcp)).await
            else {
                return;
            };
            loop {
                let next = tokio::select! {
                    _ = server_stop.notified() => return,
                    n = tokio::time::timeout(IDLE_TIMEOUT, ws.next()) => n,
                };
                match next {
                    Ok(Some(Ok(m @ Message::Text(_)))) => {
                        if !matches!(
                            tokio::time::timeout(PEER_TIMEOUT, ws.send(m)).await,
                            Ok(Ok(()))
                        ) {
                            return;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => return,
                }
            }
        });
    });
    let result = async {
        let url = format!("ws://{addr}/");
        let (mut ws, _) = tokio::time::timeout(PEER_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| Error::Invalid {
                field: "echo",
                message: "echo handshake timed out".into(),
            })?
            .map_err(|e| Error::Invalid {
                field: "echo",
                message: e.to_string(),
            })?;
        let payload: Utf8Bytes = "x".repeat(bytes.max(1)).into();
        let warmup = (rounds / 10).max(10);
        let mut samples = Vec::with_capacity(rounds);
        let pace = pace.filter(|p| !p.is_zero());
        let mut last: Option<tokio::time::Instant> = None;
        for i in 0..warmup + rounds {
            // A tick after the last round trip started, never sooner: after a late wake-up
            // the next one is not due at once (an interval would fire the ticks it owes
            // back to back).
            if let (Some(p), Some(l)) = (pace, last) {
                tokio::time::sleep_until(l + p).await;
            }
            last = Some(tokio::time::Instant::now());
            let t = Instant::now();
            match tokio::time::timeout(PEER_TIMEOUT, ws.send(Message::Text(payload.clone()))).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(Error::Invalid {
                        field: "echo",
                        message: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(Error::Invalid {
                        field: "echo",
                        message: "sending to the echo server timed out".into(),
                    });
                }
            }
            match tokio::time::timeout(PEER_TIMEOUT, ws.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => {}
                _ => {
                    return Err(Error::Invalid {
                        field: "echo",
                        message: "the echo server did not answer".into(),
                    });
                }
            }
            if i >= warmup {
                samples.push(t.elapsed());
            }
        }
        let _ = tokio::time::timeout(PEER_TIMEOUT, ws.close(None)).await;
        Ok(Stats::of(&mut samples))
    }
    .await;
    stop.notify_waiters();
    let _ = server.join();
    result
}

/// Reads buyer messages, one per line (blank lines skipped).
pub fn read_messages(path: &Path) -> Result<Vec<String>> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(src
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// The messages file beside a generated phrasebook, if there is one.
pub fn messages_beside(phrasebook: &Path) -> Option<PathBuf> {
    let p = phrasebook.join("messages.txt");
    p.is_file().then_some(p)
}
