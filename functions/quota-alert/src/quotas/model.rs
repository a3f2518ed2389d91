//! What the quota document says, once validated: the quotas to watch, what each counts and
//! over which window.

use std::fmt;

/// Twilio error codes that signal a limit, verified in Twilio's documentation: 63038 (account
/// daily message limit), 60728 (daily message limit reached), 30022 (A2P 10DLC rate or volume
/// limit exceeded), 63017 (rate limit exceeded).
pub const DEFAULT_LIMIT_ERROR_CODES: [u32; 4] = [63038, 60728, 30022, 63017];

/// What an alert fires at when `thresholds` is absent.
pub const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];

/// At most this many quotas: one event may update every counting quota in one DynamoDB
/// transaction (100 items, one of which records the event id).
pub const MAX_QUOTAS: usize = 99;

/// Quota names become CloudWatch dimension values and storage keys: short and plain.
pub(super) const MAX_NAME_LEN: usize = 64;

/// What a quota measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counts {
    /// `message.sent` events, one each.
    Messages,
    /// `message.sent` events, `numberOfSegments` each (1 when absent).
    Segments,
    /// Completed calls, one each.
    Calls,
    /// Completed calls, their duration in minutes rounded up (as Twilio bills).
    CallMinutes,
    /// Usage Trigger callbacks: the reported current value (a gauge, not a sum).
    UsageTrigger,
    /// TaskRouter rate-limit events: the reported current rate (a gauge).
    RateLimit,
    /// Error-log events with one of `codes`, one each.
    ErrorCodes,
}

impl Counts {
    pub(super) const ALL: [(&'static str, Counts); 7] = [
        ("messages", Self::Messages),
        ("segments", Self::Segments),
        ("calls", Self::Calls),
        ("call-minutes", Self::CallMinutes),
        ("usage-trigger", Self::UsageTrigger),
        ("rate-limit", Self::RateLimit),
        ("error-codes", Self::ErrorCodes),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("", |(s, _)| s)
    }

    /// Gauges report a level with each event; the others add events up in a counter.
    pub fn is_gauge(self) -> bool {
        matches!(self, Self::UsageTrigger | Self::RateLimit)
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Over what period use is measured, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowKind {
    Hour,
    Day,
    Month,
    /// The last 24 hours, as Twilio's daily message limit counts: hourly buckets, the current
    /// one and the 23 before it.
    Rolling24h,
}

impl WindowKind {
    pub(super) const ALL: [(&'static str, WindowKind); 4] = [
        ("hour", Self::Hour),
        ("day", Self::Day),
        ("month", Self::Month),
        ("rolling-24h", Self::Rolling24h),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, w)| *w == self)
            .map_or("", |(s, _)| s)
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated quota.
#[derive(Clone, Debug, PartialEq)]
pub struct Quota {
    pub name: String,
    /// Only this account's events count; all accounts together when absent.
    pub account: Option<String>,
    pub counts: Counts,
    pub window: WindowKind,
    /// Required for counters. For gauges, absent means the event's own limit (the trigger
    /// value of a Usage Trigger, the `rate_limit` of a rate-limit event).
    pub limit: Option<f64>,
    /// Fractions of the limit, ascending, each in (0, 1].
    pub thresholds: Vec<f64>,
    /// For `error-codes`.
    pub codes: Vec<u32>,
    /// For `usage-trigger`: the Twilio usage category (`sms`, `totalprice`, …).
    pub category: Option<String>,
}

/// The whole quota document, validated: at least one quota, at most [`MAX_QUOTAS`], names
/// unique. Read it as a slice of [`Quota`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct Quotas(pub(super) Vec<Quota>);

impl Quotas {
    pub fn into_vec(self) -> Vec<Quota> {
        self.0
    }
}

impl std::ops::Deref for Quotas {
    type Target = [Quota];

    fn deref(&self) -> &[Quota] {
        &self.0
    }
}
