//! What the console knows of each request `serve` answered: the last [`CAPACITY`] in memory,
//! recorded on the delivery path, so recording must stay cheap — a few small strings, one
//! short lock and a broadcast that costs nothing without a listener. A refused signature also
//! keeps what its diagnosis needs (the body is a reference-counted `Bytes`, not a copy); the
//! diagnosis itself runs only when someone opens it (`diagnose.rs`).

use bytes::Bytes;
use http::HeaderMap;
use http::request::Parts;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use twilio_events::signature::{SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER};

/// How many requests the console remembers.
pub const CAPACITY: usize = 1_000;
/// The longest answer kept (ingest's answers are short JSON summaries, or TwiML).
const ANSWER_CHARS: usize = 512;
/// Bodies up to this size are kept with their delivery (a reference to the bytes already read,
/// not a copy): the page shows them, and the timelines find the duplicates in them. Twilio's
/// deliveries are a few KB; a thousand at most are kept.
const BODY_KEPT_BYTES: usize = 64 * 1024;

/// One request `serve` answered.
#[derive(Debug)]
pub struct Delivery {
    /// 1, 2, 3… in arrival order (the console's links name it).
    pub id: u64,
    pub at: OffsetDateTime,
    pub method: String,
    pub path: String,
    /// The raw query string (a `bodySHA256`, a sink's own parameters): signed, not secret.
    pub query: Option<String>,
    pub status: u16,
    pub duration: Duration,
    /// The answer's body, cut to a few hundred characters.
    pub answer: String,
    /// The request's body as received, when at most [`BODY_KEPT_BYTES`] (always for a refused
    /// signature).
    pub body: Option<Bytes>,
    /// What a signature diagnosis needs, for a refused signature only.
    pub refused: Option<RefusedRequest>,
}

/// What is kept of a request whose signature was refused.
#[derive(Debug)]
pub struct RefusedRequest {
    /// Never shown: only compared, during the diagnosis, with what each candidate URL gives.
    pub signature: Option<String>,
    pub signature_settings: Option<String>,
    pub content_type: Option<String>,
    /// `Host`, `X-Forwarded-Host` and `X-Forwarded-Proto`: what a tunnel or proxy says was
    /// called, candidates for the URL Twilio signed.
    pub host: Option<String>,
    pub forwarded_host: Option<String>,
    pub forwarded_proto: Option<String>,
}

/// What kind of answer a delivery got, as the Deliveries page names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    SignatureRefused,
    Refused,
    RetryLater,
    NotARoute,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::SignatureRefused => "signature refused",
            Self::Refused => "refused",
            Self::RetryLater => "retry later",
            Self::NotARoute => "not a route",
        }
    }

    /// A CSS class name.
    pub fn class(self) -> &'static str {
        match self {
            Self::Accepted => "ok",
            Self::SignatureRefused => "sig",
            Self::Refused | Self::NotARoute => "bad",
            Self::RetryLater => "warn",
        }
    }
}

impl Delivery {
    pub fn outcome(&self) -> Outcome {
        if self.refused.is_some() {
            return Outcome::SignatureRefused;
        }
        match self.status {
            200..=299 => Outcome::Accepted,
            404 | 405 => Outcome::NotARoute,
            429 | 500..=599 => Outcome::RetryLater,
            _ => Outcome::Refused,
        }
    }
}

/// Whether ingest's answer says the signature (or the account a secret may sign for) was
/// refused: its 401, or the 403/503 whose message says so (`ingest::service::refuse_signature`).
pub fn is_signature_refusal(status: u16, answer: &str) -> bool {
    status == 401
        || (matches!(status, 403 | 503)
            && (answer.contains("signature") || answer.contains("may sign for")))
}

