//! The core entry point: `suggest(shop, conversation, message)` → [`Suggestions`].
//!
//! Pipeline: normalize → clauses → intent → candidates (the detected intents' phrases plus
//! BM25 hits from the shop's index) → rank → render with conversation and shop variables.
//! No sockets, no JSON: the server and the CLI wrap it.
//!
//! Invariant: every loaded shop has a classifier trained from its examples and an index
//! built from exactly its phrases (the index fingerprint covers the phrasebook files and the
//! tokenizer's dictionary), so every search hit maps to a phrase in memory.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::compliance::Report;
use crate::conversation::{self, ContextUpdate, View};
use crate::index::{Opened, ShopIndex, phrase_key};
use crate::intent::{Classifier, Thresholds};
use crate::phrasebook::{OrderState, Phrase, Shop, UNKNOWN_INTENT, Window, load_root};
use crate::rank::{Candidate, rank};
use crate::text::{Text, normalize};
use crate::{Error, Result};

/// Most suggestions a caller may ask for.
pub const MAX_SUGGESTIONS: usize = 10;
/// Longest buyer message accepted, in characters; longer ones are cut (a pasted essay gets
/// suggestions for its beginning rather than an error).
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Phrases per detected intent considered (best by priority), besides lexical hits: without
/// a lexical hit a phrase of lower priority cannot outrank them, and with one it is a hit.
const PER_INTENT: usize = 8;
/// The share of the reading the topic of an offer the buyer accepted with a bare yes stands
/// for when its replies are ranked: enough for a slot (the rank's floor is 0.08), below a
/// confident reading's own replies.
const OFFER_SHARE: f32 = 0.3;
/// Lexical hits considered at most (those the order state and campaign window allow).
const BM25_HITS: usize = 24;
/// A lexical hit counts only when its BM25 is at least this share of the best hit that may
/// be shown: weak matches (one common word of a long message) otherwise lift generic phrases
/// over the right one. On the good-replies set (docs/quality.md) the first suggestion was
/// good in 0.574 of rows with every hit counted, 0.626 at 0.5 and 0.659 at 0.7 (0.637 at
/// 0.8).
const LEXICAL_RATIO: f32 = 0.7;
/// Ranked candidates beyond the limit, to replace suggestions the compliance gate blocks.
const SPARE: usize = 4;
/// When the engine abstains, its guesses score at this share of their probability.
const GUESS_DISCOUNT: f32 = 0.5;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub phrasebook: PathBuf,
    pub index: PathBuf,
    /// Suggestions per message (≤ [`MAX_SUGGESTIONS`]).
    pub suggestions: usize,
    pub thresholds: Thresholds,
    pub conversations: usize,
    pub conversation_ttl: Duration,
}

impl Options {
    pub fn new(phrasebook: impl Into<PathBuf>, index: impl Into<PathBuf>) -> Self {
        Options {
            phrasebook: phrasebook.into(),
            index: index.into(),
            suggestions: 3,
            thresholds: Thresholds::default(),
            conversations: 100_000,
            conversation_ttl: Duration::from_secs(6 * 3600),
        }
    }
}

/// One suggested reply, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub phrase_id: String,
    pub intent: String,
    pub text: String,
    /// Ranking score: orders the suggestions, not meant to be read as a probability.
    pub score: f32,
    /// 0..1: how likely the reply's intent is what the buyer wants (the model's probability;
    /// its calibration on real messages is measured by `huashu eval`).
    pub confidence: f32,
    /// Variables without a value; their `{placeholders}` remain in `text`.
    pub missing: Vec<String>,
    pub code: Option<String>,
}

/// The engine's answer for one buyer message.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestions {
    pub intents: Vec<IntentRead>,
    pub abstained: bool,
    /// How the conversation shaped the intents.
    pub reading: Reading,
    pub items: Vec<Suggestion>,
    /// Suggestions the compliance gate removed after rendering.
    pub blocked: usize,
    /// Time spent in the engine.
    pub elapsed: Duration,
}

/// How the message was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// On its own.
    #[default]
    AsWritten,
    /// Together with this many fragments the buyer sent just before.
    Fragments(usize),
    /// As the answer to the agent's open question.
    Answer,
    /// In the light of the conversation's last intent.
    LastIntent,
}

impl Reading {
    pub fn as_str(self) -> &'static str {
        match self {
            Reading::AsWritten => "as_written",
            Reading::Fragments(_) => "fragments",
            Reading::Answer => "answer",
            Reading::LastIntent => "last_intent",
        }
    }
}

/// A moment as the engine needs it: wall-clock Unix seconds (campaign windows) and a
/// monotonic instant (conversation timing).
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub unix: i64,
    pub mono: Instant,
}

impl At {
    pub fn now() -> At {
        At {
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            mono: Instant::now(),
        }
    }
}

