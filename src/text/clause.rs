//! Clause splitting: a buyer often asks several things in one message
//! (在吗?能便宜点吗?什么时候发货), and each clause is classified on its own.

/// Splits normalized text into clauses at sentence punctuation, newlines and the spaces
/// buyers (and platform exports joining rapid-fire messages) put between Chinese phrases.
/// A space between two Latin letters or digits (`iphone 15`) does not split. Returns
/// byte ranges of non-empty clauses, in order.
pub fn clauses(normalized: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut iter = normalized.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let next = iter.peek().map(|&(_, n)| n);
        let split = match c {
            '。' | '!' | '?' | ',' | ';' | '、' | '\n' | '~' | '…' | '〜' => true,
            // A full stop, but not a decimal point (1.5米) or part of a domain name.
            '.' => {
                !(prev.is_some_and(|p| p.is_ascii_alphanumeric())
                    && next.is_some_and(|n| n.is_ascii_alphanumeric()))
            }
            ' ' => {
                !(prev.is_some_and(|p| p.is_ascii_alphanumeric())
                    && next.is_some_and(|n| n.is_ascii_alphanumeric()))
            }
            _ => false,
        };
        if split {
            push(&mut out, normalized, start, i);
            start = i + c.len_utf8();
        }
        prev = Some(c);
    }
    push(&mut out, normalized, start, normalized.len());
    out
}

/// Whether normalized text asks something: a question mark, a last clause ending in a
/// question particle (吗/么/嘛), or a clause opening with 请问. Agents' questions are how a
/// conversation hands the buyer a topic (您要哪个颜色?); 呢 alone is not a question in
/// service speech (已经为您改好了呢).
pub fn is_question(normalized: &str) -> bool {
    if normalized.contains('?') {
        return true;
    }
    let spans = clauses(normalized);
    let ends_with_particle = spans.last().is_some_and(|&(a, b)| {
        normalized[a..b]
            .trim_end_matches(|c: char| !c.is_alphanumeric())
            .ends_with(['吗', '么', '嘛'])
    });
    ends_with_particle
        || spans.iter().any(|&(a, b)| {
            let clause = normalized[a..b].trim_start();
            clause.starts_with("请问") && clause.chars().count() > 3
        })
}

/// Whether a question asks to choose or name something (哪个颜色, 多大码, 个人还是公司)
/// rather than for a yes or no: its answer (黑色, XL, 个人) names the choice.
pub fn is_choice_question(normalized: &str) -> bool {
    is_question(normalized)
        && ["哪", "什么", "多大", "多少", "几", "还是"]
            .iter()
            .any(|w| normalized.contains(w))
}

/// Whether normalized text is a bare yes, no or acknowledgement (对, 嗯嗯是的, 不需要,
/// 好的呀, ok): at most six characters, all from the small closed set such replies are made
/// of. A reply like that answers a question without adding a topic of its own.
pub fn is_bare_reply(normalized: &str) -> bool {
    const BARE: &str = "对是的嗯恩好行可以没有不用需要了啊呀哦噢吧啦知道收到okyesno";
    short_phrase_of(normalized, 6, |c| BARE.contains(c))
}

/// Whether normalized text is a bare yes (可以, 好的呀, 嗯嗯行, 需要, ok): a bare reply with no
/// negation in it. It accepts what a yes-or-no question offered (需要帮您催一下吗? → 可以).
pub fn is_affirmative(normalized: &str) -> bool {
    // A question back (可以?) accepts nothing yet.
    if is_question(normalized) {
        return false;
    }
    let letters: String = normalized.chars().filter(|c| c.is_alphanumeric()).collect();
    if letters.is_ascii() {
        // Latin replies as whole words: `so` and `yo` are not yes.
        return matches!(
            letters.as_str(),
            "ok" | "okk" | "okay" | "yes" | "yep" | "y"
        );
    }
    const YES: &str = "对是的嗯恩好行可以要需啊呀哦噢吧啦滴嘞ok";
    short_phrase_of(normalized, 6, |c| YES.contains(c))
        && normalized.chars().any(|c| "对是好行可要嗯恩".contains(c))
}

