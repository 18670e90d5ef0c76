//! Normalization: one canonical form for everything downstream.
//!
//! NFKC (full-width → half-width), lowercase Latin, traditional → simplified characters,
//! masked-value markers of exported chats replaced by neutral stand-ins, emoji and
//! platform emoticon codes removed, runs of repeated characters collapsed, whitespace
//! folded. Every step maps characters to characters or drops them, so the output is never
//! longer than a few characters per input character and never panics on any input.

use unicode_normalization::UnicodeNormalization;

/// Normalizes a buyer message, an example utterance or a phrase for tokenization.
pub fn normalize(input: &str) -> String {
    // Most text is already NFKC (CJK, ASCII): the quick check is far cheaper than the
    // normalizing iterator.
    let nfkc: String = match unicode_normalization::is_nfkc_quick(input.chars()) {
        unicode_normalization::IsNormalized::Yes => {
            input.chars().flat_map(char::to_lowercase).collect()
        }
        _ => input.nfkc().flat_map(char::to_lowercase).collect(),
    };
    let simplified = fast2s::convert(&nfkc);
    let unmasked = replace_markers(&simplified);
    collapse(&unmasked)
}

/// Platform exports mask personal data as `[数字x]`, `[订单x]`, `[ORDERID_123]`, `[姓名x]`,
/// `[地址x]` and emoticons as `#E-s12` / `#E-s[数字x]`; Taobao-style emoticons look like
/// `[微笑]`. Masks become a stand-in of the same kind (so `[订单x]` reads like a pasted order
/// number), emoticons are dropped, any other bracketed text is kept as written.
fn replace_markers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(['[', '#']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("#e-s") {
            // `#e-s` followed by digits or by a masked number.
            let skip = if after.starts_with('[') {
                after.find(']').map(|e| e + 1).filter(|&e| e <= 16)
            } else {
                Some(after.bytes().take_while(u8::is_ascii_digit).count())
            };
            rest = &after[skip.unwrap_or(0)..];
            continue;
        }
        if tail.starts_with('[')
            && let Some(end) = tail[1..].find(']').map(|e| e + 1)
            && end <= 40
        {
            let label = &tail[1..end];
            if let Some(stand_in) = mask_stand_in(label) {
                out.push_str(stand_in);
                rest = &tail[end + 1..];
                continue;
            }
        }
        // Not a marker: keep the character and go on after it.
        let ch_len = tail.chars().next().map_or(1, char::len_utf8);
        out.push_str(&tail[..ch_len]);
        rest = &tail[ch_len..];
    }
    out.push_str(rest);
    out
}

/// What a bracketed label stands for; `None` keeps the text as it is.
fn mask_stand_in(label: &str) -> Option<&'static str> {
    if let Some(id) = label.strip_prefix("orderid_") {
        return id
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some("1000000000");
    }
    if let Some(kind) = label.strip_suffix('x') {
        return Some(match kind {
            "数字" | "金额" | "时间" | "日期" => "1",
            "订单" => "1000000000",
            "姓名" | "名字" => "某某",
            "地址" => "某处",
            "电话" | "手机" => "10000000000",
            "身份证号" => "1000",
            "站点" | "邮箱" | "链接" | "组织机构" => "某",
            _ => return None,
        });
    }
    const EMOTICONS: &[&str] = &[
        "微笑", "可爱", "害羞", "大笑", "偷笑", "憨笑", "呲牙", "调皮", "流泪", "大哭", "难过",
        "委屈", "抓狂", "发怒", "生气", "尴尬", "疑问", "晕", "再见", "拜拜", "握手", "玫瑰",
        "爱心", "心碎", "强", "弱", "ok", "赞", "鼓掌", "抱拳", "勾引", "飞吻", "亲亲", "坏笑",
        "色", "酷", "惊讶", "汗", "哈欠", "睡", "得意", "思考", "嘘", "吐", "惊恐", "衰",
    ];
    EMOTICONS.contains(&label).then_some("")
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF   // pictographs, emoticons, transport, supplemental symbols
        | 0x2600..=0x27BF   // misc symbols and dingbats
        | 0x2B00..=0x2BFF   // arrows and stars used as decoration
        | 0xFE00..=0xFE0F   // variation selectors
        | 0x200B..=0x200F   // zero-width spaces and joiners, direction marks
        | 0x2060..=0x2064
        | 0xE0020..=0xE007F // tag characters
        | 0x3030 | 0x303D | 0x3297 | 0x3299)
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '。' | '、'
                | '「'
                | '」'
                | '『'
                | '』'
                | '【'
                | '】'
                | '《'
                | '》'
                | '…'
                | '—'
                | '·'
                | '〜'
        )
}

/// Drops emoji, folds whitespace, and collapses repeats: a run of one punctuation mark
/// becomes one, any other non-ASCII character repeated three or more times becomes two
/// (哈哈哈哈 → 哈哈, 好好好好 → 好好), which keeps the doubling buyers use for tone.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut run = 0usize;
    let mut pending_space = false;
    for c in s.chars() {
        if is_emoji(c) || c.is_control() && c != '\n' {
            continue;
        }
        if c.is_whitespace() && c != '\n' {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            pending_space = false;
            if c != '\n' && prev != Some('\n') {
                out.push(' ');
                prev = Some(' ');
                run = 1;
            }
        }
        if Some(c) == prev {
            run += 1;
            // Digits and Latin letters are data (order numbers, model names): kept as typed.
            if (is_punct(c) || c == '\n') && run > 1 || run > 2 && !c.is_ascii_alphanumeric() {
                continue;
            }
        } else {
            run = 1;
        }
        out.push(c);
        prev = Some(c);
    }
    let trimmed = out.trim_end_matches([' ', '\n']);
    trimmed.trim_start_matches([' ', '\n']).to_string()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_table() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("   ", ""),
            ("在吗？？？", "在吗?"),
            ("ＡＢＣ１２３", "abc123"),
            ("iPhone15 Pro", "iphone15 pro"),
            ("哈哈哈哈哈", "哈哈"),
            ("单号7700000001", "单号7700000001"),
            ("好的👍👍", "好的"),
            ("亲❤️在不在", "亲在不在"),
            ("請問什麼時候發貨", "请问什么时候发货"),
            ("到哪了。。。", "到哪了。"),
            ("订单[ORDERID_123456]怎么还没发", "订单1000000000怎么还没发"),
            ("[数字x]号能到吗", "1号能到吗"),
            ("寄到[地址x]", "寄到某处"),
            ("谢谢#E-s[数字x]", "谢谢"),
            ("好的#E-s12", "好的"),
            ("[微笑]你好", "你好"),
            ("[图片]", "[图片]"),
            ("a  \t b", "a b"),
            ("第一行\n\n\n第二行", "第一行\n第二行"),
            ("[", "["),
            ("#", "#"),
            ("#e-s[", "["),
            ("[身份证号x]", "1000"),
            ("[组织机构x]的", "某的"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), *want, "normalize({input:?})");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "[[[]]]",
            "[订单x",
            "#e-s",
            "\u{0}\u{7f}",
            "🏳️‍🌈",
            "\u{fffd}[x]",
            "[orderid_]",
        ] {
            let _ = normalize(s);
        }
    }
}
