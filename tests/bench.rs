//! `huashu gen` and `huashu bench` as a user runs them: the generated phrasebook loads with
//! the sizes asked for, and a short load run over real WebSockets loses nothing. Speeds are
//! printed, never asserted (timing is for benchmarks, not tests); the paced echo's test
//! asserts only that it waits its ticks, a lower bound no slow machine can break.

use std::path::Path;
use std::process::Command;

fn huashu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_huashu"))
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn generated_shops_load_with_the_sizes_asked_for_and_are_reproducible() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let run = |out: &Path, seed: &str| {
        let status = huashu()
            .args([
                "gen",
                "--shops",
                "2",
                "--phrases",
                "300",
                "--messages",
                "50",
                "--seed",
                seed,
            ])
            .arg("--out")
            .arg(out)
            .arg("--phrasebook")
            .arg(repo().join("phrasebook"))
            .status()
            .expect("huashu gen runs");
        assert!(status.success());
    };
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    run(&a, "7");
    run(&b, "7");
    run(&c, "8");
    let shops = huashu::phrasebook::load_root(&a).expect("generated shops load and pass lint");
    let sizes: Vec<(String, usize)> = shops
        .iter()
        .map(|s| (s.id.clone(), s.phrases().count()))
        .collect();
    assert_eq!(
        sizes,
        [("s000".to_string(), 300), ("s001".to_string(), 300)]
    );
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).expect("file");
    for f in ["s000/intents/shipping.toml", "messages.txt"] {
        assert_eq!(read(&a, f), read(&b, f), "{f}: same seed, same bytes");
        assert_ne!(read(&a, f), read(&c, f), "{f}: another seed, other data");
    }
    let messages = String::from_utf8(read(&a, "messages.txt")).expect("utf-8");
    assert_eq!(messages.lines().filter(|l| !l.is_empty()).count(), 50);
    // Refuses to write into a non-empty directory.
    let status = huashu()
        .args(["gen", "--out"])
        .arg(&a)
        .arg("--phrasebook")
        .arg(repo().join("phrasebook"))
        .status()
        .expect("runs");
    assert!(!status.success());
}

#[test]
fn a_short_load_run_loses_no_push() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = huashu()
        .args([
            "bench",
            "--json",
            "--connections",
            "6",
            "--rate",
            "100",
            "--duration",
            "1.5",
            "--warmup",
            "0.5",
            "--echo-rounds",
            "200",
        ])
        .arg("--phrasebook")
        .arg(repo().join("phrasebook"))
        .arg("--index")
        .arg(tmp.path().join("index"))
        .output()
        .expect("huashu bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    println!("{report}");
    assert!(report["sent"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["closes"], 0, "{report}");
    assert_eq!(
        report["pushes_received"], report["pushes_expected"],
        "{report}"
    );
    assert!(report["e2e"]["count"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(report["echo"]["count"], 200, "{report}");
    assert_eq!(report["echo_back_to_back"]["count"], 200, "{report}");
    assert!(
        report["server"]["rss_mb"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
}

/// The echo baseline paced on ticks starts one round trip per tick: like the load's pushes,
/// each finds both ends idle. Back to back, nothing waits between round trips.
#[tokio::test]
async fn the_paced_echo_waits_a_tick_between_round_trips() {
    use std::time::{Duration, Instant};
    let rounds = 20;
    let t = Instant::now();
    let paced = huashu::bench::load::echo_baseline(64, rounds, Some(Duration::from_millis(10)))
        .await
        .expect("paced echo");
    let took = t.elapsed();
    assert_eq!(paced.count, rounds);
    // 10 warm-up rounds and 20 measured ones: 29 waits of a whole tick after the first.
    assert!(took >= Duration::from_millis(290), "{took:?}");
    let back_to_back = huashu::bench::load::echo_baseline(64, rounds, None)
        .await
        .expect("echo");
    assert_eq!(back_to_back.count, rounds);
}
