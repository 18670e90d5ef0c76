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
        /// Directory of the browser pages (sidebar `/`, `/admin`, `/demo/chat`).
        #[arg(long, env = "HUASHU_WEB", default_value = "web")]
        web: PathBuf,
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
    /// Check drafts for compliance: TEXT, or one text per line on stdin.
    Check {
        #[arg(long, default_value = "demo")]
        shop: String,
        /// One JSON object per text instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: Data,
        text: Option<String>,
    },
    /// Intent and suggestion quality on labeled TSV files (`id`, `text`, `intents`).
    Eval {
        #[arg(long, default_value = "demo")]
        shop: String,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Sessions TSV (`session`, `row`, `speaker`, `text`): replay each row's earlier
        /// turns through the conversation memory first.
        #[arg(long)]
        context: Option<PathBuf>,
        #[command(flatten)]
        data: Data,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Import into a shop, all or nothing: a 千牛 quick-phrase sheet (CSV, UTF-8/BOM/GBK) or,
    /// for a `.toml` file, a bundle written by `huashu export --format toml`.
    Import {
        #[arg(long, default_value = "demo")]
        shop: String,
        /// Report what would happen without writing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        data: Data,
        file: PathBuf,
    },
    /// Export a shop: `qianniu` (千牛 quick-phrase sheet, UTF-8 CSV with BOM) or `toml` (one
    /// bundle of all intents, comments kept).
    Export {
        #[arg(long, default_value = "demo")]
        shop: String,
        #[arg(long, default_value = "qianniu")]
        format: String,
        /// Output file (stdout if omitted).
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[command(flatten)]
        data: Data,
    },
    /// Manage access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Report every compliance finding in the phrasebook; exits 1 if any is `block`.
    Lint {
        #[command(flatten)]
        data: Data,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token: printed once, only its SHA-256 is stored in the access file.
    Add {
        #[arg(long)]
        shop: String,
        /// agent (reads, subscribes) or owner (also edits).
        #[arg(long)]
        role: String,
        /// The access file (never inside the phrasebook).
        #[arg(long, env = "HUASHU_ACCESS")]
        access: PathBuf,
        #[arg(long, env = "HUASHU_PHRASEBOOK", default_value = "phrasebook")]
        phrasebook: PathBuf,
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
    // No subcommand means `serve`, with the same flags' defaults and environment variables
    // (an invalid HUASHU_LISTEN is an error, not silently ignored).
    let command = match cli.command {
        Some(c) => c,
        None => match Cli::parse_from(["huashu", "serve"]).command {
            Some(c) => c,
            None => unreachable_serve(),
        },
    };
    let result = match command {
        Command::Serve {
            listen,
            data,
            access,
            web,
        } => serve(listen, data, access, web),
        Command::Suggest {
            shop,
            json,
            data,
            text,
        } => suggest(&shop, json, &data, text),
        Command::Check {
            shop,
            json,
            data,
            text,
        } => check(&shop, json, &data, text),
        Command::Lint { data } => lint(&data),
        Command::Import {
            shop,
            dry_run,
            data,
            file,
        } => import(&shop, dry_run, &data, &file),
        Command::Export {
            shop,
            format,
            out,
            data,
        } => export(&shop, &format, out.as_deref(), &data),
        Command::Token {
            command:
                TokenCommand::Add {
                    shop,
                    role,
                    access,
                    phrasebook,
                },
        } => huashu::server::auth::add_token(&access, &phrasebook, &shop, &role)
            .map(|token| println!("{token}"))
            .map_err(Into::into),
        Command::Eval {
            shop,
            json,
            context,
            data,
            files,
        } => eval(&shop, json, context.as_deref(), &data, &files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huashu: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `huashu serve` always parses to `Some(Serve)`; this exists so that path has no panic.
fn unreachable_serve() -> Command {
    eprintln!("huashu: could not parse the default `serve` command");
    std::process::exit(2)
}

fn serve(
    listen: SocketAddr,
    data: Data,
    access: Option<PathBuf>,
    web: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut config = server::Config::new(listen, data.phrasebook, data.index);
        config.access = access;
        config.web = web;
        config.demo_agent_token = std::env::var("HUASHU_DEMO_AGENT_TOKEN").ok();
        config.demo_owner_token = std::env::var("HUASHU_DEMO_OWNER_TOKEN").ok();
        let running = server::start(config).await?;
        if let Some((agent, owner)) = &running.demo_tokens {
            // Printed once for the developer at the terminal; never logged.
            println!("huashu serving the demo shop on http://{}", running.addr);
            println!("  agent token: {agent}");
            println!("  owner token: {owner}");
            println!("  sidebar: http://{0}/   admin: http://{0}/admin   demo chat: http://{0}/demo/chat", running.addr);
            println!("  try: websocat -H 'Sec-WebSocket-Protocol: huashu.v1, bearer.{agent}' ws://{}/v1/ws", running.addr);
        }
        tokio::select! {
            r = running.task => r??,
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
        }
        Ok(())
    })
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Loads the engine, then runs `one` on TEXT, or on every non-empty line of stdin, with
/// stdout locked once for the whole run.
fn for_each_input(
    shop: &str,
    data: &Data,
    text: Option<String>,
    mut one: impl FnMut(&Engine, &mut std::io::StdoutLock<'_>, &str) -> CliResult,
) -> CliResult {
    let engine = load(shop, data)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match text {
        Some(t) => one(&engine, &mut out, &t),
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if !line.trim().is_empty() {
                    one(&engine, &mut out, &line)?;
                }
            }
            Ok(())
        }
    }
}

fn load(shop: &str, data: &Data) -> Result<Engine, Box<dyn std::error::Error>> {
    let engine = Engine::load(&Options::new(&data.phrasebook, &data.index))?;
    if !engine.has_shop(shop) {
        return Err(format!("unknown shop `{shop}`").into());
    }
    Ok(engine)
}

fn check(
    shop: &str,
    json: bool,
    data: &Data,
    text: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    for_each_input(shop, data, text, |engine, out, line| {
        let report = engine.check(shop, line)?;
        if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&protocol::check_body(line, &report))?
            )?;
        } else if report.violations.is_empty() {
            writeln!(out, "ok     {line}")?;
        } else {
            let verdict = if report.blocked() { "BLOCK" } else { "warn" };
            writeln!(out, "{verdict:<6} {line}")?;
            for v in &report.violations {
                let fix = v
                    .rewrite
                    .as_deref()
                    .map(|r| format!(" → `{r}`"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "         {}..{} `{}` {} {} ({}){fix}",
                    v.start,
                    v.end,
                    v.matched,
                    v.severity.as_str(),
                    v.category,
                    v.rule
                )?;
            }
            if report.rewritten != line {
                writeln!(out, "         rewritten: {}", report.rewritten)?;
            }
        }
        Ok(())
    })
}

fn eval(
    shop: &str,
    json: bool,
    context: Option<&std::path::Path>,
    data: &Data,
    files: &[PathBuf],
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = load(shop, data)?;
    let mut rows = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        rows.extend(huashu::eval::read_labeled(&src, &f.display().to_string())?);
    }
    let sessions = match context {
        Some(p) => {
            let src = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(huashu::eval::read_sessions(&src, &p.display().to_string())?)
        }
        None => None,
    };
    let r = huashu::eval::evaluate(&engine, shop, &rows, sessions.as_ref())?;
    if json {
        println!("{}", serde_json::to_string(&protocol::eval_body(&r))?);
        return Ok(());
    }
    println!("rows {}", r.rows);
    println!("primary accuracy   {:.3}", r.accuracy);
    println!(
        "macro-F1           {:.3}  (answerable intents present in the labels)",
        r.macro_f1
    );
    println!("top-3 hit rate     {:.3}", r.top3);
    println!("unknown abstained  {:.3}", r.unknown_abstained);
    println!("wrongly abstained  {:.3}", r.wrongly_abstained);
    println!(
        "engine latency     p50 {:?}  p99 {:?}",
        r.latency_p50, r.latency_p99
    );
    println!(
        "\n{:<18} {:>7} {:>9} {:>9} {:>7} {:>7}",
        "intent", "support", "predicted", "precision", "recall", "F1"
    );
    for s in &r.per_intent {
        println!(
            "{:<18} {:>7} {:>9} {:>9.2} {:>7.2} {:>7.2}",
            s.intent, s.support, s.predicted, s.precision, s.recall, s.f1
        );
    }
    println!("\ntop confusions (gold → predicted):");
    for (g, p, n) in r.confusions.iter().take(12) {
        println!("  {n:>4}  {g} → {p}");
    }
    Ok(())
}

