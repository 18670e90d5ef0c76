//! Curation over REST against the real server: edits are durable before the answer,
//! visible to the next suggestion, pushed to sidebars; stale and invalid edits change
//! nothing; tokens and ids cannot reach another shop or outside the phrasebook.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// Every file under `dir` with its bytes, for byte-identical comparisons.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

async fn post(srv: &huashu::server::Running, path: &str, token: &str, body: Value) -> (u16, Value) {
    http(srv.addr, "POST", path, Some(token), Some(body)).await
}

#[tokio::test]
async fn an_owner_edit_is_durable_pushed_and_suggested_next() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "c1").await;
    let phrase = json!({"intent": "shipping", "text": "冷链生鲜每天下午三点统一发出哦~", "keywords": ["冷链", "生鲜"], "priority": 9, "code": "ll1"});
    let (status, created) = post(&srv, "/v1/shops/demo/phrases", OWNER, phrase).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let version = created["version"].as_u64().expect("version");
    // Durable: on disk before the answer.
    let file = std::fs::read_to_string(dirs.phrasebook().join("demo/intents/shipping.toml"))
        .expect("file");
    assert!(
        file.contains("冷链生鲜每天下午三点统一发出哦~")
            && file.contains(&format!("id = \"{id}\""))
    );
    // Pushed to the shop's sidebars.
    let note = recv_type(&mut ws, "phrasebook_updated").await;
    assert_eq!(
        (note["shop"].as_str(), note["version"].as_u64()),
        (Some("demo"), Some(version))
    );
    // Suggested for the very next message: no restart, no sleep.
    send(
        &mut ws,
        json!({"type": "customer_message", "conversation": "c1", "text": "冷链生鲜什么时候发货"}),
    )
    .await;
    let s = recv_type(&mut ws, "suggestions").await;
    assert_eq!(s["suggestions"][0]["phrase_id"], id.as_str(), "{s}");
    // Read back over the API.
    let (status, got) = http(
        srv.addr,
        "GET",
        &format!("/v1/shops/demo/phrases/{id}"),
        Some(AGENT),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["revision"].as_u64(), Some(version));
    let (_, list) = http(
        srv.addr,
        "GET",
        "/v1/shops/demo/phrases?intent=shipping&q=冷链",
        Some(AGENT),
        None,
    )
    .await;
    assert_eq!(list["phrases"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn stale_revisions_conflict_and_deletes_need_the_current_revision() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let (_, created) = post(
        &srv,
        "/v1/shops/demo/phrases",
        OWNER,
        json!({"intent": "greeting", "id": "greeting-x", "text": "在的亲"}),
    )
    .await;
    let r1 = created["version"].as_u64().expect("version");
    let path = "/v1/shops/demo/phrases/greeting-x";
    let (status, upd) = http(
        srv.addr,
        "PUT",
        path,
        Some(OWNER),
        Some(json!({"text": "在的亲~", "base_revision": r1})),
    )
    .await;
    assert_eq!(status, 200, "{upd}");
    let r2 = upd["version"].as_u64().expect("version");
    assert!(r2 > r1);
    // Someone else's edit based on r1 must not overwrite r2.
    let before = snapshot(&dirs.phrasebook());
    let (status, conflict) = http(
        srv.addr,
        "PUT",
        path,
        Some(OWNER),
        Some(json!({"text": "覆盖", "base_revision": r1})),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["current_revision"].as_u64(), Some(r2));
    let (status, _) = http(
        srv.addr,
        "DELETE",
        &format!("{path}?revision={r1}"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        before,
        snapshot(&dirs.phrasebook()),
        "refused edits leave the disk byte-identical"
    );
    // Moving it to another intent: one change, the phrase is in exactly one file after.
    let (status, moved) = http(
        srv.addr,
        "PUT",
        path,
        Some(OWNER),
        Some(json!({"intent": "closing", "text": "在的亲~", "base_revision": r2})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let r3 = moved["version"].as_u64().expect("version");
    let (_, got) = http(srv.addr, "GET", path, Some(OWNER), None).await;
    assert_eq!(got["intent"], "closing");
    let in_file = |f: &str| {
        std::fs::read_to_string(dirs.phrasebook().join(format!("demo/intents/{f}.toml")))
            .unwrap()
            .contains("id = \"greeting-x\"")
    };
    assert!(!in_file("greeting") && in_file("closing"));
    let (status, _) = http(
        srv.addr,
        "DELETE",
        &format!("{path}?revision={r3}"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(srv.addr, "GET", path, Some(OWNER), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn invalid_edits_name_the_field_and_change_nothing() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let before = snapshot(&dirs.phrasebook());
    let cases: &[(Value, &str)] = &[
        (
            json!({"intent": "greeting", "text": "您好{nick}"}),
            "unknown variable `{nick}`",
        ),
        (
            json!({"intent": "greeting", "text": "加我微信聊"}),
            "off_platform",
        ),
        (
            json!({"intent": "greeting", "text": "我们保证明天到"}),
            "absolute_promise",
        ),
        (
            json!({"intent": "greeting", "id": "greeting-001", "text": "重复"}),
            "already exists",
        ),
        (
            json!({"intent": "greeting", "text": "x", "code": "hy1"}),
            "already used",
        ),
        (
            json!({"intent": "greeting", "text": "x", "priority": 0}),
            "priority 0",
        ),
        (
            json!({"intent": "greeting", "text": "x", "order_state": ["lost"]}),
            "order_state `lost`",
        ),
        (json!({"intent": "nope", "text": "x"}), "no intent `nope`"),
        (
            json!({"intent": "greeting", "text": "x", "valid_from": "next week"}),
            "valid_from `next week`",
        ),
        (
            json!({"intent": "greeting", "text": "x", "valid_from": "2026-12-12", "valid_until": "2026-12-01"}),
            "not after valid_from",
        ),
        (json!({"intent": "greeting", "text": "  "}), "text is empty"),
        (
            json!({"intent": "greeting", "text": "x", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, want) in cases {
        // A dry run (the admin page's check while the owner types) refuses exactly what
        // the write refuses, with the same answer.
        let (status, reply) = post(&srv, "/v1/shops/demo/phrases", OWNER, body.clone()).await;
        let dry = post(
            &srv,
            "/v1/shops/demo/phrases?dry_run=true",
            OWNER,
            body.clone(),
        )
        .await;
        assert!(matches!(status, 404 | 422), "{body} → {status} {reply}");
        let text = reply["error"].to_string();
        assert!(text.contains(want), "{body} → {text}");
        assert_eq!(dry, (status, reply), "dry run of {body}");
    }
    // A valid dry run answers `valid` with the current version and writes nothing.
    let version = |v: &Value| v["version"].as_u64();
    let (_, listed) = http(srv.addr, "GET", "/v1/shops/demo/phrases", Some(OWNER), None).await;
    let ok = json!({"intent": "greeting", "text": "您好,欢迎光临小店~"});
    let (status, reply) = post(
        &srv,
        "/v1/shops/demo/phrases?dry_run=true",
        OWNER,
        ok.clone(),
    )
    .await;
    assert_eq!((status, &reply["valid"]), (200, &json!(true)), "{reply}");
    assert_eq!(version(&reply), version(&listed));
    let edit = json!({"text": "您好,在的~", "base_revision": 999});
    let (status, reply) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/phrases/greeting-001?dry_run=true",
        Some(OWNER),
        Some(edit),
    )
    .await;
    assert_eq!(
        status, 409,
        "a stale dry run conflicts like the write: {reply}"
    );
    let (status, reply) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/intents/greeting?dry_run=true",
        Some(OWNER),
        Some(json!({"examples": ["在吗", ""]})),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(
        before,
        snapshot(&dirs.phrasebook()),
        "refused edits and dry runs leave the disk byte-identical"
    );
}

#[tokio::test]
async fn roles_shops_and_ids_are_enforced_before_the_disk() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let before = snapshot(dirs.root.path());
    let body = json!({"intent": "greeting", "text": "您好"});
    // An agent reads but does not edit.
    assert_eq!(
        post(&srv, "/v1/shops/demo/phrases", AGENT, body.clone())
            .await
            .0,
        403
    );
    assert_eq!(
        http(srv.addr, "GET", "/v1/shops/demo/phrases", Some(AGENT), None)
            .await
            .0,
        200
    );
    // Paths that try to leave the shop or the phrasebook.
    let cases: &[(&str, &str, u16)] = &[
        ("GET", "/v1/shops/other/phrases", 403),
        ("GET", "/v1/shops/..%2F..%2Fetc/phrases", 403),
        ("GET", "/v1/shops/%2e%2e/phrases", 403),
        ("GET", "/v1/shops/demo/phrases/..%2F..%2Fshop", 404),
        ("GET", "/v1/shops/demo/phrases/%2Fetc%2Fpasswd", 404),
        ("GET", "/v1/shops/demo/phrases/a%00b", 404),
        ("PUT", "/v1/shops/demo/intents/..%2F..%2Fevil", 422),
        ("PUT", "/v1/shops/demo/intents/%2Ftmp%2Fevil", 422),
        ("PUT", "/v1/shops/demo/intents/Evil", 422),
        ("PUT", "/v1/shops/demo/phrases/..%2Fx", 422),
        (
            "DELETE",
            "/v1/shops/demo/phrases/..%2F..%2Fshop?revision=0",
            404,
        ),
    ];
    for (method, path, want) in cases {
        let b = (*method != "GET" && *method != "DELETE")
            .then(|| json!({"label": "x", "text": "x", "base_revision": 0}));
        let (status, reply) = http(srv.addr, method, path, Some(OWNER), b).await;
        assert_eq!(status, *want, "{method} {path} → {reply}");
    }
    assert_eq!(
        before,
        snapshot(dirs.root.path()),
        "nothing written anywhere"
    );
}

#[tokio::test]
async fn a_retried_write_with_the_same_idempotency_key_applies_once() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let body = json!({"intent": "closing", "text": "感谢惠顾,期待再次为您服务~"}).to_string();
    let mut answers = Vec::new();
    for _ in 0..2 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "POST /v1/shops/demo/phrases HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {OWNER}\r\nIdempotency-Key: k-123\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut s = within("connect", tokio::net::TcpStream::connect(srv.addr))
            .await
            .expect("connect");
        within("write", s.write_all(req.as_bytes()))
            .await
            .expect("write");
        let mut raw = String::new();
        within("read", s.read_to_string(&mut raw))
            .await
            .expect("read");
        answers.push(
            raw.split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default(),
        );
    }
    assert_eq!(answers[0], answers[1]);
    let (_, list) = http(
        srv.addr,
        "GET",
        "/v1/shops/demo/phrases?q=期待再次为您服务",
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(list["phrases"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn intents_examples_and_policy_are_curated_live() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    // A new intent with its own examples is recognised right away.
    let (status, r) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/intents/engraving",
        Some(OWNER),
        Some(json!({"label": "刻字服务", "stages": ["售前"], "examples": ["能刻字吗", "可以免费刻字吗", "刻字要加钱吗", "刻名字可以吗", "能不能帮我刻个字", "刻字多久能好", "刻字服务有吗", "想刻个英文名"]})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = post(&srv, "/v1/shops/demo/phrases", OWNER, json!({"intent": "engraving", "text": "可以免费刻字哦,下单时备注要刻的内容就好~", "keywords": ["刻字"]})).await;
    assert_eq!(status, 201, "{r}");
    let (_, s) = post(
        &srv,
        "/v1/shops/demo/messages",
        AGENT,
        json!({"conversation": "e", "text": "杯子上能刻字不"}),
    )
    .await;
    assert_eq!(s["result"]["intents"][0]["intent"], "engraving", "{s}");
    // Policy values change what templates render.
    let (status, r) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/policy",
        Some(OWNER),
        Some(json!({"free_shipping_threshold": 59})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (_, p) = http(srv.addr, "GET", "/v1/shops/demo/policy", Some(AGENT), None).await;
    assert_eq!(p["policy"]["free_shipping_threshold"], "59");
    let (status, r) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/policy",
        Some(OWNER),
        Some(json!({"service_hours": "加微信咨询"})),
    )
    .await;
    assert_eq!(status, 422, "a policy value is checked like a phrase: {r}");
}

#[tokio::test]
async fn an_edit_after_the_lexicon_changed_checks_every_reply_again() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    // An edit re-checks only the texts it changes while the lexicon is the one the served
    // shop passed; a new rule in the shop's override makes it check them all.
    let (status, r) = post(
        &srv,
        "/v1/shops/demo/phrases",
        OWNER,
        json!({"intent": "closing", "text": "好的亲,祝您购物愉快,期待再次光临~"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    std::fs::write(
        dirs.phrasebook().join("demo/compliance.toml"),
        "[[rule]]\nid = \"shop-no-pleasant\"\ncategory = \"superlative\"\nseverity = \"block\"\npatterns = [\"购物愉快\"]\nmessage = \"本店不用这句\"\n",
    )
    .expect("override written");
    let (status, r) = post(
        &srv,
        "/v1/shops/demo/phrases",
        OWNER,
        json!({"intent": "closing", "text": "感谢光临,有问题随时联系~"}),
    )
    .await;
    assert_eq!(
        status, 422,
        "a served reply the new rule blocks stops the edit: {r}"
    );
    assert!(r.to_string().contains("shop-no-pleasant"), "{r}");
}

#[tokio::test]
async fn a_policy_value_that_completes_a_blocked_reply_keeps_it_from_being_suggested() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let put_tail = |tail: &'static str| {
        http(
            srv.addr,
            "PUT",
            "/v1/shops/demo/policy",
            Some(OWNER),
            Some(json!({ "tail": tail })),
        )
    };
    let (status, r) = put_tail("急").await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = post(&srv, "/v1/shops/demo/phrases", OWNER, json!({"intent": "shipping", "id": "shipping-tail", "text": "亲,刻字款做好后加{tail}信通知您,{ship_within_hours}小时内发出~", "keywords": ["刻字款"]})).await;
    assert_eq!(status, 201, "{r}");
    let ask = |n: u32| json!({"conversation": format!("tail-{n}"), "text": "刻字款什么时候发货"});
    let (_, s) = post(&srv, "/v1/shops/demo/messages", AGENT, ask(1)).await;
    let suggested = |s: &Value| {
        s["result"]["suggestions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["phrase_id"] == "shipping-tail"))
    };
    assert!(suggested(&s), "{s}");
    // 微 is fine alone as a value, but the reply it completes says 加微信: the policy edit
    // must check the rendered reply again, not keep the verdict from before it.
    let (status, r) = put_tail("微").await;
    assert_eq!(status, 200, "{r}");
    let (_, s) = post(&srv, "/v1/shops/demo/messages", AGENT, ask(2)).await;
    assert!(
        !suggested(&s),
        "a reply that renders to 加微信 is never pushed: {s}"
    );
}

#[tokio::test]
async fn history_lists_writes_and_revert_restores_an_earlier_version() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let file = dirs.phrasebook().join("demo/intents/closing.toml");
    let original = std::fs::read(&file).unwrap();
    let (_, a) = post(
        &srv,
        "/v1/shops/demo/phrases",
        OWNER,
        json!({"intent": "closing", "id": "closing-h1", "text": "感谢光临~"}),
    )
    .await;
    let v1 = a["version"].as_u64().unwrap();
    let (_, b) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/phrases/closing-h1",
        Some(OWNER),
        Some(json!({"text": "感谢光临,欢迎再来~", "base_revision": v1})),
    )
    .await;
    let v2 = b["version"].as_u64().unwrap();
    let (_, i) = http(
        srv.addr,
        "PUT",
        "/v1/shops/demo/intents/gift_wrap",
        Some(OWNER),
        Some(json!({"label": "礼品包装", "examples": ["能包装成礼物吗"]})),
    )
    .await;
    let v3 = i["version"].as_u64().unwrap();
    let (status, h) = http(srv.addr, "GET", "/v1/shops/demo/history", Some(AGENT), None).await;
    assert_eq!(status, 200);
    let versions: Vec<u64> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["version"].as_u64())
        .collect();
    assert_eq!(versions, [v3, v2, v1], "{h}");
    // Back to right after the first write: the edit is undone, the new intent is gone.
    let (status, r) = post(&srv, "/v1/shops/demo/revert", OWNER, json!({"version": v1})).await;
    assert_eq!(status, 200, "{r}");
    let v4 = r["version"].as_u64().unwrap();
    assert!(v4 > v3, "the version never goes back");
    let (_, p) = http(
        srv.addr,
        "GET",
        "/v1/shops/demo/phrases/closing-h1",
        Some(AGENT),
        None,
    )
    .await;
    assert_eq!(p["text"], "感谢光临~");
    assert!(
        !dirs
            .phrasebook()
            .join("demo/intents/gift_wrap.toml")
            .exists()
    );
    // Reverting to before the first write restores the file byte for byte.
    let (status, _) = post(
        &srv,
        "/v1/shops/demo/revert",
        OWNER,
        json!({"version": v1 - 1}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&file).unwrap(), original);
    // A revert is a write like any other: agents cannot, and it can be reverted.
    assert_eq!(
        post(&srv, "/v1/shops/demo/revert", AGENT, json!({"version": v1}))
            .await
            .0,
        403
    );
    let (status, r) = post(&srv, "/v1/shops/demo/revert", OWNER, json!({"version": v4})).await;
    assert_eq!(status, 200, "{r}");
    let (_, p) = http(
        srv.addr,
        "GET",
        "/v1/shops/demo/phrases/closing-h1",
        Some(AGENT),
        None,
    )
    .await;
    assert_eq!(p["text"], "感谢光临~");
    // Survives a restart: the version is derived from the files and the history.
    let latest = r["version"].as_u64().unwrap();
    srv.task.abort();
    let srv = start(&dirs).await;
    let (_, list) = http(srv.addr, "GET", "/v1/shops/demo/phrases", Some(AGENT), None).await;
    assert_eq!(list["version"].as_u64(), Some(latest));
}
