//! ingest: the Twilio webhook. Verifies `X-Twilio-Signature`, parses the CloudEvents, drops
//! duplicates, writes each new event to the stream and answers Twilio within its 5 seconds.
//!
//! The four places, as in every function crate:
//! - [`ports`]: what the core needs from the outside (the dedup store, the stream, the clock,
//!   the source of the Twilio secret) and the rules every implementation follows (the claim
//!   decision [`ports::claim_decision`], when to read the secret again
//!   [`ports::secret_refresh_due`], the quarantine's stable id [`ports::quarantine_id`]);
//! - [`service`]: the core, [`Ingest`], generic over the ports;
//! - [`adapters`]: one file per backend — [`adapters::dynamodb`], [`adapters::kinesis`],
//!   [`adapters::secrets_manager`], the secrets file [`adapters::secret_file`], the embedded
//!   `adapters::sqlite` (feature `local`) and the in-memory fakes `adapters::memory` (feature
//!   `testing`);
//! - [`config`] reads every environment variable into a [`config::Config`], [`startup`] wires
//!   the core on its adapters (for AWS, and on the embedded store for `twilio-events serve`),
//!   and `main.rs` runs it.
//!
//! Between HTTP and the core: [`request`] maps any HTTP request (API Gateway's, or `serve`'s)
//! to the core and back; [`lambda`] is the Lambda entry point for API Gateway.

pub mod adapters;
pub mod config;
pub mod lambda;
pub mod ports;
pub mod request;
pub mod service;
pub mod startup;

pub use config::IngestSettings;
pub use service::{Admitted, Ingest, IngestRequest, IngestResponse, ROUTES, Route};
