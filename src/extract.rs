//! Variables from what the buyer wrote: carrier names, tracking numbers in the main carriers'
//! formats, order numbers, amounts and the product named, so `{carrier}`, `{tracking_no}`,
//! `{order_id}`, `{amount}` and `{item}` fill themselves.
//!
//! Invariant: phone numbers (with or without +86) and ID numbers (18 digits, and the older
//! 15) are never extracted (a reply must not echo them), whatever label precedes them; a
//! `context` value holding one is refused ([`holds_personal_number`]). Pure; works on
//! normalized text (half-width, lowercase).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// What was found in one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub order_id: Option<String>,
    pub amount: Option<String>,
    pub item: Option<String>,
}

impl Extracted {
    /// As (variable, value) pairs, for a conversation update.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        for (k, x) in [
            ("carrier", &self.carrier),
            ("tracking_no", &self.tracking_no),
            ("order_id", &self.order_id),
            ("amount", &self.amount),
            ("item", &self.item),
        ] {
            if let Some(x) = x {
                v.push((k, x.clone()));
            }
        }
        v
    }
}

/// Product words buyers name (蓝牙音箱, 羽绒服), matched leftmost-longest in a normalized
/// message: the first one named fills `{item}`. Loaded from `phrasebook/dict/products.txt`.
#[derive(Debug, Clone, Default)]
pub struct Products {
    matcher: Option<AhoCorasick>,
    words: Vec<String>,
}

/// Product words shorter than this are refused: one character (鞋, 包, 书) is inside too many
/// words that name no product (拖鞋 is one, 包邮 and 书面 are not).
const MIN_PRODUCT_CHARS: usize = 2;
/// Words that begin with a product word but name no goods: a phone number, a platform, a
/// colour. Matched beside the products, leftmost-longest, so 手机号 is passed over whole while
/// 手机壳 and 羽绒服版型 still name goods.
const NOT_GOODS: [&str; 14] = [
    "手机号",
    "手机端",
    "手机版",
    "手机上",
    "手机里",
    "电脑端",
    "电脑版",
    "电脑上",
    "平板端",
    "网页版",
    "奶茶色",
    "咖啡色",
    "巧克力色",
    "酒红色",
];

impl Products {
    /// One word per line; `#` starts a comment. An error names the line: a word of one
    /// character, a line of more than one word, or a word listed twice.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut words: Vec<String> = Vec::new();
        let mut line_of: std::collections::HashMap<String, usize> = Default::default();
        for (n, line) in src.lines().enumerate() {
            let line_no = n + 1;
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            if content.split_whitespace().nth(1).is_some() {
                return Err(format!(
                    "line {line_no}: one product word per line, found `{content}`"
                ));
            }
            let word = crate::text::normalize(content);
            if word.chars().count() < MIN_PRODUCT_CHARS {
                return Err(format!(
                    "line {line_no}: `{content}` is shorter than {MIN_PRODUCT_CHARS} characters"
                ));
            }
            if let Some(first) = line_of.insert(word.clone(), line_no) {
                return Err(format!(
                    "line {line_no}: `{content}` is already on line {first}"
                ));
            }
            words.push(word);
        }
        if words.is_empty() {
            return Ok(Products::default());
        }
        // The contiguous NFA: 124 KB for the shipped list, against 2.4 MB as a DFA for a
        // tenth of a microsecond (docs/performance.md). Products first, so a product listed
        // also as a non-goods word stays a product (same start and length: lower id wins).
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .build(words.iter().map(String::as_str).chain(NOT_GOODS))
            .map_err(|e| format!("building the matcher: {e}"))?;
        Ok(Products {
            matcher: Some(matcher),
            words,
        })
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The first product word in `normalized`, the longest where several start there. A word
    /// of [`NOT_GOODS`] (手机号, 电脑端, 奶茶色) is passed over whole.
    pub fn first_in(&self, normalized: &str) -> Option<&str> {
        self.matcher
            .as_ref()?
            .find_iter(normalized)
            .find_map(|m| self.words.get(m.pattern().as_usize()))
            .map(String::as_str)
    }
}

/// Carrier names as buyers write them → the name replies use.
const CARRIERS: [(&str, &str); 14] = [
    ("顺丰", "顺丰"),
    ("sf", "顺丰"),
    ("中通", "中通"),
    ("圆通", "圆通"),
    ("韵达", "韵达"),
    ("申通", "申通"),
    ("极兔", "极兔"),
    ("京东快递", "京东"),
    ("京东物流", "京东"),
    ("邮政", "EMS"),
    ("ems", "EMS"),
    ("德邦", "德邦"),
    ("百世", "百世"),
    ("菜鸟", "菜鸟"),
];

