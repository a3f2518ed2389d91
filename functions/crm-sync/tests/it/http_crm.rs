//! The HTTP CRM adapter against a real local server: what it sends and how it reads answers.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::put;
use crm_sync::processor::metric;
use crm_sync::{
    Crm, CrmError, CrmSync, HttpCrm, MemoryStatusLedger, ResourceKind, Secret, StatusUpdate,
    SyncSettings,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::stream::{BatchProcessor, StreamRecord};

type Seen = Arc<Mutex<Vec<(String, HeaderMap, serde_json::Value, Instant)>>>;

/// A server answering each request with the next (status, headers, delay) of `script`
/// (the last one repeats), recording what it received.
async fn server(script: Vec<(u16, Option<&'static str>, u64)>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let script = Arc::new(script);
    let app = Router::new().route(
        "/{*path}",
        put({
            let seen = seen.clone();
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                let script = script.clone();
                async move {
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((
                            uri.path().to_owned(),
                            headers,
                            serde_json::from_slice(&body).unwrap(),
                            Instant::now(),
                        ));
                        seen.len() - 1
                    };
                    let (status, retry_after, delay) = script[n.min(script.len() - 1)];
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let mut response = StatusCode::from_u16(status).unwrap().into_response();
                    if let Some(r) = retry_after {
                        response
                            .headers_mut()
                            .insert("retry-after", r.parse().unwrap());
                    }
                    response
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, seen)
}

fn update(kind: ResourceKind, sid: &str) -> StatusUpdate {
    StatusUpdate {
        sid: sid.into(),
        kind,
        status: "delivered".into(),
        rank: 6,
        error_code: None,
        from: None,
        to: None,
        account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
        event_id: "EZ0123".into(),
        event_time: Some("2024-05-01T10:00:00.000Z".into()),
    }
}

#[tokio::test]
async fn success_codes_are_done_and_the_request_follows_the_contract() {
    // GIVEN a CRM answering 200, 201, then 204
    let (url, seen) = server(vec![(200, None, 0), (201, None, 0), (204, None, 0)]).await;
    let crm = HttpCrm::new(&url, Some(Secret::new("tok"))).unwrap();
    // WHEN a message and two calls are pushed
    for (kind, sid) in [
        (ResourceKind::Message, "SM0123456789abcdef"),
        (ResourceKind::Call, "CA0123456789abcdef"),
        (ResourceKind::Call, "CA0123456789abcdee"),
    ] {
        // THEN each is done
        crm.push(&update(kind, sid)).await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let (path, headers, body, _) = &seen[0];
    assert_eq!(path, "/v1/messages/SM0123456789abcdef");
    assert_eq!(seen[1].0, "/v1/calls/CA0123456789abcdef");
    assert_eq!(headers["idempotency-key"], "EZ0123");
    assert_eq!(headers["authorization"], "Bearer tok");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["status"], "delivered");
    assert_eq!(body["kind"], "message");
    assert_eq!(seen[1].2["kind"], "call");
}

type Check = fn(&CrmError) -> bool;

#[tokio::test]
async fn answers_are_classified_retry_after_included() {
    let cases: [(u16, Option<&'static str>, Check); 5] = [
        (429, Some("2"), |e| {
            *e == CrmError::Throttled {
                retry_after: Some(Duration::from_secs(2)),
            }
        }),
        (503, None, |e| {
            matches!(e, CrmError::Server { status: 503, .. })
        }),
        (500, Some("1"), |e| {
            e.retry_after() == Some(Duration::from_secs(1))
        }),
        (422, None, |e| {
            matches!(e, CrmError::Rejected { status: 422, .. }) && !e.is_retryable()
        }),
        (404, None, |e| {
            matches!(e, CrmError::Rejected { status: 404, .. })
        }),
    ];
    for (status, retry_after, check) in cases {
        // GIVEN a CRM answering `status` WHEN pushed THEN the error is classified as documented
        let (url, _) = server(vec![(status, retry_after, 0)]).await;
        let e = HttpCrm::new(&url, None)
            .unwrap()
            .push(&update(ResourceKind::Message, "SM0123456789abcdef"))
            .await
            .unwrap_err();
        assert!(check(&e), "{status}: {e:?}");
    }
    // AND an unreachable CRM is a connection error, retried
    let e = HttpCrm::new("http://127.0.0.1:9/", None)
        .unwrap()
        .push(&update(ResourceKind::Call, "CA0123456789abcdef"))
        .await
        .unwrap_err();
    assert_eq!(e.class(), "connection");
}

fn record(seq: &str) -> StreamRecord {
    let json = serde_json::json!({"specversion": "1.0", "type": "com.twilio.messaging.message.sent", "id": format!("EZ{seq}"),
        "time": "2024-05-01T10:00:00.000Z", "data": {"messageSid": "SM0123456789abcdef0123456789abcdef"}});
    StreamRecord {
        sequence_number: seq.into(),
        partition_key: "SM0123456789abcdef0123456789abcdef".into(),
        data: json.to_string().into_bytes(),
        arrived_at: None,
    }
}

#[tokio::test]
async fn through_the_processor_429_waits_as_asked_and_a_slow_answer_times_out_then_retries() {
    // GIVEN a CRM that throttles (Retry-After: 1), then hangs 3 s, then succeeds
    let (url, seen) = server(vec![
        (429, Some("1"), 0),
        (200, None, 3_000),
        (200, None, 0),
    ])
    .await;
    let settings = SyncSettings {
        attempt_timeout: Duration::from_millis(300),
        ..SyncSettings::default()
    };
    let sync = CrmSync::with_settings(
        MemoryStatusLedger::default(),
        HttpCrm::new(&url, None).unwrap(),
        MemoryQuarantine::default(),
        MemorySink::default(),
        settings,
    );
    // WHEN one record is processed with 10 s left
    let started = Instant::now();
    let outcome = sync
        .process(&[record("1")], started + Duration::from_secs(10))
        .await;
    // THEN it is done after three attempts, the second at least 1 s after the first
    assert!(outcome.failed.is_empty());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen[1].3 - seen[0].3 >= Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the slow answer was awaited: {:?}",
        started.elapsed()
    );
    assert_eq!(sync.metrics.total(metric::PUSHED), 1.0);
    assert_eq!(
        sync.metrics
            .published()
            .iter()
            .filter(|m| m.get(metric::ERRORS).is_some())
            .count(),
        2
    );
}
