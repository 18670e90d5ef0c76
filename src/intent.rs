//! Intent classification: a multinomial logistic regression over jieba tokens and character
//! n-grams, trained at load time from the phrasebook's example utterances.
//!
//! Why this model: it trains in milliseconds from a few thousand short examples, is
//! deterministic (fixed epoch count, seeded order), gives probabilities that are reasonably
//! calibrated for an abstain threshold, and needs no weights from anywhere.
//!
//! Buyers wrap what they ask in politeness and noise (你好 / 谢谢 / an order number), often in
//! one run of text with no punctuation to split at, so each example of a topical intent is
//! learned a second time with a filler around it: a greeting before it, a short closing after
//! it, or an `unknown` example on either side. Without that the model learns filler words
//! only from bare fillers, and a message that has them reads as a filler. A topical example
//! with a word of a synonym group (`phrasebook/dict/synonyms.txt`) is also learned with that
//! word replaced, so 包裹到哪了 is read like the example 快递到哪了.
//!
//! A message is split into clauses and each clause classified, leaning on the reading of the
//! whole message as far as the clause is unsure; clauses the model is still not confident
//! about do not count, and greetings/closings are down-weighted when the message has real
//! content (在吗?什么时候发货 is about shipping). When no clause counts, the whole message
//! decides if it is sure of a topic; otherwise the engine abstains with [`UNKNOWN_INTENT`].
//! Pure.

use rustc_hash::FxHashMap;

use crate::phrasebook::UNKNOWN_INTENT;
use crate::text::{Text, clauses, is_card_field, is_question};

/// Abstention thresholds: a clause counts when its best intent has at least `min_confidence`
/// and leads the runner-up by at least `min_margin`.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub min_confidence: f32,
    pub min_margin: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_confidence: 0.3,
            min_margin: 0.05,
        }
    }
}

/// One intent with its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub intent: String,
    pub confidence: f32,
}

/// The classifier's view of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Intents by decreasing confidence; the first is primary. When the engine abstains the
    /// first is `unknown` with confidence `1 - best`, followed by the best guesses.
    pub intents: Vec<Scored>,
    pub abstained: bool,
    /// Full distribution over [`Classifier::labels`], combined over the confident clauses
    /// (all zeros when abstaining on a message with no confident clause).
    pub distribution: Vec<f32>,
    /// Per label, the highest probability any clause gave it: what the model leaned to
    /// even when it abstained.
    pub guesses: Vec<f32>,
}

impl Detection {
    pub fn primary(&self) -> &str {
        self.intents
            .first()
            .map_or(UNKNOWN_INTENT, |s| s.intent.as_str())
    }
}

/// A trained model.
#[derive(Debug, Clone)]
pub struct Classifier {
    labels: Vec<String>,
    features: FxHashMap<u64, u32>,
    /// Row-major: feature row × class.
    weights: Vec<f32>,
    bias: Vec<f32>,
    thresholds: Thresholds,
}

/// Ten passes over about twice the rows of the examples alone (the filler rows), each
/// skipping the rows the model already reads surely (see [`EASY`]): an owner's example edit
/// waits for the training, and must be visible within 100 ms. Mean over 8 orders on the dev
/// set with the seventh batch of examples: 8 / 9 / 10 / 11 passes over every row give accuracy
/// 0.8261 / 0.8278 / 0.8287 / 0.8292 (within one order's spread, ±0.004).
const EPOCHS: usize = 10;
/// A row whose own intent the model gives at least this probability when it is visited is
/// left out of the next [`EASY_REST`] passes, then visited again: its gradient is at most
/// 1 − `EASY` of the largest, and the time goes to the rows still being learned. Mean over 8
/// orders on the dev set: 10 passes this way visit 54.1k rows instead of 75.8k (9 passes
/// over every row: 68.2k) for accuracy 0.8277 / wrongly abstained 0.054 / unknown abstained
/// 0.776, against 0.8278 / 0.057 / 0.773 (docs/quality.md).
const EASY: f32 = 0.99;
const EASY_REST: u64 = 2;
/// Closings of at most this many characters are fillers (谢谢, 好的哈, 没事了); longer ones are
/// statements of their own (质量很好下次还来) that would contradict the example they end.
const FILLER_CLOSING_CHARS: usize = 6;
const LEARNING_RATE: f32 = 0.5;
const L2: f32 = 1e-4;
/// Intents that are politeness around the real content when a message has more.
const FILLER: [(&str, f32); 3] = [("greeting", 1.0), ("closing", 0.7), (UNKNOWN_INTENT, 1.0)];
/// Context applies when the model gave the conversation's last intent at least this much.
const CONTEXT_LEAN: f32 = 0.25;
/// …and was not this sure the message is a bare confirmation.
const CONTEXT_UNKNOWN_MAX: f32 = 0.2;
/// What the context adds to the lean.
const CONTEXT_BONUS: f32 = 0.3;
/// A confident reading below this yields to the conversation's last intent in a short message.
const CONTEXT_WEAK: f32 = 0.45;
/// ...provided the model gives the last intent at least this much.
const CONTEXT_WEAK_LEAN: f32 = 0.05;
/// Confidence of an answer read as continuing the agent's question: the question sets the
/// topic, the answer's own words carry little evidence either way.
const ANSWER_CONFIDENCE: f32 = 0.6;
/// Least probability for the topic of an agent's question the model is unsure of.
const QUESTION_LEAN: f32 = 0.2;
/// Intents below this combined share are not listed.
const LIST_FLOOR: f32 = 0.12;
/// A clause the model could not read still names the topic of a message that is otherwise
/// politeness when its best topical guess reaches this.
const CONTENT_LEAN: f32 = 0.35;
/// Each confident clause weighs this much less than the one before it: buyers lead with
/// what matters most, so of two questions read about equally surely the earlier is primary
/// (有券吗,能用花呗吗 is about the coupon first). Small enough that a clearly surer later
/// clause still wins.
const CLAUSE_DECAY: f32 = 0.95;
/// How far a clause the model is wholly unsure of leans on the reading of the message as a
/// whole (see [`lean_on_message`]). Mean over 8 training orders, dev set: accuracy 0.778 →
/// 0.790; team-written held-out set 0.884 → 0.894 (docs/quality.md).
const MESSAGE_BLEND: f32 = 0.5;
const CLOSING: &str = "closing";
const MAX_LISTED: usize = 4;