impl Loaded {
    /// The phrase at position `i` of [`Loaded::at`].
    fn phrase(&self, i: usize) -> &Phrase {
        let (a, b) = self.at[i];
        &self.shop.intents[a as usize].phrases[b as usize]
    }
}

/// A buyer message this short (characters, normalized) is a fragment to read with the
/// next one even when the model is sure of it (在吗, 那个).
const FRAGMENT_CHARS: usize = 4;
/// A buyer message this short may be the answer to the agent's open question.
const ANSWER_CHARS: usize = 12;

/// A shop ready to serve. Immutable once built: an edit builds a new one and swaps it in, so
/// a suggestion in flight keeps a consistent view.
struct Loaded {
    shop: Shop,
    classifier: Arc<Classifier>,
    /// Shared by successive `Loaded`s of the shop; updated in place by edits.
    index: Arc<ShopIndex>,
    index_status: Opened,
    /// Highest phrase revision in the shop's files: the shop's version.
    version: u64,
    /// Enabled phrases by key.
    by_key: FxHashMap<u64, usize>,
    /// Where each phrase of the shop is: (intent, phrase) positions in `shop.intents`,
    /// so phrases are held once, in the shop.
    at: Vec<(u32, u32)>,
    /// Character bigrams of each phrase's normalized text, parallel to `at`.
    grams: Vec<Box<[u16]>>,
    /// Parallel to `at`: blocked when rendered with shop policy alone.
    policy_render_blocked: Vec<bool>,
    /// Parallel to `at`: where each phrase may be shown.
    gates: Vec<Gate>,
    /// Per intent: enabled phrases by decreasing priority, then id.
    by_intent: FxHashMap<String, Vec<usize>>,
}

/// A served shop's phrasebook, shared with the engine ([`Engine::shop_ref`]).
pub struct ShopRef(Arc<Loaded>);

impl std::ops::Deref for ShopRef {
    type Target = Shop;
    fn deref(&self) -> &Shop {
        &self.0.shop
    }
}

/// One detected intent as a suggestion list reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentRead {
    pub intent: String,
    /// Its share of the reading: the shares of a message's intents add up to at most 1, so
    /// each of two questions gets about half. The list is sorted by it.
    pub confidence: f32,
    /// How surely the buyer asks for it: the share, or the best probability any clause gave
    /// it if higher, as the suggestions of the intent show it. For `unknown`, the share.
    pub asked: f32,
}

/// Where a phrase may be shown, packed beside the others: the lexical search asks it of
/// every hit it scores, and the phrase itself is two indirections away. Two bytes, since a
/// server holds one per phrase of every shop; the few phrases with a campaign window are
/// read for it.
#[derive(Debug, Clone, Copy)]
struct Gate {
    /// Bit `state as u8` set for each order state the phrase is allowed in.
    states: u8,
    windowed: bool,
}

impl Gate {
    fn of(p: &Phrase) -> Self {
        let states = OrderState::ALL
            .into_iter()
            .filter(|&s| p.allowed_in(s))
            .fold(0, |bits, s| bits | 1 << s as u8);
        Gate {
            states,
            windowed: p.window != Window::default(),
        }
    }

    fn allows(self, state: OrderState) -> bool {
        self.states & 1 << state as u8 != 0
    }
}

/// Status of a loaded shop, for health checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopStatus {
    pub id: String,
    pub name: String,
    pub phrases: usize,
    pub intents: usize,
    pub index: Opened,
}

/// The suggestion engine for every shop of a phrasebook root.
/// Trained classifiers by what they were trained on: shops with the same intents and
/// examples (the default taxonomy, a chain's branches) share one model, trained once, held
/// once in memory. Weak, so a model no shop uses any more is freed.
#[derive(Default)]
struct Models(std::sync::Mutex<HashMap<String, std::sync::Weak<Classifier>>>);

impl Models {
    fn get_or_train(&self, text: &Text, shop: &Shop, thresholds: Thresholds) -> Arc<Classifier> {
        let mut h = Sha256::new();
        for i in &shop.intents {
            h.update(i.id.as_bytes());
            h.update([0xff]);
            for e in i.examples.iter() {
                h.update(e.as_bytes());
                h.update([0xfe]);
            }
        }
        h.update(format!("{thresholds:?}").as_bytes());
        let key = crate::phrasebook::hex_digest(h);
        let mut models = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = models.get(&key).and_then(std::sync::Weak::upgrade) {
            return m;
        }
        let data: Vec<(&str, &[String])> = shop
            .intents
            .iter()
            .map(|i| (i.id.as_str(), &i.examples[..]))
            .collect();
        let model = Arc::new(Classifier::train(text, &data, thresholds));
        models.retain(|_, w| w.strong_count() > 0);
        models.insert(key, Arc::downgrade(&model));
        model
    }
}

