//! The service end to end: real server, real WebSocket clients, real index on disk.

mod common;

use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite;

#[tokio::test]
async fn two_agents_on_one_conversation_both_receive_suggestions() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut a = agent(srv.addr).await;
    let mut b = agent(srv.addr).await;
    subscribe(&mut a, "buyer-42").await;
    subscribe(&mut b, "buyer-42").await;
    send(&mut a, json!({"type": "customer_message", "conversation": "buyer-42", "message_id": "m1", "text": "亲,我买的东西快递到哪了呀"})).await;
    for ws in [&mut a, &mut b] {
        let s = recv_type(ws, "suggestions").await;
        assert_eq!(s["conversation"], "buyer-42");
        assert_eq!(s["message_id"], "m1");
        assert_eq!(primary(&s), "logistics", "{s}");
        let items = s["suggestions"].as_array().expect("suggestions array");
        assert!(!items.is_empty() && items.len() <= 3, "{s}");
        for item in items {
            assert!(
                item["phrase_id"].is_string()
                    && item["text"].as_str().is_some_and(|t| !t.is_empty())
            );
            assert!(item["missing"].is_array());
        }
        assert!(s["server_time_us"].as_u64().is_some_and(|t| t > 0));
    }
}

#[tokio::test]
async fn five_named_intents_on_realistic_messages() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "c").await;
    // Written by the team for this test; none of these is a training example.
    let cases: &[(&str, &str)] = &[
        ("hello 亲 有人在没", "greeting"),
        ("客服在不在呀", "greeting"),
        ("我刚拍了两件,运费帮我改成0吧", "price_change"),
        ("下单了还没付 麻烦把价格改一下", "price_change"),
        ("包裹三天了一点动静都没有", "logistics"),
        ("帮我查查快递走到哪儿了", "logistics"),
        ("衣服收到有个大洞,质量也太差了吧", "complaint"),
        ("杯子寄过来是碎的,你们怎么包装的", "complaint"),
        ("好滴 谢谢你啦", "closing"),
        ("ok没别的问题了,拜拜", "closing"),
    ];
    for (n, (text, want)) in cases.iter().enumerate() {
        send(&mut ws, json!({"type": "customer_message", "conversation": "c", "message_id": format!("m{n}"), "text": text})).await;
        let s = recv_type(&mut ws, "suggestions").await;
        assert_eq!(primary(&s), *want, "{text}: {}", s["intents"]);
        assert!(
            s["suggestions"].as_array().is_some_and(|a| !a.is_empty()),
            "{text}: no suggestions"
        );
    }
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays_usable() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    let cases: &[(&str, &str, serde_json::Value)] = &[
        ("this is not json", "bad_json", serde_json::Value::Null),
        (
            r#"{"type":"launch_rockets","id":5}"#,
            "unknown_type",
            json!(5),
        ),
        (
            r#"{"type":"subscribe","id":"s1"}"#,
            "missing_field",
            json!("s1"),
        ),
        (
            r#"{"type":"customer_message","id":"x","conversation":"c"}"#,
            "missing_field",
            json!("x"),
        ),
        (
            r#"{"type":"context","id":9,"conversation":"c","order_state":"lost"}"#,
            "invalid",
            json!(9),
        ),
        (
            r#"{"type":"subscribe","id":10,"conversation":""}"#,
            "invalid",
            json!(10),
        ),
        // A phone number is never kept for a reply to echo.
        (
            r#"{"type":"context","id":11,"conversation":"c","buyer":"138 0013 8000"}"#,
            "invalid",
            json!(11),
        ),
    ];
    for (frame, code, id) in cases {
        send_raw(&mut ws, frame).await;
        let e = recv(&mut ws).await;
        assert_eq!(e["type"], "error", "{frame} → {e}");
        assert_eq!(e["code"], *code, "{frame} → {e}");
        assert_eq!(e["id"], *id, "{frame} → {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    within(
        "binary frame",
        futures_util::SinkExt::send(&mut ws, tungstenite::Message::binary(vec![1, 2, 3])),
    )
    .await
    .expect("send binary");
    assert_eq!(recv(&mut ws).await["code"], "invalid");
    send(&mut ws, json!({"type": "ping", "id": "p"})).await;
    let pong = recv(&mut ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("p"))
    );
    send(
        &mut ws,
        json!({"type": "customer_message", "conversation": "c", "text": "在吗"}),
    )
    .await;
    assert_eq!(
        primary(&recv_type(&mut ws, "suggestions").await),
        "greeting"
    );
}