impl Classifier {
    /// Trains on `(intent id, examples)`; intents without examples are never predicted.
    pub fn train(text: &Text, data: &[(&str, &[String])], thresholds: Thresholds) -> Self {
        let labels: Vec<String> = data.iter().map(|(id, _)| id.to_string()).collect();
        // Every example, then every topical example with a filler around it, then every
        // topical example with a synonym in place of one of its words (when it has one).
        // jieba cuts each example once, on both cores (the cuts come back in order, so ids
        // are assigned as in one pass); a filler row is its two examples' cuts joined.
        let examples = flatten(data);
        let cut = crate::par_map(
            examples.iter().map(|&(_, id, ex)| (id, ex)).collect(),
            |(id, ex)| {
                let cut = Cut::new(text, ex);
                let own = cut.features();
                let synonym = (!is_filler(id))
                    .then(|| cut.with_synonym(text, hash(b's', ex)))
                    .flatten();
                (cut, own, synonym)
            },
        );
        let fillers: Vec<(FillerRow, Vec<u64>)> = with_fillers(&examples)
            .into_iter()
            .map(|row| {
                let (first, second) = row.parts();
                let features = cut[first].0.joined(&cut[second].0).features();
                (row, features)
            })
            .collect();
        // Sized for the distinct features up front (about one in ten of all, on the demo's
        // examples) rather than grown through a dozen rehashes.
        let all: usize = cut
            .iter()
            .map(|(_, own, synonym)| own.len() + synonym.as_ref().map_or(0, Vec::len))
            .chain(fillers.iter().map(|(_, f)| f.len()))
            .sum();
        let mut features: FxHashMap<u64, u32> =
            FxHashMap::with_capacity_and_hasher(all / 8, Default::default());
        let rows_max = examples.len() * 2 + fillers.len();
        let mut rows: Vec<(usize, Vec<u32>)> = Vec::with_capacity(rows_max);
        // Each row's identity for the training order: its intent and text (a synonym row
        // keyed apart from its example), so an edit moves only the rows it touches (see the
        // shuffle below).
        let mut keys: Vec<u64> = Vec::with_capacity(rows_max);
        let mut add = |class: usize, key: u64, hashes: Vec<u64>| {
            let mut ids: Vec<u32> = hashes
                .into_iter()
                .map(|h| {
                    let next = features.len() as u32;
                    *features.entry(h).or_insert(next)
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if !ids.is_empty() {
                rows.push((class, ids));
                keys.push(key);
            }
        };
        // Rows as written first, then the filler rows, then the synonym rows.
        let key =
            |kind: u8, id: &str, text: &str| hash(b'k', id) ^ hash(kind, text).rotate_left(17);
        let mut synonym_rows = Vec::new();
        for (&(class, id, ex), (_, own, synonym)) in examples.iter().zip(cut) {
            add(class, key(b'e', id, ex), own);
            if let Some(hashes) = synonym {
                synonym_rows.push((class, key(b'v', id, ex), hashes));
            }
        }
        for (row, features) in fillers {
            let (first, second) = row.parts();
            let text = format!("{} {}", examples[first].2, examples[second].2);
            add(
                row.class,
                key(b'e', examples[row.example].1, &text),
                features,
            );
        }
        for (class, key, hashes) in synonym_rows {
            add(class, key, hashes);
        }
        let k = labels.len();
        let mut model = Classifier {
            weights: vec![0.0; features.len() * k],
            bias: vec![0.0; k],
            labels,
            features,
            thresholds,
        };
        if k == 0 {
            return model;
        }
        // AdaGrad on the softmax cross-entropy. Each epoch visits the rows sorted by a keyed
        // hash of their content, not by a shuffle of their positions: adding or removing one
        // example leaves the relative order of all others as it was, so the model (and every
        // shop's suggestions) changes by what the edit says, not by a reshuffle.
        //
        // Training is bound by fetching each feature's weights and squared-gradient sums from
        // memory, so they lie side by side, each run padded to whole SSE vectors: a feature's
        // `[weights; pad][sums; pad]`. Padding lanes get a zero gradient and stay zero. The
        // weights are copied out to the model's `k` per feature at the end.
        let pad = k.div_ceil(4) * 4;
        let stride = 2 * pad;
        let mut state = vec![0.0f32; model.features.len() * stride];
        for run in state.chunks_exact_mut(stride) {
            run[pad..].fill(1e-8);
        }
        let mut gb2 = vec![1e-8f32; k];
        let mut order: Vec<(u64, usize)> = Vec::with_capacity(rows.len());
        let mut grad = vec![0.0f32; pad];
        // The first pass at which each row is visited again (0: every pass).
        let mut rest_until = vec![0u64; rows.len()];
        for epoch in 0..EPOCHS as u64 {
            let salt = (epoch + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            order.clear();
            order.extend(
                keys.iter()
                    .enumerate()
                    .filter(|&(r, _)| rest_until[r] <= epoch)
                    .map(|(r, key)| (mix(key ^ salt), r)),
            );
            order.sort_unstable();
            for &(_, r) in &order {
                let (class, ids) = &rows[r];
                let scale = 1.0 / (ids.len() as f32).sqrt();
                let probs = &mut grad[..k];
                probs.copy_from_slice(&model.bias);
                for &f in ids {
                    let at = f as usize * stride;
                    for (o, w) in probs.iter_mut().zip(&state[at..at + k]) {
                        *o += w * scale;
                    }
                }
                softmax(probs);
                if probs[*class] >= EASY {
                    rest_until[r] = epoch + 1 + EASY_REST;
                }
                // The gradient of the loss in the scores, then each feature's weights in
                // turn (each weight gets the same arithmetic in any loop order).
                for (c, p) in probs.iter_mut().enumerate() {
                    *p -= if c == *class { 1.0 } else { 0.0 };
                    gb2[c] += *p * *p;
                    model.bias[c] -= LEARNING_RATE * *p / gb2[c].sqrt();
                }
                for &f in ids {
                    let at = f as usize * stride;
                    let (weights, sums) = state[at..at + stride].split_at_mut(pad);
                    for ((w, g2), grad) in weights.iter_mut().zip(sums.iter_mut()).zip(&grad) {
                        let g = grad * scale + L2 * *w;
                        *g2 += g * g;
                        *w -= LEARNING_RATE * g / g2.sqrt();
                    }
                }
            }
        }
        for (weights, run) in model
            .weights
            .chunks_exact_mut(k)
            .zip(state.chunks_exact(stride))
        {
            weights.copy_from_slice(&run[..k]);
        }
        model
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    fn scores(&self, feats: impl Iterator<Item = (u32, f32)>, out: &mut [f32]) {
        let k = self.labels.len();
        out.copy_from_slice(&self.bias);
        for (f, v) in feats {
            let row = &self.weights[f as usize * k..(f as usize + 1) * k];
            for (o, w) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }

    /// Probability distribution over [`labels`](Self::labels) for one normalized clause.
    pub fn predict(&self, text: &Text, normalized: &str) -> Vec<f32> {
        let mut hashes = featurize(text, normalized);
        hashes.sort_unstable();
        hashes.dedup();
        let mut out = vec![0.0; self.labels.len()];
        if out.is_empty() {
            return out;
        }
        // Scaled as in training, by the root of the count of the features the model knows,
        // so a long clause is not surer for being long. (By the count of all features, known
        // or not, a clause of unseen words reads less surely: dev wrongly abstained 0.073 →
        // 0.104, accuracy 0.791 → 0.785, mean over 8 training orders.)
        let known: Vec<u32> = hashes
            .iter()
            .filter_map(|h| self.features.get(h).copied())
            .collect();
        let scale = 1.0 / (known.len().max(1) as f32).sqrt();
        self.scores(known.iter().map(|&f| (f, scale)), &mut out);
        softmax(&mut out);
        out
    }

    /// Classifies a whole normalized message clause by clause.
    pub fn detect(&self, text: &Text, normalized: &str) -> Detection {
        let k = self.labels.len();
        let filler: Vec<f32> = self
            .labels
            .iter()
            .map(|l| FILLER.iter().find(|(f, _)| f == l).map_or(0.0, |(_, w)| *w))
            .collect();
        let unknown = self.labels.iter().position(|l| l == UNKNOWN_INTENT);
        let mut combined = vec![0.0f32; k];
        let mut total_weight = 0.0f32;
        let mut best_known = 0.0f32;
        let mut guesses = vec![0.0f32; k];
        // Among the clauses the model could not read with confidence: the best topical
        // (non-filler) guess with its clause's distribution, and whether any of them asks
        // something. They decide what a message of politeness plus an unread clause is.
        let mut unread: Option<(usize, Vec<f32>)> = None;
        let mut unread_question = false;
        // Order-card fields pasted with the message are not the buyer's words; a message
        // that is only a card asks nothing of its own.
        let mut spans = clauses(normalized);
        let had_clauses = !spans.is_empty();
        spans.retain(|&(s, e)| !is_card_field(&normalized[s..e]));
        if spans.is_empty() && had_clauses {
            return Detection {
                intents: vec![Scored {
                    intent: UNKNOWN_INTENT.to_string(),
                    confidence: 1.0,
                }],
                abstained: true,
                distribution: vec![0.0; k],
                guesses: vec![0.0; k],
            };
        }
        let whole = [(0, normalized.len())];
        let spans: &[(usize, usize)] = if spans.is_empty() { &whole } else { &spans };
        // The reading of the buyer's words as one text, for clauses too short to stand alone.
        let message = (spans.len() > 1).then(|| {
            let joined: Vec<&str> = spans.iter().map(|&(s, e)| &normalized[s..e]).collect();
            self.predict(text, &joined.join(" "))
        });
        let mut decay = 1.0f32;
        for &(s, e) in spans {
            let mut p = self.predict(text, &normalized[s..e]);
            if let Some(m) = &message {
                lean_on_message(&mut p, m);
            }
            let Some((top, second)) = top_two(&p) else {
                continue;
            };
            for (g, v) in guesses.iter_mut().zip(&p) {
                *g = g.max(*v);
            }
            if Some(top) != unknown {
                best_known = best_known.max(p[top]);
            }
            let confident = p[top] >= self.thresholds.min_confidence
                && p[top] - second >= self.thresholds.min_margin
                && Some(top) != unknown;
            if !confident {
                // The clause ends before its question mark.
                unread_question |=
                    is_question(&normalized[s..e]) || normalized[e..].starts_with('?');
                let topic = (0..k)
                    .filter(|&c| filler[c] == 0.0)
                    .max_by(|&a, &b| p[a].total_cmp(&p[b]));
                if let Some(c) = topic
                    && unread.as_ref().is_none_or(|(u, q)| p[c] > q[*u])
                {
                    unread = Some((c, p));
                }
                continue;
            }
            let weight =
                (1.0 - p.iter().zip(&filler).map(|(a, b)| a * b).sum::<f32>()).max(0.05) * decay;
            decay *= CLAUSE_DECAY;
            for (c, v) in combined.iter_mut().zip(&p) {
                *c += weight * v;
            }
            total_weight += weight;
        }
        // Politeness around a clause the model could not read: 你好,满减怎么算的 is about
        // the unread clause, not a greeting, when the model leans to a topic there at all; a
        // thanks followed by a question it cannot read (谢谢,积分怎么用?) is no closing.
        let polite = (0..k)
            .filter(|&c| Some(c) != unknown)
            .max_by(|&a, &b| combined[a].total_cmp(&combined[b]))
            .filter(|&c| total_weight > 0.0 && filler[c] > 0.0);
        let mut promoted = None;
        if let Some(top) = polite {
            match unread {
                Some((c, p)) if p[c] >= CONTENT_LEAN => {
                    for (v, q) in combined.iter_mut().zip(&p) {
                        *v += q;
                    }
                    total_weight += 1.0;
                    promoted = Some(c);
                }
                _ if unread_question && self.labels[top] == CLOSING => total_weight = 0.0,
                _ => {}
            }
        }
        // Fragments that say something together: when no clause counts (or a closing was
        // voided above), a message the model reads surely as one topic is about that topic.
        if total_weight == 0.0
            && let Some(m) = &message
            && let Some((top, second)) = top_two(m)
            && m[top] >= self.thresholds.min_confidence
            && m[top] - second >= self.thresholds.min_margin
            && filler[top] == 0.0
        {
            combined.copy_from_slice(m);
            total_weight = 1.0;
        }
        if total_weight == 0.0 {
            // Confidence in abstaining: the unknown class itself, or doubt in the best guess.
            let doubt = 1.0 - best_known.min(1.0);
            let sure_unknown = unknown.map_or(0.0, |u| guesses[u]);
            let mut intents = vec![Scored {
                intent: UNKNOWN_INTENT.to_string(),
                confidence: doubt.max(sure_unknown),
            }];
            intents.extend(
                self.ranked(&guesses)
                    .into_iter()
                    .filter(|s| s.intent != UNKNOWN_INTENT)
                    .take(2),
            );
            return Detection {
                intents,
                abstained: true,
                distribution: vec![0.0; k],
                guesses,
            };
        }
        for c in &mut combined {
            *c /= total_weight;
        }
        let mut intents: Vec<Scored> = self
            .ranked(&combined)
            .into_iter()
            .filter(|s| s.intent != UNKNOWN_INTENT)
            .collect();
        if let Some(c) = promoted {
            let label = &self.labels[c];
            intents.retain(|s| s.intent != *label);
            intents.insert(
                0,
                Scored {
                    intent: label.clone(),
                    confidence: combined[c],
                },
            );
        }
        intents.truncate(MAX_LISTED);
        Detection {
            intents,
            abstained: false,
            distribution: combined,
            guesses,
        }
    }

    /// Reads an abstained message in the context of the conversation's last intent: a
    /// fragment such as 那要多久 or 还没到呢 after a logistics exchange is logistics. It
    /// applies only when the model leaned towards that intent at all (≥ `CONTEXT_LEAN`) and
    /// did not see a bare confirmation (`unknown` below `CONTEXT_UNKNOWN_MAX`), so 对 or 嗯
    /// stay `unknown`. Returns whether the detection changed.
    ///
    /// A `short` message the model reads only weakly as something else (below
    /// `CONTEXT_WEAK`, not a filler) also continues the last intent when the model gives that
    /// intent any weight (≥ `CONTEXT_WEAK_LEAN`): 那要多久 after 快递到哪了 asks about the
    /// parcel, not about dispatch.
    pub fn apply_context(&self, d: &mut Detection, last_intent: &str, short: bool) -> bool {
        // Politeness is no topic to continue: after 好的 the next fragment is not a closing.
        if is_filler(last_intent) {
            return false;
        }
        let Some(li) = self.labels.iter().position(|l| l == last_intent) else {
            return false;
        };
        let unknown = self.labels.iter().position(|l| l == UNKNOWN_INTENT);
        let p_unknown = unknown.map_or(0.0, |u| d.guesses[u]);
        let lean = d.guesses[li];
        if d.abstained {
            if lean < CONTEXT_LEAN || p_unknown >= CONTEXT_UNKNOWN_MAX {
                return false;
            }
        } else {
            let weak = d
                .intents
                .first()
                .is_some_and(|s| s.confidence < CONTEXT_WEAK);
            let filler = is_filler(d.primary());
            if !short || !weak || filler || d.primary() == last_intent || lean < CONTEXT_WEAK_LEAN {
                return false;
            }
        }
        self.adopt(d, li, (lean + CONTEXT_BONUS).min(0.95));
        true
    }

    /// The topic of the agent's question in `normalized`: what its last clause (the one
    /// asking; 亲, before it is only address) is about, when the model is sure of it or leans
    /// to a topic (≥ `QUESTION_LEAN`). Greetings, closings and `unknown` are not topics.
    pub fn question_topic(&self, text: &Text, normalized: &str) -> Option<String> {
        let &(a, b) = crate::text::clauses(normalized).last()?;
        let d = self.detect(text, &normalized[a..b]);
        if !d.abstained && !is_filler(d.primary()) {
            return Some(d.primary().to_string());
        }
        self.labels
            .iter()
            .zip(&d.guesses)
            .filter(|(l, p)| !is_filler(l) && **p >= QUESTION_LEAN)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(l, _)| l.clone())
    }

    /// Reads a short buyer message as the answer to the agent's open question about
    /// `question_intent` (您要哪个颜色? → 黑色): when the model found no topic in it, the
    /// message continues the question's topic. A message with a topic of its own keeps it;
    /// the caller leaves out bare yes/no replies ([`crate::text::is_bare_reply`]).
    /// Returns whether the detection changed.
    pub fn apply_answer(&self, d: &mut Detection, question_intent: &str) -> bool {
        if is_filler(question_intent) {
            return false;
        }
        let Some(qi) = self.labels.iter().position(|l| l == question_intent) else {
            return false;
        };
        if !d.abstained {
            return false;
        }
        self.adopt(d, qi, d.guesses[qi].max(ANSWER_CONFIDENCE));
        true
    }

    /// Makes label `at` the detection's primary intent with `confidence`, the model's best
    /// other guesses after it: how the conversation overrides a reading.
    fn adopt(&self, d: &mut Detection, at: usize, confidence: f32) {
        let label = &self.labels[at];
        let mut intents = vec![Scored {
            intent: label.clone(),
            confidence,
        }];
        intents.extend(
            self.ranked(&d.guesses)
                .into_iter()
                .filter(|s| s.intent != UNKNOWN_INTENT && s.intent != *label)
                .take(2),
        );
        let mut distribution = vec![0.0; self.labels.len()];
        distribution[at] = confidence;
        d.intents = intents;
        d.abstained = false;
        d.distribution = distribution;
    }

    /// Labels by decreasing probability, above the listing floor; ties by label.
    fn ranked(&self, dist: &[f32]) -> Vec<Scored> {
        self.ranked_at(dist, LIST_FLOOR)
            .into_iter()
            .map(|c| Scored {
                intent: self.labels[c].clone(),
                confidence: dist[c],
            })
            .collect()
    }

    /// Label indices at or above `floor`, by decreasing probability; ties by label.
    fn ranked_at(&self, dist: &[f32], floor: f32) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.labels.len().min(dist.len()))
            .filter(|&c| dist[c] >= floor)
            .collect();
        v.sort_by(|&a, &b| {
            dist[b]
                .total_cmp(&dist[a])
                .then_with(|| self.labels[a].cmp(&self.labels[b]))
        });
        v
    }

    /// The highest probability any clause of the message gave `label`: how surely the buyer
    /// asks for it, whatever else the message asks (0 for an unknown label).
    pub fn asked(&self, d: &Detection, label: &str) -> f32 {
        self.labels
            .iter()
            .position(|l| l == label)
            .and_then(|c| d.guesses.get(c).copied())
            .unwrap_or(0.0)
    }

    /// The intents some clause of the message leaned to at `floor` or more that the
    /// detection does not list, best first, with the probability: what the slots the listed
    /// intents leave free hedge on, rather than repeat the primary. Empty when nothing else
    /// was in view.
    pub fn hedges<'a>(&'a self, d: &Detection, floor: f32) -> Vec<(&'a str, f32)> {
        self.ranked_at(&d.guesses, floor)
            .into_iter()
            .map(|c| (self.labels[c].as_str(), d.guesses[c]))
            .filter(|(label, _)| {
                *label != UNKNOWN_INTENT && !d.intents.iter().any(|s| s.intent == *label)
            })
            .collect()
    }
}

/// Blends a clause's distribution with the whole message's by how unsure the clause is
/// (weight `MESSAGE_BLEND × (1 − its best probability)`): 可以吗 in 现在取消,可以吗 is read
/// with the cancellation, while a clause the model is sure of keeps its own reading, so two
/// questions in one message stay two.
fn lean_on_message(clause: &mut [f32], message: &[f32]) {
    let best = clause.iter().copied().fold(0.0f32, f32::max);
    let w = MESSAGE_BLEND * (1.0 - best);
    for (c, m) in clause.iter_mut().zip(message) {
        *c = (1.0 - w) * *c + w * m;
    }
}

/// A topical example learned with a filler around it: indices into the examples of all
/// intents in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FillerRow {
    class: usize,
    example: usize,
    filler: usize,
    /// Whether the filler comes before the example.
    before: bool,
}

