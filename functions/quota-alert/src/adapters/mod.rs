//! One file per backend the ports are implemented for.

pub mod dynamodb;
pub mod sns;
#[cfg(feature = "local")]
pub mod sqlite;