#[tokio::test]
async fn wrong_or_missing_token_is_refused_before_the_upgrade() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    for token in ["wrong-token", ""] {
        match connect(srv.addr, token).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
            Err(e) => panic!("expected an HTTP 401, got {e}"),
            Ok(_) => panic!("token {token:?} was accepted"),
        }
    }
    // The query-string form works for browser clients that cannot set headers.
    let url = format!("ws://{}/v1/ws?token={AGENT}", srv.addr);
    let (mut ws, _) = within("query token", tokio_tungstenite::connect_async(url))
        .await
        .expect("query token accepted");
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    // Pages ask who a token is without a WebSocket.
    let cases = [
        (Some(AGENT), 200, Some("agent")),
        (Some(OWNER), 200, Some("owner")),
        (Some("wrong-token"), 401, None),
        (None, 401, None),
    ];
    for (token, status, role) in cases {
        let (got, body) = http(srv.addr, "GET", "/v1/whoami", token, None).await;
        assert_eq!(got, status, "{token:?}: {body}");
        if let Some(role) = role {
            assert_eq!(
                (body["shop"].as_str(), body["role"].as_str()),
                (Some("demo"), Some(role))
            );
        }
    }
}

#[tokio::test]
async fn messages_to_unsubscribed_conversations_are_fine() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let (status, body) = http(
        srv.addr,
        "POST",
        "/v1/shops/demo/messages",
        Some(AGENT),
        Some(json!({"conversation": "nobody-listens", "text": "什么时候发货啊"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], 0);
    assert_eq!(body["result"]["intents"][0]["intent"], "shipping", "{body}");
    // Over WebSocket, a sender that is not subscribed gets the suggestions as the answer.
    let mut ws = agent(srv.addr).await;
    send(
        &mut ws,
        json!({"type": "customer_message", "conversation": "elsewhere", "text": "能开发票吗"}),
    )
    .await;
    let s = recv_type(&mut ws, "suggestions").await;
    assert_eq!(s["conversation"], "elsewhere");
}

#[tokio::test]
async fn rest_bridge_pushes_to_subscribers_and_checks_tokens() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "bridge-1").await;
    let (status, body) = http(
        srv.addr,
        "POST",
        "/v1/shops/demo/messages",
        Some(OWNER),
        Some(json!({"conversation": "bridge-1", "text": "收到的杯子是裂的", "message_id": "b1", "buyer": "小王"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], 1);
    let s = recv_type(&mut ws, "suggestions").await;
    assert_eq!(s["message_id"], "b1");
    assert_eq!(s["buyer"], "小王", "the nick travels with the push");
    let cases: &[(&str, Option<&str>, serde_json::Value, u16)] = &[
        (
            "/v1/shops/demo/messages",
            None,
            json!({"conversation": "c", "text": "x"}),
            401,
        ),
        (
            "/v1/shops/demo/messages",
            Some("nope"),
            json!({"conversation": "c", "text": "x"}),
            401,
        ),
        (
            "/v1/shops/other/messages",
            Some(AGENT),
            json!({"conversation": "c", "text": "x"}),
            403,
        ),
        (
            "/v1/shops/demo/messages",
            Some(AGENT),
            json!({"text": "x"}),
            422,
        ),
        (
            "/v1/shops/demo/messages",
            Some(AGENT),
            json!({"conversation": "", "text": "x"}),
            422,
        ),
    ];
    for (path, token, body, want) in cases {
        let (status, reply) = http(srv.addr, "POST", path, *token, Some(body.clone())).await;
        assert_eq!(status, *want, "{path} {token:?} {body} → {reply}");
        assert!(reply["error"]["message"].is_string(), "{reply}");
    }
}

#[tokio::test]
async fn context_fills_variables_and_sent_phrases_are_demoted() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "v").await;
    send(&mut ws, json!({"type": "context", "id": 1, "conversation": "v", "buyer": "小王", "carrier": "顺丰", "tracking_no": "SF1234567890123", "order_state": "shipped"})).await;
    assert_eq!(recv(&mut ws).await["type"], "ack");
    send(
        &mut ws,
        json!({"type": "customer_message", "conversation": "v", "text": "我的快递到哪里了"}),
    )
    .await;
    let first = recv_type(&mut ws, "suggestions").await;
    let items = first["suggestions"].as_array().expect("items").clone();
    for item in &items {
        let text = item["text"].as_str().unwrap_or_default();
        assert!(
            !text.contains("{carrier}")
                && !text.contains("{tracking_no}")
                && !text.contains("{buyer"),
            "{text}"
        );
    }
    let top = items[0].clone();
    send(
        &mut ws,
        json!({"type": "agent_message", "id": 2, "conversation": "v", "text": top["text"]}),
    )
    .await;
    let ack = recv(&mut ws).await;
    assert_eq!(
        (ack["type"].as_str(), ack["phrase_id"].as_str()),
        (Some("ack"), top["phrase_id"].as_str()),
        "{ack}"
    );
    send(
        &mut ws,
        json!({"type": "customer_message", "conversation": "v", "text": "我的快递到哪里了"}),
    )
    .await;
    let second = recv_type(&mut ws, "suggestions").await;
    assert_ne!(
        second["suggestions"][0]["phrase_id"], top["phrase_id"],
        "a sent phrase is demoted"
    );
}

