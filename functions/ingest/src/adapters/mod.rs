//! One file per backend behind the ports.

pub mod dynamodb;
pub mod kinesis;
pub mod memory;
#[cfg(feature = "local")]
pub mod sqlite;