pub struct Engine {
    models: Models,
    text: Arc<Text>,
    /// What `{item}` can be filled with from a buyer's message (`dict/products.txt`).
    products: crate::extract::Products,
    text_fp: String,
    options: Options,
    shops: RwLock<BTreeMap<String, Arc<Loaded>>>,
    conversations: conversation::Store,
    suggestions: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shops", &self.read_shops().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What [`Engine::reload_shop`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reloaded {
    pub version: u64,
    /// Whether the classifier was retrained (examples changed).
    pub retrained: bool,
    /// Phrases deleted from / added to the index.
    pub removed: usize,
    pub added: usize,
}

impl Engine {
    /// Loads every shop under `options.phrasebook`, trains its classifier and opens (or
    /// rebuilds) its index under `options.index`.
    pub fn load(options: &Options) -> Result<Self> {
        let shops = load_root(&options.phrasebook)?;
        if shops.is_empty() {
            return Err(Error::Phrasebook {
                location: options.phrasebook.display().to_string(),
                message: "no shop found (expected <shop>/shop.toml)".into(),
            });
        }
        let file = |name: &str| {
            let p = options.phrasebook.join("dict").join(name);
            p.is_file().then_some(p)
        };
        let (base, dict) = (file("jieba.txt"), file("ecommerce.txt"));
        let mut words: Vec<String> = shops.iter().flat_map(|s| s.words.iter().cloned()).collect();
        words.sort();
        words.dedup();
        let mut text = Text::new(base.as_deref(), dict.as_deref(), &words)?;
        if let Some(synonyms) = file("synonyms.txt") {
            text.load_synonyms(&synonyms)?;
        }
        let products = match file("products.txt") {
            Some(path) => crate::read_dictionary(&path, crate::extract::Products::parse)?,
            None => crate::extract::Products::default(),
        };
        let text = Arc::new(text);
        let text_fp = text_fingerprint(&[base.as_deref(), dict.as_deref()], &words)?;
        std::fs::create_dir_all(&options.index)
            .map_err(|e| Error::io(format!("creating {}", options.index.display()), e))?;
        let models = Models::default();
        let mut loaded = BTreeMap::new();
        let prepared = crate::par_map(shops, |shop| {
            Self::prepare(
                &models,
                shop,
                &text,
                &text_fp,
                &options.index,
                options.thresholds,
            )
        });
        for l in prepared {
            let l = l?;
            loaded.insert(l.shop.id.clone(), Arc::new(l));
        }
        crate::release_freed_memory();
        Ok(Engine {
            models,
            text,
            products,
            text_fp,
            options: options.clone(),
            shops: RwLock::new(loaded),
            conversations: conversation::Store::new(
                options.conversations,
                options.conversation_ttl,
            ),
            suggestions: options.suggestions.clamp(1, MAX_SUGGESTIONS),
        })
    }

    fn prepare(
        models: &Models,
        shop: Shop,
        text: &Arc<Text>,
        text_fp: &str,
        index_root: &Path,
        thresholds: Thresholds,
    ) -> Result<Loaded> {
        let classifier = models.get_or_train(text, &shop, thresholds);
        let fingerprint = index_fingerprint(&shop, text_fp);
        let (index, index_status) = ShopIndex::open(
            &index_root.join(&shop.id),
            &shop,
            text.clone(),
            &fingerprint,
        )?;
        if index_status != Opened::Reused {
            // A build frees its writer's memory in this loader thread's arena, where the
            // next build would not reuse all of it: handing it back now keeps a cold start of
            // many shops from peaking at several times its final size.
            crate::release_freed_memory();
        }
        Self::assemble(shop, classifier, Arc::new(index), index_status, None)
    }

