//! The core with in-memory fakes: ordering, ledger decisions, failures, deadline, metrics.

use super::*;
use crate::adapters::memory::MemoryStatusLedger;
use crate::ports::LedgerError;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::MemoryQuarantine;

const SID_A: &str = "SM00000000000000000000000000000a";
const SID_B: &str = "SM00000000000000000000000000000b";

fn message(sid: &str, status: &str, id: &str, second: u32) -> Vec<u8> {
    serde_json::json!({
        "specversion": "1.0", "type": format!("com.twilio.messaging.message.{status}"),
        "source": format!("/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/{sid}.json"),
        "id": id, "time": format!("2024-05-01T10:00:{second:02}.000Z"),
        "data": {"messageSid": sid, "messageStatus": status.to_uppercase(), "to": "+15550002222"}
    })
    .to_string()
    .into_bytes()
}

fn record(seq: usize, key: &str, data: Vec<u8>) -> StreamRecord {
    StreamRecord {
        sequence_number: format!("{seq:04}"),
        partition_key: key.into(),
        data,
        arrived_at: None,
    }
}

/// A message's lifecycle as records: (status, second) pairs in the given order.
fn lifecycle(sid: &str, steps: &[(&str, u32)], first_seq: usize) -> Vec<StreamRecord> {
    steps
        .iter()
        .enumerate()
        .map(|(i, (status, second))| {
            record(
                first_seq + i,
                sid,
                message(sid, status, &format!("EZ{sid}{status}{second}"), *second),
            )
        })
        .collect()
}

enum Act {
    Ok,
    Fail(CrmError),
    Hang,
}

type Script = dyn Fn(&StatusUpdate, usize) -> Act + Send + std::marker::Sync;

/// A CRM whose answer to each call is decided by a script; it records the successful writes.
struct FakeCrm {
    script: Box<Script>,
    calls: AtomicUsize,
    written: Mutex<Vec<(StatusUpdate, Instant)>>,
}

impl FakeCrm {
    fn new(
        script: impl Fn(&StatusUpdate, usize) -> Act + Send + std::marker::Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            script: Box::new(script),
            calls: AtomicUsize::new(0),
            written: Mutex::new(Vec::new()),
        })
    }

    fn ok() -> Arc<Self> {
        Self::new(|_, _| Act::Ok)
    }

    fn written(&self) -> Vec<(String, String, String)> {
        self.written
            .lock()
            .unwrap()
            .iter()
            .map(|(u, _)| (u.sid.clone(), u.status.clone(), u.event_id.clone()))
            .collect()
    }

    fn statuses(&self, sid: &str) -> Vec<String> {
        self.written()
            .into_iter()
            .filter(|(s, _, _)| s == sid)
            .map(|(_, st, _)| st)
            .collect()
    }
}

impl Crm for FakeCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        match (self.script)(update, n) {
            Act::Ok => {
                self.written
                    .lock()
                    .unwrap()
                    .push((update.clone(), Instant::now()));
                Ok(())
            }
            Act::Fail(e) => Err(e),
            Act::Hang => std::future::pending().await,
        }
    }
}

type Proc<C> = CrmSync<Arc<MemoryStatusLedger>, Arc<C>, MemoryQuarantine, MemorySink>;

struct Parts {
    ledger: Arc<MemoryStatusLedger>,
}

fn fast() -> SyncSettings {
    SyncSettings {
        concurrency: 4,
        attempt_timeout: Duration::from_millis(200),
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        safety_margin: Duration::from_millis(50),
    }
}

fn sync_with<C: Crm>(crm: Arc<C>, parts: &Parts) -> Proc<C> {
    CrmSync::with_settings(
        parts.ledger.clone(),
        crm,
        MemoryQuarantine::default(),
        MemorySink::default(),
        fast(),
    )
}