/// Tracking-number shapes: (Latin prefix, digits right after it, digits after one or two
/// more letters, carrier). 京东's waybills also carry a letter or two after JD (JDVA…, JDX…).
const PREFIXED: [(&str, &[usize], &[usize], &str); 4] = [
    ("sf", &[12, 13], &[], "顺丰"),
    ("yt", &[13], &[], "圆通"),
    ("jt", &[13], &[], "极兔"),
    ("jd", &[13, 14, 15], &[11, 12, 13], "京东"),
];

/// A mainland mobile number: 11 digits from 13–19, also behind the country code (86 / 0086;
/// a `+` is not part of a run).
fn is_phone(d: &str) -> bool {
    let d = d
        .strip_prefix("0086")
        .or_else(|| d.strip_prefix("86").filter(|rest| rest.len() == 11))
        .unwrap_or(d);
    d.len() == 11
        && d.starts_with('1')
        && d.as_bytes()
            .get(1)
            .is_some_and(|b| (b'3'..=b'9').contains(b))
}

/// A resident ID number: 18 characters (17 digits and a check digit or x) with a birth year
/// and month, or the older 15 digits with a province code and a birth date (yymmdd). A
/// 15-digit order number of that shape is not filled either: leaving `{order_id}` for the
/// agent costs a prompt, echoing an ID number cannot be taken back.
fn is_id(run: &str) -> bool {
    let digits = |r: std::ops::Range<usize>| -> u32 {
        run.get(r)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    match run.len() {
        18 => {
            run[..17].bytes().all(|b| b.is_ascii_digit())
                && (1900..=2030).contains(&digits(6..10))
                && (1..=12).contains(&digits(10..12))
        }
        15 => {
            run.bytes().all(|b| b.is_ascii_digit())
                && (11..=82).contains(&digits(0..2))
                && (1..=12).contains(&digits(8..10))
                && (1..=31).contains(&digits(10..12))
        }
        _ => false,
    }
}

/// Whether `normalized` holds a phone or ID number anywhere: as a run of digits of its own
/// (also glued to letters, tb13800138000, or beside other numbers), or written in groups (138
/// 0013 8000, 138-0013-8000, +86 138…). A `context` value that does is refused, so it is never
/// kept for a reply.
pub fn holds_personal_number(normalized: &str) -> bool {
    let personal = |text: &str| digit_runs(text).any(|run| is_phone(run) || is_id(run));
    let joined: String = normalized
        .chars()
        .filter(|c| !(c.is_whitespace() || "-+./_—,，".contains(*c)))
        .collect();
    personal(normalized) || personal(&joined)
}

/// Maximal runs of ASCII digits, each with the `x` that ends an ID number when one follows.
fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !bytes[at].is_ascii_digit() {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        if bytes.get(at).is_some_and(|b| b.eq_ignore_ascii_case(&b'x')) {
            at += 1;
        }
        // Digits and `x` are ASCII: both ends fall on character boundaries.
        text.get(start..at)
    })
}

/// Extracts from normalized text; `products` names what `{item}` can be.
pub fn extract(normalized: &str, products: &Products) -> Extracted {
    let carrier = CARRIERS
        .iter()
        .find(|(k, _)| contains_word(normalized, k))
        .map(|(_, v)| v.to_string());
    let named_carrier = carrier.is_some();
    let mut out = Extracted {
        carrier,
        item: products.first_in(normalized).map(str::to_string),
        ..Default::default()
    };
    // Whether the message speaks of a parcel (or names its carrier) and of an order: what a
    // bare digit run below is taken for.
    let parcel = ["快递", "单号", "运单", "物流", "包裹"]
        .iter()
        .any(|w| normalized.contains(w))
        || named_carrier;
    let order = normalized.contains("订单");
    // Alphanumeric runs: prefixed tracking numbers, EMS (2 letters, 9 digits, 2 letters), digit
    // runs. Normalized text is lowercase already.
    for lower in runs(normalized) {
        if let Some((_, _, _, carrier)) = PREFIXED.iter().find(|(p, plain, lettered, _)| {
            lower.strip_prefix(p).is_some_and(|rest| {
                let digits = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
                let lens = match rest.len() - digits.len() {
                    0 => plain,
                    1 | 2 => lettered,
                    _ => return false,
                };
                lens.contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !is_phone(digits)
                    && !is_id(digits)
            })
        }) {
            out.tracking_no.get_or_insert_with(|| lower.to_uppercase());
            out.carrier.get_or_insert_with(|| carrier.to_string());
            continue;
        }
        let b = lower.as_bytes();
        if b.len() == 13
            && b[..2].iter().all(u8::is_ascii_alphabetic)
            && b[2..11].iter().all(u8::is_ascii_digit)
            && b[11..].iter().all(u8::is_ascii_alphabetic)
        {
            out.tracking_no.get_or_insert_with(|| lower.to_uppercase());
            out.carrier.get_or_insert_with(|| "EMS".to_string());
            continue;
        }
        if !lower.bytes().all(|b| b.is_ascii_digit()) || is_phone(lower) || is_id(lower) {
            continue;
        }
        // Bare digit runs: 中通 (14 digits from 7), 申通 (15 from 77), 韵达 (13/15): tracking
        // when the message talks about a parcel or names its carrier; otherwise a long run is
        // an order number.
        // 京东's older order numbers have 10–11 digits: as long as a phone number, so only
        // where the message says it is an order (a phone number is never one, above, and a
        // landline starts with its 0 area code).
        if order && (10..=11).contains(&lower.len()) && !lower.starts_with('0') {
            out.order_id.get_or_insert_with(|| lower.to_string());
            continue;
        }
        if (12..=20).contains(&lower.len()) {
            if parcel && !order {
                out.tracking_no.get_or_insert_with(|| lower.to_string());
                if out.carrier.is_none() {
                    out.carrier = match (lower.len(), &lower[..2]) {
                        (14, p) if p.starts_with('7') => Some("中通".into()),
                        (15, "77") => Some("申通".into()),
                        _ => None,
                    };
                }
            } else {
                out.order_id.get_or_insert_with(|| lower.to_string());
            }
        }
    }
    out.amount = amount(normalized);
    out
}

