//! From an HTTP request (API Gateway's, or `serve`'s) to the core and back.

use crate::ports::{Clock, DedupStore, EventPublisher};
use crate::service::{Ingest, IngestRequest, Route};
use http::{HeaderMap, Method, Response, StatusCode, header};
use std::time::Instant;
use twilio_events::metrics::MetricsSink;
use twilio_events::quarantine::Quarantine;
use twilio_events::signature::{SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER};

/// The parts of a request ingest looks at.
#[derive(Clone, Copy, Debug)]
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    /// The path as received (a stage or base path may precede the route).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub request_id: &'a str,
    pub deadline: Instant,
    /// The base URL API Gateway says it was called at (used with `PUBLIC_BASE_URL=auto`).
    pub public_base_url: Option<&'a str>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json(status: StatusCode, body: String, retry_after: Option<u32>) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    response
}

/// Handles one HTTP request.
pub async fn handle<D, P, Q, M, C>(
    ingest: &Ingest<D, P, Q, M, C>,
    request: HttpRequest<'_>,
) -> Response<String>
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
    C: Clock,
{
    let Some(route) = Route::from_path(request.path) else {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"error":"unknown route: POST /twilio/events, /twilio/usage-triggers, /twilio/message-status, /twilio/call-status or /twilio/inbound-messages"}"#.into(),
            None,
        );
    };
    if request.method != Method::POST {
        // A sink configured for GET can never work: say so rather than accept and lose events.
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"only POST is supported: configure the Twilio sink with method POST"}"#
                .into(),
            None,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
        return response;
    }
    let answer = ingest
        .handle(IngestRequest {
            route,
            raw_query: request.query,
            content_type: header(request.headers, "content-type"),
            signature: header(request.headers, SIGNATURE_HEADER),
            signature_settings: header(request.headers, SIGNATURE_SETTINGS_HEADER),
            body: request.body,
            request_id: request.request_id,
            deadline: request.deadline,
            public_base_url: request.public_base_url,
            idempotency_token: header(request.headers, "i-twilio-idempotency-token"),
        })
        .await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = json(status, answer.body, answer.retry_after_secs);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(answer.content_type),
    );
    response
}
