//! A CRM on 127.0.0.1 that follows the HTTP contract of README.md, with injectable faults.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::events::Rng;

/// How the CRM misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Share of requests answered 503 or 429 (half each).
    pub fail: f64,
    /// Share of requests that hang for `hang_for`, then fail without applying.
    pub hang: f64,
    pub hang_for: Duration,
    /// `Retry-After` seconds sent with 429s.
    pub retry_after: Option<u64>,
    /// SIDs refused with 422, always.
    pub reject: HashSet<String>,
    /// Added to every answer.
    pub delay: Duration,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    pub token: Option<String>,
}

/// One applied write.
#[derive(Clone, Debug)]
pub struct Write {
    pub sid: String,
    pub status: String,
    pub rank: u64,
    pub event_time: String,
    pub event_id: String,
    pub idempotency_key: String,
    pub body: serde_json::Value,
}

#[derive(Default)]
pub struct Crm {
    pub faults: Faults,
    rng: Mutex<Option<Rng>>,
    pub writes: Mutex<Vec<Write>>,
    /// Status per SID as the CRM holds it.
    pub current: Mutex<HashMap<String, Write>>,
    /// Writes that moved a SID backwards (must stay 0).
    pub regressions: Mutex<usize>,
    /// Writes whose Idempotency-Key was already applied.
    pub repeats: Mutex<usize>,
    pub requests: Mutex<usize>,
    pub failures: Mutex<HashMap<u16, usize>>,
}

impl Crm {
    pub fn status_of(&self, sid: &str) -> Option<String> {
        self.current
            .lock()
            .unwrap()
            .get(sid)
            .map(|w| w.status.clone())
    }

    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    fn roll(&self) -> f64 {
        let mut rng = self.rng.lock().unwrap();
        (rng.get_or_insert_with(|| Rng::new(42)).next() % 1_000_000) as f64 / 1_000_000.0
    }

    fn fail(&self, code: u16) {
        *self.failures.lock().unwrap().entry(code).or_default() += 1;
    }
}

pub struct Server {
    pub url: String,
    pub crm: Arc<Crm>,
}

async fn handle(
    State(crm): State<Arc<Crm>>,
    Path((collection, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    *crm.requests.lock().unwrap() += 1;
    let f = &crm.faults;
    if !f.delay.is_zero() {
        tokio::time::sleep(f.delay).await;
    }
    if let Some(token) = &f.token {
        let expected = format!("Bearer {token}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            crm.fail(401);
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        crm.fail(400);
        return StatusCode::BAD_REQUEST.into_response();
    };
    let kind_ok = matches!(
        (collection.as_str(), json["kind"].as_str()),
        ("messages", Some("message")) | ("calls", Some("call"))
    );
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        crm.fail(400);
        return StatusCode::BAD_REQUEST.into_response();
    };
    if !kind_ok || json["sid"] != sid.as_str() || json["event_id"] != key.as_str() {
        crm.fail(400);
        return StatusCode::BAD_REQUEST.into_response();
    }
    if f.reject.contains(&sid) {
        crm.fail(422);
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    let roll = crm.roll();
    if roll < f.hang {
        tokio::time::sleep(f.hang_for).await;
        crm.fail(503);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if roll < f.hang + f.fail {
        if roll < f.hang + f.fail / 2.0 {
            crm.fail(503);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        crm.fail(429);
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        if let Some(s) = f.retry_after {
            response
                .headers_mut()
                .insert("retry-after", s.to_string().parse().unwrap());
        }
        return response;
    }
    let write = Write {
        sid: sid.clone(),
        status: json["status"].as_str().unwrap_or_default().to_owned(),
        rank: json["rank"].as_u64().unwrap_or_default(),
        event_time: json["event_time"].as_str().unwrap_or_default().to_owned(),
        event_id: json["event_id"].as_str().unwrap_or_default().to_owned(),
        idempotency_key: key.clone(),
        body: json,
    };
    let mut current = crm.current.lock().unwrap();
    if crm
        .writes
        .lock()
        .unwrap()
        .iter()
        .any(|w| w.idempotency_key == key)
    {
        // Already applied: the contract says answer 2xx and change nothing.
        *crm.repeats.lock().unwrap() += 1;
        return StatusCode::OK.into_response();
    }
    let created = match current.get(&sid) {
        Some(before) => {
            // RFC 3339 with fixed precision in UTC orders as text.
            if (write.rank, write.event_time.as_str()) <= (before.rank, before.event_time.as_str())
            {
                *crm.regressions.lock().unwrap() += 1;
            }
            false
        }
        None => true,
    };
    current.insert(sid, write.clone());
    crm.writes.lock().unwrap().push(write);
    if created {
        StatusCode::CREATED.into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// Starts the CRM on 127.0.0.1 (an ephemeral port).
pub async fn start(faults: Faults) -> Server {
    let crm = Arc::new(Crm {
        faults,
        ..Crm::default()
    });
    let app = Router::new()
        .route("/crm/{collection}/{sid}", put(handle))
        .with_state(crm.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crm", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Server { url, crm }
}
