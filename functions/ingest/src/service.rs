//! The ingest core: one request from Twilio in, one answer out, and every new event durably in
//! the stream before the answer is 200.
//!
//! The answer is what tells Twilio what to do next (docs/twilio.md §3): 2xx = delivered, 429/5xx =
//! retry with backoff for up to 4 hours, any other 4xx = dropped for good. So our own trouble is
//! always a 503, and a 4xx goes only to requests that can never succeed.
//!
//! Per delivery: verify → parse (what cannot be read goes to the quarantine) → claim every
//! event id in the dedup store (one round trip) → publish the claimed events (one PutRecords,
//! failed entries retried inside the time budget) → mark them completed (one round trip),
//! releasing the claims of what could not be published. At most three sequential round trips
//! whatever the batch size.

use crate::config::{IngestSettings, SignatureFailureAnswer};
use crate::ports::{
    Clock, DedupClaim, DedupOutcome, DedupStore, DedupStoreError, EventPublisher,
    MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, OutgoingRecord, SystemClock,
};
use std::borrow::Cow;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use twilio_events::event::{CloudEvent, parse_delivery};
use twilio_events::metrics::{Metrics, MetricsSink, Unit};
use twilio_events::quarantine::{Quarantine, QuarantinedItem};
use twilio_events::signature::{BodyEncoding, SignedRequest, Verifier, VerifyError};
use twilio_events::usage_trigger::usage_trigger_event;

/// The two webhook routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /twilio/events`: Event Streams deliveries (JSON CloudEvents).
    Events,
    /// `POST /twilio/usage-triggers`: Usage Trigger callbacks (form-encoded).
    UsageTriggers,
}

impl Route {
    /// The route's path below the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Events => "/twilio/events",
            Self::UsageTriggers => "/twilio/usage-triggers",
        }
    }

    /// The route a request path ends with (stages, custom domains and base paths come before).
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        if path.ends_with("/twilio/events") {
            Some(Self::Events)
        } else if path.ends_with("/twilio/usage-triggers") {
            Some(Self::UsageTriggers)
        } else {
            None
        }
    }
}

/// One request as the HTTP layer hands it over.
#[derive(Clone, Copy, Debug)]
pub struct IngestRequest<'a> {
    pub route: Route,
    /// The query string exactly as received (no leading `?`), part of what Twilio signed.
    pub raw_query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub signature_settings: Option<&'a str>,
    pub body: &'a [u8],
    pub request_id: &'a str,
    /// When the answer must be on its way (the Lambda deadline, or Twilio's 5 seconds).
    pub deadline: Instant,
    /// With `PUBLIC_BASE_URL=auto`: the base URL from API Gateway's request context.
    pub public_base_url: Option<&'a str>,
}

/// The answer for Twilio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestResponse {
    pub status: u16,
    pub retry_after_secs: Option<u32>,
    /// A short JSON summary.
    pub body: String,
}

impl IngestResponse {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            retry_after_secs: None,
            body: body.to_string(),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, serde_json::json!({ "error": message }))
    }

    /// 503 with Retry-After: Twilio retries; nothing is lost.
    fn retry_later(message: &str, retry_after_secs: u32) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::error(503, message)
        }
    }
}

/// How long after a failed put to try again (doubles, capped), and how many puts at most.
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(800);
const MAX_PUT_ATTEMPTS: u32 = 8;
/// A claim's lease outlives the invocation's deadline by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// How long Twilio should wait before retrying an event another attempt holds.
const IN_PROGRESS_RETRY_SECS: u32 = 5;
/// How long before retrying after trouble of our own.
const TROUBLE_RETRY_SECS: u32 = 10;

/// True until the first request of this process (a Lambda instance's cold start).
static COLD_START: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The ingest function, generic over its stores.
pub struct Ingest<D, P, Q, M, C = SystemClock> {
    settings: IngestSettings,
    verifier: Verifier,
    dedup: D,
    publisher: P,
    quarantine: Q,
    metrics: M,
    clock: C,
}

