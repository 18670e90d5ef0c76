//! Engine latency on the shipped demo shop: one buyer message → ranked, rendered
//! suggestions. Prints p50/p99/max over a fixed message mix first (criterion reports means
//! and medians, the product's targets are percentiles), then runs criterion.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use huashu::engine::{Engine, Options};

/// Team-written buyer messages covering the intents, lengths and multi-clause messages.
const MESSAGES: &[&str] = &[
    "在吗",
    "亲 我拍的那个快递到哪了呀 三天了还没动",
    "拍下了帮我改下价格吧",
    "收到的杯子是碎的,你们怎么包装的",
    "好的谢谢",
    "能便宜点吗?包邮吗",
    "这件衣服是纯棉的吗 170斤穿什么码",
    "什么时候发货,能发顺丰吗",
    "不合适能退吗 运费谁出",
    "加个微信聊吧",
    "能开发票吗 抬头写公司",
    "嗯",
    "有黑色的吗,XL码还有货不",
    "我再考虑考虑吧",
    "你是机器人吗哈哈",
];

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
    let engine =
        Engine::load(&Options::new(root, dir.path().join("index"))).expect("demo shop loads");
    (dir, engine)
}

fn percentiles(engine: &Engine) {
    let rounds = 2_000;
    let mut samples: Vec<Duration> = Vec::with_capacity(rounds * MESSAGES.len());
    for _ in 0..rounds {
        for m in MESSAGES {
            let t = Instant::now();
            black_box(engine.suggest("demo", None, m).expect("suggest"));
            samples.push(t.elapsed());
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "engine suggest, demo shop, {} calls: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        samples[samples.len() - 1]
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
