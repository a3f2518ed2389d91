//! A CRM that fails 30% of calls with 503 or 429 and sometimes hangs, plus one record it
//! refuses for good: after Lambda's retries nothing is lost, nothing regresses, the refused
//! record is quarantined (SQS on moto) and the rest of its batch goes through.

use crate::helpers::crm_server::{self, Faults};
use crate::helpers::events::{self, Rng};
use crate::helpers::*;
use crm_sync::adapters::dynamodb::DynamoStatusLedger;
use crm_sync::processor::metric;
use crm_sync::{CrmSync, HttpCrm, SyncSettings};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::SqsQuarantine;

const MESSAGES: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_crm_loses_nothing_and_a_refused_record_is_quarantined_while_its_batch_goes_on() {
    // GIVEN 150 messages' shuffled lifecycles in one shard, and a CRM that fails 30% of calls
    // (503, or 429 with Retry-After: 1), hangs 5% of them for 1.5 s, and refuses one message
    let mut rng = Rng::new(11);
    let refused = events::message_sid(7);
    let mut per_sid = HashMap::new();
    let mut records = Vec::new();
    let mut orders: Vec<(String, Vec<(&'static str, u64)>)> = (0..MESSAGES)
        .map(|i| {
            let steps = events::lifecycle(i);
            per_sid.insert(events::message_sid(i), steps.clone());
            let mut order = steps;
            rng.shuffle(&mut order);
            (events::message_sid(i), order)
        })
        .collect();
    while !orders.is_empty() {
        let q = rng.below(orders.len());
        let (status, t) = orders[q].1.remove(0);
        let sid = orders[q].0.clone();
        if orders[q].1.is_empty() {
            orders.swap_remove(q);
        }
        records.push((sid.clone(), events::message_event(&sid, status, t, false)));
    }
    let shard = through_kinesis(&records, 1).await.remove(0);

    let ddb = aws_sdk_dynamodb::Client::new(&sdk(&ddb_local()).await);
    let table = ledger_table(&ddb).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk(&moto()).await);
    let queue_url = queue(&sqs).await;
    let server = crm_server::start(Faults {
        fail: 0.30,
        hang: 0.05,
        hang_for: Duration::from_millis(1_500),
        retry_after: Some(1),
        reject: HashSet::from([refused.clone()]),
        ..Faults::default()
    })
    .await;
    let processor = CrmSync::with_settings(
        DynamoStatusLedger::new(ddb, &table),
        HttpCrm::new(&server.url, None).unwrap(),
        SqsQuarantine::new(sqs.clone(), &queue_url),
        MemorySink::default(),
        SyncSettings {
            concurrency: 16,
            // Above what a loaded 2-core CI machine takes to answer a normal request: a request
            // that times out here may still be applied by the CRM later (the HTTP contract says
            // so), which this fake would count as a regression; only the hung ones time out.
            attempt_timeout: Duration::from_millis(1_000),
            max_attempts: 3,
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            safety_margin: Duration::from_millis(200),
        },
    );

    // WHEN Lambda consumes the shard, 100 records an invocation of at most 3 s, retrying from
    // the first failure each time
    let started = std::time::Instant::now();
    let invocations = run_shard(&processor, &shard, 100, Duration::from_secs(3)).await;
    eprintln!(
        "{} records, {invocations} invocations, {:?}",
        shard.len(),
        started.elapsed()
    );

    // THEN the faults really happened and forced retries
    let crm = &server.crm;
    let failures = crm.failures.lock().unwrap().clone();
    assert!(
        failures.get(&503).copied().unwrap_or(0) > 10
            && failures.get(&429).copied().unwrap_or(0) > 10,
        "{failures:?}"
    );
    assert!(
        invocations > shard.len().div_ceil(100),
        "no invocation had to be retried"
    );
    // AND nothing was lost: every other message ends at its final status
    for (sid, steps) in &per_sid {
        if *sid != refused {
            assert_eq!(
                crm.status_of(sid).as_deref(),
                Some(events::final_status(steps)),
                "{sid}"
            );
        }
    }
    // AND nothing regressed, nothing applied twice
    assert_eq!(*crm.regressions.lock().unwrap(), 0);
    assert_eq!(*crm.repeats.lock().unwrap(), 0);
    // AND the refused message's updates are in the quarantine with their payload, and only them
    assert_eq!(crm.status_of(&refused), None);
    let quarantined = drain_queue(&sqs, &queue_url).await;
    assert!(!quarantined.is_empty());
    for item in &quarantined {
        assert_eq!(
            (item.source.as_str(), item.reason.as_str()),
            ("crm-sync", "crm-rejected")
        );
        let event = twilio_events::CloudEvent::parse_owned(
            String::from_utf8(item.payload_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(event.resource_key(), refused);
        assert!(item.detail.contains("422"), "{}", item.detail);
    }
    assert_eq!(
        processor.metrics.total(metric::QUARANTINED) as usize,
        quarantined.len()
    );
    assert!(processor.metrics.total(metric::RETRIED) > 0.0);
}