impl FillerRow {
    /// The row's two examples in the order they are read.
    fn parts(&self) -> (usize, usize) {
        if self.before {
            (self.filler, self.example)
        } else {
            (self.example, self.filler)
        }
    }
}

/// Every example as `(class, intent, text)`, in order: what [`FillerRow`] indices point into.
fn flatten<'i, 'e>(data: &[(&'i str, &'e [String])]) -> Vec<(usize, &'i str, &'e str)> {
    data.iter()
        .enumerate()
        .flat_map(|(class, (id, examples))| {
            examples.iter().map(move |ex| (class, *id, ex.as_str()))
        })
        .collect()
}

/// Each example of a topical intent with a filler around it: a greeting before it, a
/// closing of at most [`FILLER_CLOSING_CHARS`] after it, or an `unknown` example before or
/// after it. The filler is the first on a ring of all fillers sorted by hash at or after the
/// example's hash, so adding or removing a filler example changes only the rows whose arc it
/// falls in, like the training order (no reshuffle).
fn with_fillers(examples: &[(usize, &str, &str)]) -> Vec<FillerRow> {
    let flat = examples.iter().copied().enumerate();
    let mut ring: Vec<(u64, &str, usize)> = flat
        .clone()
        .filter(|(_, (_, id, ex))| {
            is_filler(id) && (*id != CLOSING || ex.chars().count() <= FILLER_CLOSING_CHARS)
        })
        .map(|(at, (_, id, ex))| (hash(b'f', ex) ^ hash(b'k', id), id, at))
        .collect();
    ring.sort_unstable();
    if ring.is_empty() {
        return Vec::new();
    }
    flat.filter(|(_, (_, id, _))| !is_filler(id))
        .map(|(example, (class, _, ex))| {
            let h = hash(b'a', ex);
            let (_, filler_id, filler) = ring[ring.partition_point(|f| f.0 < h) % ring.len()];
            let before = match filler_id {
                "greeting" => true,
                CLOSING => false,
                _ => h & 1 == 0,
            };
            FillerRow {
                class,
                example,
                filler,
                before,
            }
        })
        .collect()
}

