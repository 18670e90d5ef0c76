//! Text processing shared by indexing, querying and classification: normalization, jieba
//! tokenization, clause splitting, and the synonym groups training learns examples with.
//!
//! Invariant: index and query never disagree. Phrases are indexed and buyer messages are
//! searched with the same [`Text::tokens`] over the same [`normalize`] output, so a word
//! that matches in one matches in the other. Pure: no I/O beyond reading the dictionaries and
//! the synonym groups at construction.

mod clause;
mod normalize;
mod synonyms;
mod tokenize;

pub use clause::{
    clauses, is_affirmative, is_bare_reply, is_card_field, is_choice_question, is_question,
    names_an_option,
};
pub use normalize::normalize;
pub use synonyms::{Replacement, Synonyms};
pub use tokenize::{Text, Token, is_stopword};
