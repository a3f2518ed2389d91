//! kafka-forward: a Kinesis consumer that forwards every event of the stream, unchanged, to a
//! Kafka topic (Amazon MSK, MSK Serverless, Confluent Cloud, any Kafka), keyed by resource so
//! that one message's or call's events stay in order on one partition, with the CloudEvents
//! Kafka binding's headers.
//!
//! The four places, as in every function crate of this workspace:
//! - [`ports`]: the topic as a trait ([`ports::Topic`]) and the pure rules every adapter
//!   shares: a record as a message ([`ports::TopicMessage`]), results as a batch outcome.
//! - the core, [`processor::KafkaForward`]: generic over the ports; order, deadline,
//!   quarantine, metrics.
//! - [`adapters`]: librdkafka ([`adapters::kafka`]), MSK IAM tokens ([`adapters::msk_iam`]),
//!   an in-memory topic (`adapters::memory`, feature `testing`).
//! - [`config`] reads every environment variable into a [`config::Config`]; [`startup`] wires
//!   the adapters: [`startup::aws`] for the Lambda function, [`startup::local`] for
//!   `twilio-events serve --kafka-brokers`.

pub mod adapters;
pub mod config;
pub mod ports;
pub mod processor;
pub mod startup;

pub use processor::{ForwardSettings, KafkaForward};

/// The service name in metrics, logs and quarantined items; `serve`'s checkpoint name.
pub const SERVICE: &str = "kafka-forward";