/// Whether `label` is politeness or doubt rather than a topic: a greeting, a closing, or
/// `unknown`.
pub fn is_filler(label: &str) -> bool {
    FILLER.iter().any(|(f, _)| *f == label)
}

fn top_two(p: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<usize> = None;
    let mut second = 0.0f32;
    for (i, &v) in p.iter().enumerate() {
        match best {
            Some(b) if v <= p[b] => second = second.max(v),
            Some(b) => {
                second = second.max(p[b]);
                best = Some(i);
            }
            None => best = Some(i),
        }
    }
    best.map(|b| (b, second))
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// FNV-1a, so feature ids are stable across runs and platforms.
fn hash(kind: u8, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    h = h.wrapping_mul(0x100_0000_01b3);
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A bijective 64-bit finalizer (SplitMix64's), so nearby keys land far apart.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Folds every run of digits to one `0`: numbers matter by kind, not value.
fn fold_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('0');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// Hashed features of one normalized clause: jieba tokens, character 1-3-grams with
/// boundary marks (so a bare 好的 differs from 好的 inside a sentence), and a length bucket.
fn featurize(text: &Text, normalized: &str) -> Vec<u64> {
    let folded = fold_digits(normalized);
    let tokens = text.tokens(&folded);
    features_of(&folded, tokens.iter().map(|t| t.word))
}

/// An example cut once: its normalized, digit-folded text and its words' byte ranges.
struct Cut {
    folded: String,
    words: Vec<(usize, usize)>,
}

impl Cut {
    fn new(text: &Text, example: &str) -> Self {
        let folded = fold_digits(&crate::text::normalize(example));
        let words = text
            .tokens(&folded)
            .iter()
            .map(|t| (t.start, t.end))
            .collect();
        Cut { folded, words }
    }

    /// The cut of `self` and `other` joined by a space. Normalization, digit folding and
    /// jieba each treat a space as a boundary (nothing runs, folds or is cut across it), so
    /// this is what cutting the joined text would give, without a second jieba run. (One
    /// contrived exception: an emoticon code left open at the end of the first, `#E-s[`
    /// with no `]`, which a `]` early in the second would close in the joined text.)
    fn joined(&self, other: &Cut) -> Cut {
        let shift = self.folded.len() + 1;
        let mut folded = String::with_capacity(shift + other.folded.len());
        folded.push_str(&self.folded);
        folded.push(' ');
        folded.push_str(&other.folded);
        let words = self
            .words
            .iter()
            .copied()
            .chain(other.words.iter().map(|&(a, b)| (a + shift, b + shift)))
            .collect();
        Cut { folded, words }
    }

    fn features(&self) -> Vec<u64> {
        features_of(
            &self.folded,
            self.words.iter().map(|&(a, b)| &self.folded[a..b]),
        )
    }

    /// The features of the example with a word of a synonym group replaced
    /// ([`crate::text::Synonyms::replacement`]), the synonym standing as one word where the
    /// replaced word stood; `None` when it has no word of any group.
    fn with_synonym(&self, text: &Text, seed: u64) -> Option<Vec<u64>> {
        let r = text
            .synonyms()
            .replacement(&self.folded, &self.words, seed)?;
        let folded = &self.folded;
        let replaced = format!("{}{}{}", &folded[..r.start], r.word, &folded[r.end..]);
        let word = |&(a, b): &(usize, usize)| &folded[a..b];
        let words = self.words[..r.first_token]
            .iter()
            .map(word)
            .chain(std::iter::once(r.word))
            .chain(self.words[r.last_token + 1..].iter().map(word));
        Some(features_of(&replaced, words))
    }
}

/// Features of digit-folded text from its words.
fn features_of<'a>(folded: &str, words: impl Iterator<Item = &'a str>) -> Vec<u64> {
    let mut out = Vec::with_capacity(folded.len() * 3);
    for w in words {
        out.push(hash(b'w', w));
    }
    // The characters with boundary marks, joined once: each n-gram is hashed as a slice of
    // it (the bytes of its characters, as a string of them would be), no string per n-gram.
    let mut joined = String::with_capacity(folded.len() + 2);
    let mut at: Vec<usize> = Vec::with_capacity(folded.len() + 3);
    for c in std::iter::once('^')
        .chain(folded.chars().filter(|c| c.is_alphanumeric()))
        .chain(std::iter::once('$'))
    {
        at.push(joined.len());
        joined.push(c);
    }
    at.push(joined.len());
    let chars = at.len() - 1;
    for n in 1..=3usize {
        for i in 0..(chars + 1).saturating_sub(n) {
            if n == 1 && (i == 0 || i == chars - 1) {
                continue;
            }
            out.push(hash(b'0' + n as u8, &joined[at[i]..at[i + n]]));
        }
    }
    let len = chars.saturating_sub(2);
    let bucket = match len {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        4..=6 => "4-6",
        7..=12 => "7-12",
        _ => "13+",
    };
    out.push(hash(b'l', bucket));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn text() -> &'static Text {
        static TEXT: OnceLock<Text> = OnceLock::new();
        TEXT.get_or_init(|| Text::new(None, None, &[]).unwrap())
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// A tiny team-written training set: enough to check the mechanics, not quality.
    fn model() -> Classifier {
        model_with(Thresholds::default())
    }

    /// The tiny training set, intent by intent.
    fn training_data() -> Vec<(&'static str, Vec<String>)> {
        let greeting = s(&[
            "在吗",
            "你好",
            "有人吗",
            "在不在",
            "亲在吗",
            "哈喽",
            "你好呀",
            "在么",
        ]);
        let logistics = s(&[
            "快递到哪了",
            "物流怎么不动了",
            "我的包裹到哪了",
            "怎么还没到",
            "查下物流",
            "快递几天了还没到",
            "物流信息没更新",
            "到哪里了",
        ]);
        let shipping = s(&[
            "什么时候发货",
            "今天能发货吗",
            "几号发货",
            "发什么快递",
            "能发顺丰吗",
            "多久发货",
            "明天能发吗",
            "还没发货吗",
        ]);
        let closing = s(&[
            "谢谢",
            "好的",
            "好的谢谢",
            "拜拜",
            "没问题了",
            "行",
            "谢谢亲",
            "好嘞",
        ]);
        let unknown = s(&["对", "嗯", "是的", "123456", "嗯嗯", "对的", "8888", "是"]);
        vec![
            ("greeting", greeting),
            ("logistics", logistics),
            ("shipping", shipping),
            ("closing", closing),
            ("unknown", unknown),
        ]
    }

    fn train_on(data: &[(&'static str, Vec<String>)], thresholds: Thresholds) -> Classifier {
        let data: Vec<(&str, &[String])> =
            data.iter().map(|(id, ex)| (*id, ex.as_slice())).collect();
        Classifier::train(text(), &data, thresholds)
    }

    fn model_with(thresholds: Thresholds) -> Classifier {
        train_on(&training_data(), thresholds)
    }

    fn detect(m: &Classifier, msg: &str) -> Detection {
        m.detect(text(), &crate::text::normalize(msg))
    }

    #[test]
    fn primary_intent_table() {
        let m = model();
        let cases: &[(&str, &str)] = &[
            ("在吗", "greeting"),
            ("快递到哪了呀", "logistics"),
            ("什么时候能发货", "shipping"),
            ("好的谢谢亲", "closing"),
            ("在吗?什么时候发货", "shipping"),
            ("嗯", "unknown"),
            ("", "unknown"),
            ("🙂🙂", "unknown"),
        ];
        for (msg, want) in cases {
            let d = detect(&m, msg);
            assert_eq!(d.primary(), *want, "{msg:?} → {:?}", d.intents);
        }
    }

    #[test]
    fn politeness_around_an_unread_clause() {
        // A strict model, so that content clauses go unread while politeness stays sure.
        let m = model_with(Thresholds {
            min_confidence: 0.9,
            min_margin: 0.1,
        });
        // (message, primary, abstained): a thanks followed by a question the model cannot
        // read is no closing; a greeting before a clause it leans on yields to that clause.
        let cases: &[(&str, &str, bool)] = &[
            ("谢谢", "closing", false),
            ("谢谢,哪个颜色好看?", "unknown", true),
            ("谢谢 哪个颜色好看", "closing", false),
            ("你好,积分怎么用?", "logistics", false),
        ];
        for (msg, want, abstained) in cases {
            let d = detect(&m, msg);
            assert_eq!(
                (d.primary(), d.abstained),
                (*want, *abstained),
                "{msg:?} → {:?}",
                d.intents
            );
        }
    }

    #[test]
    fn training_order_follows_content_not_position() {
        // The same examples listed in another order train the same model: an edit to one
        // example cannot reshuffle how all the others are learned.
        let a = model();
        let mut data = training_data();
        data[0].1.reverse();
        data[1].1.rotate_left(6);
        data[2].1.rotate_left(7);
        data[3].1.rotate_left(3);
        data[4].1.swap(0, 1);
        let b = train_on(&data, Thresholds::default());
        for msg in [
            "在吗",
            "快递到哪了呀",
            "今天发货吗",
            "好的",
            "嗯嗯",
            "物流不动了谢谢",
        ] {
            let norm = crate::text::normalize(msg);
            // Equal up to the order floats are summed in (feature ids follow first sight).
            let (pa, pb) = (a.predict(text(), &norm), b.predict(text(), &norm));
            assert!(
                pa.iter().zip(&pb).all(|(x, y)| (x - y).abs() < 1e-5),
                "{msg}: {pa:?} vs {pb:?}"
            );
        }
    }

    #[test]
    fn two_questions_list_both() {
        let m = model();
        let d = detect(&m, "物流怎么不动了,还有今天能发货吗");
        let names: Vec<&str> = d.intents.iter().map(|s| s.intent.as_str()).collect();
        assert!(
            names.contains(&"logistics") && names.contains(&"shipping"),
            "{names:?}"
        );
        // Each is asked more surely than its share of the reading says: the shares add up
        // to one, while each clause asks for its own intent.
        for s in &d.intents {
            let asked = m.asked(&d, &s.intent);
            assert!(
                asked > s.confidence,
                "{}: {asked} vs {}",
                s.intent,
                s.confidence
            );
        }
        assert_eq!(m.asked(&d, "no-such-intent"), 0.0);
    }

    #[test]
    fn of_two_questions_read_alike_the_earlier_is_primary() {
        assert_primaries(
            &model(),
            &[
                ("快递到哪了,什么时候发货", "logistics"),
                ("什么时候发货,快递到哪了", "shipping"),
                ("查下物流,几号发货", "logistics"),
                ("几号发货,查下物流", "shipping"),
            ],
        );
    }

    fn assert_primaries(m: &Classifier, table: &[(&str, &str)]) {
        for (message, want) in table {
            let d = detect(m, message);
            assert_eq!(d.primary(), *want, "{message}: {:?}", d.intents);
        }
    }

    #[test]
    fn distribution_is_a_distribution() {
        let m = model();
        let p = m.predict(text(), "到哪了");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        let d = detect(&m, "到哪了");
        assert!(
            d.intents
                .windows(2)
                .all(|w| w[0].confidence >= w[1].confidence)
        );
    }

    #[test]
    fn context_reads_fragments_but_not_confirmations() {
        let m = Classifier::train(
            text(),
            &[
                (
                    "logistics",
                    &s(&[
                        "快递到哪了",
                        "物流怎么不动了",
                        "还没到",
                        "到哪里了",
                        "几天能到",
                    ]),
                ),
                ("shipping", &s(&["什么时候发货", "今天能发吗", "几号发货"])),
                ("closing", &s(&["谢谢", "好的", "拜拜"])),
                ("unknown", &s(&["对", "嗯", "是的", "对的"])),
            ],
            Thresholds {
                min_confidence: 0.995,
                min_margin: 0.99,
            },
        );
        let mut frag = detect(&m, "那还要多久能到呢");
        assert!(frag.abstained, "{:?}", frag.intents);
        assert!(m.apply_context(&mut frag, "logistics", false));
        assert_eq!(frag.primary(), "logistics");
        let mut yes = detect(&m, "对");
        assert!(
            !m.apply_context(&mut yes, "logistics", true),
            "a bare confirmation stays unknown: {:?}",
            yes.guesses
        );
        let mut confident = detect(&m, "谢谢");
        confident.abstained = false;
        assert!(
            !m.apply_context(&mut confident, "logistics", true),
            "a filler stays"
        );
        // A closing is no topic: the fragment after it stays as the model read it.
        let mut after_thanks = detect(&m, "那还要多久能到呢");
        assert!(!m.apply_context(&mut after_thanks, "closing", false));
        assert!(after_thanks.abstained);
    }

    #[test]
    fn training_is_deterministic() {
        let a = detect(&model(), "快递什么时候到");
        let b = detect(&model(), "快递什么时候到");
        assert_eq!(a, b);
    }

    #[test]
    fn abstains_with_guesses_when_unsure() {
        let m = Classifier::train(
            text(),
            &[("greeting", &s(&["在吗"])), ("logistics", &s(&["到哪了"]))],
            Thresholds {
                min_confidence: 1.01,
                min_margin: 0.0,
            },
        );
        let d = detect(&m, "在吗");
        assert!(d.abstained);
        assert_eq!(d.primary(), UNKNOWN_INTENT);
        assert!(d.intents.len() >= 2, "{:?}", d.intents);
    }

    #[test]
    fn an_unsure_clause_is_read_with_the_message() {
        let m = model();
        let shipping = m.labels().iter().position(|l| l == "shipping").unwrap();
        // Alone, 多久了 could ask about dispatch as well as the parcel; after 怎么还没 it
        // asks about the parcel: what the clause leaned to shipping moves toward what the
        // message as a whole says.
        let alone = detect(&m, "多久了").guesses[shipping];
        assert!(alone > 0.3, "{alone}");
        let within = detect(&m, "怎么还没,多久了").guesses[shipping];
        assert!(within < alone - 0.05, "{within} vs {alone}");
    }

    #[test]
    fn leaning_on_the_message_follows_the_clause_doubt() {
        // (clause, message, expected): a sure clause keeps its reading, a wholly unsure one
        // moves MESSAGE_BLEND × (1 − best) of the way to the message's.
        for (clause, message, want) in [
            ([1.0, 0.0], [0.0, 1.0], [1.0, 0.0]),
            ([0.5, 0.5], [0.0, 1.0], [0.375, 0.625]),
            ([0.8, 0.2], [0.0, 1.0], [0.72, 0.28]),
            ([0.6, 0.4], [0.6, 0.4], [0.6, 0.4]),
        ] {
            let mut p = clause;
            lean_on_message(&mut p, &message);
            for (got, want) in p.iter().zip(want) {
                assert!((got - want).abs() < 1e-6, "{clause:?} + {message:?}: {p:?}");
            }
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn fragments_read_surely_together_name_their_topic() {
        // A high floor, so that no fragment of these counts alone.
        let m = model_with(Thresholds {
            min_confidence: 0.6,
            min_margin: 0.05,
        });
        for (message, want) in [
            ("包裹 信息", "logistics"),
            ("能 顺丰", "shipping"),
            ("嗯 对", UNKNOWN_INTENT),
        ] {
            for fragment in message.split(' ') {
                assert!(detect(&m, fragment).abstained, "{fragment} counts alone");
            }
            let d = detect(&m, message);
            assert_eq!(d.primary(), want, "{message}: {:?}", d.intents);
            assert_eq!(d.abstained, want == UNKNOWN_INTENT, "{message}");
        }
    }

    #[test]
    fn politeness_run_into_a_question_is_no_topic_of_its_own() {
        // No punctuation to split at: the model itself must read the filler words as
        // politeness around the question (it learned the examples with fillers around them).
        assert_primaries(
            &model(),
            &[
                ("在不在几号发货呀", "shipping"),
                ("好的谢谢什么时候发货", "shipping"),
                ("查下物流谢谢亲", "logistics"),
            ],
        );
    }

    #[test]
    fn an_example_is_also_learned_with_its_synonym() {
        static WITH: OnceLock<Text> = OnceLock::new();
        let with = WITH.get_or_init(|| {
            let mut t = Text::new(None, None, &[]).unwrap();
            t.set_synonyms(crate::text::Synonyms::parse("退款 退钱\n").unwrap());
            t
        });
        let data = [
            (
                "return_exchange",
                s(&[
                    "退款什么时候到账",
                    "退款怎么还没到",
                    "申请退款",
                    "我要退款",
                    "退款进度",
                ]),
            ),
            (
                "logistics",
                s(&[
                    "快递到哪了",
                    "什么时候到",
                    "怎么还没到",
                    "物流到哪了",
                    "包裹什么时候到",
                ]),
            ),
        ];
        let view: Vec<(&str, &[String])> =
            data.iter().map(|(id, ex)| (*id, ex.as_slice())).collect();
        // How surely a model trained with `t` on `data` reads 退钱 as a refund.
        let read = |t: &Text, data: &[(&str, &[String])]| {
            let m = Classifier::train(t, data, Thresholds::default());
            let at = m
                .labels()
                .iter()
                .position(|l| l == "return_exchange")
                .unwrap();
            m.predict(t, &crate::text::normalize("退钱什么时候到"))[at]
        };
        let (plain, learned) = (read(text(), &view), read(with, &view));
        assert!(
            learned > plain + 0.05,
            "退钱 read as a refund: {learned} with the synonym, {plain} without"
        );
        // The synonym rows are keyed apart from their examples: training stays
        // order-independent (up to the order floats are summed in).
        let reversed: Vec<(&str, &[String])> = view.iter().rev().copied().collect();
        let again = read(with, &reversed);
        assert!((again - learned).abs() < 1e-5, "{again} vs {learned}");
    }

    #[test]
    fn a_joined_cut_is_the_cut_of_the_joined_text() {
        // Filler rows are cut from their parts: that must be what cutting the text read as
        // a whole gives, whatever sits at the seam.
        let t = text();
        for (a, b) in [
            ("在吗", "什么时候发货"),
            ("亲在不在", "iPhone15能用吗"),
            ("订单123456号", "789到哪了"),
            ("哈哈哈", "哈哈好的"),
            ("謝謝", "發貨了嗎"),
            ("好的~", "~拜拜"),
            ("😊", "退款到账没"),
            ("收到[数字x]个", "[订单x]"),
            ("ＸＬ码", "有货吗？？"),
            ("快递 物流", "包裹"),
        ] {
            let joined = Cut::new(t, a).joined(&Cut::new(t, b)).features();
            let whole = Cut::new(t, &format!("{a} {b}")).features();
            assert_eq!(joined, whole, "{a} | {b}");
        }
    }

    #[test]
    fn fillers_go_where_buyers_put_them() {
        fn view<'a>(d: &'a [(&'static str, Vec<String>)]) -> Vec<(&'static str, &'a [String])> {
            d.iter().map(|(id, ex)| (*id, ex.as_slice())).collect()
        }
        let base = training_data();
        let data = view(&base);
        let examples = |id: &str| data.iter().find(|(i, _)| *i == id).map_or(&[][..], |d| d.1);
        let is_one_of =
            |text: &str, ids: &[&str]| ids.iter().any(|id| examples(id).iter().any(|e| e == text));
        // Each row as `(class, intent of its example, text read)`.
        fn texts(data: &[(&'static str, &[String])]) -> Vec<(usize, &'static str, String)> {
            let flat = flatten(data);
            with_fillers(&flat)
                .into_iter()
                .map(|row| {
                    let (first, second) = row.parts();
                    let text = format!("{} {}", flat[first].2, flat[second].2);
                    (row.class, flat[row.example].1, text)
                })
                .collect()
        }
        let rows = texts(&data);
        // One row per topical example (logistics and shipping), none for the fillers.
        assert_eq!(rows.len(), 16);
        for (class, id, text) in &rows {
            assert_eq!(data[*class].0, *id);
            assert!(!is_filler(id), "{id}");
            // A greeting or `unknown` example before it, or a closing or `unknown` after.
            let before = text.split_once(' ').is_some_and(|(f, ex)| {
                is_one_of(ex, &[id]) && is_one_of(f, &["greeting", UNKNOWN_INTENT])
            });
            let after = text.rsplit_once(' ').is_some_and(|(ex, f)| {
                is_one_of(ex, &[id]) && is_one_of(f, &[CLOSING, UNKNOWN_INTENT])
            });
            assert!(before || after, "{text}");
        }
        // A closing longer than a filler is never one, even when it is the only closing.
        let mut long = training_data();
        long[3].1 = vec!["东西收到了质量很好下次还来".into()];
        let rows = texts(&view(&long));
        assert_eq!(rows.len(), 16);
        assert!(
            rows.iter().all(|(_, _, t)| !t.contains("质量很好")),
            "{rows:?}"
        );
        // Adding a filler example moves only the rows whose arc of the ring it falls in.
        let mut more = training_data();
        more[4].1.push("好滴好滴好滴".into());
        let moved = texts(&view(&more))
            .iter()
            .zip(&texts(&data))
            .filter(|(a, b)| a != b)
            .count();
        assert!(moved <= 3, "{moved} of 16 rows changed");
    }
}
