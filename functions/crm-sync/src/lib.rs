//! crm-sync: a Kinesis consumer that keeps each Twilio message's and call's status right in a
//! CRM, in order, forward only, each change written once.
//!
//! The four places, as in every function crate of this workspace:
//! - [`ports`]: what the core needs from the outside, as traits ([`Crm`], [`StatusLedger`]),
//!   and the pure rules every adapter shares ([`ports::decide`], the ledger's decision;
//!   [`CrmError::from_status`], the HTTP contract's classification).
//! - the core, [`processor::CrmSync`]: generic over the ports; per-key ordering, retries,
//!   quarantine and metrics. [`update::StatusUpdate`] is what a status event means for the CRM.
//! - [`adapters`]: one file per backend: the ledger in [`adapters::dynamodb`] (AWS) or
//!   `adapters::sqlite` (feature `local`); the CRM in [`adapters::http_crm`],
//!   [`adapters::salesforce`] or `adapters::jsonl_crm` (feature `local`); in-memory fakes in
//!   `adapters::memory` (feature `testing`, for tests and benchmarks only).
//! - [`config`] reads every environment variable into a [`config::Config`]; [`startup`] wires
//!   the adapters from it: [`startup::aws_processor`] for the Lambda function (src/main.rs,
//!   with the shared `twilio_events::kinesis_lambda` glue), `startup::local_processor`
//!   (feature `local`) for `twilio-events serve`.

pub mod adapters;
pub mod config;
pub mod ports;
pub mod processor;
mod retry;
pub mod startup;
pub mod update;

#[cfg(any(test, feature = "testing"))]
pub use adapters::memory::MemoryStatusLedger;
pub use adapters::{
    AnyCrm, Secret,
    http_crm::HttpCrm,
    salesforce::{SalesforceCrm, SalesforceSettings},
};
pub use ports::{Crm, CrmError, LedgerDecision, LedgerError, Settled, StatusLedger};
pub use processor::{CrmSync, SyncSettings};
pub use update::{ResourceKind, StatusUpdate};

/// The service name in metrics, logs and quarantined items.
pub const SERVICE: &str = "crm-sync";
