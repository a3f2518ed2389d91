//! One file per backend behind the [`crate::ports`]: DynamoDB (dedup) and Kinesis (stream) on
//! AWS; SQLite (dedup and stream in one database) for `twilio-events serve`; in-memory fakes
//! for tests and benchmarks. (The SQS quarantine comes from the shared crate.)

pub mod dynamodb;
pub mod kinesis;
#[cfg(feature = "testing")]
pub mod memory;
#[cfg(feature = "local")]
pub mod sqlite;
