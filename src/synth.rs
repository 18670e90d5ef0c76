//! Synthetic shops for benchmarks (`huashu gen`): phrasebooks of any size built from a real
//! shop's vocabulary, and buyer messages built from its examples.
//!
//! Every phrase is a recombination of clauses of the source intent's own phrases, with its
//! keywords, stage and order states, so the index sees realistic term statistics and the
//! ranking realistic candidate lists. Every generated text passes the source shop's
//! compliance lexicon (a recombination that trips a `block` rule is redrawn), so the output
//! loads like a curated shop. Deterministic: the same source, sizes and seed give the same
//! bytes. [`generate`] is pure; [`write_root`] puts the result on disk.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::phrasebook::{Intent, Shop};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub shops: usize,
    pub phrases: usize,
    pub messages: usize,
    pub seed: u64,
}

/// One generated shop: its id and its files relative to the shop directory.
#[derive(Debug, Clone)]
pub struct GenShop {
    pub id: String,
    pub files: Vec<(String, String)>,
}

/// Generated shops and buyer messages.
#[derive(Debug, Clone)]
pub struct Generated {
    pub shops: Vec<GenShop>,
    pub messages: Vec<String>,
}

/// SplitMix64: a tiny, well-known generator; enough for reproducible benchmark data and no
/// dependency for it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Splits a template into clauses after Chinese or ASCII punctuation outside `{…}`, keeping
/// the punctuation with its clause.
fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        cur.push(c);
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' | ',' | ';' | ';' | '。' | '!' | '!' | '?' | '?' | '~' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
            }
            _ => {}
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Generates `spec.shops` shops of `spec.phrases` phrases each from `source`, whose
/// `shop.toml` (name and policy) each generated shop shares.
pub fn generate(source: &Shop, shop_toml: &str, spec: &Spec) -> Generated {
    let mut rng = Rng(spec.seed);
    let total_source: usize = source.intents.iter().map(|i| i.phrases.len()).sum();
    let mut shops = Vec::with_capacity(spec.shops);
    for s in 0..spec.shops {
        let id = format!("s{s:03}");
        let mut files = vec![("shop.toml".to_string(), shop_toml.to_string())];
        let mut codes = 0usize;
        let mut seen: HashSet<String> = HashSet::new();
        let shares = shares(&source.intents, spec.phrases, total_source);
        for (intent, &share) in source.intents.iter().zip(&shares) {
            let mut doc = String::new();
            let _ = writeln!(doc, "label = {}", quote(&intent.label));
            let _ = writeln!(doc, "description = {}", quote(&intent.description));
            let stages: Vec<String> = intent.stages.iter().map(|x| x.as_str().into()).collect();
            let _ = writeln!(doc, "stage = {}", list(&stages));
            let _ = writeln!(doc, "examples = {}", list(&intent.examples));
            let mut made = 0usize;
            let mut attempts = 0usize;
            while made < share && attempts < share * 20 + 100 {
                attempts += 1;
                let Some(base) = rng.pick(&intent.phrases) else {
                    break;
                };
                let Some(other) = rng.pick(&intent.phrases) else {
                    break;
                };
                let a = clauses(&base.text);
                let b = clauses(&other.text);
                let mut text = String::new();
                let take = 1 + rng.below(a.len().max(1));
                for c in a.iter().take(take) {
                    text.push_str(c);
                }
                if let Some(c) = rng.pick(&b)
                    && !text.contains(c.as_str())
                {
                    text.push_str(c);
                }
                if let Some(w) = rng.pick(&source.words)
                    && rng.below(3) == 0
                {
                    let _ = write!(text, "({w}同样适用)");
                }
                if seen.contains(&text) {
                    let _ = write!(text, "[{}]", seen.len());
                }
                if source.lexicon.check(&text).blocked() || !seen.insert(text.clone()) {
                    continue;
                }
                let mut keywords: Vec<String> = Vec::new();
                for p in [base, other] {
                    if let Some(k) = rng.pick(&p.keywords)
                        && !keywords.contains(k)
                    {
                        keywords.push(k.clone());
                    }
                }
                made += 1;
                let _ = writeln!(doc, "\n[[phrase]]");
                let _ = writeln!(
                    doc,
                    "id = {}",
                    quote(&format!("{}-{made:05}", intent.id.replace('_', "-")))
                );
                let _ = writeln!(doc, "text = {}", quote(&text));
                let _ = writeln!(doc, "keywords = {}", list(&keywords));
                if let Some(stage) = base.stage {
                    let _ = writeln!(doc, "stage = {}", quote(stage.as_str()));
                }
                if !base.order_states.is_empty() {
                    let states: Vec<String> = base
                        .order_states
                        .iter()
                        .map(|x| x.as_str().into())
                        .collect();
                    let _ = writeln!(doc, "order_state = {}", list(&states));
                }
                let _ = writeln!(doc, "priority = {}", 1 + rng.below(9));
                if rng.below(5) == 0 {
                    codes += 1;
                    let _ = writeln!(doc, "code = {}", quote(&format!("g{codes}")));
                }
            }
            files.push((format!("intents/{}.toml", intent.id), doc));
        }
        shops.push(GenShop { id, files });
    }
    let messages = messages(source, spec.messages, &mut rng);
    Generated { shops, messages }
}

