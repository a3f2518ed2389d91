//! The Lambda entry point: API Gateway HTTP API (payload v2) in, the core's answer out.

use crate::ports::{Clock, DedupStore, EventPublisher};
use crate::request::{HttpRequest, handle};
use crate::service::Ingest;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use twilio_events::metrics::MetricsSink;
use twilio_events::quarantine::Quarantine;

/// Twilio gives up after 5 seconds, whatever the function's own timeout.
const TWILIO_TIMEOUT: Duration = Duration::from_millis(4_800);

/// How long this invocation may take: the sooner of Lambda's deadline and Twilio's timeout.
fn deadline(lambda_deadline_ms: Option<u64>, received: Instant) -> Instant {
    let twilio = received + TWILIO_TIMEOUT;
    // A deadline that cannot be Lambda's (an emulator's placeholder) leaves Twilio's limit.
    lambda_deadline_ms
        .and_then(|ms| {
            twilio_events::deadline::lambda_deadline(
                UNIX_EPOCH + Duration::from_millis(ms),
                received,
            )
        })
        .map_or(twilio, |lambda| lambda.min(twilio))
}

/// Serves requests until the runtime stops.
pub async fn run<D, P, Q, M, C>(ingest: Arc<Ingest<D, P, Q, M, C>>) -> Result<(), Error>
where
    D: DedupStore + 'static,
    P: EventPublisher + 'static,
    Q: Quarantine + 'static,
    M: MetricsSink + 'static,
    C: Clock + 'static,
{
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let ingest = Arc::clone(&ingest);
        async move { Ok::<_, Error>(handle_lambda(&ingest, request).await) }
    }))
    .await
}

pub async fn handle_lambda<D, P, Q, M, C>(
    ingest: &Ingest<D, P, Q, M, C>,
    request: Request,
) -> Response<Body>
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
    C: Clock,
{
    let received = Instant::now();
    let context = request.lambda_context_ref();
    let request_id = context.map_or("", |c| c.request_id.as_str());
    let deadline = deadline(context.map(|c| c.deadline), received);
    let public_base_url = public_base_url(&request);
    let response = handle(
        ingest,
        HttpRequest {
            method: request.method(),
            // The raw path without the stage lambda_http adds; the signature never depends on it.
            path: request.raw_http_path(),
            query: request.uri().query(),
            headers: request.headers(),
            body: request.body().as_ref(),
            request_id,
            deadline,
            public_base_url: public_base_url.as_deref(),
        },
    )
    .await;
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::Text(body))
}

/// `https://<domain name>[/<stage>]` from API Gateway's request context: for the default
/// execute-api endpoint, exactly the base of the URL Twilio called.
fn public_base_url(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        lambda_http::request::RequestContext::ApiGatewayV2(context) => {
            let domain = context.domain_name.as_deref().filter(|d| !d.is_empty())?;
            Some(match context.stage.as_deref() {
                None | Some("$default") | Some("") => format!("https://{domain}"),
                Some(stage) => format!("https://{domain}/{stage}"),
            })
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
