//! Synonym groups the classifier learns its examples with: an example that says 快递 is also
//! learned once saying 包裹 or 物流, so a buyer who words a question differently from every
//! example of it is still read (docs/quality.md, *Synonym variants*).
//!
//! Invariant: a variant replaces one whole word with another of its group, at token
//! boundaries of the jieba cut, so 下 in a group never rewrites 下单; the same example always
//! gives the same variant. Pure: parsing takes the file's text, not its path.

use rustc_hash::FxHashMap;

/// Groups of interchangeable words, each word normalized and in exactly one group.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    groups: Vec<Vec<String>>,
    /// Word → its group.
    group_of: FxHashMap<String, usize>,
}

/// One word of a text to replace: its byte range, the range of tokens it spans, and the
/// synonym that takes its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replacement<'a> {
    pub start: usize,
    pub end: usize,
    pub first_token: usize,
    pub last_token: usize,
    pub word: &'a str,
}

/// Words longer than this many tokens are never matched (a jieba cut of a group word is
/// looked up as up to this many consecutive tokens).
const MAX_TOKENS: usize = 3;

impl Synonyms {
    /// Parses one group per line, words separated by whitespace; `#` starts a comment. An
    /// error names the line: a group of fewer than two words, or a word already in a group.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut s = Synonyms::default();
        let mut line_of: Vec<usize> = Vec::new();
        for (n, line) in src.lines().enumerate() {
            let line_no = n + 1;
            let content = line.split('#').next().unwrap_or("");
            let words: Vec<String> = content
                .split_whitespace()
                .map(super::normalize)
                .filter(|w| !w.is_empty())
                .collect();
            match words.len() {
                0 => continue,
                1 => {
                    return Err(format!(
                        "line {line_no}: a group needs at least two words, found only `{}`",
                        words[0]
                    ));
                }
                _ => {}
            }
            let g = s.groups.len();
            let mut group: Vec<String> = Vec::with_capacity(words.len());
            for w in words {
                if let Some(&other) = s.group_of.get(&w) {
                    let earlier = line_of.get(other).copied().unwrap_or(line_no);
                    return Err(format!(
                        "line {line_no}: `{w}` is already in the group of line {earlier}"
                    ));
                }
                s.group_of.insert(w.clone(), g);
                group.push(w);
            }
            s.groups.push(group);
            line_of.push(line_no);
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups as read.
    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    /// Which word of `normalized` to replace by another word of its group, picked by `seed`;
    /// `None` when no word of any group occurs. The word is one of the earliest group in the
    /// file that occurs (the file lists content words before function words, and a variant
    /// that says 包裹 for 快递 teaches more than one that says 给我 for 帮我), its first
    /// occurrence, the longest at that position. `tokens` are the byte ranges of the jieba
    /// cut of `normalized`.
    pub fn replacement(
        &self,
        normalized: &str,
        tokens: &[(usize, usize)],
        seed: u64,
    ) -> Option<Replacement<'_>> {
        if self.groups.is_empty() {
            return None;
        }
        // (group, first token, last token) of the chosen occurrence so far.
        let mut best: Option<(usize, usize, usize)> = None;
        for (i, &(start, _)) in tokens.iter().enumerate() {
            // Longest first: 收货地址 before 收货.
            for j in (i..tokens.len().min(i + MAX_TOKENS)).rev() {
                let end = tokens[j].1;
                let Some(&g) = normalized
                    .get(start..end)
                    .and_then(|word| self.group_of.get(word))
                else {
                    continue;
                };
                if best.is_none_or(|(b, _, _)| g < b) {
                    best = Some((g, i, j));
                }
                break;
            }
        }
        let (g, first_token, last_token) = best?;
        let (start, end) = (tokens[first_token].0, tokens[last_token].1);
        let word = &normalized[start..end];
        let others: Vec<&String> = self.groups[g].iter().filter(|w| *w != word).collect();
        let pick = others.get((seed % others.len().max(1) as u64) as usize)?;
        Some(Replacement {
            start,
            end,
            first_token,
            last_token,
            word: pick.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text with its replacement made.
    fn variant(s: &Synonyms, text: &str, tokens: &[(usize, usize)], seed: u64) -> Option<String> {
        let r = s.replacement(text, tokens, seed)?;
        Some(format!("{}{}{}", &text[..r.start], r.word, &text[r.end..]))
    }

    /// Splits on `|` to stand in for a jieba cut: "快递|到|哪|了".
    fn cut(s: &str) -> (String, Vec<(usize, usize)>) {
        let mut text = String::new();
        let mut tokens = Vec::new();
        for t in s.split('|') {
            let start = text.len();
            text.push_str(t);
            tokens.push((start, text.len()));
        }
        (text, tokens)
    }

    #[test]
    fn parse_table() {
        let ok = [
            ("", 0),
            ("# only a comment\n\n", 0),
            ("快递 物流 包裹\n退款 退钱 # money back\n", 2),
            ("  取消\t撤销  \n", 1),
            // Traditional and full-width forms are normalized like buyer text.
            ("質量 品质\n", 1),
        ];
        for (src, groups) in ok {
            let s = Synonyms::parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
            assert_eq!(s.groups().len(), groups, "{src:?}");
        }
        let bad = [
            (
                "快递 物流\n退款\n",
                "line 2: a group needs at least two words",
            ),
            (
                "快递 物流\n\n包裹 快递\n",
                "line 3: `快递` is already in the group of line 1",
            ),
            (
                "快递 快递\n",
                "line 1: `快递` is already in the group of line 1",
            ),
        ];
        for (src, want) in bad {
            let err = Synonyms::parse(src).expect_err(src);
            assert!(err.starts_with(want), "{src:?}: {err}");
        }
    }

    #[test]
    fn variant_table() {
        let s =
            Synonyms::parse("快递 包裹\n一下 下\n收货地址 地址\n多长 时间 多久\n").expect("groups");
        // (cut text, seed, expected variant)
        let cases: [(&str, u64, Option<&str>); 8] = [
            ("快递|到|哪|了", 0, Some("包裹到哪了")),
            // A group word inside a longer token is not a word of the text.
            ("下单|了", 0, None),
            ("帮|我|看|下", 0, Some("帮我看一下")),
            // The longest match at a position wins.
            ("收货地址|写|错|了", 0, Some("地址写错了")),
            // The earliest group in the file, wherever it occurs; then the first occurrence.
            ("改|一下|快递", 0, Some("改一下包裹")),
            ("快递|和|快递", 0, Some("包裹和快递")),
            // The seed picks among the other words of the group.
            ("要|多久", 0, Some("要多长")),
            ("要|多久", 1, Some("要时间")),
        ];
        for (c, seed, want) in cases {
            let (text, tokens) = cut(c);
            assert_eq!(variant(&s, &text, &tokens, seed).as_deref(), want, "{c}");
        }
        assert_eq!(variant(&Synonyms::default(), "快递", &[(0, 6)], 0), None);
    }

    #[test]
    fn a_word_of_several_tokens_matches_across_them() {
        let s = Synonyms::parse("多长时间 多久\n").expect("groups");
        let (text, tokens) = cut("要|多长|时间|到");
        assert_eq!(variant(&s, &text, &tokens, 0).as_deref(), Some("要多久到"));
        let r = s.replacement(&text, &tokens, 0).expect("a replacement");
        assert_eq!(
            (r.first_token, r.last_token, &text[r.start..r.end], r.word),
            (1, 2, "多长时间", "多久")
        );
    }
}