/// `word` in `text`, not inside a Latin word (so `sf` is not found in `sfx`).
fn contains_word(text: &str, word: &str) -> bool {
    if !word.is_ascii() {
        return text.contains(word);
    }
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphabetic())
    })
}

/// Maximal runs of ASCII letters and digits.
fn runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
}

/// An amount of money: digits (with up to two decimals) before 元 / 块, or after ¥.
fn amount(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let unit_after = matches!(c, '元' | '块');
        let yen = *c == '¥';
        if unit_after {
            let mut j = i;
            while j > 0 && (chars[j - 1].is_ascii_digit() || chars[j - 1] == '.') {
                j -= 1;
            }
            let num: String = chars[j..i].iter().collect();
            if valid_amount(&num) {
                return Some(num);
            }
        } else if yen {
            let num: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == '.')
                .collect();
            if valid_amount(&num) {
                return Some(num);
            }
        }
    }
    None
}

fn valid_amount(s: &str) -> bool {
    let mut parts = s.split('.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.len() <= 7
        && int.bytes().all(|b| b.is_ascii_digit())
        && parts.next().is_none()
        && frac.is_none_or(|f| (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn products() -> Products {
        Products::parse("# test list\n耳机\n蓝牙耳机\n羽绒服\n\n空调 # comment\n手机\n奶茶\n")
            .unwrap()
    }

    fn x(msg: &str) -> Extracted {
        extract(&crate::text::normalize(msg), &products())
    }

    #[test]
    fn extraction_table() {
        // (message, carrier, tracking, order, amount)
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Row<'_>] = &[
            (
                "顺丰单号SF1234567890123到哪了",
                Some("顺丰"),
                Some("SF1234567890123"),
                None,
                None,
            ),
            (
                "快递单号 78123456789012 怎么不动了",
                Some("中通"),
                Some("78123456789012"),
                None,
                None,
            ),
            (
                "申通 773012345678901 查下物流",
                Some("申通"),
                Some("773012345678901"),
                None,
                None,
            ),
            (
                "圆通的 YT1234567890123",
                Some("圆通"),
                Some("YT1234567890123"),
                None,
                None,
            ),
            (
                "极兔JT1234567890123还没到",
                Some("极兔"),
                Some("JT1234567890123"),
                None,
                None,
            ),
            (
                "京东JD0123456789012",
                Some("京东"),
                Some("JD0123456789012"),
                None,
                None,
            ),
            (
                "ems单号EA123456789CN",
                Some("EMS"),
                Some("EA123456789CN"),
                None,
                None,
            ),
            (
                "韵达快递 4312345678901 到哪了",
                Some("韵达"),
                Some("4312345678901"),
                None,
                None,
            ),
            (
                "订单号260311123456789帮我改地址",
                None,
                None,
                Some("260311123456789"),
                None,
            ),
            (
                "我的订单 1234567890123 退款了吗",
                None,
                None,
                Some("1234567890123"),
                None,
            ),
            // Ten or eleven digits only when named an order, and never a phone number.
            (
                "订单86401547812还没发货",
                None,
                None,
                Some("86401547812"),
                None,
            ),
            (
                "订单号 2356189538 改地址",
                None,
                None,
                Some("2356189538"),
                None,
            ),
            ("86401547812还没发货", None, None, None, None),
            ("订单 13912345678 是我电话", None, None, None, None),
            ("快递单号 86401547812", None, None, None, None),
            ("付了199元还没发货", None, None, None, Some("199")),
            ("退款¥59.9到了吗", None, None, None, Some("59.9")),
            ("便宜20块行吗", None, None, None, Some("20")),
            // Never phone or ID numbers, whatever the label says.
            ("快递单号13800138000", None, None, None, None),
            ("订单号110105194912310021", None, None, None, None),
            ("快递单号+8613800138000", None, None, None, None),
            ("订单号 008613800138000", None, None, None, None),
            // The older 15-digit ID number: a province, then a birth date at 7–12.
            ("订单号110105491231002", None, None, None, None),
            ("快递 110105491231002", None, None, None, None),
            ("sfx耳机能用吗", None, None, None, None),
            ("发顺丰吗", Some("顺丰"), None, None, None),
            ("", None, None, None, None),
            // A carrier's name makes a bare number its parcel's.
            (
                "中通 78123456789012 到哪了",
                Some("中通"),
                Some("78123456789012"),
                None,
                None,
            ),
            (
                "韵达4312345678901还没动",
                Some("韵达"),
                Some("4312345678901"),
                None,
                None,
            ),
            // 京东's waybills with letters after JD.
            (
                "jdva00123456789 到哪了",
                Some("京东"),
                Some("JDVA00123456789"),
                None,
                None,
            ),
            (
                "JDX012345678901怎么没更新",
                Some("京东"),
                Some("JDX012345678901"),
                None,
                None,
            ),
            ("jdabc012345678901", None, None, None, None),
            // JD right before a phone or ID number is no waybill.
            ("jd13800138000", None, None, None, None),
            ("jd110105491231002", None, None, None, None),
            ("订单 02112345678", None, None, None, None),
        ];
        for (msg, carrier, tracking, order, amount) in cases {
            let got = x(msg);
            assert_eq!(got.carrier.as_deref(), *carrier, "carrier of {msg}");
            assert_eq!(got.tracking_no.as_deref(), *tracking, "tracking of {msg}");
            assert_eq!(got.order_id.as_deref(), *order, "order of {msg}");
            assert_eq!(got.amount.as_deref(), *amount, "amount of {msg}");
        }
    }

    #[test]
    fn the_first_product_named_fills_item() {
        let cases: &[(&str, Option<&str>)] = &[
            ("这款蓝牙耳机有白色吗", Some("蓝牙耳机")),
            ("耳机和羽绒服一起发吗", Some("耳机")),
            ("羽絨服什麼時候發", Some("羽绒服")),
            ("空调能装吗", Some("空调")),
            ("这个什么时候发货", None),
            ("我手机号换了", None),
            ("电脑版和手机端都看不到订单", None),
            ("手机号换了 羽绒服还没到", Some("羽绒服")),
            ("这个手机壳配手机吗", Some("手机")),
            ("羽绒服版型偏大吗", Some("羽绒服")),
            ("奶茶色的羽绒服还有吗", Some("羽绒服")),
            ("", None),
        ];
        for (msg, item) in cases {
            assert_eq!(x(msg).item.as_deref(), *item, "item of {msg}");
        }
        assert!(Products::default().first_in("耳机").is_none());
    }

    #[test]
    fn product_lists_are_checked_line_by_line() {
        let cases: &[(&str, Option<&str>)] = &[
            ("耳机\n空调\n", None),
            ("# only a comment\n", None),
            (
                "耳机\n鞋\n",
                Some("line 2: `鞋` is shorter than 2 characters"),
            ),
            ("耳机 空调\n", Some("line 1: one product word per line")),
            (
                "耳机\n空调\n耳机\n",
                Some("line 3: `耳机` is already on line 1"),
            ),
        ];
        for (src, err) in cases {
            match (Products::parse(src), err) {
                (Ok(_), None) => {}
                (Err(e), Some(want)) => assert!(e.starts_with(want), "{src:?}: {e}"),
                (got, want) => panic!("{src:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(products().len(), 6);
    }

    #[test]
    fn personal_numbers_are_found_however_grouped() {
        let cases: &[(&str, bool)] = &[
            ("13800138000", true),
            ("138 0013 8000", true),
            ("138-0013-8000", true),
            ("+86 138 0013 8000", true),
            ("小王13800138000", true),
            ("110105194912310021", true),
            ("11010519491231002x", true),
            ("110105491231002", true),
            // Beside other numbers, glued to letters, behind other separators.
            ("张三 0571-88888888 13800138000", true),
            ("302 13800138000", true),
            ("tb13800138000", true),
            ("138/0013/8000", true),
            ("138_0013_8000", true),
            ("1234567890123", false),
            ("sf1234567890123", false),
            ("小王", false),
            ("12345", false),
            ("", false),
        ];
        for (v, want) in cases {
            assert_eq!(
                holds_personal_number(&crate::text::normalize(v)),
                *want,
                "{v}"
            );
        }
    }
}