fn parts() -> Parts {
    Parts {
        ledger: Arc::default(),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn out_of_order_statuses_only_move_forward_and_each_change_is_written_once() {
    // GIVEN a message whose events arrive read, sent, delivered, queued, with read duplicated
    let parts = parts();
    let crm = FakeCrm::ok();
    let sync = sync_with(crm.clone(), &parts);
    let mut batch = lifecycle(
        SID_A,
        &[
            ("sent", 2),
            ("queued", 1),
            ("read", 4),
            ("delivered", 3),
            ("sent", 2),
        ],
        0,
    );
    batch.push(batch[2].clone());
    batch[5].sequence_number = "0005".into();
    // WHEN processed
    let outcome = sync.process(&batch, soon()).await;
    // THEN everything is done, only forward moves were written, once each
    assert_eq!(outcome, BatchOutcome::all_done());
    assert_eq!(crm.statuses(SID_A), ["sent", "read"]);
    assert_eq!(parts.ledger.row(SID_A).unwrap().status, "read");
    assert_eq!(parts.ledger.row(SID_A).unwrap().state, "pushed");
    assert_eq!(sync.metrics.total(metric::SKIPPED_STALE), 3.0);
    assert_eq!(sync.metrics.total(metric::SKIPPED_DUPLICATE), 1.0);
    assert_eq!(sync.metrics.total(metric::PUSHED), 2.0);
}

#[tokio::test]
async fn a_key_stops_at_its_first_retryable_failure_while_other_keys_go_on() {
    // GIVEN key A whose second record the CRM keeps refusing with 503, and key B that works
    let parts = parts();
    let crm = FakeCrm::new(|u, _| {
        if u.sid == SID_A && u.status == "sent" {
            Act::Fail(CrmError::Server {
                status: 503,
                retry_after: None,
            })
        } else {
            Act::Ok
        }
    });
    let sync = sync_with(crm.clone(), &parts);
    let mut batch = lifecycle(SID_A, &[("queued", 1), ("sent", 2), ("delivered", 3)], 0);
    batch.extend(lifecycle(
        SID_B,
        &[("queued", 1), ("sent", 2), ("delivered", 3)],
        3,
    ));
    // WHEN processed
    let outcome = sync.process(&batch, soon()).await;
    // THEN A's failed record and everything after it in A are reported, B is done
    assert_eq!(outcome.failed, ["0001", "0002"]);
    assert_eq!(
        outcome.first_failure(&batch).unwrap().sequence_number,
        "0001"
    );
    assert_eq!(crm.statuses(SID_A), ["queued"]);
    assert_eq!(crm.statuses(SID_B), ["queued", "sent", "delivered"]);
    // AND the attempts were retried within the invocation, then counted by class
    assert_eq!(crm.calls.load(Ordering::SeqCst), 1 + 3 + 3);
    let server_errors: f64 = sync
        .metrics
        .published()
        .iter()
        .filter(|m| {
            m.to_emf(time::OffsetDateTime::UNIX_EPOCH)
                .contains("\"ErrorClass\":\"server\"")
        })
        .filter_map(|m| m.get(metric::ERRORS))
        .flatten()
        .sum();
    assert_eq!(server_errors, 3.0);
    assert_eq!(sync.metrics.total(metric::RETRIED), 2.0);
}

#[tokio::test]
async fn malformed_records_and_crm_refusals_are_quarantined_with_their_payload_and_acknowledged() {
    // GIVEN a record that is not JSON, and a status the CRM refuses with 422
    let parts = parts();
    let crm = FakeCrm::new(|u, _| {
        if u.status == "failed" {
            Act::Fail(CrmError::Rejected {
                status: 422,
                detail: " Unprocessable Entity".into(),
            })
        } else {
            Act::Ok
        }
    });
    let sync = sync_with(crm.clone(), &parts);
    let mut batch = vec![record(0, "junk", b"{not json".to_vec())];
    batch.extend(lifecycle(SID_A, &[("failed", 3)], 1));
    batch.extend(lifecycle(SID_B, &[("queued", 1)], 2));
    // WHEN processed
    let outcome = sync.process(&batch, soon()).await;
    // THEN nothing is retried, both are quarantined whole, the rest went through
    assert_eq!(outcome, BatchOutcome::all_done());
    let items = sync.quarantine.items();
    let reasons: Vec<&str> = items.iter().map(|i| i.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons.contains(&"malformed-record") && reasons.contains(&"crm-rejected"),
        "{reasons:?}"
    );
    let refused = items.iter().find(|i| i.reason == "crm-rejected").unwrap();
    assert_eq!(refused.payload_bytes(), batch[1].data);
    assert!(
        refused
            .reference
            .as_deref()
            .unwrap()
            .contains("sequence-number=0001")
    );
    assert!(!refused.detail.contains("+1555"));
    assert_eq!(crm.statuses(SID_B), ["queued"]);
    assert_eq!(parts.ledger.row(SID_A).unwrap().state, "rejected");
    assert_eq!(sync.metrics.total(metric::QUARANTINED), 2.0);
    // AND a redelivery of the refused event is a duplicate, not a second quarantine
    let again = sync.process(&batch[1..2], soon()).await;
    assert_eq!(again, BatchOutcome::all_done());
    assert_eq!(sync.quarantine.items().len(), 2);
}

#[tokio::test]
async fn other_event_types_are_skipped_and_counted() {
    let parts = parts();
    let crm = FakeCrm::ok();
    let sync = sync_with(crm.clone(), &parts);
    let inbound = serde_json::json!({"specversion": "1.0", "type": "com.twilio.messaging.inbound-message.received",
        "id": "EZin", "source": "/x", "data": {"messageSid": SID_A}});
    let batch = vec![record(0, SID_A, inbound.to_string().into_bytes())];
    assert_eq!(sync.process(&batch, soon()).await, BatchOutcome::all_done());
    assert_eq!(crm.calls.load(Ordering::SeqCst), 0);
    assert_eq!(sync.metrics.total(metric::SKIPPED_NOT_STATUS), 1.0);
}

#[tokio::test]
async fn a_hanging_crm_cannot_make_the_invocation_overrun_its_deadline() {
    // GIVEN a CRM that never answers, and 20 keys
    let parts = parts();
    let crm = FakeCrm::new(|_, _| Act::Hang);
    let mut sync = sync_with(crm.clone(), &parts);
    sync.settings.attempt_timeout = Duration::from_secs(60);
    let batch: Vec<StreamRecord> = (0..20)
        .map(|i| {
            let sid = format!("SM{i:032}");
            record(i, &sid, message(&sid, "sent", &format!("EZ{i}"), 1))
        })
        .collect();
    // WHEN given 400 ms
    let started = Instant::now();
    let deadline = started + Duration::from_millis(400);
    let outcome = sync.process(&batch, deadline).await;
    // THEN it returns before the deadline, with every record (started or not) failed
    assert!(
        Instant::now() < deadline,
        "overran by {:?}",
        Instant::now() - deadline
    );
    assert_eq!(outcome.failed.len(), 20);
    assert!(outcome.failed.iter().all(|s| !s.is_empty()));
}

#[tokio::test]
async fn a_crash_between_ledger_claim_and_crm_push_loses_nothing_and_pushes_once() {
    // GIVEN the first invocation dies (deadline) after claiming, while the CRM push hangs
    let parts = parts();
    let hang = FakeCrm::new(|_, _| Act::Hang);
    let batch = lifecycle(SID_A, &[("delivered", 3)], 0);
    let first = sync_with(hang, &parts)
        .process(&batch, Instant::now() + Duration::from_millis(150))
        .await;
    assert_eq!(first.failed, ["0000"]);
    assert_eq!(parts.ledger.row(SID_A).unwrap().state, "pending");
    // WHEN Lambda retries the batch with a CRM that works
    let crm = FakeCrm::ok();
    let second = sync_with(crm.clone(), &parts).process(&batch, soon()).await;
    // THEN the pending update is pushed, exactly once, and settled
    assert_eq!(second, BatchOutcome::all_done());
    assert_eq!(crm.statuses(SID_A), ["delivered"]);
    assert_eq!(parts.ledger.row(SID_A).unwrap().state, "pushed");
    // AND a third delivery changes nothing
    sync_with(crm.clone(), &parts).process(&batch, soon()).await;
    assert_eq!(crm.written().len(), 1);
}

/// A ledger whose first settle fails (a crash after the push, before the ledger knows).
struct ForgetfulLedger {
    inner: MemoryStatusLedger,
    failures_left: AtomicUsize,
}

impl StatusLedger for ForgetfulLedger {
    async fn claim(&self, u: &StatusUpdate) -> Result<LedgerDecision, LedgerError> {
        self.inner.claim(u).await
    }
    async fn settle(&self, u: &StatusUpdate, o: Settled) -> Result<(), LedgerError> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(LedgerError::unavailable(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            )));
        }
        self.inner.settle(u, o).await
    }
}

