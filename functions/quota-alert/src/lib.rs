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
pub use quotas::parse as config;
#[cfg(any(test, feature = "testing"))]
pub mod fixtures;
pub mod lambda;
pub mod ports;
pub mod processor;
pub mod quotas;
pub mod startup;
pub mod window;

pub use adapters::dynamodb::DynamoUsageCounter;
pub use adapters::sns::SnsAlertPublisher;
pub use alert::Alert;
pub use config::{Config, ConfigError, ConfigSource, Counts, Quota, WindowKind};
pub use lambda::run;
pub use ports::{AlertLedger, AlertPublisher, PublishError, StoreError, UsageCounter};
pub use processor::{EventOutcome, ProcessError, QuotaAlert, SERVICE};

/// The Lambda's settings besides the quota document (see [`ConfigSource::from_env`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub counter_table: String,
    pub alert_topic_arn: String,
    pub quarantine_queue_url: String,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not set: the function needs it (see functions/quota-alert/README.md)")]
pub struct MissingSetting(pub &'static str);

impl Settings {
    /// From `COUNTER_TABLE`, `ALERT_TOPIC_ARN` and `QUARANTINE_QUEUE_URL`.
    pub fn from_env() -> Result<Self, MissingSetting> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(MissingSetting(name))
        };
        Ok(Self {
            counter_table: var("COUNTER_TABLE")?,
            alert_topic_arn: var("ALERT_TOPIC_ARN")?,
            quarantine_queue_url: var("QUARANTINE_QUEUE_URL")?,
        })
    }
}
