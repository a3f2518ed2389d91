//! One reconciliation run: look up the stuck resources, sweep a window, store what is ahead.
//!
//! Lookups go out with bounded concurrency; a 429 or 5xx is retried after a pause (Twilio's
//! `Retry-After` when it gives one, else doubling from [`ReconcileSettings::backoff`]) a few
//! times, then left for the next run; a 404 is recorded and left alone. Events are stored
//! through [`EventStore`] (ingest's path), whose dedup makes a second run store nothing new.

use crate::ports::{
    EventStore, Fetched, LedgerError, LedgerView, OpenResource, Resource, ResourceKind, TwilioApi,
    TwilioApiError, is_ahead, lookup_windows,
};
use futures_util::StreamExt as _;
use serde::Serialize;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use twilio_events::metrics::{Metrics, MetricsSink};

/// A time window `[since, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// Which stuck resources (not final in the ledger) a run looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StuckLookups {
    None,
    /// Those whose age crossed a step since the previous run ([`lookup_windows`]): the schedule.
    Due,
    /// Every one last changed in the window: a one-off run after an outage.
    ChangedIn(Window),
}

/// What one run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunPlan {
    pub stuck: StuckLookups,
    /// List the messages sent and calls started in this window, and store what the ledger
    /// lacks.
    pub sweep: Option<Window>,
    /// Count and list what would be stored; store nothing.
    pub dry_run: bool,
}

/// How a run behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// How often runs happen (the schedule): the width of each stuck-lookup window.
    pub every: Duration,
    /// Requests to Twilio in flight at once.
    pub concurrency: usize,
    /// Attempts per request when Twilio throttles or fails.
    pub attempts: u32,
    /// The first pause after a 429 or 5xx without `Retry-After` (doubles each attempt).
    pub backoff: Duration,
    /// The longest pause honoured from `Retry-After`.
    pub max_pause: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(15 * 60),
            concurrency: 4,
            attempts: 4,
            backoff: Duration::from_secs(1),
            max_pause: Duration::from_secs(30),
        }
    }
}

/// A status a run stores (or, in a dry run, would store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Repair {
    pub kind: ResourceKind,
    pub sid: String,
    /// What the ledger held; `None` when it never saw the resource.
    pub known_status: Option<String>,
    pub status: String,
}

/// What a run did. SIDs are identifiers, not personal data; no phone number or body is here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Stuck resources looked up.
    pub looked_up: usize,
    /// Resources listed by the sweep.
    pub listed: usize,
    /// Statuses ahead of the ledger: on resources it knew, on resources it never saw.
    pub advanced: usize,
    pub discovered: usize,
    /// Of those, stored now, stored before (by Twilio or an earlier run), not stored (retried
    /// by the next run).
    pub stored: usize,
    pub already_stored: usize,
    pub not_stored: usize,
    /// 404: deleted or redacted. Their SIDs.
    pub not_found: Vec<String>,
    /// Requests given up after throttling or failures (the next run tries again).
    pub gave_up: usize,
    /// Each status ahead (the dry run's answer).
    pub repairs: Vec<Repair>,
}

impl RunReport {
    /// Publishes the run's counts as metrics. `Repaired` is the alarm's: a status Twilio's
    /// sink never delivered.
    pub fn publish(&self, sink: &impl MetricsSink, mut metrics: Metrics) {
        metrics.count("LookedUp", self.looked_up);
        metrics.count("Listed", self.listed);
        metrics.count("Repaired", self.stored);
        metrics.count("Discovered", self.discovered);
        metrics.count("NotFound", self.not_found.len());
        metrics.count("LookupsAbandoned", self.gave_up);
        metrics.count("NotStored", self.not_stored);
        sink.publish(&metrics);
    }
}

/// Why a run stopped early. What it found before is in no report: the next run does it again.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The credentials do not work: every other request would fail the same way.
    #[error(transparent)]
    Unauthorized(TwilioApiError),
    /// A list page could not be read after retries: the sweep cannot know what it missed.
    #[error("the sweep of {kind}s stopped: {source}; run it again for the same window")]
    Sweep {
        kind: &'static str,
        #[source]
        source: TwilioApiError,
    },
}

/// The run, generic over its ports.
pub struct Reconciler<L, A, S> {
    ledger: L,
    api: A,
    store: S,
    settings: ReconcileSettings,
}

const KINDS: [ResourceKind; 2] = [ResourceKind::Message, ResourceKind::Call];
/// Ledger reads in flight during a sweep.
const LEDGER_READS: usize = 16;

impl<L: LedgerView, A: TwilioApi, S: EventStore> Reconciler<L, A, S> {
    pub fn new(ledger: L, api: A, store: S, settings: ReconcileSettings) -> Self {
        Self {
            ledger,
            api,
            store,
            settings,
        }
    }

    pub fn settings(&self) -> &ReconcileSettings {
        &self.settings
    }

