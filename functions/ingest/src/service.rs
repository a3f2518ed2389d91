//! The ingest core: one request from Twilio in, one answer out, and every new event durably in
//! the stream before the answer is 200.
//!
//! The answer is what tells Twilio what to do next (docs/twilio.md §3): 2xx = delivered, 429/5xx =
//! retry with backoff for up to 4 hours, any other 4xx = dropped for good. So our own trouble is
//! always a 503, and a 4xx goes only to requests that can never succeed.
//!
//! Per delivery: check the content type against the route → verify (reading the secret again
//! when it may have rotated) → parse (an unreadable Event Streams payload goes to the
//! quarantine; an unreadable form callback is refused) → check that the secret may sign for
//! every event's account → claim every event id, and every payload to quarantine, in the dedup
//! store (one round trip) → publish the claimed events (one PutRecords, failed entries retried
//! inside the time budget) while quarantining the claimed payloads → mark them completed (one
//! round trip), releasing the claims of what could not be stored. At most three sequential
//! round trips whatever the batch size. Nothing is stored for a request refused before the
//! claim.

mod secrets;

use crate::config::{IngestSettings, SignatureFailureAnswer};
use crate::ports::{
    Clock, DedupClaim, DedupOutcome, DedupStore, DedupStoreError, EventPublisher,
    MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, OutgoingRecord, SecretSource, SecretSourceError,
    SystemClock, quarantine_claim_key, quarantine_id,
};
use secrets::{Refresh, SecretCache};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use twilio_events::classic::{ClassicRequest, ClassicWebhook, classic_event};
use twilio_events::event::{CloudEvent, ParseError, parse_delivery};
use twilio_events::metrics::{Metrics, MetricsSink, Unit};
use twilio_events::quarantine::{Quarantine, QuarantinedItem};
use twilio_events::signature::{
    AccountScope, BodyEncoding, SignedRequest, Verified, Verifier, VerifyError,
};
use twilio_events::usage_trigger::usage_trigger_event;

/// The webhook routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /twilio/events`: Event Streams deliveries (JSON CloudEvents).
    Events,
    /// `POST /twilio/usage-triggers`: Usage Trigger callbacks (form-encoded).
    UsageTriggers,
    /// `POST /twilio/message-status`: message status callbacks (form-encoded).
    MessageStatus,
    /// `POST /twilio/call-status`: call status callbacks (form-encoded).
    CallStatus,
    /// `POST /twilio/inbound-messages`: a number's or Messaging Service's incoming-message
    /// webhook (form-encoded); answered with TwiML.
    InboundMessages,
}

/// Every route, for listing them.
pub const ROUTES: [Route; 5] = [
    Route::Events,
    Route::UsageTriggers,
    Route::MessageStatus,
    Route::CallStatus,
    Route::InboundMessages,
];

impl Route {
    /// The route's path below the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Events => "/twilio/events",
            Self::UsageTriggers => "/twilio/usage-triggers",
            Self::MessageStatus => "/twilio/message-status",
            Self::CallStatus => "/twilio/call-status",
            Self::InboundMessages => "/twilio/inbound-messages",
        }
    }

    /// The classic webhook a form route takes (Usage Triggers have their own reader).
    pub fn classic_webhook(self) -> Option<ClassicWebhook> {
        match self {
            Self::MessageStatus => Some(ClassicWebhook::MessageStatus),
            Self::CallStatus => Some(ClassicWebhook::CallStatus),
            Self::InboundMessages => Some(ClassicWebhook::InboundMessage),
            Self::Events | Self::UsageTriggers => None,
        }
    }

    /// How the route's bodies are encoded, and so what the signature covers. A property of the
    /// route, never of the request: Event Streams deliveries are JSON covered by bodySHA256,
    /// classic callbacks are forms (docs/twilio.md §2).
    pub fn encoding(self) -> BodyEncoding {
        match self {
            Self::Events => BodyEncoding::Json,
            Self::UsageTriggers
            | Self::MessageStatus
            | Self::CallStatus
            | Self::InboundMessages => BodyEncoding::Form,
        }
    }

    /// The route a request path ends with (stages, custom domains and base paths come before).
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        ROUTES
            .into_iter()
            .find(|route| path.ends_with(route.path()))
    }
}

