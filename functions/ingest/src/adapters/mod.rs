//! One file per backend behind the ports.

pub mod dynamodb;
pub mod kinesis;
#[cfg(feature = "testing")]
pub mod memory;
#[cfg(feature = "local")]
pub mod sqlite;