/// An event that made it through parsing, with what it is stored as.
struct Accepted<'a> {
    event: CloudEvent<'a>,
    claim: DedupClaim,
}

impl<D, P, Q, M> Ingest<D, P, Q, M>
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
{
    pub fn new(
        settings: IngestSettings,
        verifier: Verifier,
        dedup: D,
        publisher: P,
        quarantine: Q,
        metrics: M,
    ) -> Self {
        Self::with_clock(
            settings,
            verifier,
            dedup,
            publisher,
            quarantine,
            metrics,
            SystemClock,
        )
    }
}

impl<D, P, Q, M, C> Ingest<D, P, Q, M, C>
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
    C: Clock,
{
    pub fn with_clock(
        settings: IngestSettings,
        verifier: Verifier,
        dedup: D,
        publisher: P,
        quarantine: Q,
        metrics: M,
        clock: C,
    ) -> Self {
        Self {
            settings,
            verifier,
            dedup,
            publisher,
            quarantine,
            metrics,
            clock,
        }
    }

    pub fn settings(&self) -> &IngestSettings {
        &self.settings
    }

    /// Handles one request, publishing its metrics once at the end.
    pub async fn handle(&self, request: IngestRequest<'_>) -> IngestResponse {
        let started = Instant::now();
        let mut metrics = Metrics::new("ingest");
        if COLD_START.swap(false, std::sync::atomic::Ordering::Relaxed) {
            metrics.count("ColdStart", 1);
            metrics.property("coldStart", true);
        }
        let response = self.handle_inner(&request, &mut metrics).await;
        metrics.add(
            "Latency",
            started.elapsed().as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        metrics.count(&format!("Status{}xx", response.status / 100), 1);
        metrics.property("requestId", request.request_id);
        self.metrics.publish(&metrics);
        tracing::info!(
            request_id = request.request_id,
            status = response.status,
            route = ?request.route,
            latency_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        response
    }

    async fn handle_inner(
        &self,
        request: &IngestRequest<'_>,
        metrics: &mut Metrics,
    ) -> IngestResponse {
        if request.body.len() > self.settings.max_body_bytes {
            metrics.count("BodyTooLarge", 1);
            return IngestResponse::error(413, "body larger than the configured MAX_BODY_BYTES");
        }
        if let Err(reason) = self.verify(request) {
            return self.refuse(request, &reason, metrics);
        }

        // Parse: what cannot be read is kept whole in the quarantine, then acknowledged, since
        // a retry of the same bytes can never succeed.
        let now = self.clock.now();
        let mut owned_events = Vec::new();
        let mut rejected = Vec::new();
        match request.route {
            Route::Events => match parse_delivery(request.body) {
                Ok(delivery) => {
                    owned_events = delivery.events;
                    rejected = delivery
                        .rejected
                        .into_iter()
                        .map(|r| (r.error.to_string(), r.raw.as_bytes()))
                        .collect();
                }
                Err(error) => rejected.push((format!("the delivery: {error}"), request.body)),
            },
            Route::UsageTriggers => match usage_trigger_event(request.body) {
                Ok(event) => owned_events.push(event),
                Err(error) => {
                    rejected.push((format!("the usage trigger callback: {error}"), request.body))
                }
            },
        }
        for (detail, payload) in &rejected {
            tracing::warn!(request_id = request.request_id, %detail, "quarantining what cannot be parsed");
            let item = QuarantinedItem::new("ingest", "malformed", detail.clone(), payload)
                .with_content_type(request.content_type)
                .with_reference(request.request_id);
            if let Err(error) = self.quarantine.put(item).await {
                tracing::error!(request_id = request.request_id, %error, "quarantine unavailable");
                metrics.count("QuarantineFailures", 1);
                return IngestResponse::retry_later(
                    "could not keep an unreadable payload; retry later",
                    TROUBLE_RETRY_SECS,
                );
            }
            metrics.count("Quarantined", 1);
        }

        metrics.count("Received", owned_events.len());
        let accepted = self.claims_for(
            owned_events,
            now,
            request.deadline,
            request.request_id,
            metrics,
        );
        let summary = self
            .deduplicate_and_publish(request, accepted, metrics)
            .await;
        let quarantined = rejected.len();
        summary.into_response(quarantined)
    }

    fn verify(&self, request: &IngestRequest<'_>) -> Result<(), VerifyError> {
        let from_request;
        let base = match (self.settings.base_url_from_request, request.route) {
            (true, route) => {
                // No request context (not behind API Gateway): nothing can match.
                let origin = request
                    .public_base_url
                    .ok_or(VerifyError::SignatureMismatch)?;
                from_request = format!("{}{}", origin.trim_end_matches('/'), route.path());
                &from_request
            }
            (false, Route::Events) => &self.settings.events_url,
            (false, Route::UsageTriggers) => &self.settings.usage_triggers_url,
        };
        // The URL Twilio signed: the public URL plus the query string exactly as received.
        let url: Cow<'_, str> = match request.raw_query.filter(|q| !q.is_empty()) {
            Some(query) => Cow::Owned(format!("{base}?{query}")),
            None => Cow::Borrowed(base),
        };
        let encoding = match (request.content_type, request.route) {
            (Some(ct), _) => BodyEncoding::from_content_type(ct),
            (None, Route::Events) => BodyEncoding::Json,
            (None, Route::UsageTriggers) => BodyEncoding::Form,
        };
        self.verifier.verify(&SignedRequest {
            url: &url,
            body: request.body,
            encoding,
            signature: request.signature,
            signature_settings: request.signature_settings,
        })?;
        Ok(())
    }

    fn refuse(
        &self,
        request: &IngestRequest<'_>,
        reason: &VerifyError,
        metrics: &mut Metrics,
    ) -> IngestResponse {
        metrics.count("SignatureFailures", 1);
        let class = match reason {
            VerifyError::MissingSignature => "missing-signature",
            VerifyError::MissingBodyHash => "missing-body-hash",
            VerifyError::BodyHashMismatch => "body-hash-mismatch",
            VerifyError::SignatureMismatch => "signature-mismatch",
            VerifyError::UnknownKeyId(_) => "unknown-key-id",
            VerifyError::UnknownAlgorithm(_) => "unknown-algorithm",
            VerifyError::MalformedSettings(_) => "malformed-settings",
            VerifyError::NoSecrets => "no-secrets",
        };
        metrics.property("signatureFailure", class);
        tracing::warn!(request_id = request.request_id, reason = %reason, class, "signature refused");
        match (reason, self.settings.signature_failure) {
            // Not signed at all: nothing Twilio sends looks like this, and no retry will fix it.
            (VerifyError::MissingSignature, _) => {
                IngestResponse::error(401, "missing X-Twilio-Signature")
            }
            (_, SignatureFailureAnswer::Forbidden) => {
                IngestResponse::error(403, "invalid signature")
            }
            (_, SignatureFailureAnswer::RetryLater { retry_after_secs }) => {
                IngestResponse::retry_later(
                    "signature not verified; if this is a new auth token, add it to the secret",
                    retry_after_secs,
                )
            }
        }
    }

    /// Builds each event's claim; an id twice in one delivery is published once.
    fn claims_for<'a>(
        &self,
        events: Vec<CloudEvent<'a>>,
        now: OffsetDateTime,
        deadline: Instant,
        token: &str,
        metrics: &mut Metrics,
    ) -> Vec<Accepted<'a>> {
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let lease_until_ms = now_ms + (remaining + LEASE_MARGIN).as_millis() as i64;
        let expires_at_s = now.unix_timestamp() + self.settings.dedup_window.as_secs() as i64;
        let mut seen = HashSet::new();
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            if let twilio_events::event::Detail::Test(test) = &event.detail {
                // What `twilio-events setup` (or a person) posts to /v1/Sinks/{Sid}/Validate.
                tracing::info!(request_id = token, test_id = %test.test_id, "sink test event received");
            }
            if let Some(time) = event.timestamp() {
                metrics.add(
                    "EventAge",
                    (now - time).as_seconds_f64().max(0.0),
                    Unit::Seconds,
                );
            }
            let key = format!("{}#{}", event.account().unwrap_or("-"), event.id);
            if !seen.insert(key.clone()) {
                metrics.count("Duplicates", 1);
                continue;
            }
            accepted.push(Accepted {
                event,
                claim: DedupClaim {
                    key,
                    token: token.to_owned(),
                    lease_until_ms,
                    expires_at_s,
                    now_ms,
                },
            });
        }
        accepted
    }

    async fn deduplicate_and_publish(
        &self,
        request: &IngestRequest<'_>,
        accepted: Vec<Accepted<'_>>,
        metrics: &mut Metrics,
    ) -> Summary {
        let mut summary = Summary::default();
        if accepted.is_empty() {
            return summary;
        }
        let claims: Vec<DedupClaim> = accepted.iter().map(|a| a.claim.clone()).collect();
        let outcomes = self.dedup.claim(&claims).await;
        let mut to_publish = Vec::new();
        for (item, outcome) in accepted.iter().zip(outcomes.iter().chain(std::iter::repeat(
            &DedupOutcome::Failed(DedupStoreError::NoOutcome),
        ))) {
            match outcome {
                DedupOutcome::Claimed => to_publish.push(item),
                DedupOutcome::Duplicate => summary.duplicates += 1,
                DedupOutcome::InProgress => summary.in_progress += 1,
                DedupOutcome::Failed(error) => {
                    tracing::warn!(request_id = request.request_id, event_id = %item.event.id, %error, "dedup store failed");
                    summary.store_failures += 1;
                }
            }
        }
        metrics.count("Duplicates", summary.duplicates);
        metrics.count("InProgress", summary.in_progress);
        metrics.count("StoreFailures", summary.store_failures);

        let records: Vec<OutgoingRecord<'_>> = to_publish
            .iter()
            .map(|a| OutgoingRecord {
                partition_key: a.event.resource_key(),
                data: a.event.raw_json().as_bytes(),
            })
            .collect();
        let budget = request
            .deadline
            .checked_sub(self.settings.answer_margin)
            .unwrap_or(request.deadline);
        let published = self.publish_all(&records, budget, metrics).await;

        let (done, failed): (Vec<_>, Vec<_>) =
            to_publish.iter().zip(published).partition(|(_, ok)| *ok);
        let done: Vec<DedupClaim> = done.into_iter().map(|(a, _)| a.claim.clone()).collect();
        let failed: Vec<DedupClaim> = failed.into_iter().map(|(a, _)| a.claim.clone()).collect();
        summary.accepted = done.len();
        summary.publish_failures = failed.len();
        metrics.count("Accepted", done.len());
        metrics.count("PublishFailures", failed.len());
        if !to_publish.is_empty() && tracing::enabled!(tracing::Level::INFO) {
            // Event ids and types only: they identify what happened without personal data.
            let ids: Vec<&str> = to_publish.iter().map(|a| a.event.id.as_ref()).collect();
            let types: Vec<&str> = to_publish
                .iter()
                .map(|a| a.event.event_type.as_ref())
                .collect();
            tracing::info!(request_id = request.request_id, event_ids = ?ids, event_types = ?types, published = done.len(), "published");
        }

        // Mark and release concurrently: one round trip.
        let (completed, released) = tokio::join!(
            async {
                if done.is_empty() {
                    Ok(())
                } else {
                    self.dedup.complete(&done).await
                }
            },
            async {
                if failed.is_empty() {
                    Ok(())
                } else {
                    self.dedup.release(&failed).await
                }
            }
        );
        if let Err(error) = completed {
            // The events are in the stream: answering 200 is right. Their claims stay INPROGRESS
            // until the lease ends; only a redelivery after that would publish them again.
            tracing::error!(request_id = request.request_id, %error, "could not mark events completed");
            metrics.count("CompleteFailures", done.len());
        }
        if let Err(error) = released {
            tracing::error!(request_id = request.request_id, %error, "could not release claims; they expire with their lease");
        }
        summary
    }

    /// Puts every record, splitting at the stream's limits and retrying only the entries that
    /// failed, with backoff, until `budget`. Answers, per record, whether it is stored.
    async fn publish_all(
        &self,
        records: &[OutgoingRecord<'_>],
        budget: Instant,
        metrics: &mut Metrics,
    ) -> Vec<bool> {
        let mut stored = vec![false; records.len()];
        let mut pending: Vec<usize> = (0..records.len()).collect();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..MAX_PUT_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                metrics.count("PublishRetries", pending.len());
                let wake = Instant::now() + jitter(backoff);
                if wake >= budget {
                    break;
                }
                tokio::time::sleep_until(wake.into()).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            let mut still_pending = Vec::new();
            for chunk in chunks(records, &pending) {
                let batch: Vec<OutgoingRecord<'_>> = chunk.iter().map(|&i| records[i]).collect();
                let remaining = budget.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, self.publisher.put_records(&batch)).await {
                    Ok(Ok(results)) => {
                        for (&i, result) in chunk
                            .iter()
                            .zip(results.iter().map(Some).chain(std::iter::repeat(None)))
                        {
                            match result {
                                Some(Ok(())) => stored[i] = true,
                                Some(Err(error)) => {
                                    tracing::warn!(%error, "stream refused a record");
                                    still_pending.push(i);
                                }
                                None => still_pending.push(i),
                            }
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "stream put failed");
                        still_pending.extend_from_slice(&chunk);
                    }
                    Err(_) => {
                        tracing::warn!("stream put ran out of time");
                        still_pending.extend_from_slice(&chunk);
                    }
                }
            }
            pending = still_pending;
        }
        stored
    }
}

