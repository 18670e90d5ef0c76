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

fn push(out: &mut Vec<(usize, usize)>, s: &str, start: usize, end: usize) {
    if s[start..end].chars().any(char::is_alphanumeric) {
        out.push((start, end));
    }
}

#[cfg(test)]
mod tests {
    use super::clauses;

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
