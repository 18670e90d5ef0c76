//! Measuring huashu (`huashu bench`): latency statistics, the in-process engine benchmark,
//! and (in [`load`]) the WebSocket load generator with its echo baseline.
//!
//! Benchmarks are bounded in count and time and talk to loopback only. Numbers are for
//! people and machines (`--json`), never assertions: the machines are shared and noisy, so
//! the load generator measures a bare echo in the same run and reports the ratio.

pub mod load;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::Engine;

/// Team-written buyer messages covering the intents, lengths and multi-clause messages: the
/// mix of runs without a messages file and of `cargo bench --bench engine`.
pub const MESSAGES: &[&str] = &[
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

/// Percentiles of a set of samples, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Stats {
    /// Nearest-rank percentiles; sorts `samples`.
    pub fn of(samples: &mut [Duration]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let us = |d: Duration| d.as_nanos() as f64 / 1e3;
        let at = |q: f64| {
            // The small slack keeps 0.999 × 1000 at rank 999 despite binary fractions.
            let rank = ((q * n as f64 - 1e-9).ceil() as usize).clamp(1, n);
            us(samples[rank - 1])
        };
        let total: Duration = samples.iter().sum();
        Stats {
            count: n,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: us(samples[n - 1]),
            mean_us: total.as_nanos() as f64 / n as f64 / 1e3,
        }
    }
}

/// Result of [`engine`].
#[derive(Debug, Clone, Serialize)]
pub struct EngineRun {
    pub engine: &'static str,
    pub shop: String,
    pub phrases: usize,
    pub queries: usize,
    pub warmup: usize,
    #[serde(flatten)]
    pub stats: Stats,
}

/// Calls `engine.suggest` without conversation state over `messages` (cycled) after a
/// warm-up, until `calls` calls or `limit` time, whichever comes first.
pub fn engine(
    engine: &Engine,
    shop: &str,
    messages: &[String],
    calls: usize,
    limit: Duration,
) -> crate::Result<EngineRun> {
    let phrases = engine.shop(shop)?.phrases().count();
    let warmup = messages.len().clamp(1, 200);
    if messages.is_empty() {
        return Err(crate::Error::Invalid {
            field: "messages",
            message: "no buyer messages to run".into(),
        });
    }
    for m in messages.iter().cycle().take(warmup) {
        std::hint::black_box(engine.suggest(shop, None, m)?);
    }
    let start = Instant::now();
    let mut samples = Vec::with_capacity(calls);
    for m in messages.iter().cycle().take(calls) {
        let t = Instant::now();
        std::hint::black_box(engine.suggest(shop, None, m)?);
        samples.push(t.elapsed());
        if start.elapsed() > limit {
            break;
        }
    }
    Ok(EngineRun {
        engine: "huashu",
        shop: shop.to_string(),
        phrases,
        queries: samples.len(),
        warmup,
        stats: Stats::of(&mut samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms =
            |v: &[u64]| -> Vec<Duration> { v.iter().map(|&x| Duration::from_micros(x)).collect() };
        let cases: &[(&[u64], f64, f64, f64)] = &[
            // samples, p50, p99, max
            (&[5], 5.0, 5.0, 5.0),
            (&[1, 2, 3, 4], 2.0, 4.0, 4.0),
            (&[10, 1, 7, 3, 9, 2, 8, 4, 6, 5], 5.0, 10.0, 10.0),
        ];
        for (samples, p50, p99, max) in cases {
            let s = Stats::of(&mut ms(samples));
            assert_eq!(
                (s.p50_us, s.p99_us, s.max_us),
                (*p50, *p99, *max),
                "{samples:?}"
            );
            assert_eq!(s.count, samples.len());
        }
        let hundred: Vec<u64> = (1..=1000).collect();
        let s = Stats::of(&mut ms(&hundred));
        assert_eq!((s.p90_us, s.p999_us, s.mean_us), (900.0, 999.0, 500.5));
        assert_eq!(Stats::of(&mut []), Stats::default());
    }
}
