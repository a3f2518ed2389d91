//! The DynamoDB dedup store against AWS's own DynamoDB engine (DynamoDB Local), where the exact
//! semantics of conditional writes matter.

use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::ports::{DedupClaim, DedupOutcome, DedupStore};
use twilio_events_testkit::aws::{create_dedup_table, ddb_local_endpoint, sdk_config, unique};

async fn store() -> DynamoDedupStore {
    let config = sdk_config(&ddb_local_endpoint()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("dedup");
    create_dedup_table(&client, &table).await;
    DynamoDedupStore::new(client, table)
}

fn claim(key: &str, token: &str, now_ms: i64) -> DedupClaim {
    DedupClaim {
        key: key.into(),
        token: token.into(),
        lease_until_ms: now_ms + 5_000,
        expires_at_s: now_ms / 1000 + 86_400,
        now_ms,
    }
}

const T0: i64 = 1_795_000_000_000;

#[tokio::test]
async fn claim_complete_duplicate() {
    let store = store().await;
    // GIVEN a new event, claimed
    assert_eq!(
        store.claim(&[claim("AC1#EZ1", "a", T0)]).await,
        vec![DedupOutcome::Claimed]
    );
    // WHEN another attempt claims it within the lease THEN it is in progress
    assert_eq!(
        store.claim(&[claim("AC1#EZ1", "b", T0 + 1_000)]).await,
        vec![DedupOutcome::InProgress]
    );
    // WHEN the first completes THEN every later claim is a duplicate, until expiry
    store.complete(&[claim("AC1#EZ1", "a", T0)]).await.unwrap();
    assert_eq!(
        store.claim(&[claim("AC1#EZ1", "c", T0 + 10_000)]).await,
        vec![DedupOutcome::Duplicate]
    );
    assert_eq!(
        store.claim(&[claim("AC1#EZ1", "d", T0 + 86_400_000)]).await,
        vec![DedupOutcome::Claimed],
        "expired in code, whatever TTL did"
    );
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_over_after_its_lease() {
    let store = store().await;
    assert_eq!(
        store.claim(&[claim("k", "dead", T0)]).await,
        vec![DedupOutcome::Claimed]
    );
    assert_eq!(
        store.claim(&[claim("k", "next", T0 + 4_999)]).await,
        vec![DedupOutcome::InProgress]
    );
    assert_eq!(
        store.claim(&[claim("k", "next", T0 + 5_000)]).await,
        vec![DedupOutcome::Claimed]
    );
}

#[tokio::test]
async fn release_only_drops_its_own_claim() {
    let store = store().await;
    store.claim(&[claim("k", "mine", T0)]).await;
    store.release(&[claim("k", "not-mine", T0)]).await.unwrap();
    assert_eq!(
        store.claim(&[claim("k", "x", T0 + 1)]).await,
        vec![DedupOutcome::InProgress]
    );
    store.release(&[claim("k", "mine", T0)]).await.unwrap();
    assert_eq!(
        store.claim(&[claim("k", "x", T0 + 1)]).await,
        vec![DedupOutcome::Claimed]
    );
}

#[tokio::test]
async fn a_batch_of_60_mixed_claims_in_one_call() {
    let store = store().await;
    let done: Vec<DedupClaim> = (0..20)
        .map(|i| claim(&format!("done-{i}"), "a", T0))
        .collect();
    store.claim(&done).await;
    store.complete(&done).await.unwrap(); // 20 items: one BatchWriteItem
    let busy: Vec<DedupClaim> = (0..20)
        .map(|i| claim(&format!("busy-{i}"), "a", T0))
        .collect();
    store.claim(&busy).await;
    let mut mixed: Vec<DedupClaim> = Vec::new();
    for i in 0..20 {
        mixed.push(claim(&format!("done-{i}"), "b", T0 + 100));
        mixed.push(claim(&format!("busy-{i}"), "b", T0 + 100));
        mixed.push(claim(&format!("new-{i}"), "b", T0 + 100));
    }
    let outcomes = store.claim(&mixed).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = [
            DedupOutcome::Duplicate,
            DedupOutcome::InProgress,
            DedupOutcome::Claimed,
        ][i % 3]
            .clone();
        assert_eq!(*outcome, expected, "{}", mixed[i].key);
    }
    // Completing 40 spans two BatchWriteItem calls (25 + 15).
    let claimed: Vec<DedupClaim> = mixed
        .iter()
        .filter(|c| !c.key.starts_with("done"))
        .cloned()
        .collect();
    store.complete(&claimed).await.unwrap();
    assert!(
        store
            .claim(&claimed)
            .await
            .iter()
            .all(|o| *o == DedupOutcome::Duplicate)
    );
}
