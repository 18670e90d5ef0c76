//! The engine with conversation memory, on the shipped demo shop: order-state gating,
//! campaign windows, rapid-fire fragments, answers to the agent's question, and context.
//! Time is passed in (`Engine::suggest_at`), so windows are tested without waiting.

use std::path::Path;
use std::time::{Duration, Instant};

use huashu::conversation::ContextUpdate;
use huashu::engine::{At, Engine, Options, Reading, Suggestions};
use huashu::phrasebook::OrderState;

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
    let engine = Engine::load(&Options::new(root, dir.path().join("index"))).expect("demo loads");
    (dir, engine)
}

fn ids(s: &Suggestions) -> Vec<&str> {
    s.items.iter().map(|i| i.phrase_id.as_str()).collect()
}

fn primary(s: &Suggestions) -> &str {
    s.intents.first().map_or("", |i| i.intent.as_str())
}

/// Unix seconds of a date-time in Asia/Shanghai (UTC+8, no daylight saving).
fn cn(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m as i32 + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = i64::from(era) * 146_097 + i64::from(doe) - 719_468;
    days * 86_400 + i64::from(h) * 3600 + i64::from(min) * 60 - 8 * 3600
}

#[test]
fn a_phrase_never_appears_in_an_order_state_it_contradicts() {
    let (_d, engine) = engine();
    let shop = engine.shop("demo").expect("demo");
    let messages = [
        "我的快递到哪了",
        "发货了吗",
        "能改个价吗",
        "我要退款",
        "帮我改下地址",
        "收到了,质量很好",
        "东西坏了怎么办",
        "怎么付款",
    ];
    let mut checked = 0;
    for state in OrderState::ALL {
        for (n, m) in messages.iter().enumerate() {
            let conv = format!("{}-{n}", state.as_str());
            let update = ContextUpdate::of_order_state(state);
            engine.context("demo", &conv, update).expect("context");
            let s = engine.suggest("demo", Some(&conv), m).expect("suggest");
            for item in &s.items {
                let p = shop
                    .phrases()
                    .find(|p| p.id == item.phrase_id)
                    .expect("phrase");
                // Read from the phrase's declared states, not through `allowed_in` (the
                // engine's own gate is built from it, so it could not catch it being wrong).
                assert!(
                    p.order_states.is_empty() || p.order_states.contains(&state),
                    "{m} in state {}: {} is only for {:?}",
                    state.as_str(),
                    p.id,
                    p.order_states
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "the table exercised {checked} suggestions");
    // And gating is not vacuous: a shipped order gets the shipped-only replies.
    let update = ContextUpdate::of_order_state(OrderState::Shipped);
    engine.context("demo", "shipped", update).expect("context");
    let s = engine
        .suggest("demo", Some("shipped"), "我的快递到哪了")
        .expect("suggest");
    let shipped_only = s.items.iter().any(|i| {
        shop.phrases()
            .find(|p| p.id == i.phrase_id)
            .is_some_and(|p| p.order_states == [OrderState::Shipped])
    });
    assert!(shipped_only, "{:?}", ids(&s));
}

/// Gating must not starve a question: in each state where the question makes sense, and
/// with no order known (`none`, what a front end that sends no state gets), the demo shop
/// fills all three slots with replies to it rather than with other topics.
#[test]
fn an_order_question_gets_three_replies_of_its_own_in_every_state_it_can_arise() {
    use OrderState::*;
    let (_d, engine) = engine();
    let table: [(&str, &str, &[OrderState]); 8] = [
        (
            "帮我取消订单",
            "order_change",
            &[None, Unpaid, Paid, Shipped],
        ),
        (
            "收货地址写错了",
            "order_change",
            &[None, Unpaid, Paid, Shipped],
        ),
        ("我的快递到哪了", "logistics", &[None, Shipped]),
        ("拍下了帮我改下价", "price_change", &[None, Unpaid]),
        ("退款什么时候到账", "return_exchange", &[None, Refunding]),
        ("退货怎么退", "return_exchange", &[None, Delivered]),
        ("付款失败了", "payment", &[None, Unpaid]),
        ("刚付完款", "payment", &[None, Paid]),
    ];
    for (message, intent, states) in table {
        for &state in states {
            let conv = format!("{message}-{}", state.as_str());
            let update = ContextUpdate::of_order_state(state);
            engine.context("demo", &conv, update).expect("context");
            let s = engine
                .suggest("demo", Some(&conv), message)
                .expect("suggest");
            let intents: Vec<&str> = s.items.iter().map(|i| i.intent.as_str()).collect();
            assert_eq!(
                intents,
                [intent; 3],
                "{message} in state {}: {:?}",
                state.as_str(),
                ids(&s)
            );
        }
    }
}
#[test]
fn campaign_replies_appear_only_inside_their_window_in_shop_time() {
    let (_d, engine) = engine();
    let cases = [
        (cn(2026, 11, 30, 23, 59), false),
        (cn(2026, 12, 1, 0, 0), true),
        (cn(2026, 12, 6, 15, 0), true),
        (cn(2026, 12, 12, 23, 59), true),
        (cn(2026, 12, 13, 0, 0), false),
    ];
    for (unix, want) in cases {
        let at = At {
            unix,
            mono: Instant::now(),
        };
        let s = engine
            .suggest_at("demo", None, "双12有什么活动吗", at)
            .expect("suggest");
        assert_eq!(
            ids(&s).contains(&"promotion-015"),
            want,
            "at {unix}: {:?}",
            ids(&s)
        );
    }
}

#[test]
fn rapid_fire_fragments_are_read_together_within_the_window() {
    let (_d, engine) = engine();
    let t0 = Instant::now();
    let at = |secs: u64| At {
        unix: cn(2026, 11, 24, 10, 0),
        mono: t0 + Duration::from_secs(secs),
    };
    // 我买的那个 / 衣服 / 啥时候能到啊: three messages, one question.
    let a = engine
        .suggest_at("demo", Some("r1"), "我买的那个", at(0))
        .expect("1");
    assert_eq!(a.reading, Reading::AsWritten);
    let b = engine
        .suggest_at("demo", Some("r1"), "衣服", at(3))
        .expect("2");
    assert_eq!(b.reading, Reading::Fragments(1));
    let c = engine
        .suggest_at("demo", Some("r1"), "啥时候能到啊", at(6))
        .expect("3");
    assert_eq!(c.reading, Reading::Fragments(2));
    assert!(
        ["logistics", "shipping"].contains(&primary(&c)),
        "{:?}",
        c.intents
    );
    // The question closed the run: the next message stands alone.
    let d = engine
        .suggest_at("demo", Some("r1"), "好的", at(7))
        .expect("4");
    assert_eq!(d.reading, Reading::AsWritten, "{:?}", d.intents);
    // Beyond the window, a fragment is not joined to a later message.
    engine
        .suggest_at("demo", Some("r2"), "那个", at(0))
        .expect("5");
    let e = engine
        .suggest_at("demo", Some("r2"), "能开发票吗", at(20))
        .expect("6");
    assert_eq!(e.reading, Reading::AsWritten);
    assert_eq!(primary(&e), "invoice");
    // The agent answering in between ends the run too.
    engine
        .suggest_at("demo", Some("r3"), "在吗", at(0))
        .expect("7");
    engine
        .agent_message("demo", "r3", "在的亲,有什么可以帮您", None)
        .expect("agent");
    let f = engine
        .suggest_at("demo", Some("r3"), "能开发票吗", at(2))
        .expect("8");
    assert_ne!(f.reading, Reading::Fragments(1));
}

#[test]
fn a_short_reply_answers_the_agents_question() {
    let (_d, engine) = engine();
    let cases: &[(&str, &str, &[&str])] = &[
        ("亲,您要哪个颜色呢?", "黑色", &["stock", "product_inquiry"]),
        (
            "亲,您平时穿多大码的呢?",
            "XL",
            &["product_inquiry", "stock"],
        ),
        ("亲,发票抬头开个人还是公司呢?", "个人", &["invoice"]),
    ];
    for (n, (question, answer, want)) in cases.iter().enumerate() {
        let conv = format!("q{n}");
        let alone = engine
            .suggest("demo", Some(&format!("alone{n}")), answer)
            .expect("alone");
        engine
            .agent_message("demo", &conv, question, None)
            .expect("agent question");
        let s = engine.suggest("demo", Some(&conv), answer).expect("answer");
        assert_eq!(
            s.reading,
            Reading::Answer,
            "{question} → {answer}: {:?}",
            s.intents
        );
        assert!(
            want.contains(&primary(&s)),
            "{question} → {answer}: {:?}",
            s.intents
        );
        assert!(!s.abstained);
        assert_ne!(
            primary(&alone),
            primary(&s),
            "context changed the reading of {answer}"
        );
        // The question is answered once: the next short message stands alone again.
        let next = engine.suggest("demo", Some(&conv), "嗯嗯").expect("next");
        assert_ne!(next.reading, Reading::Answer);
    }
    // A statement from the agent opens no question; a topical answer keeps its own topic.
    engine
        .agent_message("demo", "s1", "亲,已经为您备注好了呢", None)
        .expect("agent");
    let s = engine.suggest("demo", Some("s1"), "好的").expect("ok");
    assert_ne!(s.reading, Reading::Answer);
    engine
        .agent_message("demo", "s2", "您要哪个颜色?", None)
        .expect("agent");
    let s = engine
        .suggest("demo", Some("s2"), "能开发票吗")
        .expect("topical");
    assert_eq!((s.reading, primary(&s)), (Reading::AsWritten, "invoice"));
}

#[test]
fn a_fragment_after_a_logistics_exchange_is_read_as_logistics() {
    let (_d, engine) = engine();
    let t0 = Instant::now();
    let at = |secs: u64| At {
        unix: cn(2026, 11, 24, 10, 0),
        mono: t0 + Duration::from_secs(secs),
    };
    let first = engine
        .suggest_at("demo", Some("l1"), "我的快递到哪了", at(0))
        .expect("1");
    assert_eq!(primary(&first), "logistics");
    for (n, fragment) in ["还没到呢", "那还要几天啊"].iter().enumerate() {
        let s = engine
            .suggest_at("demo", Some("l1"), fragment, at(60 * (n as u64 + 1)))
            .expect("fragment");
        assert_eq!(primary(&s), "logistics", "{fragment}: {:?}", s.intents);
    }
}

#[test]
fn two_questions_in_one_message_are_both_answered_in_the_top_three() {
    let (_d, engine) = engine();
    let cases: &[(&str, [&str; 2])] = &[
        ("能便宜点吗?什么时候发货", ["bargaining", "shipping"]),
        ("能开发票吗 我的快递到哪了", ["invoice", "logistics"]),
        (
            "收到的杯子是碎的,能退货吗",
            ["complaint", "return_exchange"],
        ),
        // The second question the model only leans on still gets a slot of its own.
        ("快递到哪了 另外赠品呢", ["logistics", "promotion"]),
    ];
    for (message, want) in cases {
        let s = engine.suggest("demo", None, message).expect("suggest");
        let got: Vec<&str> = s.items.iter().map(|i| i.intent.as_str()).collect();
        for intent in want {
            assert!(got.contains(intent), "{message}: {got:?} lacks {intent}");
        }
        // Each suggestion's confidence is a probability.
        assert!(s.items.iter().all(|i| (0.0..=1.0).contains(&i.confidence)));
        // Each listed intent is asked at least as surely as its share of the reading says,
        // and the sidebar's figure for it is the one its best reply shows.
        for read in &s.intents {
            assert!(read.asked >= read.confidence, "{message}: {read:?}");
            if let Some(reply) = s.items.iter().find(|i| i.intent == read.intent) {
                assert!(
                    (reply.confidence - read.asked).abs() < 0.01,
                    "{message}: {read:?} vs its reply at {}",
                    reply.confidence
                );
            }
        }
    }
    // A buyer nick the compliance gate blocks in every reply that greets by name: a blocked
    // reply's place goes to a reply of its own intent, so both questions stay answered.
    let mut blocked = 0;
    for (n, (message, want)) in cases.iter().enumerate() {
        let conv = format!("nick{n}");
        let mut update = ContextUpdate::default();
        update.vars.insert("buyer".into(), "加微信领券".into());
        engine.context("demo", &conv, update).expect("context");
        let s = engine
            .suggest("demo", Some(&conv), message)
            .expect("suggest");
        let got: Vec<&str> = s.items.iter().map(|i| i.intent.as_str()).collect();
        for intent in want {
            assert!(
                got.contains(intent),
                "{message} (nick): {got:?} lacks {intent}"
            );
        }
        assert!(
            s.items.iter().all(|i| !i.text.contains("微信")),
            "{message}"
        );
        blocked += s.blocked;
    }
    assert!(blocked > 0, "no reply was blocked: the nick tests nothing");
    // Two plain questions: each is asked surely, though each has about half the reading.
    let s = engine
        .suggest("demo", None, "能便宜点吗?什么时候发货")
        .expect("suggest");
    let asked: Vec<(&str, f32, f32)> = s
        .intents
        .iter()
        .map(|i| (i.intent.as_str(), i.confidence, i.asked))
        .collect();
    assert!(
        asked.len() == 2
            && asked
                .iter()
                .all(|&(_, share, asked)| share < 0.7 && asked > 0.8),
        "{asked:?}"
    );
}

#[test]
fn when_abstaining_a_clarifying_reply_leads_and_the_guesses_follow() {
    let (_d, engine) = engine();
    for message in ["赠品那个呢", "尺码那个"] {
        let s = engine.suggest("demo", None, message).expect("suggest");
        assert!(s.abstained, "{message}: {:?}", s.intents);
        let got: Vec<&str> = s.items.iter().map(|i| i.intent.as_str()).collect();
        assert_eq!(got.first(), Some(&"unknown"), "{message}: {got:?}");
        // Every guess the detection lists has a reply among the three.
        for guess in s.intents.iter().skip(1) {
            assert!(
                got.contains(&guess.intent.as_str()),
                "{message}: {got:?} lacks the guess {}",
                guess.intent
            );
        }
        assert!(s.intents.len() > 1, "{message}: no guesses {:?}", s.intents);
    }
}

/// Praise is a closing, not a complaint, though it talks of quality; dissatisfaction and an
/// unanswered chat are complaints. (Phrasings that are not among the demo's examples.)
#[test]
fn praise_and_complaints_are_told_apart() {
    let (_d, engine) = engine();
    let table = [
        ("料子很好,很满意", "closing"),
        ("穿着挺舒服的", "closing"),
        ("质量真不错", "closing"),
        ("颜色有点偏差,不太满意", "complaint"),
        ("用了两天就坏了", "complaint"),
        ("找了你们好几次都没人管", "complaint"),
    ];
    for (message, want) in table {
        let s = engine
            .suggest("demo", Option::None, message)
            .expect("suggest");
        assert_eq!(primary(&s), want, "{message}: {:?}", s.intents);
    }
}

/// `huashu suggest --order-state` gates like a front end's `context`, and a wrong state is
/// named with the valid ones.
#[test]
fn the_suggest_command_gates_on_the_order_state_it_is_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_huashu"))
            .arg("suggest")
            .args(["--json", "--phrasebook"])
            .arg(&root)
            .arg("--index")
            .arg(dir.path().join("index"))
            .args(args)
            .output()
            .expect("runs")
    };
    let (_d, engine) = engine();
    let shop = engine.shop("demo").expect("demo");
    for state in ["none", "shipped", "delivered"] {
        let out = run(&["--order-state", state, "我的快递到哪了"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let items = body["suggestions"].as_array().expect("suggestions");
        assert_eq!(items.len(), 3, "{body}");
        let st = OrderState::parse(state).expect("state");
        for item in items {
            let id = item["phrase_id"].as_str().expect("phrase_id");
            let p = shop.phrases().find(|p| p.id == id).expect("phrase");
            assert!(
                p.order_states.is_empty() || p.order_states.contains(&st),
                "{state}: {id} is only for {:?}",
                p.order_states
            );
        }
    }
    let out = run(&["--order-state", "sent", "到哪了"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`sent` is not an order state") && err.contains("refunding"),
        "{err}"
    );
}

/// A labeled set of `tests/data/quality/`.
fn quality_set(name: &str) -> Vec<huashu::eval::Labeled> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/quality")
        .join(name);
    let src = std::fs::read_to_string(&path).expect("labeled set");
    huashu::eval::read_labeled(&src, name).expect("labeled rows")
}

/// Quality on team-written messages the examples were not written from
/// (`tests/data/quality/heldout.tsv`, see its README): a floor that runs on any machine,
/// below the measured values in docs/quality.md, so a change that breaks how the demo reads
/// ordinary buyer messages fails here even where the dev set is absent.
#[test]
fn the_held_out_messages_are_read_above_the_floor() {
    let (_d, engine) = engine();
    let rows = quality_set("heldout.tsv");
    assert!(rows.len() >= 300, "{} rows", rows.len());
    let r = huashu::eval::evaluate(&engine, "demo", &rows, Option::None).expect("eval");
    // The missed rows as `id labels -> predicted text`, for the failure message.
    let misses: Vec<String> = r
        .misses
        .iter()
        .map(|m| {
            let row = &rows[m.row];
            let labels = row.intents.join(",");
            format!("{} {labels} -> {} {}", row.id, m.predicted, row.text)
        })
        .collect();
    let floors = [
        ("accuracy", r.accuracy, 0.88),
        ("macro-F1", r.macro_f1, 0.88),
        ("top-3", r.top3, 0.97),
        ("unknown abstained", r.unknown_abstained, 0.79),
        ("1 - wrongly abstained", 1.0 - r.wrongly_abstained, 0.96),
        ("1 - calibration error", 1.0 - r.calibration.ece, 0.92),
    ];
    for (name, got, floor) in floors {
        assert!(
            got >= floor,
            "{name} {got:.3} below {floor}; missed:\n{}",
            misses.join("\n")
        );
    }
}

/// Whether the suggested replies are good ones, not only of the right intent
/// (`tests/data/quality/replies.tsv`: each row lists every demo phrase that would be a good
/// reply in its order state). A floor below the measured values in docs/quality.md.
#[test]
fn the_suggested_replies_are_good_ones_above_the_floor() {
    let (_d, engine) = engine();
    let rows = quality_set("replies.tsv");
    assert!(
        rows.iter().all(|r| !r.replies.is_empty()),
        "every row lists its good replies"
    );
    let r = huashu::eval::evaluate(&engine, "demo", &rows, Option::None).expect("eval");
    let s = r.replies.expect("reply scores");
    assert_eq!(s.rows, rows.len());
    let missed: Vec<&str> = s.misses.iter().map(|&i| rows[i].text.as_str()).collect();
    assert!(
        s.hit1 >= 0.6,
        "first suggestion good in {:.3}; missed: {missed:?}",
        s.hit1
    );
    assert!(
        s.hit3 >= 0.75,
        "a good one in the top 3 in {:.3}; missed: {missed:?}",
        s.hit3
    );

    // A listed reply the shop does not have is named, not silently never hit.
    let bad =
        "id\ttext\tintents\torder_state\treplies\nr1\t到哪了\tlogistics\tshipped\tno-such-phrase\n";
    let rows = huashu::eval::read_labeled(bad, "bad.tsv").expect("parses");
    let e = huashu::eval::evaluate(&engine, "demo", &rows, Option::None)
        .expect_err("unknown phrase")
        .to_string();
    assert!(e.contains("r1") && e.contains("no-such-phrase"), "{e}");
}

/// An example edit trains the classifier while the curator writes the files; the install
/// that follows must take that model, not train another.
#[test]
fn a_classifier_trained_ahead_is_the_one_installed() {
    let (_d, engine) = engine();
    let served = engine.shop_ref("demo").expect("demo");
    let mut edited = (*served).clone();
    drop(served);
    assert!(
        engine.train_ahead(&edited).is_none(),
        "nothing to train for the same examples"
    );
    let shipping = edited
        .intents
        .iter_mut()
        .find(|i| i.id == "shipping")
        .expect("shipping");
    let mut examples = shipping.examples.to_vec();
    examples.push("团购那批货哪天能寄出".to_string());
    shipping.examples = examples.into();
    let ahead = engine.train_ahead(&edited).expect("the examples changed");
    assert_eq!(std::sync::Arc::strong_count(&ahead), 1);
    let reloaded = engine.install_shop(edited).expect("install");
    assert!(reloaded.retrained);
    // The served shop now holds the model trained ahead.
    assert_eq!(std::sync::Arc::strong_count(&ahead), 2);
}

/// The product a buyer names fills `{item}` (from `phrasebook/dict/products.txt`), in this
/// message and later ones of the conversation; without one the template's fallback shows.
#[test]
fn the_product_the_buyer_names_fills_item() {
    let (_d, engine) = engine();
    let shop = engine.shop("demo").expect("demo");
    let with_item: Vec<&str> = shop
        .phrases()
        .filter(|p| p.template.variables().any(|v| v == "item"))
        .map(|p| p.id.as_str())
        .collect();
    assert!(!with_item.is_empty());
    // The texts of the replies with `{item}` that `message` gets in `conversation` (an
    // unpaid order), at least one.
    let item_replies = |conversation: &str, message: &str| -> Vec<String> {
        let update = ContextUpdate::of_order_state(OrderState::Unpaid);
        engine
            .context("demo", conversation, update)
            .expect("context");
        let s = engine
            .suggest("demo", Some(conversation), message)
            .expect("suggest");
        let texts: Vec<String> = s
            .items
            .iter()
            .filter(|i| with_item.contains(&i.phrase_id.as_str()))
            .map(|i| i.text.clone())
            .collect();
        assert!(
            !texts.is_empty(),
            "{message}: no reply with {{item}}: {:?}",
            ids(&s)
        );
        texts
    };
    for text in item_replies("item", "这个蓝牙音箱我再考虑考虑吧") {
        assert!(text.contains("蓝牙音箱"), "{text}");
    }
    // Remembered: a later message of the conversation that names nothing keeps it.
    for text in item_replies("item", "这个我再考虑考虑吧") {
        assert!(text.contains("蓝牙音箱"), "{text}");
    }
    // Another conversation, no product named: the fallback.
    for text in item_replies("plain", "这个我再考虑考虑吧") {
        assert!(
            !text.contains("蓝牙音箱") && !text.contains("{item"),
            "{text}"
        );
    }
}

/// A `context` value with a phone or ID number in it is refused whole, naming the variable,
/// and nothing of that update is kept.
#[test]
fn a_context_value_with_a_phone_or_id_number_is_refused_whole() {
    let (_d, engine) = engine();
    let shop = engine.shop("demo").expect("demo");
    // What the conversation knew before: a shipped order, no carrier.
    engine
        .context(
            "demo",
            "pii",
            ContextUpdate::of_order_state(OrderState::Shipped),
        )
        .expect("a plain update is kept");
    for (name, value) in [
        ("buyer", "13800138000"),
        ("buyer", "小王 138-0013-8000"),
        ("buyer", "tb13800138000"),
        ("order_id", "+86 138 0013 8000"),
        ("item", "110105194912310021"),
        ("tracking_no", "110105491231002"),
    ] {
        let mut update = ContextUpdate::of_order_state(OrderState::Delivered);
        update.vars.insert("carrier".into(), "顺丰".into());
        update.vars.insert(name.into(), value.into());
        let err = engine
            .context("demo", "pii", update)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{name}`")), "{value}: {err}");
    }
    // Nothing of the refused updates was kept: still shipped (the carrier's replies, gated
    // to shipped, are shown) and still no carrier (they list it as missing).
    let s = engine
        .suggest("demo", Some("pii"), "我的快递到哪了")
        .expect("suggest");
    let mut carrier_replies = 0;
    for i in &s.items {
        assert!(!i.text.contains("13800138000"), "{}", i.text);
        let p = shop
            .phrases()
            .find(|p| p.id == i.phrase_id)
            .expect("phrase");
        if p.template.required().any(|v| v == "carrier") {
            assert!(i.missing.iter().any(|m| m == "carrier"), "{}", i.text);
            carrier_replies += 1;
        }
    }
    assert!(carrier_replies > 0, "{:?}", ids(&s));
    let mut update = ContextUpdate::default();
    update.vars.insert("buyer".into(), "小王".into());
    engine
        .context("demo", "pii", update)
        .expect("a plain nick is kept");
}

/// Team-written sessions for the `--context` replay: a logistics exchange before a fragment,
/// the agent's question before a bare answer, and a row whose session is not in the file.
const SESSIONS: &str = "session\trow\tspeaker\ttext
s1\t3\tbuyer\t还没到呢
s1\t1\tbuyer\t我的快递到哪了
s1\t2\tagent\t亲,这边帮您查询一下物流
s2\t1\tagent\t亲,您要哪个颜色呢?
s2\t2\tbuyer\t黑色
";
const CONTEXT_ROWS: &str = "id\ttext\tintents
t:s1:3\t还没到呢\tlogistics
t:s2:2\t黑色\tproduct_inquiry,stock
t:none:1\t在吗\tgreeting
";

/// `evaluate` with sessions replays each row's earlier turns first: the fragment and the
/// answer are read as live; without them they are not.
#[test]
fn eval_with_context_replays_each_rows_earlier_turns() {
    use huashu::eval::{evaluate, read_labeled, read_sessions};
    let (_d, engine) = engine();
    let rows = read_labeled(CONTEXT_ROWS, "rows.tsv").expect("rows");
    let sessions = read_sessions(SESSIONS, "sessions.tsv").expect("sessions");
    let with = evaluate(&engine, "demo", &rows, Some(&sessions)).expect("with context");
    let without = evaluate(&engine, "demo", &rows, None).expect("without");
    assert_eq!(with.accuracy, 1.0, "{with:?}");
    assert!(without.accuracy < with.accuracy, "{without:?}");
}

/// `huashu eval --json` reports every metric the quality floor and docs/quality.md use, with
/// and without `--context`.
#[test]
fn the_eval_command_reports_every_metric_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
    let (rows, sessions) = (dir.path().join("rows.tsv"), dir.path().join("sessions.tsv"));
    std::fs::write(&rows, CONTEXT_ROWS).expect("rows");
    std::fs::write(&sessions, SESSIONS).expect("sessions");
    let run = |context: bool| -> serde_json::Value {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_huashu"));
        cmd.args(["eval", "--json", "--phrasebook"])
            .arg(&root)
            .arg("--index")
            .arg(dir.path().join("index"));
        if context {
            cmd.arg("--context").arg(&sessions);
        }
        let out = cmd.arg(&rows).output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    };
    let (with, without) = (run(true), run(false));
    for body in [&with, &without] {
        for key in [
            "accuracy",
            "macro_f1",
            "top3",
            "wrongly_abstained",
            "unknown_abstained",
            "latency_p50_us",
            "latency_p99_us",
        ] {
            let v = body[key].as_f64().unwrap_or(-1.0);
            assert!(v >= 0.0, "{key}: {body}");
        }
        assert_eq!(body["rows"], 3, "{body}");
        let per_intent = body["per_intent"].as_array().expect("per_intent");
        assert!(
            per_intent
                .iter()
                .any(|i| i["intent"] == "logistics" && i["support"] == 1),
            "{body}"
        );
        assert!(body["confusions"].is_array(), "{body}");
    }
    assert_eq!(with["accuracy"], 1.0, "{with}");
    assert!(
        without["accuracy"].as_f64() < with["accuracy"].as_f64(),
        "{without}"
    );
    // A bad sessions file is named with its line.
    std::fs::write(&sessions, "session\trow\tspeaker\ttext\ns1\tx\tbuyer\thi\n").expect("bad");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huashu"))
        .args(["eval", "--phrasebook"])
        .arg(&root)
        .arg("--index")
        .arg(dir.path().join("index"))
        .arg("--context")
        .arg(&sessions)
        .arg(&rows)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sessions.tsv:2") && err.contains("row"),
        "{err}"
    );
}

/// A bare yes to the agent's yes-or-no offer (需要帮您催一下快递吗? → 可以) stays the
/// confirmation it reads as, and the offer's topic gets a reply among the suggestions; a no
/// and a yes with no offer before it do not.
#[test]
fn a_bare_yes_to_an_offer_brings_a_reply_of_its_topic() {
    let (_d, engine) = engine();
    let has_logistics = |s: &Suggestions| s.items.iter().any(|i| i.intent == "logistics");
    let cases: &[(&str, &str, bool)] = &[
        ("亲,需要帮您催一下快递吗?", "可以", true),
        ("亲,需要帮您催一下快递吗?", "好的呀", true),
        ("亲,需要帮您催一下快递吗?", "不用了", false),
        // Politeness offers no topic.
        ("亲,还有其他可以帮您的吗?", "好的", false),
    ];
    for (n, (offer, reply, want)) in cases.iter().enumerate() {
        let conv = format!("offer{n}");
        let alone = engine
            .suggest("demo", Some(&format!("offer-alone{n}")), reply)
            .expect("alone");
        assert!(!has_logistics(&alone), "{reply} alone: {:?}", ids(&alone));
        engine
            .agent_message("demo", &conv, offer, None)
            .expect("agent offer");
        let s = engine.suggest("demo", Some(&conv), reply).expect("reply");
        assert_eq!(has_logistics(&s), *want, "{offer} → {reply}: {:?}", ids(&s));
        assert_eq!(
            primary(&s),
            primary(&alone),
            "{offer} → {reply}: read as written"
        );
    }
}
