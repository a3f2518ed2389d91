//! The quota document: what to watch, where it comes from, and how it is validated.

pub mod parse;
