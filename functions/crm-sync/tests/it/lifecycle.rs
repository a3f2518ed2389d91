//! The main scenario: 1,000 messages' lifecycles, shuffled and duplicated, through moto
//! Kinesis, the DynamoDB Local ledger and a local HTTP CRM.

use crate::helpers::crm_server::{self, Faults};
use crate::helpers::events::{self, Rng};
use crate::helpers::*;
use crm_sync::adapters::dynamodb::DynamoStatusLedger;
use crm_sync::processor::metric;
use crm_sync::{CrmSync, HttpCrm, Secret, SyncSettings};
use std::collections::HashMap;
use std::time::Duration;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::SqsQuarantine;

const MESSAGES: usize = 1_000;

/// Every permutation of 4 items, by index (the factorial number system).
fn permutation<T: Clone>(items: &[T], mut n: usize) -> Vec<T> {
    let mut pool = items.to_vec();
    let mut out = Vec::new();
    for k in (1..=pool.len()).rev() {
        let f: usize = (1..k).product();
        out.push(pool.remove(n / f % k));
        n %= f;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shuffled_duplicated_lifecycle_of_1000_messages_ends_with_each_final_status_written_once()
{
    // GIVEN 1,000 messages whose events (queued, sent, delivered, undelivered, failed, read) come
    // in every order, 30% of them twice, half with `data` as a JSON string (Twilio's Kinesis sink)
    let mut rng = Rng::new(7);
    let mut per_sid: HashMap<String, Vec<(&'static str, u64)>> = HashMap::new();
    let mut stream: Vec<(String, &'static str, u64)> = Vec::new();
    for i in 0..MESSAGES {
        let sid = events::message_sid(i);
        let steps = events::lifecycle(i);
        let mut order = if steps.len() == 4 {
            permutation(&steps, i / 6 % 24)
        } else {
            steps.clone()
        };
        if steps.len() != 4 {
            rng.shuffle(&mut order);
        }
        let mut with_dups = order.clone();
        for step in &order {
            if rng.chance(0.3) {
                let at = rng.below(with_dups.len() + 1);
                with_dups.insert(at, *step);
            }
        }
        per_sid.insert(sid.clone(), steps);
        stream.extend(with_dups.into_iter().map(|(s, t)| (sid.clone(), s, t)));
    }
    // Interleave the messages while keeping each message's own order (as one shard would).
    let mut queues: Vec<Vec<(String, &'static str, u64)>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for e in stream {
        let q = *index.entry(e.0.clone()).or_insert_with(|| {
            queues.push(Vec::new());
            queues.len() - 1
        });
        queues[q].push(e);
    }
    let mut expected_order: HashMap<String, Vec<(&'static str, u64)>> = HashMap::new();
    let mut records = Vec::new();
    for q in &mut queues {
        q.reverse();
    }
    while !queues.is_empty() {
        let q = rng.below(queues.len());
        let (sid, status, t) = queues[q].pop().unwrap();
        if queues[q].is_empty() {
            queues.swap_remove(q);
        }
        expected_order
            .entry(sid.clone())
            .or_default()
            .push((status, t));
        records.push((
            sid.clone(),
            events::message_event(&sid, status, t, rng.chance(0.5)),
        ));
    }
    let total_records = records.len();
    let shards = through_kinesis(&records, 2).await;

    let ddb = aws_sdk_dynamodb::Client::new(&sdk(&ddb_local()).await);
    let table = ledger_table(&ddb).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk(&moto()).await);
    let queue_url = queue(&sqs).await;
    let server = crm_server::start(Faults {
        token: Some("s3cret".into()),
        ..Faults::default()
    })
    .await;
    let processor = CrmSync::with_settings(
        DynamoStatusLedger::new(ddb.clone(), &table),
        HttpCrm::new(&server.url, Some(Secret::new("s3cret"))).unwrap(),
        SqsQuarantine::new(sqs.clone(), &queue_url),
        MemorySink::default(),
        SyncSettings {
            concurrency: 32,
            ..SyncSettings::default()
        },
    );

    // WHEN each shard is consumed in batches of 100, as the event source mapping would
    let started = std::time::Instant::now();
    let mut invocations = 0;
    for shard in &shards {
        invocations += run_shard(&processor, shard, 100, Duration::from_secs(60)).await;
    }
    eprintln!(
        "{total_records} records in {invocations} invocations, {:?}",
        started.elapsed()
    );

    // THEN the CRM holds exactly each message's final status
    let crm = &server.crm;
    for (sid, steps) in &per_sid {
        assert_eq!(
            crm.status_of(sid).as_deref(),
            Some(events::final_status(steps)),
            "{sid}"
        );
    }
    // AND no write ever moved a message backwards, none was repeated
    assert_eq!(*crm.regressions.lock().unwrap(), 0, "regressions written");
    assert_eq!(*crm.repeats.lock().unwrap(), 0, "writes repeated");
    // AND the CRM got exactly one write per forward move: each status change once
    let expected_writes: usize = expected_order
        .values()
        .map(|o| events::forward_moves(o))
        .sum();
    assert_eq!(crm.writes().len(), expected_writes);
    assert_eq!(*crm.requests.lock().unwrap(), expected_writes);
    // AND every record was accounted for, nothing quarantined, no retries needed
    let m = &processor.metrics;
    assert_eq!(m.total(metric::PUSHED) as usize, expected_writes);
    assert_eq!(
        (m.total(metric::PUSHED)
            + m.total(metric::SKIPPED_STALE)
            + m.total(metric::SKIPPED_DUPLICATE)) as usize,
        total_records
    );
    assert_eq!(m.total(metric::QUARANTINED), 0.0);
    assert_eq!(m.total(metric::RETRIED), 0.0);
    assert!(drain_queue(&sqs, &queue_url).await.is_empty());
    // AND the ledger agrees, settled
    let ledger = DynamoStatusLedger::new(ddb, &table);
    for sid in per_sid.keys().take(50) {
        let row = ledger.row(sid).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.state.as_str()),
            (events::final_status(&per_sid[sid]), "pushed")
        );
    }
    // AND the body followed the contract
    let body = &crm.writes()[0].body;
    for field in [
        "sid",
        "kind",
        "status",
        "rank",
        "error_code",
        "from",
        "to",
        "account_sid",
        "event_id",
        "event_time",
    ] {
        assert!(body.get(field).is_some(), "{field} missing from {body}");
    }
}
