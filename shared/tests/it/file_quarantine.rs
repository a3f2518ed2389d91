//! The file quarantine keeps one line per item id, across retries, restarts and handles.

use crate::helpers::scratch_file;
use twilio_events::quarantine::{FileQuarantine, Quarantine, QuarantinedItem};

fn malformed(payload: &[u8], detail: &str) -> QuarantinedItem {
    QuarantinedItem::new("ingest", "malformed", detail, payload)
}

#[tokio::test]
async fn a_retry_of_the_same_unreadable_delivery_adds_no_second_copy() {
    // GIVEN an unreadable delivery quarantined once
    let q = FileQuarantine::new(scratch_file("quarantine.jsonl"));
    q.put(malformed(b"{not json", "first try")).await.unwrap();
    // WHEN Twilio retries it, and a different payload arrives
    q.put(malformed(b"{not json", "a retry")).await.unwrap();
    q.put(malformed(b"{other", "")).await.unwrap();
    // THEN the file holds each payload once, the first copy kept
    let items = q.items();
    let details: Vec<&str> = items.iter().map(|i| i.detail.as_str()).collect();
    assert_eq!(details, ["first try", ""]);
}

#[tokio::test]
async fn ids_already_in_the_file_count_after_a_restart() {
    let path = scratch_file("quarantine.jsonl");
    FileQuarantine::new(&path)
        .put(malformed(b"x", "before the restart"))
        .await
        .unwrap();
    // A new process: `new` reads the file at its first put, `open` at once.
    FileQuarantine::new(&path)
        .put(malformed(b"x", "after"))
        .await
        .unwrap();
    let opened = FileQuarantine::open(&path).unwrap();
    opened.put(malformed(b"x", "after")).await.unwrap();
    assert_eq!(opened.items().len(), 1);
}

#[tokio::test]
async fn two_quarantines_on_one_file_keep_one_copy_between_them() {
    // GIVEN two handles on one file (serve's ingest and quota-alert share quarantine.jsonl)
    let path = scratch_file("quarantine.jsonl");
    let (a, b) = (FileQuarantine::new(&path), FileQuarantine::new(&path));
    a.put(malformed(b"1", "")).await.unwrap();
    b.put(malformed(b"1", "")).await.unwrap();
    // WHEN one adds an item after the other has read the file
    b.put(malformed(b"2", "")).await.unwrap();
    a.put(malformed(b"2", "")).await.unwrap();
    // THEN each item is there once
    let payloads: Vec<String> = a.items().into_iter().map(|i| i.payload).collect();
    assert_eq!(payloads, ["1", "2"]);
}

#[tokio::test]
async fn the_account_and_route_make_a_finer_id_when_the_caller_knows_them() {
    let q = FileQuarantine::new(scratch_file("quarantine.jsonl"));
    for account in ["AC1", "AC2", "AC1"] {
        let item =
            malformed(b"{", "").with_id(QuarantinedItem::stable_id(Some(account), "/events", b"{"));
        q.put(item).await.unwrap();
    }
    assert_eq!(q.items().len(), 2, "one per account");
}

#[tokio::test]
async fn lines_from_before_ids_are_kept_and_a_torn_line_is_skipped_and_counted() {
    // GIVEN a file from an older version (no id), ending in a line torn by a crash
    let path = scratch_file("quarantine.jsonl");
    let old = r#"{"source":"ingest","reason":"malformed","detail":"","payload":"old","encoding":"utf-8","content_type":null,"reference":null,"quarantined_at":"2025-01-01T00:00:00Z"}"#;
    std::fs::write(&path, format!("{old}\n{old}\n{{\"id\":\"ab")).unwrap();
    // WHEN an item is quarantined
    let q = FileQuarantine::new(&path);
    q.put(malformed(b"new", "")).await.unwrap();
    // THEN every whole item reads back, and the reader says one line was skipped
    let contents = q.contents().unwrap();
    let payloads: Vec<&str> = contents.values.iter().map(|i| i.payload.as_str()).collect();
    assert_eq!(payloads, ["old", "old", "new"]);
    assert_eq!(contents.skipped, 1);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_quarantine_that_cannot_write_says_so_and_the_caller_must_not_acknowledge() {
    let error = FileQuarantine::new("/dev/full")
        .put(malformed(b"x", ""))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("/dev/full"), "{error}");
}
