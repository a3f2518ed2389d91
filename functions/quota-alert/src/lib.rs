//! quota-alert: warns before Twilio limits and budgets are hit.
//!
//! A Kinesis consumer of the event stream. It counts what each configured quota measures
//! (messages, segments, calls, call minutes, limit errors) idempotently per UTC window, reads
//! levels that events report themselves (Usage Trigger callbacks, TaskRouter rate limits),
//! publishes each quota's use as EMF metrics, and sends one alert per quota, window and
//! threshold, with a forecast of when the limit will be hit. See README.md.
//!
//! The four places every function crate has:
//!
//! - [`ports`]: what the core needs ([`UsageCounter`], [`AlertLedger`], [`AlertPublisher`]),
//!   their errors, and the rules all their adapters apply, written once
//!   ([`ports::is_recorded`], [`ports::decide_alert_claim`]).
//! - The core, [`processor`]: [`QuotaAlert`], generic over the ports, a metrics sink and a
//!   quarantine. It reads the quota document of [`quotas`] (model, sources, validation) and
//!   places events in [`window`]s; what it sends is an [`alert`].
//! - [`adapters`]: DynamoDB and SNS; SQLite and `alerts.jsonl` for `twilio-events serve`
//!   (feature `local`); in-memory fakes (feature `testing`, with the event fixtures of
//!   `fixtures`).
//! - [`config`] reads every environment variable into [`Config`]; [`startup`] wires the
//!   adapters ([`startup::aws`] for the Lambda, `startup::local` for `serve`); `main.rs` runs
//!   the Lambda.

pub mod adapters;
pub mod alert;
pub mod config;
#[cfg(any(test, feature = "testing"))]
pub mod fixtures;
pub mod ports;
pub mod processor;
pub mod quotas;
pub mod startup;
pub mod window;

pub use alert::Alert;
pub use config::{Config, ConfigError};
pub use ports::{
    AlertClaimOutcome, AlertLedger, AlertLedgerError, AlertPublishError, AlertPublisher,
    CounterError, UsageCounter,
};
pub use processor::{EventOutcome, ProcessError, QuotaAlert, SERVICE};
pub use quotas::{Counts, Quota, Quotas, QuotasError, QuotasSource, WindowKind};