/// The URL Twilio signed for a request on `route` whose query string is `raw_query`, from the
/// configured public URLs (not `PUBLIC_BASE_URL=auto`): the route's URL plus the query exactly
/// as received. What ingest verifies against, and what `serve`'s console names when a
/// signature is refused.
pub fn configured_signed_url<'s>(
    settings: &'s IngestSettings,
    route: Route,
    raw_query: Option<&str>,
) -> Cow<'s, str> {
    let base: Cow<'s, str> = match route {
        Route::Events => Cow::Borrowed(&settings.events_url),
        Route::UsageTriggers => Cow::Borrowed(&settings.usage_triggers_url),
        route => Cow::Owned(format!("{}{}", settings.base_url, route.path())),
    };
    match raw_query.filter(|q| !q.is_empty()) {
        Some(query) => Cow::Owned(format!("{base}?{query}")),
        None => base,
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
    /// The `I-Twilio-Idempotency-Token` header, which Twilio sends again on a webhook's
    /// retries (recorded on classic events; not signed, so never part of an id).
    pub idempotency_token: Option<&'a str>,
}

/// The answer for Twilio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestResponse {
    pub status: u16,
    pub retry_after_secs: Option<u32>,
    /// A short JSON summary, or TwiML for an inbound message.
    pub body: String,
    /// `application/json`, or `text/xml` for TwiML.
    pub content_type: &'static str,
}

impl IngestResponse {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            retry_after_secs: None,
            body: body.to_string(),
            content_type: "application/json",
        }
    }

    /// What Twilio expects from a messaging webhook: TwiML (an empty `<Response/>` sends no
    /// reply).
    fn twiml(document: &str) -> Self {
        Self {
            status: 200,
            retry_after_secs: None,
            body: document.to_owned(),
            content_type: "text/xml",
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
    secrets: SecretCache,
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

/// A payload that could not be read, with the claim that keeps it in the quarantine once.
struct Unreadable<'a> {
    /// The stable id (account, route, bytes): the item's id in the quarantine too, so a redrive
    /// or an operator can tell retries of one delivery from distinct ones.
    id: String,
    detail: String,
    payload: &'a [u8],
    claim: DedupClaim,
}

/// Why a request is refused before anything of it is stored. Each is counted (`Refused`, with
/// the class as the `refusal` property).
enum Refusal<'e> {
    /// The Content-Type is not the route's encoding.
    ContentType,
    /// A form callback whose identifying fields do not hold.
    InvalidCallback(&'e ParseError),
    /// An event whose account the verifying secret may not sign for.
    ForeignAccount {
        index: usize,
        account: Option<&'e str>,
        signer: Option<&'e str>,
    },
}

impl Refusal<'_> {
    fn class(&self) -> &'static str {
        match self {
            Self::ContentType => "content-type",
            Self::InvalidCallback(_) => "invalid-callback",
            Self::ForeignAccount { .. } => "foreign-account",
        }
    }
}

/// What the storing path needs to know of where events come from: a request, or a trusted
/// source of our own ([`Ingest::admit`]).
struct Origin<'a> {
    /// Names the request (or batch) in logs and on quarantined items.
    request_id: &'a str,
    deadline: Instant,
    content_type: Option<&'a str>,
}

impl<'a> Origin<'a> {
    fn of(request: &IngestRequest<'a>) -> Self {
        Self {
            request_id: request.request_id,
            deadline: request.deadline,
            content_type: request.content_type,
        }
    }
}

/// What became of events handed to [`Ingest::admit`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// Claimed and put in the stream now.
    pub stored: usize,
    /// Stored before (by a delivery, a callback or an earlier run).
    pub duplicates: usize,
    /// Being stored by another attempt right now: try again later.
    pub in_progress: usize,
    /// Not stored (the dedup store or the stream failed): try again later.
    pub failed: usize,
}