/// The ring of recent deliveries and the live feed of new ones.
#[derive(Debug)]
pub struct Recorder {
    ring: Mutex<VecDeque<Arc<Delivery>>>,
    next_id: AtomicU64,
    live: broadcast::Sender<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            ring: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            next_id: AtomicU64::new(1),
            live: broadcast::channel(64).0,
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Recorder {
    /// Records one answered request.
    pub fn record(
        &self,
        request: &Parts,
        body: &Bytes,
        status: u16,
        answer: &str,
        duration: Duration,
    ) {
        let refused = is_signature_refusal(status, answer);
        let kept = (refused || body.len() <= BODY_KEPT_BYTES).then(|| body.clone());
        let refused = refused.then(|| RefusedRequest {
            signature: header(&request.headers, SIGNATURE_HEADER),
            signature_settings: header(&request.headers, SIGNATURE_SETTINGS_HEADER),
            content_type: header(&request.headers, "content-type"),
            host: header(&request.headers, "host"),
            forwarded_host: header(&request.headers, "x-forwarded-host"),
            forwarded_proto: header(&request.headers, "x-forwarded-proto"),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery {
            id,
            at: OffsetDateTime::now_utc(),
            method: request.method.as_str().to_owned(),
            path: request.uri.path().to_owned(),
            query: request.uri.query().map(str::to_owned),
            status,
            duration,
            answer: answer.chars().take(ANSWER_CHARS).collect(),
            body: kept,
            refused,
        };
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(Arc::new(delivery));
        }
        // No listener (no console page open) is the usual case, and not an error.
        let _ = self.live.send(id);
    }

    /// The deliveries kept, newest first.
    pub fn recent(&self) -> Vec<Arc<Delivery>> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<Delivery>> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().find(|d| d.id == id).cloned()
    }
}

impl Delivery {
    /// Whether ingest's answer says some of its events were stored before.
    pub fn had_duplicates(&self) -> bool {
        self.status == 200
            && serde_json::from_str::<serde_json::Value>(&self.answer)
                .ok()
                .and_then(|answer| answer.get("duplicates")?.as_u64())
                .is_some_and(|n| n > 0)
    }
}

impl Recorder {
    /// New deliveries' ids, as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Parts {
        http::Request::post(path)
            .header(SIGNATURE_HEADER, "c2ln")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn the_ring_keeps_the_last_deliveries_newest_first() {
        let recorder = Recorder::default();
        for _ in 0..CAPACITY + 5 {
            recorder.record(
                &parts("/twilio/events"),
                &Bytes::new(),
                200,
                "{}",
                Duration::ZERO,
            );
        }
        let recent = recorder.recent();
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].id, (CAPACITY + 5) as u64);
        assert!(recorder.get(1).is_none(), "the oldest were dropped");
    }

    #[test]
    fn only_a_refused_signature_keeps_its_request() {
        let recorder = Recorder::default();
        let body = Bytes::from_static(b"[]");
        recorder.record(&parts("/twilio/events"), &body, 200, "{}", Duration::ZERO);
        recorder.record(
            &parts("/twilio/events?bodySHA256=ab"),
            &body,
            503,
            r#"{"error":"signature not verified; if this is a new auth token, add it to the secret"}"#,
            Duration::ZERO,
        );
        recorder.record(&parts("/twilio/events"), &body, 503, "{}", Duration::ZERO);
        let recent = recorder.recent();
        assert_eq!(recent[0].outcome(), Outcome::RetryLater);
        assert_eq!(recent[1].outcome(), Outcome::SignatureRefused);
        assert_eq!(
            recent[1].refused.as_ref().unwrap().signature.as_deref(),
            Some("c2ln")
        );
        assert_eq!(recent[2].outcome(), Outcome::Accepted);
        assert!(recent[2].refused.is_none());
    }
}

/// What recording costs per delivery (docs/benchmarks.md): run it with `--release -- --ignored
/// --nocapture`; a debug build's number means nothing.
#[cfg(test)]
mod cost {
    use super::*;

    #[test]
    #[ignore]
    fn what_recording_a_delivery_costs() {
        let recorder = Recorder::default();
        let parts = http::Request::post("/twilio/events?bodySHA256=abcdef0123456789")
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let body = Bytes::from(vec![b'x'; 600]);
        let answer = r#"{"accepted":1,"duplicates":0,"failed":0,"in_progress":0,"quarantined":0}"#;
        let calls = 200_000;
        let started = std::time::Instant::now();
        for _ in 0..calls {
            recorder.record(&parts, &body, 200, answer, Duration::from_micros(300));
        }
        eprintln!("record: {:?} per delivery", started.elapsed() / calls);
    }
}
