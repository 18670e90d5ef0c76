//! The search index: one tantivy index per shop under `index/<shop>/`. The only module that
//! imports tantivy.
//!
//! The index is derived data. Its commit payload records the schema version and the
//! fingerprint of what it was built from (phrasebook files + tokenizer); on open, a missing,
//! stale or unreadable index is rebuilt, and an unreadable one is first moved aside
//! (`<shop>.damaged-<unix time>`) so it can be inspected and never causes a crash loop.
//!
//! Phrases and queries go through the same [`Text`] tokenizer, registered in tantivy as
//! `huashu`. Queries are `BooleanQuery`s of `TermQuery`s built from tokens; buyer text never
//! reaches tantivy's query parser.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{Token as TvToken, TokenStream, Tokenizer};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::phrasebook::{Phrase, Shop};
use crate::text::{Text, is_stopword, normalize};
use crate::{Error, Result};

/// Bumped whenever the schema or the way documents are built changes.
pub const SCHEMA_VERSION: u32 = 3;
const TOKENIZER: &str = "huashu";
/// Keywords are written by the owner to say what a phrase answers: each is indexed this many
/// times beside the phrase text, so it weighs that much more than a word of the text.
const KEYWORD_WEIGHT: usize = 2;
const WRITER_MEMORY: usize = 20_000_000;

/// How [`ShopIndex::open`] found the index on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Up to date: reused as it was.
    Reused,
    /// Built because it was missing.
    BuiltMissing,
    /// Rebuilt because it was built from other data or another schema.
    RebuiltStale,
    /// Rebuilt after the unreadable one was moved to the given path.
    RebuiltDamaged(PathBuf),
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    intent: Field,
    text: Field,
    key: Field,
}

/// One shop's open index.
pub struct ShopIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    text: Arc<Text>,
}

impl std::fmt::Debug for ShopIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopIndex").finish_non_exhaustive()
    }
}

/// A search hit: the phrase's [`phrase_key`] and its BM25 score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub key: u64,
    pub score: f32,
}

/// Position of the lowest-scoring hit (the last of equals, the latest found).
fn weakest<T>(hits: &[(T, f32)]) -> Option<usize> {
    hits.iter()
        .enumerate()
        .min_by(|a, b| a.1.1.total_cmp(&b.1.1).then(b.0.cmp(&a.0)))
        .map(|(n, _)| n)
}

/// Stable 64-bit key of a phrase id (FNV-1a), stored as a fast field so a hit maps to the
/// in-memory phrase without reading stored documents.
pub fn phrase_key(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let tokenized = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        intent: b.add_text_field("intent", STRING | STORED),
        text: b.add_text_field("text", tokenized),
        key: b.add_u64_field("key", FAST),
    };
    (b.build(), fields)
}

/// Segments an edit may leave before they are merged into one: every segment is searched,
/// each costs about a microsecond a query, and a shop's segments are all small enough for one
/// layer of the log merge policy.
const MERGE_AT_SEGMENTS: usize = 3;

fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_AT_SEGMENTS);
    policy
}

fn payload(fingerprint: &str) -> String {
    format!("huashu-index schema={SCHEMA_VERSION} fingerprint={fingerprint}")
}

impl ShopIndex {
    /// Opens `dir` if it was built from `fingerprint` with this schema, otherwise rebuilds it
    /// from `shop`. `fingerprint` must cover everything the documents depend on.
    pub fn open(
        dir: &Path,
        shop: &Shop,
        text: Arc<Text>,
        fingerprint: &str,
    ) -> Result<(Self, Opened)> {
        let err = |message: String| Error::Index {
            shop: shop.id.clone(),
            message,
        };
        let outcome = if dir.join("meta.json").exists() {
            match Self::open_existing(dir, text.clone()) {
                Ok((idx, found)) if found.as_deref() == Some(&payload(fingerprint)) => {
                    return Ok((idx, Opened::Reused));
                }
                Ok(_) => Opened::RebuiltStale,
                Err(e) => {
                    let aside = aside_path(dir);
                    std::fs::rename(dir, &aside).map_err(|io| {
                        err(format!("cannot move damaged index ({e}) aside: {io}"))
                    })?;
                    tracing::warn!(shop = %shop.id, error = %e, moved_to = %aside.display(), "index unreadable; rebuilding");
                    Opened::RebuiltDamaged(aside)
                }
            }
        } else {
            Opened::BuiltMissing
        };
        let idx = Self::build(dir, shop, text, fingerprint).map_err(|e| err(e.to_string()))?;
        Ok((idx, outcome))
    }