/// Writes `generated` as a phrasebook root at `out` (which should be empty): the shops, the
/// source root's `compliance.toml` and `dict/`, and `messages.txt`. Returns the number of
/// phrases written.
pub fn write_root(
    out: &std::path::Path,
    source_root: &std::path::Path,
    generated: &Generated,
) -> std::io::Result<usize> {
    std::fs::create_dir_all(out)?;
    std::fs::copy(
        source_root.join("compliance.toml"),
        out.join("compliance.toml"),
    )?;
    let dict = source_root.join("dict");
    if dict.is_dir() {
        std::fs::create_dir_all(out.join("dict"))?;
        for entry in std::fs::read_dir(&dict)? {
            let entry = entry?;
            if entry.path().is_file() {
                std::fs::copy(entry.path(), out.join("dict").join(entry.file_name()))?;
            }
        }
    }
    let mut phrases = 0usize;
    for shop in &generated.shops {
        for (rel, content) in &shop.files {
            let path = out.join(&shop.id).join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            phrases += content.matches("\n[[phrase]]").count();
            std::fs::write(&path, content)?;
        }
    }
    let mut text = generated.messages.join("\n");
    text.push('\n');
    std::fs::write(out.join("messages.txt"), text)?;
    Ok(phrases)
}

/// Phrases per intent in proportion to the source shop, summing to exactly `total`
/// (largest remainders first).
fn shares(intents: &[Intent], total: usize, source_total: usize) -> Vec<usize> {
    if source_total == 0 {
        return vec![0; intents.len()];
    }
    let exact: Vec<(usize, usize)> = intents
        .iter()
        .map(|i| {
            let x = total * i.phrases.len();
            (x / source_total, x % source_total)
        })
        .collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.0).collect();
    let mut order: Vec<usize> = (0..intents.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(exact[i].1));
    let short = total.saturating_sub(out.iter().sum());
    for &i in order.iter().take(short) {
        out[i] += 1;
    }
    out
}

/// Buyer messages: an example, sometimes after a greeting, sometimes followed by a second
/// question of another intent, sometimes naming a product of the shop.
fn messages(source: &Shop, n: usize, rng: &mut Rng) -> Vec<String> {
    let intents: Vec<&Intent> = source
        .intents
        .iter()
        .filter(|i| !i.examples.is_empty() && i.id != "unknown")
        .collect();
    let openers = ["在吗", "亲", "你好", "客服在不在", "hello"];
    let mut out = Vec::with_capacity(n);
    while out.len() < n && !intents.is_empty() {
        let Some(first) = rng.pick(&intents).and_then(|i| rng.pick(&i.examples)) else {
            break;
        };
        let mut text = String::new();
        if rng.below(5) == 0
            && let Some(o) = rng.pick(&openers)
        {
            let _ = write!(text, "{o},");
        }
        if rng.below(6) == 0
            && let Some(w) = rng.pick(&source.words)
        {
            let _ = write!(text, "{w} ");
        }
        text.push_str(first);
        if rng.below(4) == 0
            && let Some(second) = rng.pick(&intents).and_then(|i| rng.pick(&i.examples))
        {
            let _ = write!(text, ",{second}");
        }
        out.push(text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_split_after_punctuation_outside_variables() {
        let cases: &[(&str, &[&str])] = &[
            ("亲,好的~", &["亲,", "好的~"]),
            ("{buyer|亲,您},稍等", &["{buyer|亲,您},", "稍等"]),
            ("没有标点", &["没有标点"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(clauses(text), *want, "{text}");
        }
    }

    #[test]
    fn the_generator_is_deterministic_by_seed() {
        let mut a = Rng(7);
        let mut b = Rng(7);
        let mut c = Rng(8);
        let xa: Vec<u64> = (0..4).map(|_| a.next()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert_eq!(Rng(1).below(0), 0);
    }
}
