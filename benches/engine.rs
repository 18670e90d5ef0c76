//! Engine latency on the shipped demo shop: one buyer message → ranked, rendered
//! suggestions. Prints p50/p99/max over a fixed message mix first (criterion reports means
//! and medians, the product's targets are percentiles), then runs criterion.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use huashu::bench::MESSAGES;
use huashu::engine::{Engine, Options};

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
    let engine =
        Engine::load(&Options::new(root, dir.path().join("index"))).expect("demo shop loads");
    (dir, engine)
}

/// Percentiles first (criterion reports means; the product's targets are percentiles),
/// measured the way `huashu bench --engine` measures them.
fn percentiles(engine: &Engine) {
    let messages: Vec<String> = MESSAGES.iter().map(|m| m.to_string()).collect();
    let run = huashu::bench::engine(engine, "demo", &messages, 30_000, Duration::from_secs(60))
        .expect("bench");
    let s = &run.stats;
    println!(
        "engine suggest, demo shop, {} calls: p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs",
        run.queries, s.p50_us, s.p90_us, s.p99_us, s.max_us
    );
}

fn bench(c: &mut Criterion) {
    let (_dir, engine) = engine();
    percentiles(&engine);
    c.bench_function("suggest/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % MESSAGES.len();
            black_box(engine.suggest("demo", None, MESSAGES[i]).expect("suggest"))
        })
    });
    c.bench_function("suggest/short", |b| {
        b.iter(|| black_box(engine.suggest("demo", None, "在吗").expect("suggest")))
    });
    c.bench_function("suggest/long", |b| {
        b.iter(|| black_box(engine.suggest("demo", None, MESSAGES[1]).expect("suggest")))
    });
    c.bench_function("load/demo", |b| b.iter(|| black_box(engine_load())));
}

fn engine_load() -> usize {
    let (_dir, engine) = engine();
    engine.shops().len()
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
