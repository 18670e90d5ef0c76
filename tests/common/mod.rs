//! Test harness: the real server on 127.0.0.1:0 over a copy of the shipped phrasebook and a
//! real tantivy index in a temp dir, and a real tokio-tungstenite client. Every wait has a
//! timeout so a broken server fails the test instead of hanging it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huashu::server::{self, Config, Running};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const AGENT: &str = "test-agent-token";
pub const OWNER: &str = "test-owner-token";
pub const WAIT: Duration = Duration::from_secs(20);

pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A temp dir holding a copy of the shipped phrasebook and an index dir.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
        copy_dir(&src, &root.path().join("phrasebook"));
        Dirs { root }
    }

    pub fn phrasebook(&self) -> PathBuf {
        self.root.path().join("phrasebook")
    }

    pub fn index(&self) -> PathBuf {
        self.root.path().join("index")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn config(dirs: &Dirs) -> Config {
    let mut config = Config::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        dirs.phrasebook(),
        dirs.index(),
    );
    config.demo_agent_token = Some(AGENT.into());
    config.demo_owner_token = Some(OWNER.into());
    config
}

pub async fn start(dirs: &Dirs) -> Running {
    start_with(config(dirs)).await
}

pub async fn start_with(config: Config) -> Running {
    within("server start", server::start(config))
        .await
        .expect("server starts")
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Any byte stream a WebSocket can run over.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Stream for T {}

/// Connects with the token offered as a subprotocol beside `huashu.v1`.
pub async fn connect(addr: SocketAddr, token: &str) -> Result<Ws, tungstenite::Error> {
    let mut req = format!("ws://{addr}/v1/ws").into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("huashu.v1, bearer.{token}")
            .parse()
            .expect("header"),
    );
    let (ws, resp) = within("ws connect", tokio_tungstenite::connect_async(req)).await?;
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("huashu.v1"),
        "server echoes only huashu.v1"
    );
    Ok(ws)
}

/// Connects and reads the welcome.
pub async fn agent(addr: SocketAddr) -> Ws {
    let mut ws = connect(addr, AGENT).await.expect("agent connects");
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

pub async fn send<S: Stream>(ws: &mut WebSocketStream<S>, v: Value) {
    within("ws send", ws.send(Message::text(v.to_string())))
        .await
        .expect("send");
}

pub async fn send_raw<S: Stream>(ws: &mut WebSocketStream<S>, s: &str) {
    within("ws send", ws.send(Message::text(s.to_string())))
        .await
        .expect("send");
}

/// The next JSON text frame (pings are skipped).
pub async fn recv<S: Stream>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let msg = within("ws frame", ws.next())
            .await
            .expect("stream open")
            .expect("frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next frame of the given type (other frames are returned in order in `skipped`).
pub async fn recv_type<S: Stream>(ws: &mut WebSocketStream<S>, ty: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == ty {
            return v;
        }
        assert_ne!(
            v["type"], "error",
            "unexpected error while waiting for {ty}: {v}"
        );
    }
}

pub async fn subscribe<S: Stream>(ws: &mut WebSocketStream<S>, conversation: &str) {
    send(
        ws,
        json!({"type": "subscribe", "conversation": conversation}),
    )
    .await;
    let ack = recv_type(ws, "subscribed").await;
    assert_eq!(ack["conversation"], conversation);
}

/// Minimal HTTP/1.1 client over a real TCP connection: (status, JSON body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = within("http connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    within("http write", stream.write_all(req.as_bytes()))
        .await
        .expect("write");
    let mut raw = Vec::new();
    within("http read", stream.read_to_end(&mut raw))
        .await
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let (head, rest) = text.split_once("\r\n\r\n").expect("headers end");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn primary(v: &Value) -> &str {
    v["intents"][0]["intent"].as_str().unwrap_or("")
}