    fn open_existing(dir: &Path, text: Arc<Text>) -> tantivy::Result<(Self, Option<String>)> {
        let index = Index::open_in_dir(dir)?;
        let found = index.load_metas()?.payload;
        let (expected, fields) = schema();
        if index.schema() != expected {
            return Ok((Self::wrap(index, fields, text)?, None));
        }
        Ok((Self::wrap(index, fields, text)?, found))
    }

    fn wrap(index: Index, fields: Fields, text: Arc<Text>) -> tantivy::Result<Self> {
        index
            .tokenizers()
            .register(TOKENIZER, HuashuTokenizer { text: text.clone() });
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(ShopIndex {
            index,
            reader,
            fields,
            text,
        })
    }

    /// Builds a fresh index in a sibling temp directory and swaps it into place, so a crash
    /// mid-build leaves either the old index or none, never a half-built one at `dir`.
    fn build(dir: &Path, shop: &Shop, text: Arc<Text>, fingerprint: &str) -> tantivy::Result<Self> {
        let tmp = sibling(dir, "building");
        let old = sibling(dir, "old");
        for stale in [&tmp, &old] {
            if stale.exists() {
                std::fs::remove_dir_all(stale)?;
            }
        }
        std::fs::create_dir_all(&tmp)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(&tmp, schema)?;
        index
            .tokenizers()
            .register(TOKENIZER, HuashuTokenizer { text: text.clone() });
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, WRITER_MEMORY)?;
        for p in shop.phrases().filter(|p| p.enabled) {
            writer.add_document(document(&fields, p))?;
        }
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&payload(fingerprint));
        commit.commit()?;
        writer.wait_merging_threads()?;
        drop(index);
        if dir.exists() {
            std::fs::rename(dir, &old)?;
        }
        std::fs::rename(&tmp, dir)?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        let index = Index::open_in_dir(dir)?;
        Self::wrap(index, fields, text)
    }

    /// Brings the index from `old` phrases to `shop`'s: deletes phrases that went away or
    /// changed, adds the new and changed ones, and commits with `fingerprint`. Returns
    /// (removed, added). Callers serialize updates of one shop (tantivy allows one writer).
    pub fn update(&self, old: &Shop, shop: &Shop, fingerprint: &str) -> Result<(usize, usize)> {
        let err = |e: tantivy::TantivyError| Error::Index {
            shop: shop.id.clone(),
            message: e.to_string(),
        };
        let same = |a: &Phrase, b: &Phrase| {
            a.enabled == b.enabled
                && a.intent == b.intent
                && a.text == b.text
                && a.keywords == b.keywords
        };
        let before: HashMap<&str, &Phrase> = old.phrases().map(|p| (p.id.as_str(), p)).collect();
        let after: HashMap<&str, &Phrase> = shop.phrases().map(|p| (p.id.as_str(), p)).collect();
        let mut writer = self
            .index
            .writer_with_num_threads::<TantivyDocument>(1, WRITER_MEMORY)
            .map_err(err)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        let (mut removed, mut added) = (0, 0);
        for p in old.phrases() {
            if after.get(p.id.as_str()).is_none_or(|n| !same(p, n)) {
                writer.delete_term(Term::from_field_text(self.fields.id, &p.id));
                removed += usize::from(p.enabled);
            }
        }
        for p in shop.phrases() {
            if before.get(p.id.as_str()).is_none_or(|o| !same(o, p)) && p.enabled {
                writer
                    .add_document(document(&self.fields, p))
                    .map_err(err)?;
                added += 1;
            }
        }
        let mut commit = writer.prepare_commit().map_err(err)?;
        commit.set_payload(&payload(fingerprint));
        commit.commit().map_err(err)?;
        // Each edit commits a segment of its own. The commit starts the merge policy's
        // merges, but a writer dropped right after abandons them: 40 edits left 41 segments
        // and tripled the query time (every segment is searched). Waiting keeps the shop at
        // a few segments; a merge keeps the commit's payload.
        writer.wait_merging_threads().map_err(err)?;
        self.reader.reload().map_err(err)?;
        Ok((removed, added))
    }

    /// Number of segments the searcher reads (each is searched on every query).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Number of indexed (enabled) phrases.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// BM25 search of normalized buyer text over phrase text and keywords; at most `limit`
    /// hits, best first.
    pub fn search(&self, normalized: &str, limit: usize) -> Result<Vec<Hit>> {
        let hits = self.search_within(normalized, limit, 0.0, Some)?;
        Ok(hits
            .into_iter()
            .map(|(key, score)| Hit { key, score })
            .collect())
    }

    /// BM25 search keeping only the hits `accept` takes (it maps a [`phrase_key`] to what the
    /// caller wants back, or `None`): at most `limit`, best first, and only those scoring at
    /// least `ratio` × the best accepted hit.
    ///
    /// Both bounds are handed to tantivy's block-WAND as its threshold while it scores, so
    /// postings that cannot reach them are skipped rather than scored and then dropped; a
    /// plain top-`limit` would keep scoring down to the `limit`-th hit, far below the ratio
    /// on a large shop. Hits `accept` rejects (a phrase the order state forbids) neither
    /// count nor raise the bound.
    pub fn search_within<T>(
        &self,
        normalized: &str,
        limit: usize,
        ratio: f32,
        mut accept: impl FnMut(u64) -> Option<T>,
    ) -> Result<Vec<(T, f32)>> {
        let Some(query) = self.query(normalized).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let index_err = |e: tantivy::TantivyError| Error::Index {
            shop: String::new(),
            message: e.to_string(),
        };
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .map_err(index_err)?;
        // Kept in the order found, so equal scores stay in document order after the final
        // stable sort, as tantivy's own top-k orders them.
        let mut kept: Vec<(T, f32)> = Vec::with_capacity(limit + 1);
        let mut best = 0.0f32;
        let mut threshold = f32::MIN;
        for segment in searcher.segment_readers() {
            let column = segment.fast_fields().u64("key").map_err(index_err)?;
            weight
                .for_each_pruning(threshold, segment, &mut |doc, score| {
                    let Some(key) = column.first(doc) else {
                        return threshold;
                    };
                    let Some(value) = accept(key) else {
                        return threshold;
                    };
                    kept.push((value, score));
                    best = best.max(score);
                    if kept.len() > limit
                        && let Some(worst) = weakest(&kept)
                    {
                        kept.remove(worst);
                    }
                    // The callback sees only scores above the threshold: just below the ratio
                    // floor keeps a hit exactly on it.
                    let floor = (best * ratio).next_down();
                    let kth = if kept.len() == limit {
                        weakest(&kept).map_or(f32::MIN, |w| kept[w].1)
                    } else {
                        f32::MIN
                    };
                    threshold = floor.max(kth);
                    threshold
                })
                .map_err(index_err)?;
        }
        let floor = best * ratio;
        kept.retain(|h| h.1 >= floor);
        kept.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(kept)
    }

    /// The query of normalized buyer text: one `TermQuery` per distinct word that is not a
    /// particle, any of them matching; `None` when no word is left.
    fn query(&self, normalized: &str) -> Option<BooleanQuery> {
        let mut words: Vec<&str> = self
            .text
            .tokens(normalized)
            .into_iter()
            .map(|t| t.word)
            .filter(|w| !is_stopword(w))
            .collect();
        words.sort_unstable();
        words.dedup();
        if words.is_empty() {
            return None;
        }
        // One field: a lookup per word, not two (keywords are in it, twice, for their boost).
        let clauses: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|w| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.text, w),
                    IndexRecordOption::WithFreqs,
                ));
                (Occur::Should, q)
            })
            .collect();
        Some(BooleanQuery::new(clauses))
    }

    /// Tokens the index would store for `text` (for tests and diagnostics).
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut tok = HuashuTokenizer {
            text: self.text.clone(),
        };
        let mut stream = tok.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    /// The payload of the last commit.
    pub fn payload(&self) -> Option<String> {
        self.index.load_metas().ok().and_then(|m| m.payload)
    }
}