/// The claims' times, the same for every claim of one request.
#[derive(Clone, Copy)]
struct ClaimTimes {
    now_ms: i64,
    lease_until_ms: i64,
    expires_at_s: i64,
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
        let now = clock.now();
        Self {
            settings,
            secrets: SecretCache::new(verifier, now),
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

    /// The secrets given at construction were read from `source`: read it again after a
    /// signature failure, at most once per `IngestSettings::secret_refresh`, so that a rotated
    /// Auth Token is learnt without a restart.
    pub fn with_secret_source(mut self, source: impl SecretSource + 'static) -> Self {
        let now = self.clock.now();
        self.secrets.follow(Arc::new(source), now);
        self
    }

    /// Reads the secret source again now, whatever the age of the secrets in hand (`serve`
    /// calls it when its secrets file changes). On failure the secrets in hand stay.
    pub async fn reload_secrets(&self) -> Result<(), SecretSourceError> {
        match self.secrets.reload(self.clock.now()).await {
            Refresh::Failed(error) => Err(error),
            Refresh::NoSource | Refresh::NotDue | Refresh::Read => Ok(()),
        }
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
        if !request.route.encoding().admits(request.content_type) {
            return self.refuse(request, &Refusal::ContentType, metrics);
        }
        let url = match self.signed_url(request) {
            Ok(url) => url,
            Err(reason) => return self.refuse_signature(request, &reason, metrics),
        };
        let (verifier, verified) = match self.verify_with_refresh(request, &url, metrics).await {
            Ok(verified) => verified,
            Err(reason) => return self.refuse_signature(request, &reason, metrics),
        };
        let scope = verifier.scope(&verified.key);

        // Parse. An Event Streams payload that cannot be read is kept whole in the quarantine,
        // then acknowledged: its bytes are covered by bodySHA256, so they are what Twilio sent,
        // and a retry of them can never succeed. A form callback that cannot be read is
        // refused and kept nowhere: the form signature does not fix parameter boundaries
        // (docs/twilio.md §2), so it may be a re-split of a genuine callback, and a genuine one
        // always reads.
        let now = self.clock.now();
        let mut events = Vec::new();
        let mut rejected = Vec::new();
        match self.form_event(request, &url, now) {
            None => match parse_delivery(request.body) {
                Ok(delivery) => {
                    events = delivery.events;
                    rejected = delivery
                        .rejected
                        .into_iter()
                        .map(|r| (r.error.to_string(), r.raw.as_bytes()))
                        .collect();
                }
                Err(error) => rejected.push((format!("the delivery: {error}"), request.body)),
            },
            Some(Ok(event)) => events.push(event),
            Some(Err(error)) => {
                return self.refuse(request, &Refusal::InvalidCallback(&error), metrics);
            }
        }

        // Every event must be one the secret may sign for. One that is not refuses the whole
        // delivery: Twilio signs a sink's deliveries with its owner's secret and fills them
        // with the owner's (and listed subaccounts') events only, so such a delivery is either
        // forged, and none of it may get in, or genuine from a subaccount the secret document
        // does not list yet, and is best kept whole for Twilio's retry once the document lists
        // it, rather than split into what is stored now and what is lost.
        if let Some((index, event)) = events
            .iter()
            .enumerate()
            .find(|(_, e)| !scope.allows(e.owner_account()))
        {
            let refusal = Refusal::ForeignAccount {
                index,
                account: event.owner_account(),
                signer: scope.account(),
            };
            let response = self.refuse(request, &refusal, metrics);
            // A document that lists the subaccount by now is read in time for the retry.
            let refresh = self
                .secrets
                .refresh_if_due(now, self.settings.secret_refresh)
                .await;
            self.note_refresh(refresh, request, metrics);
            return response;
        }

        metrics.count("Received", events.len());
        let times = self.claim_times(now, request.deadline);
        let accepted = self.claims_for(events, now, times, request.request_id, metrics);
        let unreadable = self.quarantine_claims_for(rejected, &scope, request, times);
        let summary = self
            .deduplicate_and_publish(&Origin::of(request), accepted, unreadable, metrics)
            .await;
        let response = summary.into_response();
        if matches!(request.route, Route::InboundMessages) && response.status == 200 {
            return IngestResponse::twiml(&self.settings.inbound_twiml);
        }
        response
    }

    /// Stores events that come from a trusted source of this project's own rather than from
    /// an HTTP request (reconciliation with Twilio's REST API, `twilio_events::reconciled`):
    /// nothing to verify, then the very path a delivery's events take — one claim per fact,
    /// the stream put, COMPLETED — so that a status read back from the REST API and the same
    /// status delivered by Twilio are stored once, whichever comes first. `origin` names the
    /// batch in logs; `deadline` bounds the puts as a request's deadline does.
    pub async fn admit(
        &self,
        events: Vec<CloudEvent<'_>>,
        origin: &str,
        deadline: Instant,
        metrics: &mut Metrics,
    ) -> Admitted {
        let now = self.clock.now();
        metrics.count("Received", events.len());
        let times = self.claim_times(now, deadline);
        let accepted = self.claims_for(events, now, times, origin, metrics);
        let origin = Origin {
            request_id: origin,
            deadline,
            content_type: None,
        };
        let summary = self
            .deduplicate_and_publish(&origin, accepted, Vec::new(), metrics)
            .await;
        Admitted {
            stored: summary.accepted,
            duplicates: summary.duplicates,
            in_progress: summary.in_progress,
            failed: summary.store_failures + summary.publish_failures,
        }
    }

    /// Verifies with the secrets in hand; when that fails in a way a secret not read yet could
    /// explain, reads the secret again (at most once per interval) and verifies once more.
    async fn verify_with_refresh(
        &self,
        request: &IngestRequest<'_>,
        url: &str,
        metrics: &mut Metrics,
    ) -> Result<(Arc<Verifier>, Verified), VerifyError> {
        let verifier = self.secrets.verifier();
        let reason = match self.verify(&verifier, request, url) {
            Ok(verified) => return Ok((verifier, verified)),
            Err(reason) => reason,
        };
        if !may_be_a_new_secret(&reason) {
            return Err(reason);
        }
        let refresh = self
            .secrets
            .refresh_if_due(self.clock.now(), self.settings.secret_refresh)
            .await;
        let read = matches!(refresh, Refresh::Read);
        self.note_refresh(refresh, request, metrics);
        if !read {
            return Err(reason);
        }
        let verifier = self.secrets.verifier();
        let verified = self.verify(&verifier, request, url)?;
        Ok((verifier, verified))
    }

    fn note_refresh(&self, refresh: Refresh, request: &IngestRequest<'_>, metrics: &mut Metrics) {
        match refresh {
            Refresh::Read => {
                tracing::info!(
                    request_id = request.request_id,
                    "read the Twilio secret again"
                );
                metrics.tally("SecretRefreshes", 1);
            }
            Refresh::Failed(error) => {
                tracing::error!(request_id = request.request_id, %error, "could not read the Twilio secret again");
                metrics.tally("SecretRefreshFailures", 1);
            }
            Refresh::NoSource | Refresh::NotDue => {}
        }
    }

    fn verify(
        &self,
        verifier: &Verifier,
        request: &IngestRequest<'_>,
        url: &str,
    ) -> Result<Verified, VerifyError> {
        verifier.verify(&SignedRequest {
            url,
            body: request.body,
            // The route's encoding, whatever the request says (see Route::encoding).
            encoding: request.route.encoding(),
            signature: request.signature,
            signature_settings: request.signature_settings,
        })
    }

    /// The URL Twilio signed: the route's public URL plus the query string exactly as received.
    /// Computed once per request: verification and a classic event's `request.url` use it.
    fn signed_url<'r>(&'r self, request: &IngestRequest<'r>) -> Result<Cow<'r, str>, VerifyError> {
        if !self.settings.base_url_from_request {
            return Ok(configured_signed_url(
                &self.settings,
                request.route,
                request.raw_query,
            ));
        }
        // No request context (not behind API Gateway): nothing can match.
        let origin = request
            .public_base_url
            .ok_or(VerifyError::SignatureMismatch)?;
        let base = format!("{}{}", origin.trim_end_matches('/'), request.route.path());
        Ok(Cow::Owned(
            match request.raw_query.filter(|q| !q.is_empty()) {
                Some(query) => format!("{base}?{query}"),
                None => base,
            },
        ))
    }

    /// The one event a form route's callback becomes: a Usage Trigger's, or a classic
    /// webhook's (see `twilio_events::classic`). `None` for Event Streams' JSON route.
    fn form_event(
        &self,
        request: &IngestRequest<'_>,
        url: &str,
        now: OffsetDateTime,
    ) -> Option<Result<CloudEvent<'static>, ParseError>> {
        if request.route == Route::UsageTriggers {
            return Some(usage_trigger_event(request.body));
        }
        let webhook = request.route.classic_webhook()?;
        Some(classic_event(&ClassicRequest {
            webhook,
            url,
            form_body: request.body,
            idempotency_token: request.idempotency_token,
            received_at: now,
        }))
    }