    /// Builds the serving structures of a shop around its classifier and index; what depends
    /// only on a phrase's text is taken from `previous` (the shop before an edit) for the
    /// phrases whose text did not change.
    fn assemble(
        shop: Shop,
        classifier: Arc<Classifier>,
        index: Arc<ShopIndex>,
        index_status: Opened,
        previous: Option<&Loaded>,
    ) -> Result<Loaded> {
        let at: Vec<(u32, u32)> = shop
            .intents
            .iter()
            .enumerate()
            .flat_map(|(a, i)| (0..i.phrases.len()).map(move |b| (a as u32, b as u32)))
            .collect();
        let phrases: Vec<&Phrase> = at
            .iter()
            .map(|&(a, b)| &shop.intents[a as usize].phrases[b as usize])
            .collect();
        // Normalizing and checking every text again was a third of an edit on a 10k-phrase
        // shop. A verdict carries over only while the policy and the lexicon (shared between
        // loads while its sources are unchanged) are the same.
        let known: FxHashMap<&str, (&[u16], bool)> =
            previous.map_or_else(FxHashMap::default, |l| {
                (0..l.at.len())
                    .map(|i| {
                        let verdict = l.policy_render_blocked[i];
                        (l.phrase(i).text.as_str(), (&*l.grams[i], verdict))
                    })
                    .collect()
            });
        let same_rules = previous.is_some_and(|l| {
            l.shop.policy == shop.policy && Arc::ptr_eq(&l.shop.lexicon, &shop.lexicon)
        });
        let grams = phrases
            .iter()
            .map(|p| match known.get(p.text.as_str()) {
                Some((g, _)) => Box::from(*g),
                None => crate::rank::bigrams(&normalize(&p.text)).into_boxed_slice(),
            })
            .collect();
        // The compliance verdict of each reply as rendered with shop policy alone: what
        // it is whenever the conversation supplies no value.
        let policy_render_blocked = phrases
            .iter()
            .map(|p| {
                // Without variables the reply is the text the load already checked (a block
                // there stops the load).
                if !p.text.contains('{') {
                    return false;
                }
                if let Some(&(_, verdict)) = known.get(p.text.as_str()).filter(|_| same_rules) {
                    return verdict;
                }
                let text = p
                    .template
                    .render(|name: &str| shop.policy.get(name).map(String::as_str))
                    .text;
                shop.lexicon.check(&text).blocked()
            })
            .collect();
        let gates = phrases.iter().map(|p| Gate::of(p)).collect();
        let mut by_key = FxHashMap::default();
        let mut by_intent: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        for (i, p) in phrases.iter().enumerate().filter(|(_, p)| p.enabled) {
            if let Some(other) = by_key.insert(phrase_key(&p.id), i) {
                return Err(Error::Phrasebook {
                    location: p.location(),
                    message: format!(
                        "phrase id `{}` collides with `{}`; rename one",
                        p.id, phrases[other].id
                    ),
                });
            }
            by_intent.entry(p.intent.clone()).or_default().push(i);
        }
        for list in by_intent.values_mut() {
            list.sort_by(|&a, &b| {
                phrases[b]
                    .priority
                    .cmp(&phrases[a].priority)
                    .then_with(|| phrases[a].id.cmp(&phrases[b].id))
            });
        }
        tracing::info!(shop = %shop.id, phrases = phrases.len(), intents = shop.intents.len(), index = ?index_status, "shop loaded");
        let version = shop.version;
        Ok(Loaded {
            shop,
            classifier,
            index,
            index_status,
            version,
            by_key,
            at,
            grams,
            policy_render_blocked,
            gates,
            by_intent,
        })
    }

