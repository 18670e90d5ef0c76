//! jieba tokenization: one instance per process, HMM off so the same text always gives
//! the same tokens (index and query must agree, and tests must be repeatable).

use std::io::BufReader;
use std::path::Path;

use jieba_rs::Jieba;

use super::Synonyms;
use crate::{Error, Result};

/// A token of normalized text: the word and its byte range in that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub word: &'a str,
    pub start: usize,
    pub end: usize,
}

/// The process-wide tokenizer: the base dictionary (`phrasebook/dict/jieba.txt`), the shipped e-commerce user
/// dictionary and every loaded shop's words; and the synonym groups
/// (`phrasebook/dict/synonyms.txt`) the classifier learns its examples with.
pub struct Text {
    jieba: Jieba,
    synonyms: Synonyms,
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text").finish_non_exhaustive()
    }
}

impl Text {
    /// Builds the tokenizer from the base dictionary `base_dict` (jieba's embedded full
    /// dictionary when `None`), then the user dictionary `user_dict` (both jieba's
    /// `word freq tag` lines), then `extra_words`.
    pub fn new(
        base_dict: Option<&Path>,
        user_dict: Option<&Path>,
        extra_words: &[String],
    ) -> Result<Self> {
        let load = |jieba: &mut Jieba, path: &Path| -> Result<()> {
            let err = |message: String| Error::Dictionary {
                path: path.to_path_buf(),
                message,
            };
            let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
            jieba
                .load_dict(&mut BufReader::new(file))
                .map_err(|e| err(e.to_string()))
        };
        let mut jieba = match base_dict {
            Some(path) => {
                let mut j = Jieba::empty();
                load(&mut j, path)?;
                j
            }
            None => Jieba::new(),
        };
        if let Some(path) = user_dict {
            load(&mut jieba, path)?;
        }
        let mut text = Text {
            jieba,
            synonyms: Synonyms::default(),
        };
        text.add_words(extra_words);
        Ok(text)
    }

    /// Adds words jieba must keep whole (a shop's product names). Words are normalized
    /// first, so a word written in full-width or traditional form still matches.
    pub fn add_words(&mut self, words: &[String]) {
        for word in words {
            let word = super::normalize(word);
            if !word.is_empty() && !word.contains(char::is_whitespace) {
                self.jieba.add_word(&word, None, None);
            }
        }
    }

    /// Reads the synonym groups from `path` (see [`Synonyms::parse`]), replacing any before.
    pub fn load_synonyms(&mut self, path: &Path) -> Result<()> {
        self.synonyms = crate::read_dictionary(path, Synonyms::parse)?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn set_synonyms(&mut self, synonyms: Synonyms) {
        self.synonyms = synonyms;
    }

    pub fn synonyms(&self) -> &Synonyms {
        &self.synonyms
    }

    /// Tokens of already normalized text, in order, without whitespace and punctuation.
    pub fn tokens<'a>(&self, normalized: &'a str) -> Vec<Token<'a>> {
        self.jieba
            .cut(normalized, false)
            .into_iter()
            .filter(|t| t.word.chars().any(char::is_alphanumeric))
            .map(|t| Token {
                word: t.word,
                start: t.byte_start,
                end: t.byte_end,
            })
            .collect()
    }
}

/// Particles and pronouns that carry tone, not content: they never drive a search.
/// (The classifier still sees them: 吗 vs 了 matters for intent.)
pub fn is_stopword(word: &str) -> bool {
    const STOP: &[&str] = &[
        "的", "了", "吗", "呢", "吧", "啊", "呀", "哦", "嘛", "哈", "么", "啦", "喔", "噢", "哇",
        "亲", "您", "你", "我", "我们", "你们", "是", "在", "就", "都", "也", "还", "和", "跟",
        "这", "那", "这个", "那个", "一下", "请问", "请", "个", "有", "没", "不",
    ];
    STOP.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn text() -> &'static Text {
        static TEXT: OnceLock<Text> = OnceLock::new();
        TEXT.get_or_init(|| {
            let dict = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook/dict/ecommerce.txt");
            Text::new(
                Some(&dict.with_file_name("jieba.txt")),
                Some(&dict),
                &["云感棉".to_string()],
            )
            .expect("shipped dictionaries load")
        })
    }

    fn words(s: &str) -> Vec<String> {
        let n = super::super::normalize(s);
        text()
            .tokens(&n)
            .iter()
            .map(|t| t.word.to_string())
            .collect()
    }

    #[test]
    fn keeps_domain_words_whole() {
        let cases: &[(&str, &[&str])] = &[
            ("能包邮吗", &["包邮"]),
            ("拍下了帮我改价", &["拍下", "改价"]),
            ("发顺丰可以吗", &["顺丰"]),
            ("支持七天无理由吗", &["七天无理由"]),
            ("有运费险吗", &["运费险"]),
            ("不处理就给差评", &["差评"]),
            ("云感棉的会起球吗", &["云感棉", "起球"]),
            ("现在的价格", &["现在"]),
        ];
        for (input, must) in cases {
            let got = words(input);
            for w in *must {
                assert!(
                    got.iter().any(|g| g == w),
                    "{input:?} → {got:?} lacks {w:?}"
                );
            }
        }
    }

    #[test]
    fn drops_punctuation_and_reports_byte_ranges() {
        let n = super::super::normalize("你好,在吗?");
        let toks = text().tokens(&n);
        assert!(
            toks.iter()
                .all(|t| t.word.chars().all(char::is_alphanumeric))
        );
        for t in &toks {
            assert_eq!(&n[t.start..t.end], t.word);
        }
    }

    #[test]
    fn deterministic() {
        let a = words("亲我的快递到哪了怎么还没到");
        let b = words("亲我的快递到哪了怎么还没到");
        assert_eq!(a, b);
    }

    #[test]
    fn missing_dictionary_is_a_clear_error() {
        let err = Text::new(None, Some(Path::new("/nonexistent/dict.txt")), &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dict.txt"), "{err}");
    }

    #[test]
    fn a_bad_synonym_file_names_itself_and_the_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("synonyms.txt");
        std::fs::write(&path, "快递 物流\n包裹 快递\n").expect("write");
        let mut t = Text::new(None, None, &[]).expect("text");
        let err = t
            .load_synonyms(&path)
            .expect_err("a word in two groups")
            .to_string();
        assert!(
            err.contains("synonyms.txt") && err.contains("line 2: `快递`"),
            "{err}"
        );
        std::fs::write(&path, "快递 物流 包裹\n").expect("write");
        t.load_synonyms(&path).expect("a good file loads");
        assert_eq!(t.synonyms().groups().len(), 1);
    }
}
