//! crm-sync: a Kinesis consumer that keeps each Twilio message's and call's status right in a
//! CRM, in order, forward only, each change written once.
//!
//! The pieces:
//! - [`update::StatusUpdate`]: what a status event means for the CRM (the HTTP body).
//! - [`ports::StatusLedger`]: the per-resource record of the latest status, which only moves
//!   forward and decides what is pushed ([`adapters::dynamodb::DynamoStatusLedger`] in AWS).
//! - [`adapters::Crm`]: one attempt to write an update ([`adapters::HttpCrm`], [`adapters::SalesforceCrm`]).
//! - [`processor::CrmSync`]: the batch processor that ties them together, with retries,
//!   per-key ordering, quarantine and metrics.
//! - [`config::Config`]: the environment, validated at start. The Lambda glue (Kinesis event
//!   in, partial batch response out) is the shared `twilio_events::kinesis_lambda`.
//! - `adapters::sqlite` (feature `local`): a SQLite ledger and a JSON-lines CRM for `twilio-events serve`.

pub mod adapters;
pub mod config;
pub mod ports;
pub mod processor;
mod retry;
pub mod update;

pub use adapters::{AnyCrm, Crm, CrmError, HttpCrm, SalesforceCrm, SalesforceSettings, Secret};
pub use ports::{Claim, LedgerError, MemoryStatusLedger, Settled, StatusLedger};
pub use processor::{CrmSync, Settings};
pub use update::{ResourceKind, StatusUpdate};

/// The service name in metrics, logs and quarantined items.
pub const SERVICE: &str = "crm-sync";
