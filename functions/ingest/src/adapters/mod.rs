//! One file per backend behind the [`crate::ports`]: DynamoDB (dedup), Kinesis (stream) and
//! Secrets Manager (the Twilio secret) on AWS; SQLite (dedup and stream in one database) and a
//! secrets file for `twilio-events serve`; in-memory fakes for tests and benchmarks. (The SQS
//! quarantine comes from the shared crate.)

pub mod dynamodb;
pub mod kinesis;
#[cfg(feature = "testing")]
pub mod memory;
pub mod secret_file;
pub mod secrets_manager;
#[cfg(feature = "local")]
pub mod sqlite;
