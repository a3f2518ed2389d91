//! One file per backend: the topic on a Kafka cluster ([`kafka`]), the MSK IAM tokens it
//! signs in with ([`msk_iam`]), and an in-memory topic for tests (`memory`, feature `testing`).

pub mod kafka;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod msk_iam;