#[tokio::test]
async fn a_crash_between_crm_push_and_settle_repeats_the_write_with_the_same_idempotency_key() {
    // GIVEN the push succeeds but the ledger cannot record it
    let ledger = ForgetfulLedger {
        inner: MemoryStatusLedger::default(),
        failures_left: AtomicUsize::new(1),
    };
    let crm = FakeCrm::ok();
    let sync = CrmSync::with_settings(
        ledger,
        crm.clone(),
        MemoryQuarantine::default(),
        MemorySink::default(),
        fast(),
    );
    let batch = lifecycle(SID_A, &[("sent", 2), ("delivered", 3)], 0);
    // WHEN the batch fails and is retried from the first failure
    let first = sync.process(&batch, soon()).await;
    assert_eq!(first.failed, ["0000", "0001"]);
    let second = sync.process(&batch, soon()).await;
    // THEN the repeated write carries the same event id (Idempotency-Key), no status regresses
    assert_eq!(second, BatchOutcome::all_done());
    let written = crm.written();
    assert_eq!(crm.statuses(SID_A), ["sent", "sent", "delivered"]);
    assert_eq!(written[0].2, written[1].2);
    assert_eq!(sync.ledger.inner.row(SID_A).unwrap().state, "pushed");
}

#[tokio::test]
async fn retry_after_is_honoured_between_attempts() {
    // GIVEN a CRM that throttles the first call asking for 300 ms
    let parts = parts();
    let crm = FakeCrm::new(|_, n| {
        if n == 0 {
            Act::Fail(CrmError::Throttled {
                retry_after: Some(Duration::from_millis(300)),
            })
        } else {
            Act::Ok
        }
    });
    let sync = sync_with(crm.clone(), &parts);
    let batch = lifecycle(SID_A, &[("sent", 2)], 0);
    // WHEN processed
    let started = Instant::now();
    assert_eq!(sync.process(&batch, soon()).await, BatchOutcome::all_done());
    // THEN the write came no sooner than asked
    let at = crm.written.lock().unwrap()[0].1;
    assert!(
        at - started >= Duration::from_millis(300),
        "{:?}",
        at - started
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_leaves_the_record_to_the_next_invocation() {
    let parts = parts();
    let crm = FakeCrm::new(|_, _| {
        Act::Fail(CrmError::Throttled {
            retry_after: Some(Duration::from_secs(30)),
        })
    });
    let sync = sync_with(crm.clone(), &parts);
    let batch = lifecycle(SID_A, &[("sent", 2)], 0);
    let started = Instant::now();
    let outcome = sync.process(&batch, started + Duration::from_secs(2)).await;
    assert_eq!(outcome.failed, ["0000"]);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(crm.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn metrics_are_one_emf_document_plus_one_per_error_class() {
    // GIVEN a batch with a push, a stale skip, a timeout-then-success
    let parts = parts();
    let crm = FakeCrm::new(|u, n| {
        if u.status == "delivered" && n < 2 {
            Act::Hang
        } else {
            Act::Ok
        }
    });
    let mut sync = sync_with(crm.clone(), &parts);
    sync.settings.attempt_timeout = Duration::from_millis(30);
    let batch = lifecycle(SID_A, &[("delivered", 3), ("sent", 2)], 0);
    sync.process(&batch, soon()).await;
    // THEN the documents say what happened
    let docs: Vec<serde_json::Value> = sync
        .metrics
        .published()
        .iter()
        .map(|m| serde_json::from_str(&m.to_emf(time::OffsetDateTime::now_utc())).unwrap())
        .collect();
    let main = &docs[0];
    assert_eq!(main["Service"], "crm-sync");
    assert_eq!(main["UpdatesPushed"], 1.0);
    assert_eq!(main["SkippedStale"], 1.0);
    assert_eq!(main["Records"], 2.0);
    assert_eq!(main["CrmLatency"].as_array().unwrap().len(), 3);
    let timeouts = docs
        .iter()
        .find(|d| d["ErrorClass"] == "timeout")
        .expect("a timeout document");
    assert_eq!(timeouts["Errors"], 2.0);
    assert_eq!(
        timeouts["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Service", "ErrorClass"]])
    );
}