#[tokio::test]
async fn restart_reuses_the_index_and_a_deleted_index_is_rebuilt() {
    let dirs = Dirs::new();
    let health = |addr| async move { http(addr, "GET", "/healthz", None, None).await };
    let srv = start(&dirs).await;
    let (status, h) = health(srv.addr).await;
    assert_eq!(status, 200);
    assert_eq!(h["shops"][0]["index"], "built", "{h}");
    srv.task.abort();
    let srv = start(&dirs).await;
    assert_eq!(health(srv.addr).await.1["shops"][0]["index"], "reused");
    srv.task.abort();
    std::fs::remove_dir_all(dirs.index()).expect("delete index");
    let srv = start(&dirs).await;
    assert_eq!(health(srv.addr).await.1["shops"][0]["index"], "built");
    srv.task.abort();
    // meta.json deleted: the index counts as missing and is built again.
    std::fs::remove_file(dirs.index().join("demo/meta.json")).expect("delete meta.json");
    let srv = start(&dirs).await;
    assert_eq!(health(srv.addr).await.1["shops"][0]["index"], "built");
    srv.task.abort();
    // A damaged index is moved aside and rebuilt, not a crash loop.
    std::fs::write(dirs.index().join("demo/meta.json"), b"{ truncated").expect("damage");
    let srv = start(&dirs).await;
    assert_eq!(
        health(srv.addr).await.1["shops"][0]["index"],
        "rebuilt_damaged"
    );
    let aside = std::fs::read_dir(dirs.index())
        .expect("index dir")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("demo.damaged-"));
    assert!(aside, "damaged index kept for inspection");
    // And an edited phrasebook makes the index stale.
    let f = dirs.phrasebook().join("demo/shop.toml");
    let src = std::fs::read_to_string(&f).expect("shop.toml");
    std::fs::write(&f, src.replace("name = \"", "name = \"新")).expect("edit");
    srv.task.abort();
    let srv = start(&dirs).await;
    assert_eq!(
        health(srv.addr).await.1["shops"][0]["index"],
        "rebuilt_stale"
    );
}

#[tokio::test]
async fn a_slow_subscriber_is_dropped_and_never_delays_the_others() {
    let dirs = Dirs::new();
    let mut cfg = config(&dirs);
    cfg.push_queue = 4;
    let srv = start_with(cfg).await;
    let mut fast = agent(srv.addr).await;
    subscribe(&mut fast, "busy").await;

    // The slow agent: a tiny receive buffer, and it stops reading after subscribing.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("rcvbuf");
    let stream = within("connect", socket.connect(srv.addr))
        .await
        .expect("connect");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/ws", srv.addr),
    )
    .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("huashu.v1, bearer.{AGENT}")
            .parse()
            .expect("header"),
    );
    let (mut slow, _) = within(
        "slow handshake",
        tokio_tungstenite::client_async(req, stream),
    )
    .await
    .expect("handshake");
    assert_eq!(recv(&mut slow).await["type"], "welcome");
    subscribe(&mut slow, "busy").await;

    let mut dropped_at = None;
    for i in 0..3000 {
        let (status, body) = http(
            srv.addr,
            "POST",
            "/v1/shops/demo/messages",
            Some(AGENT),
            Some(json!({"conversation": "busy", "message_id": format!("n{i}"), "text": format!("第{i}次问了,快递到底到哪了")})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // The fast agent gets every push, in order, while the slow one backs up.
        let s = recv_type(&mut fast, "suggestions").await;
        assert_eq!(s["message_id"], format!("n{i}"));
        if body["delivered"] == 1 {
            dropped_at = Some(i);
            break;
        }
        assert_eq!(body["delivered"], 2);
    }
    let dropped_at = dropped_at.expect("the slow subscriber was never dropped");
    assert!(
        dropped_at >= 4,
        "dropped before its queue could fill: {dropped_at}"
    );
    // The others go on as before.
    let (_, body) = http(
        srv.addr,
        "POST",
        "/v1/shops/demo/messages",
        Some(AGENT),
        Some(json!({"conversation": "busy", "message_id": "after", "text": "在吗"})),
    )
    .await;
    assert_eq!(body["delivered"], 1);
    assert_eq!(
        recv_type(&mut fast, "suggestions").await["message_id"],
        "after"
    );
    drop(slow);
}

#[tokio::test]
async fn numbers_the_buyer_writes_fill_the_reply_but_phone_numbers_never_do() {
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "t").await;
    send(&mut ws, json!({"type": "customer_message", "conversation": "t", "text": "我的顺丰单号是SF1234567890123,物流到哪了"})).await;
    let s = recv_type(&mut ws, "suggestions").await;
    let texts: Vec<String> = s["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("SF1234567890123") && t.contains("顺丰")),
        "{texts:?}"
    );
    // Remembered for the rest of the conversation.
    send(
        &mut ws,
        json!({"type": "customer_message", "conversation": "t", "text": "单号多少来着"}),
    )
    .await;
    let s = recv_type(&mut ws, "suggestions").await;
    assert!(
        s["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["text"]
                .as_str()
                .unwrap_or_default()
                .contains("SF1234567890123")),
        "{s}"
    );
    // A buyer nick that is a phone number: the message is still answered, the nick is kept
    // out of the replies.
    send(&mut ws, json!({"type": "customer_message", "conversation": "t", "buyer": "13800138000", "text": "你好 在吗"})).await;
    let s = recv_type(&mut ws, "suggestions").await;
    let items = s["suggestions"].as_array().expect("suggestions");
    assert!(!items.is_empty(), "{s}");
    for item in items {
        let text = item["text"].as_str().unwrap_or_default();
        assert!(!text.contains("13800138000"), "{item}");
    }
    // A phone number is not a tracking number and is never echoed.
    send(&mut ws, json!({"type": "customer_message", "conversation": "p", "text": "快递单号13800138000到哪了"})).await;
    let s = recv_type(&mut ws, "suggestions").await;
    assert!(!s.to_string().contains("13800138000\","), "{s}");
    for item in s["suggestions"].as_array().unwrap() {
        assert!(
            !item["text"]
                .as_str()
                .unwrap_or_default()
                .contains("13800138000"),
            "{item}"
        );
    }
}