fn import(shop: &str, dry_run: bool, data: &Data, file: &std::path::Path) -> CliResult {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let engine = std::sync::Arc::new(load(shop, data)?);
    let curator = huashu::curation::Curator::new(engine, &data.phrasebook);
    if file.extension().is_some_and(|x| x == "toml") {
        if dry_run {
            return Err("--dry-run is for 千牛 sheets".into());
        }
        let src = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", file.display()))?;
        let version = curator.import_toml(shop, &src)?;
        println!(
            "imported {} into shop {shop}: version {version}",
            file.display()
        );
        return Ok(());
    }
    let report = curator.import_qianniu(shop, &bytes, dry_run)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&huashu::server::curate::import_json(&report))?
    );
    if !report.rejected.is_empty() {
        return Err(format!(
            "{} row(s) rejected; nothing imported",
            report.rejected.len()
        )
        .into());
    }
    Ok(())
}

fn export(shop: &str, format: &str, out: Option<&std::path::Path>, data: &Data) -> CliResult {
    let engine = load(shop, data)?;
    let bytes = match format {
        "qianniu" => huashu::curation::export_qianniu(&engine.shop(shop)?),
        "toml" => {
            huashu::curation::export_toml(&data.phrasebook, &engine.shop(shop)?)?.into_bytes()
        }
        other => return Err(format!("format `{other}` must be qianniu or toml").into()),
    };
    match out {
        Some(path) => {
            std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

fn lint(data: &Data) -> Result<(), Box<dyn std::error::Error>> {
    let findings = huashu::phrasebook::lint_root(&data.phrasebook)?;
    let blocks = findings
        .iter()
        .filter(|f| f.violation.severity == huashu::compliance::Severity::Block)
        .count();
    for f in &findings {
        println!("{}: {}", f.location, f.describe());
    }
    println!(
        "{}: {blocks} block, {} warn{}",
        data.phrasebook.display(),
        findings.len() - blocks,
        if blocks == 0 {
            " — no block violations"
        } else {
            ""
        }
    );
    if blocks > 0 {
        return Err(format!("{blocks} block violation(s)").into());
    }
    Ok(())
}

fn suggest(
    shop: &str,
    json: bool,
    data: &Data,
    text: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    for_each_input(shop, data, text, |engine, out, line| {
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
    })
}
