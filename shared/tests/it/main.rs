//! The shared crate's integration tests: one binary, one module per subject.

mod file_quarantine;
mod fuzz_regressions;
mod helpers;
mod jsonl;
#[cfg(feature = "aws")]
mod sqs_quarantine;
