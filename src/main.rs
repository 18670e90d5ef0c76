//! The `huashu` command: parse arguments, set up logging, call the library.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use huashu::conversation::ContextUpdate;
use huashu::engine::{Engine, Options};
use huashu::phrasebook::OrderState;
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
        /// The order state the front end would report (none, unpaid, paid, shipped,
        /// delivered, refunding, closed): phrases that declare `order_state` are gated on it.
        #[arg(long, value_parser = parse_order_state)]
        order_state: Option<OrderState>,
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
        /// Also list up to this many rows whose primary intent was missed (id, labels,
        /// prediction, text).
        #[arg(long, value_name = "N", default_value_t = 0)]
        misses: usize,
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
    /// Write synthetic shops for benchmarks from a shop's vocabulary (deterministic by seed),
    /// plus `messages.txt` of synthetic buyer messages.
    Gen {
        /// Output phrasebook root (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        shops: usize,
        /// Phrases per shop.
        #[arg(long, default_value_t = 1000)]
        phrases: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The shop whose vocabulary, examples and policy are used.
        #[arg(long, default_value = "demo")]
        from: String,
        #[command(flatten)]
        data: Data,
    },
    /// Measure: the load generator over WebSocket (default), or `--engine` in process.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Measure the engine in process instead (no sockets): suggest latency per message.
    #[arg(long)]
    engine: bool,
    /// Shop for `--engine` (default: the first shop).
    #[arg(long)]
    shop: Option<String>,
    /// Engine calls for `--engine`.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Target a running server (`127.0.0.1:PORT`) instead of starting one; needs `--token`.
    #[arg(long)]
    target: Option<SocketAddr>,
    /// Agent token of a shop on the target (repeat for more shops).
    #[arg(long)]
    token: Vec<String>,
    /// Process id of the target server, for its RSS and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Shops to load from the phrasebook when starting a server (default: all).
    #[arg(long)]
    shops: Option<usize>,
    /// Agent WebSocket connections (two subscribers per conversation).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Buyer messages per second, all conversations together.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Buyer messages, one per line (default: `messages.txt` beside a generated phrasebook,
    /// else a built-in set).
    #[arg(long)]
    messages: Option<PathBuf>,
    /// Round trips of the echo baseline (10–20 000), paced on the load's 1 ms ticks and
    /// again back to back.
    #[arg(long, default_value_t = 2000)]
    echo_rounds: usize,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: Data,
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
    huashu::tune_allocator();
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
            order_state,
            data,
            text,
        } => suggest(&shop, json, order_state, &data, text),
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
            misses,
            data,
            files,
        } => eval(&shop, json, context.as_deref(), misses, &data, &files),
        Command::Gen {
            out,
            shops,
            phrases,
            messages,
            seed,
            from,
            data,
        } => gen_shops(
            &out,
            &huashu::synth::Spec {
                shops,
                phrases,
                messages,
                seed,
            },
            &from,
            &data,
        ),
        Command::Bench(args) => bench(args),
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
        // The first line, for scripts that start the server on port 0.
        println!("huashu listening on http://{}", running.addr);
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
    misses: usize,
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
        println!(
            "{}",
            serde_json::to_string(&protocol::eval_body(&r, &rows))?
        );
        return Ok(());
    }
    println!("rows {}", r.rows);
    println!("primary accuracy   {:.3}", r.accuracy);
    println!(
        "macro-F1           {:.3}  (answerable intents present in the labels)",
        r.macro_f1
    );
    println!("top-3 hit rate     {:.3}", r.top3);
    if let Some(s) = &r.replies {
        println!(
            "reply hit rate     {:.3} first, {:.3} in the top 3  ({} rows with good replies listed)",
            s.hit1, s.hit3, s.rows
        );
    }
    println!("unknown abstained  {:.3}", r.unknown_abstained);
    println!("wrongly abstained  {:.3}", r.wrongly_abstained);
    println!(
        "calibration error  {:.3}  (first suggestion's confidence vs. its intent being right)",
        r.calibration.ece
    );
    for (lo, n, conf, hit) in &r.calibration.bins {
        println!(
            "  confidence {:.1}-{:.1}: {n:>4} rows, mean {conf:.2}, right {hit:.2}",
            lo,
            lo + 0.1
        );
    }
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
    if misses > 0 {
        println!(
            "\nmissed rows ({} of {}; id, labels → predicted, text):",
            r.misses.len().min(misses),
            r.misses.len()
        );
        for m in r.misses.iter().take(misses) {
            if let Some(row) = rows.get(m.row) {
                println!(
                    "  {}  {} → {}  {}",
                    row.id,
                    row.intents.join(","),
                    m.predicted,
                    row.text
                );
            }
        }
        if let Some(s) = r.replies.as_ref().filter(|s| !s.misses.is_empty()) {
            println!(
                "\nrows with no good reply in the top 3 ({} of {}; id, state, text):",
                s.misses.len().min(misses),
                s.misses.len()
            );
            for row in s.misses.iter().take(misses).filter_map(|&i| rows.get(i)) {
                let state = row.order_state.map_or("-", |st| st.as_str());
                println!("  {}  {state}  {}", row.id, row.text);
            }
        }
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
    order_state: Option<OrderState>,
    data: &Data,
    text: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut n = 0u64;
    for_each_input(shop, data, text, |engine, out, line| {
        // An order state lives in a conversation; each line gets one of its own, so lines
        // are still read independently (no fragments merged, no earlier intent).
        let s = match order_state {
            Some(state) => {
                n += 1;
                let conversation = format!("cli-{n}");
                engine.context(shop, &conversation, ContextUpdate::of_order_state(state))?;
                engine.suggest(shop, Some(&conversation), line)?
            }
            None => engine.suggest(shop, None, line)?,
        };
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
                .map(|i| {
                    // Asked, with the share of the reading when it says something else.
                    if i.asked - i.confidence >= 0.01 {
                        format!("{} {:.2} (share {:.2})", i.intent, i.asked, i.confidence)
                    } else {
                        format!("{} {:.2}", i.intent, i.asked)
                    }
                })
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

fn parse_order_state(s: &str) -> Result<OrderState, String> {
    OrderState::parse(s).ok_or_else(|| {
        format!(
            "`{s}` is not an order state; one of: {}",
            OrderState::names()
        )
    })
}

fn gen_shops(
    out: &std::path::Path,
    spec: &huashu::synth::Spec,
    from: &str,
    data: &Data,
) -> CliResult {
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} exists and is not empty", out.display()).into());
    }
    let source = huashu::phrasebook::load_shop(
        &data.phrasebook.join(from),
        &huashu::phrasebook::default_lexicon(&data.phrasebook)?,
    )?;
    let shop_toml = std::fs::read_to_string(source.dir.join("shop.toml"))?;
    let generated = huashu::synth::generate(&source, &shop_toml, spec);
    let phrases = huashu::synth::write_root(out, &data.phrasebook, &generated)?;
    eprintln!(
        "wrote {} shops, {} phrases, {} buyer messages under {}",
        generated.shops.len(),
        phrases,
        generated.messages.len(),
        out.display()
    );
    Ok(())
}

fn bench(args: BenchArgs) -> CliResult {
    use huashu::bench::load;
    use std::time::{Duration, Instant};
    let messages = match args
        .messages
        .clone()
        .or_else(|| load::messages_beside(&args.data.phrasebook))
    {
        Some(p) => load::read_messages(&p)?,
        None => huashu::bench::MESSAGES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    if messages.is_empty() {
        return Err("no buyer messages to send".into());
    }
    if args.engine {
        let started = Instant::now();
        let engine = Engine::load(&Options::new(&args.data.phrasebook, &args.data.index))?;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let shop = match args.shop {
            Some(s) => s,
            None => engine
                .shop_ids()
                .into_iter()
                .next()
                .ok_or("the phrasebook has no shops")?,
        };
        let run = huashu::bench::engine(
            &engine,
            &shop,
            &messages,
            args.calls,
            Duration::from_secs(120),
        )?;
        if args.json {
            let mut v = serde_json::to_value(&run)?;
            v["load_ms"] = serde_json::json!(load_ms);
            v["build_ms"] = serde_json::json!(load_ms);
            println!("{v}");
        } else {
            let s = &run.stats;
            println!(
                "engine suggest, shop {} ({} phrases), {} calls after {} warm-up:",
                run.shop, run.phrases, run.queries, run.warmup
            );
            println!(
                "  p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs  (load {load_ms:.0} ms)",
                s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us
            );
        }
        return Ok(());
    }
    let bounded = |v: f64, max: f64, what: &str| -> Result<Duration, String> {
        if v.is_finite() && (0.0..=max).contains(&v) {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(format!("{what} must be between 0 and {max} seconds"))
        }
    };
    if !(args.rate > 0.0 && args.rate <= 100_000.0) || args.connections > 10_000 {
        return Err("--rate must be in (0, 100000] and --connections at most 10000".into());
    }
    let spec = load::Spec {
        connections: args.connections,
        rate: args.rate,
        warmup: bounded(args.warmup, 60.0, "--warmup")?,
        duration: bounded(args.duration, 600.0, "--duration")?,
        drain: Duration::from_secs(10),
        messages,
        echo_rounds: args.echo_rounds.clamp(10, 20_000),
    };
    let local;
    let (target, startup_ms) = match args.target {
        Some(addr) => (
            load::Target {
                addr,
                tokens: args.token.clone(),
                pid: args.server_pid,
            },
            None,
        ),
        None => {
            local = load::start_server(
                &std::env::current_exe()?,
                &args.data.phrasebook,
                &args.data.index,
                args.shops,
                Duration::from_secs(300),
            )?;
            (
                load::Target {
                    addr: local.addr,
                    tokens: local.tokens.clone(),
                    pid: Some(local.pid()),
                },
                Some(local.startup.as_secs_f64() * 1e3),
            )
        }
    };
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(load::run(&target, &spec, |p| {
        let line = format!(
            "{:>5.1}s {} sent {} received {} errors {}  last second: p50 {:.0} µs p99 {:.0} µs",
            p.elapsed.as_secs_f64(),
            if p.warming { "warm-up" } else { "measure" },
            p.sent,
            p.received,
            p.errors,
            p.recent.p50_us,
            p.recent.p99_us
        );
        if tty {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }))?;
    if tty {
        eprintln!();
    }
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["server_startup_ms"] = serde_json::json!(startup_ms);
        println!("{v}");
        return Ok(());
    }
    let ms = |us: f64| us / 1e3;
    println!(
        "{} connections, {} shops, {} conversations × {} subscribers, {} msg/s for {} s after {} s warm-up",
        report.connections,
        report.shops,
        report.conversations,
        report.subscribers_per_conversation,
        report.rate,
        report.duration_s,
        report.warmup_s
    );
    if let Some(s) = startup_ms {
        println!(
            "server startup {s:.0} ms, connecting {:.0} ms",
            report.connect_ms
        );
    }
    println!(
        "messages sent {} (measured {}), pushes {} of {} expected, lost {}, errors {}, closes {}",
        report.sent,
        report.measured,
        report.pushes_received,
        report.pushes_expected,
        report.lost,
        report.errors,
        report.closes
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "ms", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, s) in [
        ("end to end (all subs)", &report.e2e),
        ("server push → client", &report.push_to_client),
        ("engine (server-side)", &report.engine),
        ("echo, paced as the load", &report.echo),
        ("echo, back to back", &report.echo_back_to_back),
    ] {
        println!(
            "{name:<26} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            ms(s.p50_us),
            ms(s.p90_us),
            ms(s.p99_us),
            ms(s.p999_us),
            ms(s.max_us)
        );
    }
    println!(
        "e2e / paced echo: p50 {:.2}×, p99 {:.2}× (back to back: p50 {:.2}×; echo frame {} bytes)",
        report.e2e_over_echo_p50,
        report.e2e_over_echo_p99,
        report.e2e_over_back_to_back_echo_p50,
        report.echo_frame_bytes
    );
    if let Some(u) = &report.server {
        println!(
            "server: RSS {:.1} MB (peak {:.1} MB), CPU {:.0}% of one core",
            u.rss_mb, u.peak_rss_mb, u.cpu_percent
        );
    }
    Ok(())
}
