//! The shared crate's integration tests: one binary, one module per subject.

mod fuzz_regressions;
mod helpers;
mod jsonl;
