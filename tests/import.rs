//! 千牛 quick-phrase sheets: UTF-8 (BOM) and GBK imports over REST, all-or-nothing with a
//! report, and export → import round trip into another shop.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use common::*;
use huashu::curation::{Curator, export_qianniu};
use huashu::engine::{Engine, Options};
use huashu::phrasebook::qianniu;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/qianniu")
            .join(name),
    )
    .expect("fixture")
}

/// POSTs raw bytes; returns (status, JSON).
async fn post_bytes(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: &[u8],
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = within("connect", tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect");
    within("write", s.write_all(head.as_bytes()))
        .await
        .expect("write");
    within("write", s.write_all(body)).await.expect("write");
    let mut raw = Vec::new();
    within("read", s.read_to_end(&mut raw)).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .expect("status");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn utf8_and_gbk_sheets_import_and_are_suggested() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let (status, r) = post_bytes(
        srv.addr,
        "/v1/shops/demo/import",
        OWNER,
        &fixture("utf8_bom.csv"),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["applied"], true);
    assert_eq!(r["accepted"].as_array().map(Vec::len), Some(6), "{r}");
    let intents: BTreeSet<&str> = r["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["intent"].as_str())
        .collect();
    assert!(
        intents.contains("greeting")
            && intents.contains("logistics")
            && intents.contains("return_exchange")
            && intents.contains("closing"),
        "{intents:?}"
    );
    assert_eq!(
        r["new_intents"][0]["label"], "刻字服务",
        "unknown groups become intents: {r}"
    );
    let (status, r) = post_bytes(
        srv.addr,
        "/v1/shops/demo/import",
        OWNER,
        &fixture("gbk.csv"),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let ids: Vec<&str> = r["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["intent"].as_str())
        .collect();
    assert_eq!(ids, ["bargaining", "payment", "invoice"]);
    // Imported phrases are live: found by code and suggested.
    let (_, list) = http(
        srv.addr,
        "GET",
        "/v1/shops/demo/phrases?code=GB3",
        Some(AGENT),
        None,
    )
    .await;
    assert_eq!(
        list["phrases"][0]["text"], "亲,可以开电子普通发票,下单时填写抬头就好",
        "{list}"
    );
    // Importing the same sheet again adds nothing.
    let (status, r) = post_bytes(
        srv.addr,
        "/v1/shops/demo/import",
        OWNER,
        &fixture("gbk.csv"),
    )
    .await;
    assert_eq!(status, 422, "codes are taken now: {r}");
}

#[tokio::test]
async fn a_sheet_with_bad_rows_imports_nothing_and_says_why() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let before = std::fs::read_dir(dirs.phrasebook().join("demo/intents"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    let (status, r) = post_bytes(
        srv.addr,
        "/v1/shops/demo/import",
        OWNER,
        &fixture("with_rejects.csv"),
    )
    .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["applied"], false);
    let rejected = r["rejected"].as_array().expect("rejected");
    let reasons: Vec<String> = rejected
        .iter()
        .map(|x| format!("{}: {}", x["line"], x["reason"]))
        .collect();
    assert_eq!(rejected.len(), 6, "{reasons:?}");
    let find = |needle: &str| {
        rejected
            .iter()
            .find(|x| x["reason"].as_str().unwrap_or_default().contains(needle))
            .cloned()
    };
    assert!(find("off_platform").is_some(), "{reasons:?}");
    let promise = find("absolute_promise").expect("promise row");
    assert!(
        promise["rewritten"]
            .as_str()
            .is_some_and(|t| !t.contains("保证")),
        "a compliant rewrite is offered: {promise}"
    );
    assert!(
        find("快捷编码 `坏码`").is_some()
            && find("already used").is_some()
            && find("unknown variable").is_some()
            && find("empty").is_some(),
        "{reasons:?}"
    );
    assert_eq!(r["accepted"].as_array().map(Vec::len), Some(1));
    let after = std::fs::read_dir(dirs.phrasebook().join("demo/intents"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(before, after, "all or nothing");
}

#[test]
fn export_then_import_round_trips_into_another_shop() {
    let dirs = Dirs::new();
    // A second shop with the required intents and no phrases.
    let shop2 = dirs.phrasebook().join("shop2");
    std::fs::create_dir_all(shop2.join("intents")).unwrap();
    std::fs::write(
        shop2.join("shop.toml"),
        std::fs::read_to_string(dirs.phrasebook().join("demo/shop.toml")).unwrap(),
    )
    .unwrap();
    let demo = huashu::phrasebook::load_shop(
        &dirs.phrasebook().join("demo"),
        &huashu::phrasebook::default_lexicon(&dirs.phrasebook()).unwrap(),
    )
    .unwrap();
    for i in &demo.intents {
        std::fs::write(
            shop2.join(format!("intents/{}.toml", i.id)),
            format!("label = \"{}\"\nexamples = [\"x{}\"]\n", i.label, i.id),
        )
        .unwrap();
    }
    let engine =
        Arc::new(Engine::load(&Options::new(dirs.phrasebook(), dirs.index())).expect("load"));
    let curator = Curator::new(engine.clone(), dirs.phrasebook());
    let sheet = export_qianniu(&engine.shop("demo").unwrap());
    let report = curator
        .import_qianniu("shop2", &sheet, false)
        .expect("import");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.applied);
    let rows = |bytes: &[u8]| -> BTreeSet<(String, String, String)> {
        qianniu::parse(bytes)
            .unwrap()
            .into_iter()
            .map(|r| (r.group, r.code, r.text))
            .collect()
    };
    let again = export_qianniu(&engine.shop("shop2").unwrap());
    assert_eq!(rows(&sheet), rows(&again));
    assert_eq!(rows(&sheet).len(), demo.phrases().count());
}

#[test]
fn toml_bundle_round_trips_into_another_shop() {
    let dirs = Dirs::new();
    let shop2 = dirs.phrasebook().join("shop2");
    std::fs::create_dir_all(shop2.join("intents")).unwrap();
    std::fs::write(
        shop2.join("shop.toml"),
        std::fs::read_to_string(dirs.phrasebook().join("demo/shop.toml")).unwrap(),
    )
    .unwrap();
    for id in huashu::phrasebook::REQUIRED_INTENTS {
        std::fs::write(shop2.join(format!("intents/{id}.toml")), "label = \"x\"\n").unwrap();
    }
    let engine =
        Arc::new(Engine::load(&Options::new(dirs.phrasebook(), dirs.index())).expect("load"));
    let curator = Curator::new(engine.clone(), dirs.phrasebook());
    let bundle =
        huashu::curation::export_toml(&dirs.phrasebook(), &engine.shop("demo").unwrap()).unwrap();
    assert!(bundle.contains("[[intent]]") && bundle.contains("[[intent.phrase]]"));
    curator
        .import_toml("shop2", &bundle)
        .expect("import bundle");
    let again =
        huashu::curation::export_toml(&dirs.phrasebook(), &engine.shop("shop2").unwrap()).unwrap();
    let body = |b: &str| {
        b.lines()
            .skip_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&bundle), body(&again));
    // Same suggestions from both shops.
    for m in ["快递到哪了", "能便宜点吗", "收到是坏的"] {
        let ids = |s: &str| {
            engine
                .suggest(s, None, m)
                .unwrap()
                .items
                .into_iter()
                .map(|i| i.phrase_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("demo"), ids("shop2"), "{m}");
    }
    // A bundle with a bad intent changes nothing.
    let before = std::fs::read(shop2.join("intents/greeting.toml")).unwrap();
    let bad = bundle.replacen("[[intent]]\nid = \"", "[[intent]]\nid = \"../", 1);
    assert!(curator.import_toml("shop2", &bad).is_err());
    assert_eq!(
        std::fs::read(shop2.join("intents/greeting.toml")).unwrap(),
        before
    );
}