/// Whether normalized text could name the option a choice question asked for (黑色, XL,
/// 个人, 要两件, 160斤的): a short phrase that speaks of no one and carries no sentence
/// particle. 您先忙着吧, 这个是我买给我妈的 or 那怎么下单呢 are the buyer's own remarks, not a
/// choice.
pub fn names_an_option(normalized: &str) -> bool {
    const REMARK: &str = "我你他她您啊呀呢吧嘛哈吗么";
    short_phrase_of(normalized, 8, |c| !REMARK.contains(c))
}

/// Whether the letters and digits of `normalized` number 1..=`max` and all pass `ok`
/// (punctuation and emoji aside).
fn short_phrase_of(normalized: &str, max: usize, ok: impl Fn(char) -> bool) -> bool {
    let mut n = 0;
    for c in normalized.chars().filter(|c| c.is_alphanumeric()) {
        n += 1;
        if n > max || !ok(c) {
            return false;
        }
    }
    n > 0
}

/// Whether a clause is a field of an order card the chat client pasted with the message
/// (咨询订单号:…, 订单金额:…, 下单时间:…, 商品id:…, or the `信息发送:` line that carries a
/// card) rather than the buyer's words. The card says which order; it asks nothing, so
/// intent detection reads around it (the extractor still takes the order number from it).
pub fn is_card_field(clause: &str) -> bool {
    const FIELDS: [&str; 7] = [
        "订单号:",
        "订单编号:",
        "订单金额:",
        "下单时间:",
        "商品id:",
        "商品号:",
        "商品编号:",
    ];
    let c = clause.trim_start_matches(|c: char| c == '[' || c.is_whitespace());
    let c = c
        .strip_prefix("咨询")
        .or_else(|| c.strip_prefix("查询"))
        .unwrap_or(c);
    FIELDS.iter().any(|f| c.starts_with(f)) || clause.contains("信息发送:")
}

fn push(out: &mut Vec<(usize, usize)>, s: &str, start: usize, end: usize) {
    if s[start..end].chars().any(char::is_alphanumeric) {
        out.push((start, end));
    }
}

#[cfg(test)]
mod tests {
    use super::{
        clauses, is_affirmative, is_bare_reply, is_card_field, is_choice_question, is_question,
        names_an_option,
    };

    /// Checks a predicate against a table of (text, expected).
    fn table(predicate: fn(&str) -> bool, cases: &[(&str, bool)]) {
        for &(text, want) in cases {
            assert_eq!(predicate(text), want, "{text}");
        }
    }

    #[test]
    fn options_are_told_from_remarks() {
        let cases = [
            ("黑色", true),
            ("xl", true),
            ("个人", true),
            ("要两件", true),
            ("160斤的", true),
            ("浅灰色那款", true),
            ("您先忙着吧", false),
            ("这个是我买给我妈的", false),
            ("那怎么下单呢", false),
            ("好的呀", false),
            ("我想要一个颜色鲜艳点的款式", false),
            ("", false),
        ];
        table(names_an_option, &cases);
    }

    #[test]
    fn a_bare_yes_is_told_from_a_no_and_from_words() {
        let cases = [
            ("可以", true),
            ("可以的", true),
            ("好的呀", true),
            ("嗯嗯行", true),
            ("需要", true),
            ("要的", true),
            ("是的!", true),
            ("ok", true),
            ("yes", true),
            ("好的ok", true),
            ("好滴", true),
            ("so", false),
            ("可以?", false),
            ("可以吗", false),
            ("不用", false),
            ("不需要了", false),
            ("没有", false),
            ("no", false),
            ("哦", false),
            ("可以发顺丰吗", false),
            ("好的,那什么时候到", false),
            ("", false),
        ];
        table(is_affirmative, &cases);
    }

