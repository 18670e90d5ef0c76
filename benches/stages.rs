//! The engine's stages one by one, and the whole engine, at shop sizes 1k / 10k / 100k
//! phrases generated from the demo shop (`huashu gen`'s generator, fixed seed):
//!
//! | group | what |
//! |---|---|
//! | `text/normalize_tokenize` | NFKC, folds, T→S, masking, then jieba |
//! | `intent/detect` | clause split + classifier |
//! | `extract` | variables from a normalized message, product words included |
//! | `intent/train` | training the classifier on the demo's examples (an example edit waits for it) |
//! | `search/{1k,10k,100k}` | tantivy BM25 over the shop's index, top 24 |
//! | `engine/{1k,10k,100k}` | a whole suggestion, stateless |
//! | `json/push` | serializing a `suggestions` push |
//!
//! `cargo bench --bench stages` (add a filter such as `search` to run one group). The 100k
//! shop takes a while to build the first time in each run.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use huashu::engine::{Engine, Options};
use huashu::intent::{Classifier, Thresholds};
use huashu::phrasebook::{default_lexicon, load_shop};
use huashu::server::protocol::{ServerMsg, suggestions_body};
use huashu::synth::{Spec, generate, write_root};
use huashu::text::{Text, normalize};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook")
}

/// A generated phrasebook root of one shop (`s000`) with `phrases` phrases, its buyer
/// messages, and the loaded engine.
struct Sized {
    _dir: tempfile::TempDir,
    engine: Engine,
    messages: Vec<String>,
}

fn sized(phrases: usize) -> Sized {
    let dir = tempfile::tempdir().expect("temp dir");
    let lexicon = default_lexicon(&repo()).expect("lexicon");
    let demo = load_shop(&repo().join("demo"), &lexicon).expect("demo");
    let shop_toml = std::fs::read_to_string(repo().join("demo/shop.toml")).expect("shop.toml");
    let spec = Spec {
        shops: 1,
        phrases,
        messages: 500,
        seed: 7,
    };
    let generated = generate(&demo, &shop_toml, &spec);
    let root = dir.path().join("phrasebook");
    write_root(&root, &repo(), &generated).expect("write");
    let engine = Engine::load(&Options::new(&root, dir.path().join("index"))).expect("load");
    Sized {
        _dir: dir,
        engine,
        messages: generated.messages,
    }
}

fn cycle<'a>(messages: &'a [String], i: &mut usize) -> &'a str {
    *i = (*i + 1) % messages.len();
    &messages[*i]
}

fn stages(c: &mut Criterion) {
    let small = sized(1_000);
    let messages = &small.messages;

    let mut text = Text::new(
        Some(&repo().join("dict/jieba.txt")),
        Some(&repo().join("dict/ecommerce.txt")),
        &[],
    )
    .expect("text");
    // The classifier trains with the shipped synonym groups, as the service does.
    text.load_synonyms(&repo().join("dict/synonyms.txt"))
        .expect("synonyms");
    c.bench_function("text/normalize_tokenize", |b| {
        let mut i = 0;
        b.iter(|| {
            let n = normalize(cycle(messages, &mut i));
            black_box(text.tokens(&n).len())
        })
    });

    let products = huashu::extract::Products::parse(
        &std::fs::read_to_string(repo().join("dict/products.txt")).expect("products"),
    )
    .expect("products parse");
    let normalized: Vec<String> = messages.iter().map(|m| normalize(m)).collect();
    c.bench_function("extract", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(huashu::extract::extract(
                cycle(&normalized, &mut i),
                &products,
            ))
        })
    });

    c.bench_function("intent/detect", |b| {
        let mut i = 0;
        b.iter(|| {
            let m = cycle(messages, &mut i);
            black_box(small.engine.analyze_intent("s000", m).expect("detect"))
        })
    });

    // What an owner's example edit waits for: training the classifier on the demo's examples.
    let lexicon = default_lexicon(&repo()).expect("lexicon");
    let demo = load_shop(&repo().join("demo"), &lexicon).expect("demo");
    let data: Vec<(&str, &[String])> = demo
        .intents
        .iter()
        .map(|i| (i.id.as_str(), &i.examples[..]))
        .collect();
    let mut train = c.benchmark_group("intent");
    train.sample_size(10);
    train.bench_function("train", |b| {
        b.iter(|| black_box(Classifier::train(&text, &data, Thresholds::default())))
    });
    train.finish();

    for (label, phrases) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
        let s = if phrases == 1_000 {
            None
        } else {
            Some(sized(phrases))
        };
        let s = s.as_ref().unwrap_or(&small);
        c.bench_function(&format!("search/{label}"), |b| {
            let mut i = 0;
            b.iter(|| {
                let m = cycle(&s.messages, &mut i);
                black_box(s.engine.search("s000", m).expect("search"))
            })
        });
        c.bench_function(&format!("engine/{label}"), |b| {
            let mut i = 0;
            b.iter(|| {
                let m = cycle(&s.messages, &mut i);
                black_box(s.engine.suggest("s000", None, m).expect("suggest"))
            })
        });
    }

    let text_in = "在吗?能便宜点吗?什么时候发货";
    let pushed = small
        .engine
        .suggest("s000", None, text_in)
        .expect("suggest");
    c.bench_function("json/push", |b| {
        b.iter(|| {
            let frame = ServerMsg::Suggestions {
                conversation: "buyer-42",
                message_id: "m1",
                buyer: Some("小王"),
                body: suggestions_body(text_in, &pushed),
                abstained: pushed.abstained,
                server_time_us: 1_795_503_881_110_411,
                engine_us: 42,
            }
            .to_json();
            black_box(frame.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = stages
}
criterion_main!(benches);
