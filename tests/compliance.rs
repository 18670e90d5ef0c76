//! Compliance end to end: draft checks over WebSocket and REST, the agent_message verdict,
//! and the push gate that never lets a blocked reply out.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn drafts_are_checked_over_websocket_and_rest() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    // (draft, blocked, category expected among the violations)
    let cases: &[(&str, bool, Option<&str>)] = &[
        ("亲,加我微 信聊吧,给你便宜", true, Some("off_platform")),
        ("我们保证明天一定发货", true, Some("absolute_promise")),
        ("这款是全网最低价哦", true, Some("superlative")),
        ("有问题打我电话138 0013 8000", true, Some("contact_info")),
        (
            "亲,正常情况下48小时内发货,最近单量大请耐心等待~",
            false,
            None,
        ),
    ];
    for (n, (draft, blocked, category)) in cases.iter().enumerate() {
        send(&mut ws, json!({"type": "check", "id": n, "text": draft})).await;
        let r = recv(&mut ws).await;
        assert_eq!(r["type"], "check_result", "{r}");
        assert_eq!(r["id"], n);
        assert_eq!(r["blocked"], *blocked, "{draft}: {r}");
        let violations = r["violations"].as_array().expect("violations");
        if let Some(cat) = category {
            let v = violations
                .iter()
                .find(|v| v["category"] == *cat)
                .unwrap_or_else(|| panic!("{draft}: no {cat} in {r}"));
            // Spans are character offsets into the draft.
            let chars: Vec<char> = draft.chars().collect();
            let (s, e) = (
                v["start"].as_u64().unwrap() as usize,
                v["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(
                chars[s..e].iter().collect::<String>(),
                v["matched"].as_str().unwrap()
            );
        } else {
            assert!(violations.is_empty(), "{draft}: {r}");
        }
        let (status, rest) = http(
            srv.addr,
            "POST",
            "/v1/check",
            Some(AGENT),
            Some(json!({"text": draft})),
        )
        .await;
        assert_eq!(status, 200, "{rest}");
        assert_eq!(rest["blocked"], r["blocked"]);
        assert_eq!(rest["violations"], r["violations"]);
        assert_eq!(rest["rewritten"], r["rewritten"]);
    }
    let (status, _) = http(
        srv.addr,
        "POST",
        "/v1/check",
        None,
        Some(json!({"text": "x"})),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn agent_messages_get_a_verdict() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    send(&mut ws, json!({"type": "agent_message", "id": "a1", "conversation": "c", "text": "这个绝对是正品,放心"})).await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], "a1");
    assert_eq!(ack["check"]["blocked"], true, "{ack}");
    assert!(
        ack["check"]["rewritten"]
            .as_str()
            .is_some_and(|t| !t.contains("绝对")),
        "{ack}"
    );
    send(&mut ws, json!({"type": "agent_message", "id": "a2", "conversation": "c", "text": "好的亲,马上为您查询"})).await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["check"]["blocked"], false, "{ack}");
}

#[tokio::test]
async fn a_variable_value_cannot_smuggle_a_violation_into_a_push() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "nick").await;
    // With an ordinary nick, the top replies to these messages address the buyer by name…
    send(
        &mut ws,
        json!({"type": "context", "id": 0, "conversation": "nick", "buyer": "小王同学"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "ack");
    let mut named = 0;
    for text in [
        "在吗",
        "你好呀亲",
        "谢谢啦",
        "我的快递到哪了",
        "收到货是坏的",
    ] {
        send(
            &mut ws,
            json!({"type": "customer_message", "conversation": "nick", "text": text}),
        )
        .await;
        let s = recv_type(&mut ws, "suggestions").await;
        named += s["suggestions"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["text"].as_str().unwrap_or_default().contains("小王同学"))
            .count();
    }
    assert!(
        named > 0,
        "no reply uses {{buyer}}: the gate below would not be exercised"
    );
    // …so a nick that is an advert would ride along in them.
    send(
        &mut ws,
        json!({"type": "context", "id": 1, "conversation": "nick", "buyer": "加薇信 abc123"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "ack");
    for (n, text) in [
        "在吗",
        "你好呀亲",
        "谢谢啦",
        "我的快递到哪了",
        "收到货是坏的",
    ]
    .iter()
    .enumerate()
    {
        send(&mut ws, json!({"type": "customer_message", "conversation": "nick", "message_id": format!("m{n}"), "text": text})).await;
        let s = recv_type(&mut ws, "suggestions").await;
        let items = s["suggestions"].as_array().expect("items");
        assert!(!items.is_empty(), "{text}: compliant replies remain: {s}");
        for item in items {
            let t = item["text"].as_str().unwrap_or_default();
            assert!(!t.contains("薇信"), "{text}: blocked reply was pushed: {t}");
        }
    }
}