    #[test]
    fn order_card_fields_are_told_from_words() {
        // (raw message, clauses that are the buyer's words)
        let cases: &[(&str, &[&str])] = &[
            ("咨询订单号:1234567 订单金额:59.9 下单时间:2026-11-11", &[]),
            ("查询订单号:7654321 商品ID:88 发票怎么开", &["发票怎么开"]),
            (
                "[订单编号:1234567，订单金额:59.9，下单时间:2026-11-11 10:00] 这个能开发票吗",
                &["这个能开发票吗"],
            ),
            (
                "顾客通过点击web咚咚某店铺信息发送:[订单编号:1234567，订单金额:59.9] 到哪了",
                &["到哪了"],
            ),
            ("订单号多少", &["订单号多少"]),
            ("我的订单号是123", &["我的订单号是123"]),
        ];
        for (raw, want) in cases {
            let n = crate::text::normalize(raw);
            let words: Vec<&str> = clauses(&n)
                .into_iter()
                .map(|(a, b)| &n[a..b])
                .filter(|c| !is_card_field(c))
                .collect();
            // Stand-ins (the masked date, time) that are left alone are digits only.
            let words: Vec<&str> = words
                .into_iter()
                .filter(|c| !c.chars().all(|ch| ch.is_ascii_digit() || ch == ']'))
                .collect();
            assert_eq!(words, *want, "{raw} → {n}");
        }
    }

    #[test]
    fn choice_questions_ask_to_name_something() {
        let cases = [
            ("您要哪个颜色?", true),
            ("发票开个人还是公司呢?", true),
            ("您平时穿多大码的呢?", true),
            ("需要帮您改地址吗?", false),
            ("是这个订单吗", false),
            ("我们几点发货哦", false),
        ];
        table(is_choice_question, &cases);
    }

    #[test]
    fn bare_replies_carry_no_topic() {
        let cases = [
            ("对", true),
            ("嗯嗯是的", true),
            ("不需要", true),
            ("好的呀~", true),
            ("ok", true),
            ("没有了", true),
            ("黑色", false),
            ("xl", false),
            ("个人", false),
            ("好的,能开发票吗", false),
            ("", false),
        ];
        table(is_bare_reply, &cases);
    }

    #[test]
    fn questions_are_told_from_statements() {
        let cases = [
            ("您要哪个颜色?", true),
            ("亲,需要帮您改地址吗", true),
            ("请问您的订单号是多少", true),
            ("亲,还有其他可以帮您的吗~", true),
            ("好的亲,已经为您改好了呢", false),
            ("亲,16:00前付款当天发货哦~", false),
            ("请问", false),
            ("", false),
            ("有什么问题随时联系我哦", false),
        ];
        table(is_question, &cases);
    }

    #[test]
    fn splits_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("?!", &[]),
            ("在吗", &["在吗"]),
            (
                "在吗?能便宜点吗?什么时候发货",
                &["在吗", "能便宜点吗", "什么时候发货"],
            ),
            ("好的,谢谢", &["好的", "谢谢"]),
            ("你好 我想问下 到哪了", &["你好", "我想问下", "到哪了"]),
            ("iphone 15 有货吗", &["iphone 15", "有货吗"]),
            ("1.5米的床能用吗", &["1.5米的床能用吗"]),
            ("好的。谢谢~拜拜", &["好的", "谢谢", "拜拜"]),
            ("第一行\n第二行", &["第一行", "第二行"]),
            ("红色、蓝色", &["红色", "蓝色"]),
        ];
        for (input, want) in cases {
            let got: Vec<&str> = clauses(input).iter().map(|&(s, e)| &input[s..e]).collect();
            assert_eq!(&got, want, "clauses({input:?})");
        }
    }
}