#[tokio::test]
async fn pages_come_from_the_web_directory_and_nothing_else_does() {
    let dirs = Dirs::new();
    let web = dirs.phrasebook().with_file_name("web");
    std::fs::create_dir_all(web.join("img")).expect("web dir");
    std::fs::write(web.join("sidebar.html"), "<p>侧边栏</p>").expect("page");
    std::fs::write(web.join("admin.html"), "<p>管理</p>").expect("page");
    std::fs::write(web.join("img/a.svg"), "<svg/>").expect("asset");
    std::fs::write(web.join("secret.toml"), "x = 1").expect("other");
    let mut config = config(&dirs);
    config.web = web;
    let srv = start_with(config).await;
    let cases = [
        ("/", 200, Some("<p>侧边栏</p>")),
        ("/admin", 200, Some("<p>管理</p>")),
        ("/web/img/a.svg", 200, Some("<svg/>")),
        ("/demo/chat", 404, None),
        ("/web/secret.toml", 404, None),
        ("/web/../Cargo.toml", 404, None),
        ("/web/%2e%2e/Cargo.toml", 404, None),
        ("/web/img/..%2F..%2Fsidebar.html", 404, None),
        ("/web/.hidden.js", 404, None),
    ];
    for (path, want, body) in cases {
        let (status, reply) = http(srv.addr, "GET", path, None, None).await;
        assert_eq!(status, want, "{path}: {reply}");
        if let Some(b) = body {
            assert_eq!(reply.as_str(), Some(b), "{path}");
        }
    }
}

#[tokio::test]
async fn long_messages_are_answered_like_short_ones() {
    // Inputs up to 200 characters run the engine on the connection's worker, longer ones on
    // the blocking pool: both paths answer, on one connection, in order.
    let dirs = Dirs::new();
    let srv = start(&dirs).await;
    let mut ws = agent(srv.addr).await;
    subscribe(&mut ws, "long-1").await;
    let long = format!(
        "亲,我的快递到哪了呀?{}",
        "我已经等了好多天了,物流信息一直没有更新,".repeat(12)
    );
    assert!(long.chars().count() > 200);
    for (n, text) in ["我的快递到哪了呀", long.as_str()].iter().enumerate() {
        let id = format!("m{n}");
        send(&mut ws, json!({"type": "customer_message", "conversation": "long-1", "message_id": id, "text": text})).await;
        let s = recv_type(&mut ws, "suggestions").await;
        assert_eq!(s["message_id"], id.as_str(), "{s}");
        assert_eq!(primary(&s), "logistics", "{s}");
    }
    let draft = format!("亲,{}", "已经为您催促快递了,请耐心等待哦~".repeat(15));
    assert!(draft.chars().count() > 200);
    send(&mut ws, json!({"type": "check", "id": 7, "text": draft})).await;
    let r = recv_type(&mut ws, "check_result").await;
    assert_eq!(r["id"], 7, "{r}");
}
