//! The run on in-memory fakes: what is looked up, what is stored, and how Twilio's refusals are
//! taken.

use reconcile::adapters::memory::{MemoryLedger, MemoryStore, ScriptedApi};
use reconcile::ports::{OpenResource, Resource, ResourceKind};
use reconcile::processor::{ReconcileError, ReconcileSettings};
use reconcile::{Reconciler, RunPlan, StuckLookups, Window};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const ACCOUNT: &str = "AC6efc9b5850127eaea3c1e8dea35cdf4a";

fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}

fn message(n: u32, status: &str) -> Resource {
    Resource::Message(
        serde_json::from_value(serde_json::json!({
            "sid": sid(n), "account_sid": ACCOUNT, "status": status,
            "date_updated": "Fri, 27 Nov 2026 09:12:44 +0000",
        }))
        .unwrap(),
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A ledger row for message `n` at `status`, last changed `age` before [`now`].
fn row(n: u32, status: &str, age: Duration) -> OpenResource {
    OpenResource {
        sid: sid(n),
        kind: ResourceKind::Message,
        status: status.into(),
        rank: twilio_events::status::MessageStatus::parse(status)
            .rank()
            .unwrap(),
        changed_at_ms: millis(now()) - age.as_millis() as i64,
    }
}

fn settings() -> ReconcileSettings {
    ReconcileSettings {
        backoff: Duration::from_millis(1),
        ..ReconcileSettings::default()
    }
}

type Run = Reconciler<Arc<MemoryLedger>, Arc<ScriptedApi>, Arc<MemoryStore>>;

fn reconciler(ledger: MemoryLedger, api: ScriptedApi) -> (Run, Arc<ScriptedApi>, Arc<MemoryStore>) {
    let api = Arc::new(api);
    let store = Arc::new(MemoryStore::default());
    let run = Reconciler::new(
        Arc::new(ledger),
        Arc::clone(&api),
        Arc::clone(&store),
        settings(),
    );
    (run, api, store)
}

const DUE: RunPlan = RunPlan {
    stuck: StuckLookups::Due,
    sweep: None,
    dry_run: false,
};

async fn run(r: &Run, plan: RunPlan) -> reconcile::RunReport {
    r.run(plan, now(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_stuck_message_whose_age_crossed_a_step_is_looked_up_and_its_final_status_stored_once() {
    // GIVEN message 1 sent 15 min ago (due), message 2 sent 40 min ago (not due: between
    // steps), and Twilio says both were delivered
    let ledger = MemoryLedger::default();
    ledger.insert(row(1, "sent", 15 * MINUTE + Duration::from_secs(30)));
    ledger.insert(row(2, "sent", 40 * MINUTE));
    let (r, api, store) = reconciler(
        ledger,
        ScriptedApi::with([message(1, "delivered"), message(2, "delivered")]),
    );
    // WHEN a scheduled run happens
    let report = run(&r, DUE).await;
    // THEN only message 1 is looked up, and its delivered status stored
    assert_eq!(api.requests(), vec![format!("fetch {}", sid(1))]);
    assert_eq!(
        (report.looked_up, report.advanced, report.stored),
        (1, 1, 1)
    );
    let events = store.events();
    assert_eq!(events.len(), 1);
    assert!(events[0].contains("com.twilio.messaging.message.delivered"));
    assert!(events[0].contains(&sid(1)));
    // AND a second run at the same time stores nothing new
    let again = run(&r, DUE).await;
    assert_eq!((again.stored, again.already_stored), (0, 1));
    assert_eq!(store.events().len(), 1);
}

#[tokio::test]
async fn a_status_not_ahead_of_the_ledger_is_left_alone() {
    let ledger = MemoryLedger::default();
    ledger.insert(row(1, "sent", 60 * MINUTE + Duration::from_secs(1)));
    let (r, _, store) = reconciler(ledger, ScriptedApi::with([message(1, "sent")]));
    let report = run(&r, DUE).await;
    assert_eq!(
        (report.looked_up, report.advanced, report.stored),
        (1, 0, 0)
    );
    assert!(store.events().is_empty());
}

#[tokio::test]
async fn throttling_is_waited_out_and_a_404_is_recorded_not_retried() {
    // GIVEN two stuck messages: Twilio throttles the first twice, and deleted the second
    let ledger = MemoryLedger::default();
    ledger.insert(row(1, "sent", 4 * 60 * MINUTE + Duration::from_secs(1)));
    ledger.insert(row(2, "queued", 4 * 60 * MINUTE + Duration::from_secs(2)));
    let api = ScriptedApi::with([message(1, "undelivered")]);
    api.fail_first(&sid(1), &[429, 429]);
    let (r, api, store) = reconciler(ledger, api);
    // WHEN a run happens
    let report = run(&r, DUE).await;
    // THEN the first is stored after three requests, the second is named as not found once
    let requests = api.requests();
    assert_eq!(requests.iter().filter(|q| q.contains(&sid(1))).count(), 3);
    assert_eq!(requests.iter().filter(|q| q.contains(&sid(2))).count(), 1);
    assert_eq!(report.stored, 1);
    assert_eq!(report.not_found, vec![sid(2)]);
    assert_eq!(report.gave_up, 0);
    assert_eq!(store.events().len(), 1);
}

#[tokio::test]
async fn a_lookup_throttled_past_its_attempts_is_left_for_the_next_run() {
    let ledger = MemoryLedger::default();
    ledger.insert(row(1, "sent", 15 * MINUTE + Duration::from_secs(1)));
    let api = ScriptedApi::with([message(1, "delivered")]);
    api.fail_first(&sid(1), &[429, 503, 429, 429]);
    let (r, _, store) = reconciler(ledger, api);
    let report = run(&r, DUE).await;
    assert_eq!((report.gave_up, report.stored), (1, 0));
    assert!(store.events().is_empty());
    // The next run (same time: the same window) finds it.
    let next = run(&r, DUE).await;
    assert_eq!(next.stored, 1);
}

#[tokio::test]
async fn refused_credentials_stop_the_run() {
    let ledger = MemoryLedger::default();
    ledger.insert(row(1, "sent", 15 * MINUTE + Duration::from_secs(1)));
    let api = ScriptedApi::with([message(1, "delivered")]);
    api.fail_first(&sid(1), &[401]);
    let (r, _, store) = reconciler(ledger, api);
    let error = r
        .run(DUE, now(), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(error, ReconcileError::Unauthorized(_)), "{error}");
    assert!(error.to_string().contains("credentials"), "{error}");
    assert!(store.events().is_empty());
}

#[tokio::test]
async fn the_sweep_pages_through_the_window_and_stores_what_the_ledger_never_saw_or_holds_behind() {
    // GIVEN 120 messages in Twilio (pages of 50): the ledger holds 1..=100 delivered, 101..=110
    // sent, and never saw 111..=120
    let ledger = MemoryLedger::default();
    let mut resources = Vec::new();
    for n in 1..=120 {
        resources.push(message(n, "delivered"));
        match n {
            1..=100 => ledger.insert(row(n, "delivered", 2 * MINUTE)),
            101..=110 => ledger.insert(row(n, "sent", 2 * MINUTE)),
            _ => {}
        }
    }
    let (r, api, store) = reconciler(ledger, ScriptedApi::with(resources));
    let window = Window {
        since: now() - 60 * MINUTE,
        until: now(),
    };
    let plan = RunPlan {
        stuck: StuckLookups::None,
        sweep: Some(window),
        dry_run: true,
    };
    // WHEN a dry run sweeps the window
    let dry = run(&r, plan).await;
    // THEN it lists three pages of messages (and one of calls), and stores nothing
    assert_eq!(dry.listed, 120);
    assert_eq!(
        api.requests(),
        vec![
            "list message from 0",
            "list message from 50",
            "list message from 100",
            "list call from 0"
        ]
    );
    assert_eq!((dry.advanced, dry.discovered, dry.stored), (10, 10, 0));
    assert!(store.events().is_empty());
    let repaired: Vec<_> = dry.repairs.iter().map(|r| r.sid.clone()).collect();
    assert_eq!(repaired, (101..=120).map(sid).collect::<Vec<_>>());
    assert_eq!(dry.repairs[0].known_status.as_deref(), Some("sent"));
    assert_eq!(dry.repairs[19].known_status, None);
    // WHEN it runs for real
    let real = run(
        &r,
        RunPlan {
            dry_run: false,
            ..plan
        },
    )
    .await;
    // THEN the 20 are stored
    assert_eq!(real.stored, 20);
    assert_eq!(store.events().len(), 20);
}