fn document(fields: &Fields, p: &Phrase) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.id, &p.id);
    doc.add_text(fields.intent, &p.intent);
    // The text without its `{variables}`: a placeholder's name is no word of the reply (it
    // made `buyer` a term of a quarter of a large shop's phrases).
    doc.add_text(fields.text, p.template.literal());
    // Keywords are words a buyer uses for what the reply answers: they count twice.
    for k in &p.keywords {
        for _ in 0..KEYWORD_WEIGHT {
            doc.add_text(fields.text, k);
        }
    }
    doc.add_u64(fields.key, phrase_key(&p.id));
    doc
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.{suffix}"))
}

fn aside_path(dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    sibling(dir, &format!("damaged-{secs}"))
}

/// tantivy adapter over [`Text`]: normalizes, then yields jieba tokens.
#[derive(Clone)]
struct HuashuTokenizer {
    text: Arc<Text>,
}

struct HuashuTokenStream {
    tokens: Vec<TvToken>,
    next: usize,
    /// Returned if tantivy asks for a token before `advance` or after the end.
    none: TvToken,
}

impl Tokenizer for HuashuTokenizer {
    type TokenStream<'a> = HuashuTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> HuashuTokenStream {
        let norm = normalize(text);
        let tokens = self
            .text
            .tokens(&norm)
            .into_iter()
            .enumerate()
            .map(|(position, t)| TvToken {
                offset_from: t.start,
                offset_to: t.end,
                position,
                text: t.word.to_string(),
                position_length: 1,
            })
            .collect();
        HuashuTokenStream {
            tokens,
            next: 0,
            none: TvToken::default(),
        }
    }
}

