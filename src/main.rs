//! The `huashu` command: parse arguments, set up logging, call the library.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use huashu::engine::{Engine, Options};
use huashu::server::{self, protocol};

#[derive(Parser)]
#[command(
    name = "huashu",
    version,
    about = "Reply suggestions for e-commerce customer service"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone)]
struct Data {
    /// Phrasebook root (one directory per shop).
    #[arg(long, env = "HUASHU_PHRASEBOOK", default_value = "phrasebook")]
    phrasebook: PathBuf,
    /// Index root (derived; rebuilt when missing or stale).
    #[arg(long, env = "HUASHU_INDEX", default_value = "index")]
    index: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default command).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "HUASHU_LISTEN", default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
        #[command(flatten)]
        data: Data,
        /// Access file of hashed tokens; without it the demo shop gets development tokens.
        #[arg(long, env = "HUASHU_ACCESS")]
        access: Option<PathBuf>,
    },
    /// Suggest replies for buyer messages: TEXT, or one message per line on stdin.
    Suggest {
        #[arg(long, default_value = "demo")]
        shop: String,
        /// One JSON object per message instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: Data,
        text: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("huashu=info,warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve {
        listen: std::env::var("HUASHU_LISTEN")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7700))),
        data: Data {
            phrasebook: std::env::var_os("HUASHU_PHRASEBOOK")
                .map_or_else(|| "phrasebook".into(), PathBuf::from),
            index: std::env::var_os("HUASHU_INDEX").map_or_else(|| "index".into(), PathBuf::from),
        },
        access: std::env::var_os("HUASHU_ACCESS").map(PathBuf::from),
    });
    let result = match command {
        Command::Serve {
            listen,
            data,
            access,
        } => serve(listen, data, access),
        Command::Suggest {
            shop,
            json,
            data,
            text,
        } => suggest(&shop, json, &data, text),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huashu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    listen: SocketAddr,
    data: Data,
    access: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut config = server::Config::new(listen, data.phrasebook, data.index);
        config.access = access;
        config.demo_agent_token = std::env::var("HUASHU_DEMO_AGENT_TOKEN").ok();
        config.demo_owner_token = std::env::var("HUASHU_DEMO_OWNER_TOKEN").ok();
        let running = server::start(config).await?;
        if let Some((agent, owner)) = &running.demo_tokens {
            // Printed once for the developer at the terminal; never logged.
            println!("huashu serving the demo shop on http://{}", running.addr);
            println!("  agent token: {agent}");
            println!("  owner token: {owner}");
            println!("  try: websocat -H 'Sec-WebSocket-Protocol: huashu.v1, bearer.{agent}' ws://{}/v1/ws", running.addr);
        }
        tokio::select! {
            r = running.task => r??,
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
        }
        Ok(())
    })
}

fn suggest(
    shop: &str,
    json: bool,
    data: &Data,
    text: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::load(&Options::new(&data.phrasebook, &data.index))?;
    if !engine.has_shop(shop) {
        return Err(format!("unknown shop `{shop}`").into());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut one = |line: &str| -> Result<(), Box<dyn std::error::Error>> {
        let s = engine.suggest(shop, None, line)?;
        if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&protocol::suggestions_body(line, &s))?
            )?;
        } else {
            let intents: Vec<String> = s
                .intents
                .iter()
                .map(|i| format!("{} {:.2}", i.intent, i.confidence))
                .collect();
            writeln!(out, "{line}\n  intents: {}", intents.join(", "))?;
            for (n, item) in s.items.iter().enumerate() {
                let missing = if item.missing.is_empty() {
                    String::new()
                } else {
                    format!("  [missing: {}]", item.missing.join(", "))
                };
                writeln!(out, "  {}. [{}] {}{missing}", n + 1, item.intent, item.text)?;
            }
        }
        Ok(())
    };
    match text {
        Some(t) => one(&t)?,
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if !line.trim().is_empty() {
                    one(&line)?;
                }
            }
        }
    }
    Ok(())
}
