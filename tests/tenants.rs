//! Two shops on one server with an access file: each token reaches only its own shop over
//! REST and WebSocket, and no push crosses from one shop to the other.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn shops_are_isolated() {
    let dirs = Dirs::new();
    // A second shop: a copy of the demo shop under another id.
    let (src, dst) = (
        dirs.phrasebook().join("demo"),
        dirs.phrasebook().join("shop-b"),
    );
    std::fs::create_dir_all(dst.join("intents")).unwrap();
    std::fs::copy(src.join("shop.toml"), dst.join("shop.toml")).unwrap();
    for e in std::fs::read_dir(src.join("intents")).unwrap().flatten() {
        std::fs::copy(e.path(), dst.join("intents").join(e.file_name())).unwrap();
    }
    let access = dirs.root.path().join("access.toml");
    let pb = dirs.phrasebook();
    let token = |shop: &str, role: &str| {
        huashu::server::auth::add_token(&access, &pb, shop, role).expect("token add")
    };
    let (a_agent, a_owner, b_agent, b_owner) = (
        token("demo", "agent"),
        token("demo", "owner"),
        token("shop-b", "agent"),
        token("shop-b", "owner"),
    );
    let mut cfg = config(&dirs);
    cfg.access = Some(access.clone());
    let srv = start_with(cfg).await;
    // The development tokens are off when an access file is given.
    assert!(connect(srv.addr, AGENT).await.is_err());

    // REST: every path of the other shop is 403, for agents and owners alike.
    let paths = [
        "/v1/shops/{s}/phrases",
        "/v1/shops/{s}/phrases/greeting-001",
        "/v1/shops/{s}/intents",
        "/v1/shops/{s}/policy",
        "/v1/shops/{s}/export",
    ];
    for (token, other) in [
        (&a_agent, "shop-b"),
        (&a_owner, "shop-b"),
        (&b_agent, "demo"),
        (&b_owner, "demo"),
    ] {
        for p in paths {
            let path = p.replace("{s}", other);
            assert_eq!(
                http(srv.addr, "GET", &path, Some(token), None).await.0,
                403,
                "{path}"
            );
        }
        let writes = [
            (
                "POST",
                format!("/v1/shops/{other}/phrases"),
                json!({"intent": "greeting", "text": "x"}),
            ),
            (
                "PUT",
                format!("/v1/shops/{other}/phrases/greeting-001"),
                json!({"text": "x", "base_revision": 0}),
            ),
            (
                "DELETE",
                format!("/v1/shops/{other}/phrases/greeting-001?revision=0"),
                json!({}),
            ),
            ("PUT", format!("/v1/shops/{other}/policy"), json!({"a": 1})),
            (
                "POST",
                format!("/v1/shops/{other}/messages"),
                json!({"conversation": "c", "text": "在吗"}),
            ),
            ("POST", format!("/v1/shops/{other}/import"), json!({})),
        ];
        for (method, path, body) in writes {
            assert_eq!(
                http(srv.addr, method, &path, Some(token), Some(body))
                    .await
                    .0,
                403,
                "{method} {path}"
            );
        }
    }

    // WebSocket: the same conversation id in two shops is two conversations.
    let mut wa = connect(srv.addr, &a_agent).await.expect("shop A agent");
    assert_eq!(recv(&mut wa).await["shop"], "demo");
    let mut wb = connect(srv.addr, &b_agent).await.expect("shop B agent");
    assert_eq!(recv(&mut wb).await["shop"], "shop-b");
    subscribe(&mut wa, "same-id").await;
    subscribe(&mut wb, "same-id").await;
    let (status, r) = http(
        srv.addr,
        "POST",
        "/v1/shops/demo/messages",
        Some(&a_agent),
        Some(json!({"conversation": "same-id", "text": "在吗", "message_id": "for-a"})),
    )
    .await;
    assert_eq!((status, r["delivered"].as_u64()), (200, Some(1)), "{r}");
    // An owner edit in shop B notifies shop B only.
    let (status, _) = http(
        srv.addr,
        "POST",
        "/v1/shops/shop-b/phrases",
        Some(&b_owner),
        Some(json!({"intent": "greeting", "text": "B店欢迎您~"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        recv_type(&mut wa, "suggestions").await["message_id"],
        "for-a"
    );
    assert_eq!(
        recv_type(&mut wb, "phrasebook_updated").await["shop"],
        "shop-b"
    );
    // What each side received next proves nothing crossed: A gets a pong, not B's notice;
    // B gets a pong, not A's suggestions.
    for ws in [&mut wa, &mut wb] {
        send(ws, json!({"type": "ping", "id": "end"})).await;
        let next = recv(ws).await;
        assert_eq!(next["type"], "pong", "a frame crossed shops: {next}");
    }
    // Shop B's edit is not in shop A.
    let (_, list) = http(
        srv.addr,
        "GET",
        "/v1/shops/demo/phrases?q=B店欢迎您",
        Some(&a_agent),
        None,
    )
    .await;
    assert_eq!(list["phrases"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_shop_added_at_run_time_is_served_at_once_and_isolated() {
    let dirs = Dirs::new();
    let access = dirs.root.path().join("access.toml");
    let pb = dirs.phrasebook();
    let demo_agent = huashu::server::auth::add_token(&access, &pb, "demo", "agent").unwrap();
    let mut cfg = config(&dirs);
    cfg.access = Some(access.clone());
    let srv = start_with(cfg).await;
    // Tokens issued while the server runs take effect without a restart.
    let c_owner = huashu::server::auth::add_token(&access, &pb, "shop-c", "owner").unwrap();
    let c_agent = huashu::server::auth::add_token(&access, &pb, "shop-c", "agent").unwrap();
    let (status, r) = http(
        srv.addr,
        "POST",
        "/v1/shops/shop-c",
        Some(&c_owner),
        Some(json!({"name": "C店", "from": "demo"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert!(
        dirs.phrasebook()
            .join("shop-c/intents/logistics.toml")
            .exists()
    );
    let (status, r) = http(
        srv.addr,
        "POST",
        "/v1/shops/shop-c/messages",
        Some(&c_agent),
        Some(json!({"conversation": "x", "text": "快递到哪了"})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["result"]["intents"][0]["intent"], "logistics");
    // Creating it again, copying another tenant, or creating a shop for another token: refused.
    assert_eq!(
        http(
            srv.addr,
            "POST",
            "/v1/shops/shop-c",
            Some(&c_owner),
            Some(json!({"name": "again"}))
        )
        .await
        .0,
        409
    );
    let d_owner = huashu::server::auth::add_token(&access, &pb, "shop-d", "owner").unwrap();
    let (status, r) = http(
        srv.addr,
        "POST",
        "/v1/shops/shop-d",
        Some(&d_owner),
        Some(json!({"name": "D", "from": "shop-c"})),
    )
    .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(
        http(
            srv.addr,
            "POST",
            "/v1/shops/shop-e",
            Some(&d_owner),
            Some(json!({"name": "E"}))
        )
        .await
        .0,
        403
    );
    // An empty shop has the required intents and loads.
    let (status, r) = http(
        srv.addr,
        "POST",
        "/v1/shops/shop-d",
        Some(&d_owner),
        Some(json!({"name": "D店"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let (_, intents) = http(
        srv.addr,
        "GET",
        "/v1/shops/shop-d/intents",
        Some(&d_owner),
        None,
    )
    .await;
    assert_eq!(
        intents["intents"].as_array().map(Vec::len),
        Some(5),
        "{intents}"
    );
    // The new shops are as isolated as the others.
    assert_eq!(
        http(
            srv.addr,
            "GET",
            "/v1/shops/demo/phrases",
            Some(&c_agent),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        http(
            srv.addr,
            "GET",
            "/v1/shops/shop-c/phrases",
            Some(&demo_agent),
            None
        )
        .await
        .0,
        403
    );
    // And they are loaded again after a restart.
    srv.task.abort();
    let mut cfg = config(&dirs);
    cfg.access = Some(access);
    let srv = start_with(cfg).await;
    let (_, h) = http(srv.addr, "GET", "/healthz", None, None).await;
    let ids: Vec<&str> = h["shops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["demo", "shop-c", "shop-d"]);
}
