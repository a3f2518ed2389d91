//! The DynamoDB ledger on DynamoDB Local: its conditional writes make the decisions.

use crate::helpers::*;
use crm_sync::adapters::dynamodb::DynamoStatusLedger;
use crm_sync::{LedgerDecision, ResourceKind, Settled, StatusLedger, StatusUpdate};

fn update(status: &str, rank: u8, second: u32) -> StatusUpdate {
    StatusUpdate {
        sid: "SM0123456789abcdef0123456789abcdef".into(),
        kind: ResourceKind::Message,
        status: status.into(),
        rank,
        error_code: None,
        from: None,
        to: None,
        account_sid: None,
        event_id: format!("EZ{status}{second}"),
        event_time: Some(format!("2024-05-01T10:00:{second:02}.000Z")),
    }
}

async fn ledger() -> DynamoStatusLedger {
    let client = aws_sdk_dynamodb::Client::new(&sdk(&ddb_local()).await);
    let table = ledger_table(&client).await;
    DynamoStatusLedger::new(client, table)
}

#[tokio::test]
async fn the_ledger_moves_forward_only_and_breaks_ties_by_event_time() {
    let ledger = ledger().await;
    // GIVEN delivered claimed and pushed
    let delivered = update("delivered", 6, 3);
    assert_eq!(
        ledger.claim(&delivered).await.unwrap(),
        LedgerDecision::Push
    );
    ledger.settle(&delivered, Settled::Pushed).await.unwrap();
    // WHEN a late sent, the same delivered again, an earlier failed and a later undelivered come
    // THEN only the later undelivered moves it
    assert_eq!(
        ledger.claim(&update("sent", 4, 9)).await.unwrap(),
        LedgerDecision::Stale
    );
    assert_eq!(
        ledger.claim(&delivered).await.unwrap(),
        LedgerDecision::Duplicate
    );
    assert_eq!(
        ledger.claim(&update("failed", 6, 2)).await.unwrap(),
        LedgerDecision::Stale
    );
    assert_eq!(
        ledger.claim(&update("undelivered", 6, 4)).await.unwrap(),
        LedgerDecision::Push
    );
    let row = ledger.row(&delivered.sid).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.state.as_str(), row.rank),
        ("undelivered", "pending", 6)
    );
    // AND settling the superseded delivered changes nothing
    ledger.settle(&delivered, Settled::Pushed).await.unwrap();
    assert_eq!(
        ledger.row(&delivered.sid).await.unwrap().unwrap().state,
        "pending"
    );
}

#[tokio::test]
async fn a_pending_claim_left_by_a_crash_is_claimed_again_by_its_own_event_only() {
    let ledger = ledger().await;
    // GIVEN read claimed, then the process died before pushing
    let read = update("read", 7, 5);
    assert_eq!(ledger.claim(&read).await.unwrap(), LedgerDecision::Push);
    // WHEN the retry claims the same event THEN it is to be pushed again
    assert_eq!(ledger.claim(&read).await.unwrap(), LedgerDecision::Push);
    // AND an older event is still stale
    assert_eq!(
        ledger.claim(&update("delivered", 6, 3)).await.unwrap(),
        LedgerDecision::Stale
    );
    // AND once settled, the event is a duplicate
    ledger.settle(&read, Settled::Rejected).await.unwrap();
    assert_eq!(
        ledger.claim(&read).await.unwrap(),
        LedgerDecision::Duplicate
    );
    assert_eq!(
        ledger.row(&read.sid).await.unwrap().unwrap().state,
        "rejected"
    );
}

#[tokio::test]
async fn the_open_index_lists_a_resource_until_its_status_is_final() {
    // GIVEN a message claimed at sent, and another claimed at sent then delivered
    let ledger = ledger().await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1_000;
    let mut open = update("sent", 4, 1);
    open.sid = "SM00000000000000000000000000000001".into();
    let mut closed = update("sent", 4, 1);
    closed.sid = "SM00000000000000000000000000000002".into();
    ledger.claim(&open).await.unwrap();
    ledger.claim(&closed).await.unwrap();
    let mut delivered = update("delivered", 6, 2);
    delivered.sid = closed.sid.clone();
    ledger.claim(&delivered).await.unwrap();
    let after = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 1_000;
    // WHEN reconcile asks for the open messages changed in the window
    let listed = ledger
        .open_between(ResourceKind::Message, before, after)
        .await
        .unwrap();
    // THEN only the one still at sent is there, with what the index projects
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].sid, open.sid);
    assert_eq!((listed[0].status.as_str(), listed[0].rank), ("sent", 4));
    assert!((before..after).contains(&listed[0].changed_at_ms));
    // AND nothing is listed outside the window, nor of the other kind
    assert!(
        ledger
            .open_between(ResourceKind::Message, 0, before)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        ledger
            .open_between(ResourceKind::Call, before, after)
            .await
            .unwrap()
            .is_empty()
    );
}