    /// One run at `now`; stores until `deadline`.
    pub async fn run(
        &self,
        plan: RunPlan,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<RunReport, ReconcileError> {
        let mut report = RunReport::default();
        let mut ahead: Vec<(Option<String>, Resource)> = Vec::new();
        let now_ms = millis(now);
        let stuck_windows = match plan.stuck {
            StuckLookups::None => Vec::new(),
            StuckLookups::Due => lookup_windows(now_ms, self.settings.every),
            StuckLookups::ChangedIn(window) => vec![(millis(window.since), millis(window.until))],
        };
        if !stuck_windows.is_empty() {
            self.look_up_stuck(&stuck_windows, &mut report, &mut ahead)
                .await?;
        }
        if let Some(window) = plan.sweep {
            self.sweep(&window, &mut report, &mut ahead).await?;
        }
        // One status per resource: a sweep may list what the stuck lookup fetched.
        ahead.sort_by(|a, b| a.1.sid().cmp(b.1.sid()));
        ahead.dedup_by(|a, b| a.1.sid() == b.1.sid());
        let mut events = Vec::with_capacity(ahead.len());
        for (known, resource) in ahead {
            let kind = kind_of(&resource);
            match known {
                Some(_) => report.advanced += 1,
                None => report.discovered += 1,
            }
            report.repairs.push(Repair {
                kind,
                sid: resource.sid().to_owned(),
                known_status: known,
                status: resource.status().to_owned(),
            });
            match resource.event(now) {
                Ok(event) => events.push(event),
                Err(error) => {
                    // Built from fields the API describes: a failure is a bug, counted.
                    tracing::error!(sid = resource.sid(), %error, "could not build the event");
                    report.not_stored += 1;
                }
            }
        }
        if plan.dry_run || events.is_empty() {
            return Ok(report);
        }
        let admitted = self.store.store(events, deadline).await;
        report.stored = admitted.stored;
        report.already_stored = admitted.duplicates;
        report.not_stored += admitted.in_progress + admitted.failed;
        Ok(report)
    }

    async fn look_up_stuck(
        &self,
        windows: &[(i64, i64)],
        report: &mut RunReport,
        ahead: &mut Vec<(Option<String>, Resource)>,
    ) -> Result<(), ReconcileError> {
        let mut stuck: Vec<OpenResource> = Vec::new();
        for &(from, to) in windows {
            for kind in KINDS {
                stuck.extend(self.ledger.open_between(kind, from, to).await?);
            }
        }
        report.looked_up += stuck.len();
        let fetched: Vec<(OpenResource, Result<Fetched, TwilioApiError>)> =
            futures_util::stream::iter(stuck)
                .map(|open| async move {
                    let fetched = self
                        .with_retries(|| self.api.fetch(open.kind, &open.sid))
                        .await;
                    (open, fetched)
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        for (open, fetched) in fetched {
            match fetched {
                Ok(Fetched::Found(resource)) => {
                    if is_ahead(Some(open.rank), &resource) {
                        ahead.push((Some(open.status), *resource));
                    }
                }
                Ok(Fetched::NotFound) => {
                    tracing::warn!(sid = %open.sid, "not found in Twilio's REST API (deleted or redacted); left alone");
                    report.not_found.push(open.sid);
                }
                Err(error @ TwilioApiError::Unauthorized { .. }) => {
                    return Err(ReconcileError::Unauthorized(error));
                }
                Err(error) => {
                    tracing::warn!(sid = %open.sid, %error, "lookup abandoned for this run");
                    report.gave_up += 1;
                }
            }
        }
        Ok(())
    }

    async fn sweep(
        &self,
        window: &Window,
        report: &mut RunReport,
        ahead: &mut Vec<(Option<String>, Resource)>,
    ) -> Result<(), ReconcileError> {
        for kind in KINDS {
            let mut page: Option<String> = None;
            let mut pages_seen = std::collections::HashSet::new();
            loop {
                let listed = self
                    .with_retries(|| self.api.list(kind, window, page.as_deref()))
                    .await
                    .map_err(|source| match source {
                        TwilioApiError::Unauthorized { .. } => ReconcileError::Unauthorized(source),
                        source => ReconcileError::Sweep {
                            kind: kind.as_str(),
                            source,
                        },
                    })?;
                report.listed += listed.resources.len();
                // One ledger read per listed resource, LEDGER_READS at a time: a page of 1,000
                // takes a fraction of a second rather than a thousand round trips in a row.
                let known: Vec<_> = futures_util::stream::iter(
                    listed.resources.into_iter().filter(|r| r.rank().is_some()),
                )
                .map(|resource| async move {
                    let known = self.ledger.known(resource.sid()).await;
                    (known, resource)
                })
                .buffer_unordered(LEDGER_READS)
                .collect()
                .await;
                for (known, resource) in known {
                    let known = known?;
                    if is_ahead(known.as_ref().map(|k| k.rank), &resource) {
                        ahead.push((known.map(|k| k.status), resource));
                    }
                }
                match listed.next_page {
                    Some(next) if !pages_seen.insert(next.clone()) => {
                        return Err(ReconcileError::Sweep {
                            kind: kind.as_str(),
                            source: TwilioApiError::PageLoop { uri: next },
                        });
                    }
                    Some(next) => page = Some(next),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Calls `request` until it succeeds, fails for good, or runs out of attempts; pauses
    /// after a 429 or 5xx as Twilio asks (bounded), else doubling.
    async fn with_retries<T, F, Fut>(&self, mut request: F) -> Result<T, TwilioApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, TwilioApiError>>,
    {
        let mut pause = self.settings.backoff;
        let mut attempt = 1;
        loop {
            match request().await {
                Err(error) if error.is_retryable() && attempt < self.settings.attempts => {
                    let wait = match &error {
                        TwilioApiError::Throttled {
                            retry_after: Some(after),
                        } => (*after).min(self.settings.max_pause),
                        _ => pause,
                    };
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(self.settings.max_pause);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn kind_of(resource: &Resource) -> ResourceKind {
    match resource {
        Resource::Message(_) => ResourceKind::Message,
        Resource::Call(_) => ResourceKind::Call,
    }
}