/// Splits the pending indexes into puts within the stream's limits.
fn chunks(records: &[OutgoingRecord<'_>], pending: &[usize]) -> Vec<Vec<usize>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for &i in pending {
        let size = records[i].data.len() + records[i].partition_key.len();
        if !current.is_empty()
            && (current.len() == MAX_RECORDS_PER_PUT || bytes + size > MAX_BYTES_PER_PUT)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(i);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Full jitter between half and all of `d`, so retries from many invocations spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = OffsetDateTime::now_utc().nanosecond() as u64;
    let half = d.as_millis() as u64 / 2;
    Duration::from_millis(half + nanos % (half + 1))
}

#[derive(Debug, Default)]
struct Summary {
    accepted: usize,
    duplicates: usize,
    in_progress: usize,
    store_failures: usize,
    publish_failures: usize,
}

impl Summary {
    fn into_response(self, quarantined: usize) -> IngestResponse {
        let body = serde_json::json!({
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": quarantined,
            "in_progress": self.in_progress,
            "failed": self.store_failures + self.publish_failures,
        });
        if self.store_failures + self.publish_failures > 0 {
            // Whatever was published is completed: Twilio's retry finds it a duplicate.
            IngestResponse {
                retry_after_secs: Some(TROUBLE_RETRY_SECS),
                ..IngestResponse::json(503, body)
            }
        } else if self.in_progress > 0 {
            IngestResponse {
                retry_after_secs: Some(IN_PROGRESS_RETRY_SECS),
                ..IngestResponse::json(503, body)
            }
        } else {
            IngestResponse::json(200, body)
        }
    }
}

#[cfg(test)]
mod tests;
