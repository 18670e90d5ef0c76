//! Variables from what the buyer wrote: carrier names, tracking numbers in the main carriers'
//! formats, order numbers and amounts, so `{carrier}`, `{tracking_no}`, `{order_id}` and
//! `{amount}` fill themselves.
//!
//! Invariant: phone numbers and ID numbers are never extracted (a reply must not echo them),
//! whatever label precedes them. Pure; works on normalized text (half-width, lowercase).

/// What was found in one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub order_id: Option<String>,
    pub amount: Option<String>,
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
        ] {
            if let Some(x) = x {
                v.push((k, x.clone()));
            }
        }
        v
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

/// Tracking-number shapes: (Latin prefix, digits after it, carrier).
const PREFIXED: [(&str, &[usize], &str); 4] = [
    ("sf", &[12, 13], "顺丰"),
    ("yt", &[13], "圆通"),
    ("jt", &[13], "极兔"),
    ("jd", &[13, 14, 15], "京东"),
];

fn is_phone(d: &str) -> bool {
    d.len() == 11
        && d.starts_with('1')
        && d.as_bytes()
            .get(1)
            .is_some_and(|b| (b'3'..=b'9').contains(b))
}

fn is_id(run: &str) -> bool {
    run.len() == 18 && run[..17].bytes().all(|b| b.is_ascii_digit()) && {
        let y: u32 = run[6..10].parse().unwrap_or(0);
        let m: u32 = run[10..12].parse().unwrap_or(0);
        (1900..=2030).contains(&y) && (1..=12).contains(&m)
    }
}

/// Extracts from normalized text.
pub fn extract(normalized: &str) -> Extracted {
    let mut out = Extracted {
        carrier: CARRIERS
            .iter()
            .find(|(k, _)| contains_word(normalized, k))
            .map(|(_, v)| v.to_string()),
        ..Default::default()
    };
    // Alphanumeric runs: prefixed tracking numbers, EMS (2 letters, 9 digits, 2 letters), digit runs.
    for run in runs(normalized) {
        let lower = run.to_ascii_lowercase();
        if let Some((_, _, carrier)) = PREFIXED.iter().find(|(p, lens, _)| {
            lower.strip_prefix(p).is_some_and(|rest| {
                lens.contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit())
            })
        }) {
            out.tracking_no.get_or_insert_with(|| run.to_uppercase());
            out.carrier.get_or_insert_with(|| carrier.to_string());
            continue;
        }
        let b = lower.as_bytes();
        if b.len() == 13
            && b[..2].iter().all(u8::is_ascii_alphabetic)
            && b[2..11].iter().all(u8::is_ascii_digit)
            && b[11..].iter().all(u8::is_ascii_alphabetic)
        {
            out.tracking_no.get_or_insert_with(|| run.to_uppercase());
            out.carrier.get_or_insert_with(|| "EMS".to_string());
            continue;
        }
        if !lower.bytes().all(|b| b.is_ascii_digit()) || is_phone(&lower) || is_id(&lower) {
            continue;
        }
        // Bare digit runs: 中通 (14 digits from 7), 申通 (15 from 77), 韵达 (13/15): tracking
        // when the message talks about a parcel; otherwise a long run is an order number.
        let parcel = ["快递", "单号", "运单", "物流", "包裹"]
            .iter()
            .any(|w| normalized.contains(w));
        let order = ["订单"].iter().any(|w| normalized.contains(w));
        if (12..=20).contains(&lower.len()) {
            if parcel && !order {
                out.tracking_no.get_or_insert_with(|| lower.clone());
                if out.carrier.is_none() {
                    out.carrier = match (lower.len(), &lower[..2]) {
                        (14, p) if p.starts_with('7') => Some("中通".into()),
                        (15, "77") => Some("申通".into()),
                        _ => None,
                    };
                }
            } else {
                out.order_id.get_or_insert(lower);
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

/// An amount of money: digits (with up to two decimals) before 元 / 块 / rmb, or after ¥.
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

    fn x(msg: &str) -> Extracted {
        extract(&crate::text::normalize(msg))
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
            ("付了199元还没发货", None, None, None, Some("199")),
            ("退款¥59.9到了吗", None, None, None, Some("59.9")),
            ("便宜20块行吗", None, None, None, Some("20")),
            // Never phone or ID numbers, whatever the label says.
            ("快递单号13800138000", None, None, None, None),
            ("订单号110105194912310021", None, None, None, None),
            ("sfx耳机能用吗", None, None, None, None),
            ("发顺丰吗", Some("顺丰"), None, None, None),
            ("", None, None, None, None),
        ];
        for (msg, carrier, tracking, order, amount) in cases {
            let got = x(msg);
            assert_eq!(got.carrier.as_deref(), *carrier, "carrier of {msg}");
            assert_eq!(got.tracking_no.as_deref(), *tracking, "tracking of {msg}");
            assert_eq!(got.order_id.as_deref(), *order, "order of {msg}");
            assert_eq!(got.amount.as_deref(), *amount, "amount of {msg}");
        }
    }
}
