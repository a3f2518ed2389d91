//! `serve` with Twilio REST API credentials: the `reconcile` function's scheduled run, on a
//! timer, against the embedded ledger, storing through `serve`'s own ingest core (so a status
//! read back and the same status delivered meanwhile are one).

use super::error::ServeError;
use reconcile::adapters::twilio_api::ApiCredentials;
use reconcile::ports::EventStore;
use reconcile::processor::ReconcileSettings;
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long a run may take to store what it found.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// The sweep covers the period that ended this long ago, as the deployed function's does.
const SWEEP_LAG: Duration = Duration::from_secs(15 * 60);

/// Starts the timer: a run at once, then one every `every`.
pub fn spawn<S: EventStore + 'static>(
    data_dir: &Path,
    api_base: &str,
    credentials: ApiCredentials,
    every: Duration,
    store: S,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| ServeError::Reconcile(e);
    let api = reconcile::startup::twilio_client(api_base, credentials)
        .map_err(|e| failed(Box::new(e)))?;
    let settings = ReconcileSettings {
        every,
        ..ReconcileSettings::default()
    };
    let reconciler = reconcile::startup::local(data_dir, api, store, settings)
        .map_err(|e| failed(Box::new(e)))?;
    println!(
        "  Reconciling with Twilio's REST API ({api_base}) every {}",
        humanize(every)
    );
    Ok(tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            let now = OffsetDateTime::now_utc();
            let plan = reconcile::startup::scheduled(every, Some(SWEEP_LAG), now);
            match reconcile::startup::run_and_report(
                &reconciler,
                plan,
                now,
                Instant::now() + RUN_DEADLINE,
            )
            .await
            {
                Ok(report) if report.stored > 0 => tracing::warn!(
                    stored = report.stored,
                    "reconcile stored statuses Twilio never delivered"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "reconcile run failed"),
            }
        }
    }))
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}
