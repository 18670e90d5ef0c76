//! huashu (话术): real-time reply suggestions for Chinese e-commerce customer service.
//!
//! Every buyer message is normalized, tokenized with jieba, classified by intent, matched
//! against the shop's curated phrasebook (indexed in tantivy), ranked, rendered with the
//! conversation's variables, and pushed to every agent subscribed to the conversation.
//!
//! Layout (one crate, thin binary):
//!
//! | module | responsibility |
//! |---|---|
//! | [`text`] | normalize, tokenize (one jieba per process), split clauses; pure |
//! | [`phrasebook`] | model types, TOML loading and validation with file:line errors |
//! | [`intent`] | linear classifier trained at load time from example utterances; pure |
//! | [`index`] | the only module that imports tantivy: schema, open-or-rebuild, search |
//! | [`compliance`] | lexicon and matcher: violations with spans in the original text, rewrites; pure |
//! | [`rank`] | signals → ordered, diverse suggestions; pure, stable tie-break by phrase id |
//! | [`render`] | fills `{variables}` and reports what stays unfilled; pure |
//! | [`conversation`] | bounded per-conversation memory: variables, order state, sent phrases |
//! | [`curation`] | edits: validate → atomic write → reload; revisions, conflicts; per-shop serialized |
//! | [`engine`] | the core entry point `suggest(shop, conversation, message)`; no sockets |
//! | [`eval`] | intent accuracy, macro-F1, abstention and top-3 on labeled TSV |
//! | [`extract`] | carrier, tracking and order numbers, amounts from buyer text; never phone/ID numbers; pure |
//! | [`server`] | HTTP + WebSocket: routes, sessions, wire types, auth, fan-out hub |
//!
//! Invariants: the core (text, intent, rank, render, engine) does no network I/O; only
//! `server` knows JSON wire types; only `index` imports tantivy; nothing panics on input.

pub mod bench;
pub mod compliance;
pub mod conversation;
pub mod curation;
pub mod engine;
pub mod eval;
pub mod extract;
pub mod index;
pub mod intent;
pub mod phrasebook;
pub mod rank;
pub mod render;
pub mod server;
pub mod synth;
pub mod text;

use std::path::PathBuf;

/// Everything that can go wrong, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A phrasebook file is malformed or fails validation. `location` is `file:line`.
    #[error("{location}: {message}")]
    Phrasebook { location: String, message: String },
    /// The jieba dictionary could not be read.
    #[error("dictionary {path}: {message}")]
    Dictionary { path: PathBuf, message: String },
    /// The search index failed in a way a rebuild did not cure.
    #[error("index for shop `{shop}`: {message}")]
    Index { shop: String, message: String },
    /// A request named a shop that is not loaded.
    #[error("unknown shop `{0}`")]
    UnknownShop(String),
    /// A request was well-formed JSON but asked for something invalid.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Reads a file of `phrasebook/dict/` and parses it with `parse`, whose errors name the line:
/// either failure becomes [`Error::Dictionary`] with the file's path.
pub(crate) fn read_dictionary<T>(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> std::result::Result<T, String>,
) -> Result<T> {
    let err = |message: String| Error::Dictionary {
        path: path.to_path_buf(),
        message,
    };
    let src = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse(&src).map_err(err)
}

/// Hands memory the allocator holds free back to the system. Building the indexes of a cold
/// start (100 shops) frees hundreds of megabytes in the loader threads' malloc arenas, which
/// glibc keeps: without this a server that had to rebuild sat at ~350 MB instead of ~150 MB
/// for as long as it ran. Costs milliseconds, so it runs after loads, never per message.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers and only returns free pages of glibc's own
    // arenas to the kernel; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Allocations of at least this many bytes get pages of their own from the kernel: an index
/// writer's arena pages are this size, a message's allocations far smaller.
pub const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Fixes glibc's threshold for serving a large allocation from its own mapping at
/// [`MMAP_THRESHOLD`], for the whole process; call once at startup, before other threads.
///
/// Why: glibc raises the threshold each time a mapped block is freed (up to 32 MB), after
/// which large blocks come from the heap. Building 100 shops' indexes frees an index
/// writer's arena per shop, so the threshold climbed and the next builds' arenas landed in
/// the heap, where the holes they left were never handed back: 196 MB resident after a cold
/// start against 135 MB after a warm one (100 shops × 1k phrases, idle; anonymous memory 177
/// against 117 MB). With the threshold fixed, a freed arena is unmapped: under load after a
/// cold start 149 MB (peak 154–156) instead of 197–214 MB (peak 229–241), about as after a
/// warm one (docs/performance.md). 256 KiB did as well for memory; neither moved the e2e latency.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a parameter of glibc's allocator; called before any other
    // thread allocates, it races with nothing. A refusal (0) leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// Maps `items` on up to as many threads as the machine has cores, keeping their order:
/// loading many shops is independent work per shop.
pub(crate) fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let c: Vec<T> = items.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                // A panic in `f` is a bug; surface it where it happened.
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}