    fn read_shops(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Loaded>>> {
        self.shops.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads one shop from disk and swaps it in: the classifier is retrained only when
    /// examples changed, the index is updated in place for the phrases that changed. A shop
    /// not loaded before is loaded as at startup. On any error the shop keeps serving what
    /// it served before.
    pub fn reload_shop(&self, id: &str) -> Result<Reloaded> {
        let dir = self.options.phrasebook.join(id);
        let lexicon = crate::phrasebook::default_lexicon(&self.options.phrasebook)?;
        let shop = crate::phrasebook::load_shop(&dir, &lexicon)?;
        self.install_shop(shop)
    }

    /// Trains the classifier for `shop`'s examples when they differ from the served shop's,
    /// so that an [`install_shop`](Self::install_shop) of it finds the model ready: a caller
    /// can train while it writes the files, and holds the returned model until the install
    /// (the cache keeps models only while something holds them). None when nothing changed.
    pub fn train_ahead(&self, shop: &Shop) -> Option<Arc<Classifier>> {
        let old = self.read_shops().get(&shop.id).cloned()?;
        (!same_examples(&old.shop, shop)).then(|| {
            self.models
                .get_or_train(&self.text, shop, self.options.thresholds)
        })
    }

    /// Serves `shop`, read and validated by the caller from what is now on disk under its
    /// id (curation validates an edit by loading the shop with the edit applied, then writes
    /// it: reading it back would only repeat that work, a quarter of an edit's time on a
    /// 10k-phrase shop). As [`reload_shop`](Self::reload_shop) otherwise. The shop must be
    /// what its files say: the next edit's validation takes its intents for files whose
    /// digest they record (`phrasebook::load_shop_with`).
    pub fn install_shop(&self, shop: Shop) -> Result<Reloaded> {
        let id = shop.id.clone();
        let old = self.read_shops().get(&id).cloned();
        let (loaded, reloaded) = match old {
            None => {
                let n = shop.phrases().count();
                let l = Self::prepare(
                    &self.models,
                    shop,
                    &self.text,
                    &self.text_fp,
                    &self.options.index,
                    self.options.thresholds,
                )?;
                let version = l.version;
                (
                    l,
                    Reloaded {
                        version,
                        retrained: true,
                        removed: 0,
                        added: n,
                    },
                )
            }
            Some(old) => {
                let same_examples = same_examples(&old.shop, &shop);
                let classifier = if same_examples {
                    old.classifier.clone()
                } else {
                    self.models
                        .get_or_train(&self.text, &shop, self.options.thresholds)
                };
                let fingerprint = index_fingerprint(&shop, &self.text_fp);
                let (removed, added) = old.index.update(&old.shop, &shop, &fingerprint)?;
                let l = Self::assemble(
                    shop,
                    classifier,
                    old.index.clone(),
                    Opened::Reused,
                    Some(&old),
                )?;
                let version = l.version.max(old.version);
                (
                    l,
                    Reloaded {
                        version,
                        retrained: !same_examples,
                        removed,
                        added,
                    },
                )
            }
        };
        let mut shops = self.shops.write().unwrap_or_else(|p| p.into_inner());
        shops.insert(
            id,
            Arc::new(Loaded {
                version: reloaded.version,
                ..loaded
            }),
        );
        Ok(reloaded)
    }

    /// A snapshot of the shop's phrasebook as it is being served.
    pub fn shop(&self, shop: &str) -> Result<Shop> {
        Ok(self.loaded(shop)?.shop.clone())
    }

    /// The shop's phrasebook as it is being served, without copying it (a large shop's copy
    /// costs milliseconds): it stays as it was while the handle lives, whatever edits land.
    pub fn shop_ref(&self, shop: &str) -> Result<ShopRef> {
        Ok(ShopRef(self.loaded(shop)?))
    }

    /// The shop's version: the highest revision among its phrases.
    pub fn version(&self, shop: &str) -> Result<u64> {
        Ok(self.loaded(shop)?.version)
    }

    /// Loaded shops with their status.
    pub fn shops(&self) -> Vec<ShopStatus> {
        self.read_shops()
            .values()
            .map(|l| ShopStatus {
                id: l.shop.id.clone(),
                name: l.shop.name.clone(),
                phrases: l.at.len(),
                intents: l.shop.intents.len(),
                index: l.index_status.clone(),
            })
            .collect()
    }

    /// The display name of a loaded shop.
    pub fn shop_name(&self, shop: &str) -> Option<String> {
        self.read_shops().get(shop).map(|l| l.shop.name.clone())
    }

    /// Ids of the loaded shops, sorted.
    pub fn shop_ids(&self) -> Vec<String> {
        self.read_shops().keys().cloned().collect()
    }

    pub fn has_shop(&self, shop: &str) -> bool {
        self.read_shops().contains_key(shop)
    }

    fn loaded(&self, shop: &str) -> Result<Arc<Loaded>> {
        self.read_shops()
            .get(shop)
            .cloned()
            .ok_or_else(|| Error::UnknownShop(shop.to_string()))
    }

    /// Suggestions for a buyer message. With a `conversation`, its memory (variables,
    /// order state, phrases sent) is used and the suggestions are remembered.
    pub fn suggest(
        &self,
        shop: &str,
        conversation: Option<&str>,
        message: &str,
    ) -> Result<Suggestions> {
        self.suggest_at(shop, conversation, message, At::now())
    }

    /// [`Engine::suggest`] as of `at`: only phrases whose campaign window is open at
    /// `at.unix` are suggested, and the conversation's timing (rapid-fire fragments, the
    /// agent's open question) is judged at `at.mono`.
    pub fn suggest_at(
        &self,
        shop: &str,
        conversation: Option<&str>,
        message: &str,
        at: At,
    ) -> Result<Suggestions> {
        let started = Instant::now();
        let now = at.unix;
        let l = self.loaded(shop)?;
        let view = match conversation {
            Some(c) => self.conversations.view(shop, c, at.mono),
            None => View::default(),
        };
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        let own = normalize(&message);
        // Fragments the buyer sent just before are read together with this message.
        let normalized = if view.fragments.is_empty() {
            own.clone()
        } else {
            let mut all = view.fragments.join(",");
            all.push(',');
            all.push_str(&message);
            normalize(&all)
        };
        let fresh = crate::extract::extract(&normalized, &self.products).vars();
        // A parcel with a tracking number has shipped: with no order state from the front
        // end, that is the state phrases are gated on.
        let order_state = match view.order_state {
            OrderState::None
                if fresh.iter().any(|(k, _)| *k == "tracking_no")
                    || view.vars.contains_key("tracking_no") =>
            {
                OrderState::Shipped
            }
            s => s,
        };
        let mut detection = l.classifier.detect(&self.text, &normalized);
        // A fragment: nothing the model is sure of, or a word or two; kept to be read with
        // the buyer's next message.
        let own_chars = own.chars().count();
        let fragment = detection.abstained || own_chars <= FRAGMENT_CHARS;
        let mut reading = if view.fragments.is_empty() {
            Reading::AsWritten
        } else {
            Reading::Fragments(view.fragments.len())
        };
        let short = own_chars <= ANSWER_CHARS;
        // An answer is short and not itself a question (那什么时候到呢 asks, it does not
        // answer).
        // Only an answer that names an option (黑色, XL, 个人) continues the topic of a choice:
        // a bare yes or no (对, 是的, 不需要) or a remark of the buyer's own (您先忙着吧) is left
        // as the model read it.
        let answers = |q: &crate::conversation::Question| {
            !q.yes_no
                && short
                && !crate::text::is_question(&own)
                && !crate::text::is_bare_reply(&own)
                && crate::text::names_an_option(&own)
        };
        // A bare yes to a yes-or-no question on a topic (需要帮您催一下吗? → 可以) stays a
        // confirmation as read (real labeled chats read every bare yes so, whatever was asked:
        // docs/quality.md), but the offer's topic gets a slot among the replies: the agent can
        // carry out what the buyer accepted.
        let accepted_offer: Option<&str> = view
            .question
            .as_ref()
            .filter(|q| q.yes_no && crate::text::is_affirmative(&own))
            .map(|q| q.intent.as_str())
            .filter(|intent| !crate::intent::is_filler(intent));
        if let Some(q) = view.question.as_ref().filter(|q| answers(q))
            && l.classifier.apply_answer(&mut detection, &q.intent)
        {
            reading = Reading::Answer;
        } else if let Some(last) = &view.last_intent
            && l.classifier.apply_context(&mut detection, last, short)
        {
            reading = Reading::LastIntent;
        }
        if let Some(c) = conversation {
            self.conversations
                .buyer_said(shop, c, &message, fragment, at.mono);
        }

        // The detected intents in ranking order, each claiming a slot. When abstaining, the
        // clarifying replies of `unknown` lead and the best guesses take the other slots: a
        // hedge the agent can pick from, cheaper than typing.
        let mut order: Vec<(&str, f32)> = if detection.abstained {
            std::iter::once((UNKNOWN_INTENT, 1.0))
                .chain(
                    detection
                        .intents
                        .iter()
                        .skip(1)
                        .map(|s| (s.intent.as_str(), s.confidence)),
                )
                .collect()
        } else {
            // After the detected intents, what the model leaned to in any clause.
            detection
                .intents
                .iter()
                .map(|s| (s.intent.as_str(), s.confidence))
                .chain(l.classifier.hedges(&detection, crate::rank::DIVERSE_FLOOR))
                .collect()
        };
        // The topic of the offer a bare yes accepted takes the slot after the reading's first
        // (moved there if the reading listed it further down).
        if let Some(topic) = accepted_offer
            && order.first().is_none_or(|(i, _)| *i != topic)
        {
            let share = match order.iter().position(|(i, _)| *i == topic) {
                Some(at) => order.remove(at).1.max(OFFER_SHARE),
                None => OFFER_SHARE,
            };
            order.insert(order.len().min(1), (topic, share));
        }
        // How surely the buyer asks for an intent of the given share of the reading: the
        // share, or the best probability a clause gave it if higher (in 有券吗,能用花呗吗 both
        // are asked, though each has half the reading). The intents list and the suggestions
        // show this same figure.
        let asked = |intent: &str, share: f32| share.max(l.classifier.asked(&detection, intent));
        // Intent probabilities as candidates see them: the listed intents when abstaining
        // (guesses at a discount, so none outranks the clarifying replies), else the whole
        // distribution.
        let mut intent_p: FxHashMap<&str, f32> = if detection.abstained {
            order
                .iter()
                .enumerate()
                .map(|(n, &(intent, p))| (intent, if n == 0 { p } else { p * GUESS_DISCOUNT }))
                .collect()
        } else {
            l.classifier
                .labels()
                .iter()
                .zip(&detection.distribution)
                .filter(|(_, p)| **p > 0.0)
                .map(|(label, p)| (label.as_str(), *p))
                .collect()
        };
        if let Some(topic) = accepted_offer {
            let p = intent_p.entry(topic).or_insert(0.0);
            *p = p.max(OFFER_SHARE);
        }
        // Only phrases allowed in the order state and inside their campaign window enter.
        let eligible = |i: usize| {
            let gate = l.gates[i];
            gate.allows(order_state) && (!gate.windowed || l.phrase(i).live_at(now))
        };
        // The floor is set by the best hit that may be shown.
        let hits = l
            .index
            .search_within(&normalized, BM25_HITS, LEXICAL_RATIO, |key| {
                l.by_key.get(&key).copied().filter(|&i| eligible(i))
            })?;
        let bm25: FxHashMap<usize, f32> = hits.into_iter().collect();
        let mut pool: Vec<usize> = bm25.keys().copied().collect();
        let mut listed: Vec<(&str, f32)> = intent_p.iter().map(|(k, v)| (*k, *v)).collect();
        listed.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (intent, _) in listed.iter().take(4) {
            if let Some(list) = l.by_intent.get(*intent) {
                pool.extend(
                    list.iter()
                        .copied()
                        .filter(|&i| eligible(i))
                        .take(PER_INTENT),
                );
            }
        }
        pool.sort_unstable();
        pool.dedup();

        // What the buyer just wrote wins over what the conversation knew; both over policy.
        if let Some(c) = conversation
            && !fresh.is_empty()
        {
            let update = ContextUpdate {
                vars: fresh
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                order_state: None,
            };
            self.conversations.update(shop, c, update, at.mono);
        }
        let from_conversation = |name: &str| -> Option<&String> {
            fresh
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v)
                .or_else(|| view.vars.get(name))
        };
        let lookup = |name: &str| -> Option<&str> {
            from_conversation(name)
                .or_else(|| l.shop.policy.get(name))
                .map(String::as_str)
        };
        let candidates: Vec<Candidate<'_>> = pool
            .iter()
            .map(|&i| {
                let p = l.phrase(i);
                // Complete = every variable without a fallback has a value; only the
                // replies finally chosen are rendered.
                let complete = p
                    .template
                    .required()
                    .all(|v| lookup(v).is_some_and(|x| !x.is_empty()));
                Candidate {
                    index: i,
                    phrase_id: &p.id,
                    intent: &p.intent,
                    grams: std::borrow::Cow::Borrowed(&l.grams[i]),
                    intent_p: intent_p.get(p.intent.as_str()).copied().unwrap_or(0.0),
                    bm25: bm25.get(&i).copied().unwrap_or(0.0),
                    priority: p.priority,
                    already_sent: view.sent.iter().any(|s| s == &p.id),
                    complete,
                }
            })
            .collect();
        // Rank a few spare candidates: a reply the compliance gate blocks is replaced by
        // the next one rather than leaving a gap.
        let mut ranked =
            std::collections::VecDeque::from(rank(candidates, &order, self.suggestions + SPARE));
        let mut blocked = 0;
        let mut items: Vec<Suggestion> = Vec::with_capacity(self.suggestions);
        while let Some(r) = ranked.pop_front() {
            if items.len() == self.suggestions {
                break;
            }
            let i = r.candidate.index;
            let p = l.phrase(i);
            // Checked after rendering: a variable's value must not smuggle a violation in.
            // A reply that took no value from the conversation is the same text as at load,
            // so its verdict from then stands.
            let took_conversation_value = std::cell::Cell::new(false);
            let out = p.template.render(|name: &str| {
                let v = from_conversation(name);
                took_conversation_value.set(took_conversation_value.get() || v.is_some());
                v.or_else(|| l.shop.policy.get(name)).map(String::as_str)
            });
            let blocked_now = if took_conversation_value.get() {
                l.shop.lexicon.check(&out.text).blocked()
            } else {
                l.policy_render_blocked[i]
            };
            if blocked_now {
                blocked += 1;
                tracing::warn!(shop, phrase = %p.id, "suggestion blocked by compliance after rendering");
                // Its place goes to the next spare of the same intent, if any, so the
                // blocked reply's question stays answered when the buyer asked two things.
                if let Some(at) = ranked
                    .iter()
                    .position(|s| s.candidate.intent == r.candidate.intent)
                    .filter(|&at| at > 0)
                    && let Some(spare) = ranked.remove(at)
                {
                    ranked.push_front(spare);
                }
                continue;
            }
            // How likely the reply's intent is what the buyer wants: the model's probability
            // for it (a clarifying reply: its confidence in abstaining).
            let confidence = if detection.abstained && p.intent == UNKNOWN_INTENT {
                detection.intents.first().map_or(0.0, |s| s.confidence)
            } else {
                asked(
                    &p.intent,
                    intent_p.get(p.intent.as_str()).copied().unwrap_or(0.0),
                )
            };
            items.push(Suggestion {
                phrase_id: p.id.clone(),
                intent: p.intent.clone(),
                text: out.text,
                score: r.score,
                confidence: confidence.clamp(0.0, 1.0),
                missing: out.missing,
                code: p.code.clone(),
            });
        }
        if let Some(c) = conversation {
            let memo = items
                .iter()
                .map(|s| (s.phrase_id.clone(), s.text.clone()))
                .collect();
            let sure = (!detection.abstained).then(|| detection.primary().to_string());
            self.conversations.suggested(shop, c, memo, sure, at.mono);
        }
        let intents = detection
            .intents
            .iter()
            .map(|s| IntentRead {
                intent: s.intent.clone(),
                confidence: s.confidence,
                asked: if s.intent == UNKNOWN_INTENT {
                    s.confidence
                } else {
                    asked(&s.intent, s.confidence)
                },
            })
            .collect();
        Ok(Suggestions {
            intents,
            abstained: detection.abstained,
            reading,
            items,
            blocked,
            elapsed: started.elapsed(),
        })
    }

    /// Applies a front end's `context` update to a conversation. An update with a phone or ID number in any
    /// value is refused whole, naming the variable: what is kept can be echoed in a reply.
    pub fn context(&self, shop: &str, conversation: &str, update: ContextUpdate) -> Result<()> {
        self.loaded(shop)?;
        if let Some((name, _)) = update
            .vars
            .iter()
            .find(|(_, v)| crate::extract::holds_personal_number(&normalize(v)))
        {
            return Err(Error::Invalid {
                field: "context",
                message: format!(
                    "`{name}` holds a phone or ID number; those are never kept or echoed in a reply"
                ),
            });
        }
        self.conversations
            .update(shop, conversation, update, Instant::now());
        Ok(())
    }

    /// Records a message the agent sent; returns the phrase it was recognised as.
    pub fn agent_message(
        &self,
        shop: &str,
        conversation: &str,
        text: &str,
        phrase_id: Option<&str>,
    ) -> Result<Option<String>> {
        self.agent_message_at(shop, conversation, text, phrase_id, Instant::now())
    }

    /// [`Engine::agent_message`] at a given moment of the conversation's clock.
    pub fn agent_message_at(
        &self,
        shop: &str,
        conversation: &str,
        text: &str,
        phrase_id: Option<&str>,
        at: Instant,
    ) -> Result<Option<String>> {
        let l = self.loaded(shop)?;
        let phrase_id = phrase_id.filter(|id| l.by_key.contains_key(&phrase_key(id)));
        let text: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        let normalized = normalize(&text);
        // A question opens a topic the buyer's short answer continues: the topic of the
        // phrase it came from, else what the model reads in the question itself. A choice
        // (您要哪个颜色?) is answered by naming an option, a yes-or-no question (需要帮您催一下
        // 吗?) by a bare yes.
        let question = crate::text::is_question(&normalized).then(|| {
            let yes_no = !crate::text::is_choice_question(&normalized);
            let from_phrase = phrase_id
                .and_then(|id| l.by_key.get(&phrase_key(id)))
                .map(|&i| l.phrase(i).intent.clone());
            from_phrase
                .or_else(|| l.classifier.question_topic(&self.text, &normalized))
                .or_else(|| self.question_topic_by_phrases(&l, &normalized))
                .map(|intent| crate::conversation::Question { intent, yes_no })
        });
        Ok(self.conversations.agent_sent(
            shop,
            conversation,
            &text,
            phrase_id,
            question.flatten(),
            at,
        ))
    }

    /// The topic of an agent's question by the shop's own replies: agents word questions
    /// the way the phrasebook words replies, so the intent of the best-matching phrase of the
    /// asking clause is its topic when the buyer-trained model cannot tell.
    fn question_topic_by_phrases(&self, l: &Loaded, normalized: &str) -> Option<String> {
        let &(a, b) = crate::text::clauses(normalized).last()?;
        let hits = l.index.search(&normalized[a..b], 3).ok()?;
        hits.iter()
            .filter_map(|h| l.by_key.get(&h.key).map(|&i| &l.phrase(i).intent))
            .find(|intent| !crate::intent::is_filler(intent))
            .cloned()
    }

    /// Checks a draft (or any text) against the shop's compliance lexicon.
    pub fn check(&self, shop: &str, text: &str) -> Result<Report> {
        let l = self.loaded(shop)?;
        let text: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        Ok(l.shop.lexicon.check(&text))
    }

    /// The intent detection of a message alone, without conversation (benchmarks,
    /// diagnostics).
    pub fn analyze_intent(&self, shop: &str, message: &str) -> Result<crate::intent::Detection> {
        let l = self.loaded(shop)?;
        Ok(l.classifier.detect(&self.text, &normalize(message)))
    }

    /// The BM25 hits of a message in a shop's index, as suggest runs it (benchmarks,
    /// diagnostics).
    pub fn search(&self, shop: &str, message: &str) -> Result<Vec<crate::index::Hit>> {
        let l = self.loaded(shop)?;
        l.index.search(&normalize(message), BM25_HITS)
    }

    /// The normalized text and tokens of a message, as the engine sees it (diagnostics).
    pub fn analyze(&self, message: &str) -> (String, Vec<String>) {
        let n = normalize(message);
        let tokens = self
            .text
            .tokens(&n)
            .iter()
            .map(|t| t.word.to_string())
            .collect();
        (n, tokens)
    }
}

/// Whether two versions of a shop train the same classifier.
fn same_examples(a: &Shop, b: &Shop) -> bool {
    a.intents.len() == b.intents.len()
        && a.intents
            .iter()
            .zip(&b.intents)
            .all(|(a, b)| a.id == b.id && a.examples == b.examples)
}

/// What a shop's index depends on: its files and the tokenizer.
fn index_fingerprint(shop: &Shop, text_fp: &str) -> String {
    let mut h = Sha256::new();
    h.update(shop.fingerprint.as_bytes());
    h.update(text_fp.as_bytes());
    crate::phrasebook::hex_digest(h)
}

fn text_fingerprint(dicts: &[Option<&Path>], words: &[String]) -> Result<String> {
    let mut h = Sha256::new();
    for dict in dicts {
        match dict {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                h.update(&bytes);
            }
            // jieba's embedded dictionary, or no user dictionary.
            None => h.update([0xff]),
        }
    }
    for w in words {
        h.update(w.as_bytes());
        h.update([0]);
    }
    Ok(crate::phrasebook::hex_digest(h))
}
