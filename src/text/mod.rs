//! Text processing shared by indexing, querying and classification: normalization, jieba
//! tokenization and clause splitting.
//!
//! Invariant: index and query never disagree. Phrases are indexed and buyer messages are
//! searched with the same [`Text::tokens`] over the same [`normalize`] output, so a word
//! that matches in one matches in the other. Pure: no I/O beyond reading the dictionary at
//! construction.

mod clause;
mod normalize;
mod tokenize;

pub use clause::{
    clauses, is_bare_reply, is_card_field, is_choice_question, is_question, names_an_option,
};
pub use normalize::normalize;
pub use tokenize::{Text, Token, is_stopword};