    fn refuse_signature(
        &self,
        request: &IngestRequest<'_>,
        reason: &VerifyError,
        metrics: &mut Metrics,
    ) -> IngestResponse {
        metrics.count("SignatureFailures", 1);
        let class = reason.class();
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

    /// Refuses a request before anything of it is stored, and says why.
    fn refuse(
        &self,
        request: &IngestRequest<'_>,
        refusal: &Refusal<'_>,
        metrics: &mut Metrics,
    ) -> IngestResponse {
        let class = refusal.class();
        metrics.tally("Refused", 1);
        metrics.property("refusal", class);
        match refusal {
            Refusal::ContentType => {
                tracing::warn!(request_id = request.request_id, class, content_type = ?request.content_type, route = ?request.route, "refused: the content type is not the route's");
                // 415, which Twilio does not retry (docs/twilio.md §3): a genuine delivery
                // never has the wrong content type (Event Streams posts JSON, classic callbacks
                // post forms), so a retry of this one could never succeed.
                let expected = match request.route.encoding() {
                    BodyEncoding::Json => "application/json",
                    BodyEncoding::Form => "application/x-www-form-urlencoded",
                };
                IngestResponse::error(
                    415,
                    &format!("POST {} takes {expected} only", request.route.path()),
                )
            }
            Refusal::InvalidCallback(error) => {
                // The error names the parameter and the format expected, never a value.
                tracing::warn!(request_id = request.request_id, class, %error, "refused: not a callback as Twilio sends them");
                // 400: Twilio's own callbacks always carry these fields in these formats, so a
                // retry of this one could never succeed.
                IngestResponse::error(
                    400,
                    &format!("not a Usage Trigger callback as Twilio sends them: {error}"),
                )
            }
            Refusal::ForeignAccount {
                index,
                account,
                signer,
            } => {
                // Account SIDs identify tenants, not people: they may be logged.
                tracing::warn!(
                    request_id = request.request_id,
                    class,
                    event = index,
                    account = account.unwrap_or("none"),
                    signer = signer.unwrap_or("any"),
                    "refused: an event of an account the secret may not sign for"
                );
                // Answered as a signature that does not verify, and for the same reason: by
                // default a 503, so that a genuine delivery from a subaccount the document does
                // not list yet is retried until it does.
                match self.settings.signature_failure {
                    SignatureFailureAnswer::Forbidden => IngestResponse::error(
                        403,
                        "an event's account is not one the verifying secret may sign for",
                    ),
                    SignatureFailureAnswer::RetryLater { retry_after_secs } => {
                        IngestResponse::retry_later(
                            "an event's account is not one the verifying secret may sign for; \
                             if it is a subaccount, list it under its parent in the secret",
                            retry_after_secs,
                        )
                    }
                }
            }
        }
    }

    fn claim_times(&self, now: OffsetDateTime, deadline: Instant) -> ClaimTimes {
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let remaining = deadline.saturating_duration_since(Instant::now());
        ClaimTimes {
            now_ms,
            lease_until_ms: now_ms + (remaining + LEASE_MARGIN).as_millis() as i64,
            expires_at_s: now.unix_timestamp() + self.settings.dedup_window.as_secs() as i64,
        }
    }

    /// Builds each event's claim; an id twice in one delivery is published once.
    fn claims_for<'a>(
        &self,
        events: Vec<CloudEvent<'a>>,
        now: OffsetDateTime,
        times: ClaimTimes,
        token: &str,
        metrics: &mut Metrics,
    ) -> Vec<Accepted<'a>> {
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
            // The fact, not the id: the same status from Event Streams and from a classic
            // callback is one (CloudEvent::dedup_identity).
            let key = event.dedup_key();
            if !seen.insert(key.clone()) {
                metrics.count("Duplicates", 1);
                continue;
            }
            accepted.push(Accepted {
                event,
                claim: DedupClaim {
                    key,
                    token: token.to_owned(),
                    lease_until_ms: times.lease_until_ms,
                    expires_at_s: times.expires_at_s,
                    now_ms: times.now_ms,
                },
            });
        }
        accepted
    }

    /// Builds the claim of each payload to quarantine, by its stable id (the account of the
    /// secret that verified it, the route, the bytes): Twilio's retries of one unreadable
    /// delivery claim the same ids, and find them taken.
    fn quarantine_claims_for<'a>(
        &self,
        rejected: Vec<(String, &'a [u8])>,
        scope: &AccountScope<'_>,
        request: &IngestRequest<'_>,
        times: ClaimTimes,
    ) -> Vec<Unreadable<'a>> {
        let mut seen = HashSet::new();
        rejected
            .into_iter()
            .filter_map(|(detail, payload)| {
                let id = quarantine_id(scope.account(), request.route.path(), payload);
                seen.insert(id.clone()).then(|| Unreadable {
                    claim: DedupClaim {
                        key: quarantine_claim_key(&id),
                        token: request.request_id.to_owned(),
                        lease_until_ms: times.lease_until_ms,
                        expires_at_s: times.expires_at_s,
                        now_ms: times.now_ms,
                    },
                    id,
                    detail,
                    payload,
                })
            })
            .collect()
    }

    async fn deduplicate_and_publish(
        &self,
        request: &Origin<'_>,
        accepted: Vec<Accepted<'_>>,
        unreadable: Vec<Unreadable<'_>>,
        metrics: &mut Metrics,
    ) -> Summary {
        let mut summary = Summary {
            quarantined: unreadable.len(),
            ..Summary::default()
        };
        if accepted.is_empty() && unreadable.is_empty() {
            return summary;
        }
        // Events and payloads to quarantine are claimed in one round trip.
        let claims: Vec<DedupClaim> = accepted
            .iter()
            .map(|a| a.claim.clone())
            .chain(unreadable.iter().map(|u| u.claim.clone()))
            .collect();
        let mut outcomes =
            self.dedup
                .claim(&claims)
                .await
                .into_iter()
                .chain(std::iter::repeat_with(|| {
                    DedupOutcome::Failed(DedupStoreError::NoOutcome)
                }));
        let mut to_publish = Vec::new();
        for (item, outcome) in accepted.iter().zip(&mut outcomes) {
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
        let mut to_keep = Vec::new();
        for (item, outcome) in unreadable.iter().zip(&mut outcomes) {
            match outcome {
                DedupOutcome::Claimed => to_keep.push(item),
                // Already in the quarantine: a retry of the same unreadable delivery.
                DedupOutcome::Duplicate => summary.quarantine_duplicates += 1,
                DedupOutcome::InProgress => summary.in_progress += 1,
                DedupOutcome::Failed(error) => {
                    tracing::warn!(request_id = request.request_id, %error, "dedup store failed for a payload to quarantine");
                    summary.store_failures += 1;
                }
            }
        }
        metrics.count("Duplicates", summary.duplicates);
        metrics.tally("QuarantineDuplicates", summary.quarantine_duplicates);
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
        // Publish and quarantine at once: one round trip of time. A store that holds the
        // stream and the dedup records together publishes and completes in one step.
        let publish_claims: Vec<DedupClaim> = to_publish.iter().map(|a| a.claim.clone()).collect();
        let publish = async {
            if !records.is_empty()
                && let Some(Ok(())) = self
                    .publisher
                    .put_records_and_complete(&records, &publish_claims)
                    .await
            {
                return (vec![true; records.len()], true);
            }
            (self.publish_all(&records, budget, metrics).await, false)
        };
        let ((published, completed_with_publish), kept) =
            tokio::join!(publish, self.keep_all(request, &to_keep, budget));

        let (done, failed): (Vec<_>, Vec<_>) =
            to_publish.iter().zip(published).partition(|(_, ok)| *ok);
        let (kept, not_kept): (Vec<_>, Vec<_>) = to_keep.iter().zip(kept).partition(|(_, ok)| *ok);
        summary.accepted = done.len();
        summary.publish_failures = failed.len();
        summary.quarantine_failures = not_kept.len();
        metrics.count("Accepted", done.len());
        metrics.count("PublishFailures", failed.len());
        metrics.count("Quarantined", kept.len());
        metrics.count("QuarantineFailures", not_kept.len());
        if !to_publish.is_empty() && tracing::enabled!(tracing::Level::INFO) {
            // Event ids and types only: they identify what happened without personal data.
            let ids: Vec<&str> = to_publish.iter().map(|a| a.event.id.as_ref()).collect();
            let types: Vec<&str> = to_publish
                .iter()
                .map(|a| a.event.event_type.as_ref())
                .collect();
            tracing::info!(request_id = request.request_id, event_ids = ?ids, event_types = ?types, published = done.len(), "published");
        }
        let done: Vec<DedupClaim> = done
            .into_iter()
            // Already completed with their records, in the same transaction.
            .filter(|_| !completed_with_publish)
            .map(|(a, _)| a.claim.clone())
            .chain(kept.into_iter().map(|(u, _)| u.claim.clone()))
            .collect();
        let failed: Vec<DedupClaim> = failed
            .into_iter()
            .map(|(a, _)| a.claim.clone())
            .chain(not_kept.into_iter().map(|(u, _)| u.claim.clone()))
            .collect();

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
            // What is done is in the stream or the quarantine: answering 200 is right. Its
            // claims stay INPROGRESS until the lease ends; only a redelivery after that would
            // store it again.
            tracing::error!(request_id = request.request_id, %error, "could not mark claims completed");
            metrics.count("CompleteFailures", done.len());
        }
        if let Err(error) = released {
            tracing::error!(request_id = request.request_id, %error, "could not release claims; they expire with their lease");
        }
        summary
    }

    /// Puts each claimed unreadable payload in the quarantine, until `budget`. Answers, per
    /// payload, whether it is kept.
    async fn keep_all(
        &self,
        request: &Origin<'_>,
        items: &[&Unreadable<'_>],
        budget: Instant,
    ) -> Vec<bool> {
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            tracing::warn!(request_id = request.request_id, detail = %item.detail, "quarantining what cannot be parsed");
            let quarantined =
                QuarantinedItem::new("ingest", "malformed", item.detail.clone(), item.payload)
                    .with_id(item.id.clone())
                    .with_content_type(request.content_type)
                    .with_reference(request.request_id);
            let remaining = budget.saturating_duration_since(Instant::now());
            let ok = match tokio::time::timeout(remaining, self.quarantine.put(quarantined)).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::error!(request_id = request.request_id, %error, "quarantine unavailable");
                    false
                }
                Err(_) => {
                    tracing::error!(
                        request_id = request.request_id,
                        "quarantine ran out of time"
                    );
                    false
                }
            };
            kept.push(ok);
        }
        kept
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

/// Whether a signature failure could come from a secret this instance has not read yet (a
/// rotated Auth Token, a new shared key), so that reading the secret again may help.
fn may_be_a_new_secret(reason: &VerifyError) -> bool {
    matches!(
        reason,
        VerifyError::SignatureMismatch | VerifyError::UnknownKeyId(_) | VerifyError::NoSecrets
    )
}

#[derive(Debug, Default)]
struct Summary {
    accepted: usize,
    duplicates: usize,
    in_progress: usize,
    store_failures: usize,
    publish_failures: usize,
    /// Unreadable payloads in the delivery (kept now, or kept by an earlier attempt).
    quarantined: usize,
    quarantine_duplicates: usize,
    quarantine_failures: usize,
}

impl Summary {
    fn into_response(self) -> IngestResponse {
        let failures = self.store_failures + self.publish_failures + self.quarantine_failures;
        let body = serde_json::json!({
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "in_progress": self.in_progress,
            "failed": failures,
        });
        if failures > 0 {
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