impl TokenStream for HuashuTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &TvToken {
        self.next
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .unwrap_or(&self.none)
    }

    fn token_mut(&mut self) -> &mut TvToken {
        match self.next.checked_sub(1) {
            Some(i) if i < self.tokens.len() => &mut self.tokens[i],
            _ => &mut self.none,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phrasebook::load_root;
    use tantivy::collector::TopDocs;

    /// The demo shop and its index in a temp dir.
    fn demo() -> (tempfile::TempDir, Shop, ShopIndex) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("phrasebook");
        let shop = load_root(&root)
            .expect("demo loads")
            .into_iter()
            .find(|s| s.id == "demo")
            .expect("demo shop");
        let dict = root.join("dict");
        let text = Text::new(
            Some(&dict.join("jieba.txt")),
            Some(&dict.join("ecommerce.txt")),
            &shop.words,
        )
        .expect("shipped dictionaries load");
        let dir = tempfile::tempdir().expect("temp dir");
        let (index, _) = ShopIndex::open(&dir.path().join("demo"), &shop, Arc::new(text), "test")
            .expect("index");
        (dir, shop, index)
    }

    /// Every hit of `normalized`, best first, by tantivy's own unpruned top-k.
    fn every_hit(index: &ShopIndex, normalized: &str) -> Vec<Hit> {
        let all = index.search(normalized, 100_000).expect("search");
        // The reference: tantivy's collector over the same query, no pruning of ours.
        let searcher = index.reader.searcher();
        let query = index.query(normalized).expect("a query");
        let top = searcher
            .search(&query, &TopDocs::with_limit(100_000).order_by_score())
            .expect("reference search");
        assert_eq!(all.len(), top.len(), "{normalized}: every matching phrase");
        for (ours, (reference, _)) in all.iter().zip(&top) {
            // Block-WAND sums a document's term scores in another order than the collector.
            assert!(
                (ours.score - reference).abs() <= 1e-4 * reference.abs(),
                "{normalized}: {} where tantivy's top-k has {reference}",
                ours.score
            );
        }
        all
    }

    #[test]
    fn pruned_search_keeps_exactly_the_accepted_hits_above_the_floor() {
        let (_dir, _shop, index) = demo();
        // (message, limit, ratio, rejected: the best `top` hits and every `every`-th by key)
        let cases: &[(&str, usize, f32, usize, u64)] = &[
            ("什么时候发货", 24, 0.7, 0, 0),
            ("什么时候发货", 24, 0.7, 1, 0),
            ("什么时候发货", 24, 0.7, 0, 2),
            ("快递到哪了 另外赠品呢", 24, 0.7, 2, 3),
            ("能不能便宜点 包邮吗", 5, 0.0, 0, 0),
            ("能不能便宜点 包邮吗", 5, 0.5, 1, 2),
            ("衣服起球了 我要退货 运费谁出", 24, 0.7, 0, 0),
            ("衣服起球了 我要退货 运费谁出", 24, 0.7, 3, 0),
            ("衣服起球了 我要退货 运费谁出", 3, 0.9, 0, 5),
            ("发票抬头写错了", 1, 0.0, 0, 0),
        ];
        for &(message, limit, ratio, top, every) in cases {
            let n = normalize(message);
            let all = every_hit(&index, &n);
            assert!(
                all.len() > top + limit,
                "{message}: the demo shop has matches"
            );
            let rejected: Vec<u64> = all.iter().take(top).map(|h| h.key).collect();
            let accept =
                |key: &u64| !rejected.contains(key) && (every == 0 || !key.is_multiple_of(every));
            let got = index
                .search_within(&n, limit, ratio, |key| Some(key).filter(accept))
                .expect("search");
            // Expected: the accepted hits, above ratio × the best accepted, at most `limit`.
            let accepted: Vec<Hit> = all.iter().copied().filter(|h| accept(&h.key)).collect();
            let floor = accepted.first().map_or(0.0, |h| h.score * ratio);
            let want: Vec<f32> = accepted
                .iter()
                .filter(|h| h.score >= floor)
                .take(limit)
                .map(|h| h.score)
                .collect();
            let scores: Vec<f32> = got.iter().map(|h| h.1).collect();
            assert_eq!(
                scores, want,
                "{message} limit {limit} ratio {ratio} top {top} every {every}"
            );
            assert!(
                got.iter().all(|h| accept(&h.0)),
                "{message}: a rejected phrase came back"
            );
        }
    }

    #[test]
    fn edits_are_merged_so_the_segments_stay_few() {
        let (_dir, mut shop, index) = demo();
        assert_eq!(index.segments(), 1);
        let base = index.len();
        for n in 0..12u64 {
            let old = shop.clone();
            let mut p = shop.intents[0].phrases[0].clone();
            p.id = format!("merge-test-{n}");
            p.text = format!("第{n}次编辑的测试话术 预售款{n}天内发货");
            p.keywords = vec![format!("编辑{n}")];
            p.enabled = true;
            shop.intents[0].phrases.push(p);
            index
                .update(&old, &shop, &format!("edit-{n}"))
                .expect("update");
            // Every query searches every segment: an edit adds one, merges take them back.
            assert!(
                index.segments() < MERGE_AT_SEGMENTS,
                "after edit {n}: {} segments",
                index.segments()
            );
            assert_eq!(index.len(), base + n + 1);
            // The new phrase is found, and the commit's payload survived the merge.
            let key = phrase_key(&format!("merge-test-{n}"));
            let hits = index
                .search(&normalize(&format!("编辑{n}")), 24)
                .expect("search");
            assert!(hits.iter().any(|h| h.key == key), "edit {n} not found");
            assert_eq!(index.payload(), Some(payload(&format!("edit-{n}"))));
        }
    }

    #[test]
    fn a_placeholder_name_is_no_word_of_the_reply() {
        let (_dir, shop, index) = demo();
        for (name, placeholder) in [
            ("shop", "{shop}"),
            ("carrier", "{carrier}"),
            ("tracking", "{tracking_no}"),
        ] {
            assert!(
                shop.phrases().any(|p| p.text.contains(placeholder)),
                "the demo has a reply with {placeholder}"
            );
            let hits = index.search(&normalize(name), 24).expect("search");
            assert!(hits.is_empty(), "`{name}` matched {} phrases", hits.len());
        }
    }
}
