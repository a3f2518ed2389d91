//! The `local` feature, as `twilio-events serve` uses it.

use crate::helpers::crm_server::{self, Faults};
use crate::helpers::events;
use crm_sync::adapters::jsonl_crm::JsonlCrm;
use crm_sync::startup::local_processor;
use std::time::{Duration, Instant};
use twilio_events::stream::{BatchProcessor, StreamRecord};

fn records(sid: &str, steps: &[(&'static str, u64)]) -> Vec<StreamRecord> {
    steps
        .iter()
        .enumerate()
        .map(|(i, (status, t))| StreamRecord {
            sequence_number: i.to_string(),
            partition_key: sid.into(),
            data: events::message_event(sid, status, *t, false),
            arrived_at: None,
        })
        .collect()
}

fn data_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(crate::helpers::unique("crm-local"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn without_a_crm_url_updates_go_to_crm_jsonl_forward_only_across_restarts() {
    // GIVEN a data directory and out-of-order events
    let dir = data_dir();
    let sid = events::message_sid(1);
    let batch = records(&sid, &[("sent", 1), ("queued", 0), ("delivered", 2)]);
    // WHEN processed, then the processor is rebuilt (a restart) and a late sent arrives
    let p = local_processor(&dir, None, None).await.unwrap();
    assert!(
        p.process(&batch, Instant::now() + Duration::from_secs(5))
            .await
            .failed
            .is_empty()
    );
    drop(p);
    let p = local_processor(&dir, None, None).await.unwrap();
    assert!(
        p.process(&batch[..1], Instant::now() + Duration::from_secs(5))
            .await
            .failed
            .is_empty()
    );
    // THEN crm.jsonl holds sent then delivered, one line each, with the HTTP body's fields
    let lines = std::fs::read_to_string(dir.join("crm.jsonl")).unwrap();
    let bodies: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = bodies
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    assert_eq!(bodies[1]["sid"], sid.as_str());
    assert_eq!(bodies[1]["to"], "+15550002222");
    assert_eq!(JsonlCrm::new(dir.join("crm.jsonl")).updates().len(), 2);
    // AND a malformed record lands in crm-quarantine.jsonl
    let junk = StreamRecord {
        sequence_number: "9".into(),
        partition_key: "x".into(),
        data: b"nope".to_vec(),
        arrived_at: None,
    };
    assert!(
        p.process(&[junk], Instant::now() + Duration::from_secs(5))
            .await
            .failed
            .is_empty()
    );
    let q =
        twilio_events::quarantine::FileQuarantine::new(dir.join("crm-quarantine.jsonl")).items();
    assert_eq!((q.len(), q[0].payload.as_str()), (1, "nope"));
}

#[tokio::test]
async fn with_a_crm_url_updates_go_to_that_crm() {
    let dir = data_dir();
    let server = crm_server::start(Faults {
        token: Some("tok".into()),
        ..Faults::default()
    })
    .await;
    let sid = events::message_sid(2);
    let p = local_processor(&dir, Some(server.url.clone()), Some("tok".into()))
        .await
        .unwrap();
    let outcome = p
        .process(
            &records(&sid, &[("queued", 0), ("read", 3), ("sent", 1)]),
            Instant::now() + Duration::from_secs(5),
        )
        .await;
    assert!(outcome.failed.is_empty());
    assert_eq!(server.crm.status_of(&sid).as_deref(), Some("read"));
    assert_eq!(server.crm.writes().len(), 2);
    assert!(!dir.join("crm.jsonl").exists());
    assert!(
        local_processor(&dir, Some("not a url".into()), None)
            .await
            .is_err()
    );
}
