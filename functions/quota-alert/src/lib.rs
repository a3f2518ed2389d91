//! quota-alert: warns before Twilio limits and budgets are hit.
//!
//! A Kinesis consumer of the event stream. It counts what each configured quota measures
//! (messages, segments, calls, call minutes, limit errors) idempotently per UTC window, reads
//! levels that events report themselves (Usage Trigger callbacks, TaskRouter rate limits),
//! publishes each quota's use as EMF metrics, and sends one alert per quota, window and
//! threshold, with a forecast of when the limit will be hit. See README.md.
//!
//! - [`config`]: the quota document, validated at start.
//! - [`QuotaAlert`]: the core, generic over [`UsageCounter`] + [`AlertLedger`] (storage),
//!   [`AlertPublisher`], a metrics sink and a quarantine.
//! - Adapters: [`DynamoUsageCounter`], [`SnsAlertPublisher`]; [`local`] (feature `local`) for
//!   `twilio-events serve`.

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
