//! One file per backend the ports are implemented for.

pub mod dynamodb;
#[cfg(feature = "local")]
pub mod jsonl_alerts;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod sns;
#[cfg(feature = "local")]
pub mod sqlite;
