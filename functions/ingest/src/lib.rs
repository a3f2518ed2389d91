//! ingest: the Twilio webhook. Verifies `X-Twilio-Signature`, parses the CloudEvents, drops
//! duplicates, writes each new event to the stream and answers Twilio within its 5 seconds.
//!
//! [`service::Ingest`] is the core, generic over its stores ([`ports`]); [`adapters::dynamodb`] holds the
//! DynamoDB and Kinesis adapters, [`request`] the mapping from HTTP requests, [`lambda`] the
//! Lambda entry point. `twilio-events serve` runs the same core on embedded stores.

pub mod adapters;
pub mod config;
pub mod lambda;
pub mod ports;
pub mod request;
pub mod service;
pub mod startup;

pub use config::IngestSettings;
pub use service::{Ingest, IngestRequest, IngestResponse, Route};
