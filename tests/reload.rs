//! Live reload: an edited phrasebook file is visible to the next suggestion after
//! `reload_shop`, with the index updated in place and the classifier retrained only when
//! examples changed.

mod common;

use common::Dirs;
use huashu::engine::{Engine, Options};

fn add_phrase(dirs: &Dirs, intent: &str, body: &str) {
    let f = dirs
        .phrasebook()
        .join(format!("demo/intents/{intent}.toml"));
    let mut src = std::fs::read_to_string(&f).expect("intent file");
    src.push_str(body);
    std::fs::write(&f, src).expect("write");
}

#[test]
fn an_edit_is_visible_after_reload_and_a_bad_edit_changes_nothing() {
    let dirs = Dirs::new();
    let engine = Engine::load(&Options::new(dirs.phrasebook(), dirs.index())).expect("load");
    let before = engine
        .suggest("demo", None, "顺丰冷链的生鲜什么时候发货")
        .expect("suggest");
    assert!(
        before
            .items
            .iter()
            .all(|s| s.phrase_id != "shipping-coldchain")
    );

    add_phrase(
        &dirs,
        "shipping",
        "\n[[phrase]]\nid = \"shipping-coldchain\"\ntext = \"生鲜走顺丰冷链,每天下午统一发出~\"\nkeywords = [\"冷链\", \"生鲜\"]\npriority = 9\nrevision = 41\n",
    );
    let r = engine.reload_shop("demo").expect("reload");
    assert_eq!(
        (r.version, r.retrained, r.removed, r.added),
        (41, false, 0, 1)
    );
    let after = engine
        .suggest("demo", None, "顺丰冷链的生鲜什么时候发货")
        .expect("suggest");
    assert_eq!(
        after.items[0].phrase_id, "shipping-coldchain",
        "{:?}",
        after.items
    );
    assert_eq!(engine.version("demo").unwrap(), 41);

    // A broken file is refused and the shop keeps serving what it had.
    add_phrase(
        &dirs,
        "shipping",
        "\n[[phrase]]\nid = \"shipping-coldchain\"\ntext = \"dup\"\n",
    );
    let err = engine
        .reload_shop("demo")
        .expect_err("duplicate id refused")
        .to_string();
    assert!(err.contains("duplicate id"), "{err}");
    let still = engine
        .suggest("demo", None, "顺丰冷链的生鲜什么时候发货")
        .expect("suggest");
    assert_eq!(still.items[0].phrase_id, "shipping-coldchain");
}

#[test]
fn new_examples_retrain_the_classifier() {
    let dirs = Dirs::new();
    let engine = Engine::load(&Options::new(dirs.phrasebook(), dirs.index())).expect("load");
    let f = dirs.phrasebook().join("demo/intents/chit_chat.toml");
    let src = std::fs::read_to_string(&f).expect("file");
    // A made-up word the examples never had, taught as chit-chat.
    let src = src.replacen("examples = [", "examples = [\n  \"咕噜咕噜星球见\",\n  \"咕噜咕噜星球你去过吗\",\n  \"咕噜咕噜星球好玩吗\",", 1);
    std::fs::write(&f, src).expect("write");
    let r = engine.reload_shop("demo").expect("reload");
    assert!(r.retrained);
    assert_eq!((r.removed, r.added), (0, 0), "no phrase changed");
    let s = engine
        .suggest("demo", None, "咕噜咕噜星球")
        .expect("suggest");
    assert_eq!(s.intents[0].intent, "chit_chat", "{:?}", s.intents);
}
