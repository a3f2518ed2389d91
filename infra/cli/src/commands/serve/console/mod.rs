//! The local console of `serve`, at `/console` on serve's own port: every delivery (and why a
//! signature failed), the stream's events, each message's or call's timeline, the quotas and
//! the quarantine, in a browser. Server-rendered HTML (readable with JavaScript off) with one
//! small script for live updates over server-sent events; nothing loaded from elsewhere.
//!
//! Same port rather than its own: one address to remember, nothing more to open in a firewall,
//! and serve's connection limits and timeouts apply to it too. What that costs — a tunnel to
//! serve would reach it — `access.rs` closes. The delivery path only records each answer in a
//! ring buffer (`deliveries.rs`); everything else is read when a page is asked for.
//!
//! - `access.rs`: who may use it (loopback, or a token), and the same-origin rule for actions.
//! - `deliveries.rs`: the recorder on the delivery path.
//! - `diagnose.rs`: why a signature was refused.
//! - `mask.rs`: phone numbers and bodies hidden unless revealed.
//! - `html.rs` and `assets/`: the layout, style and script compiled into the binary.
//! - `pages/`: one file per page.
//! - `actions.rs`: replaying and discarding quarantined items, and their log.

mod access;
mod actions;
pub mod deliveries;
mod diagnose;
mod html;
mod mask;
mod pages;

pub use access::{Access, WeakToken};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use clap::Args;
use deliveries::Recorder;
use http::{HeaderValue, Method, StatusCode, header};
use ingest::adapters::sqlite::SqliteStore;
use ingest::config::IngestSettings;
use pages::View;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use twilio_events::jsonl::JsonLines;
use twilio_events::quarantine::FileQuarantine;
use twilio_events::signature::Verifier;
use twilio_events::stream::StreamRecord;

pub use actions::Replayer;

/// `serve`'s console flags.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Serve no console at /console.
    #[arg(long)]
    no_console: bool,
    /// The console's access token (at least 16 characters): then every console page wants it
    /// (open /console?token=… once, or send Authorization: Bearer …). Required for a console
    /// when --host is not a loopback address.
    #[arg(
        long,
        env = "TWILIO_EVENTS_CONSOLE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    console_token: Option<String>,
}

impl ConsoleArgs {
    pub fn access(&self, host: std::net::IpAddr) -> Result<Access, WeakToken> {
        Access::decide(host, self.no_console, self.console_token.as_deref())
    }
}

/// Something a page could not read.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot read the local stream")]
    Stream(#[source] ingest::adapters::sqlite::SqliteError),
    #[error("the stream is not local: start serve with the embedded store (--backend embedded)")]
    NoStream,
    #[error("cannot read the quarantine")]
    Quarantine(#[source] twilio_events::jsonl::JsonLinesError),
    #[error("cannot read the quotas file")]
    Quotas(#[source] quota_alert::QuotasError),
    #[error("cannot read quota-alert's counters")]
    Counter(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot read crm-sync's ledger")]
    Ledger(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot record the action in the actions log")]
    Actions(#[source] twilio_events::jsonl::JsonLinesError),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NoStream => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // The error chain names files and causes; never a secret, a number or a body.
        let mut message = self.to_string();
        let mut source = std::error::Error::source(&self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::warn!(error = %message, "console page failed");
        let body = html::page(
            "Cannot show this page",
            "",
            None,
            &format!("<p class=\"bad\">{}</p>", html::esc(&message)),
        );
        (status, page_headers(), body).into_response()
    }
}

/// Everything the console reads, and the recorder `serve` fills.
pub struct Console {
    pub recorder: Arc<Recorder>,
    access: Access,
    verifier: Verifier,
    settings: IngestSettings,
    local: SocketAddr,
    data_dir: PathBuf,
    quotas: Option<PathBuf>,
    store: Option<SqliteStore>,
    replayer: Option<Arc<dyn Replayer>>,
    quarantine: FileQuarantine,
    actions: JsonLines<actions::Action>,
}

/// What `serve` knows when it builds the console.
pub struct Setup {
    pub access: Access,
    pub verifier: Verifier,
    pub settings: IngestSettings,
    pub local: SocketAddr,
    pub data_dir: PathBuf,
    pub quotas: Option<PathBuf>,
}

impl Console {
    /// Why not, when access says it is off.
    pub fn new(setup: Setup) -> Result<Self, &'static str> {
        if let Access::Off(why) = setup.access {
            return Err(why);
        }
        Ok(Self {
            recorder: Arc::default(),
            access: setup.access,
            verifier: setup.verifier,
            settings: setup.settings,
            local: setup.local,
            quarantine: FileQuarantine::new(setup.data_dir.join("quarantine.jsonl")),
            actions: JsonLines::new(setup.data_dir.join(actions::ACTIONS_FILE)),
            data_dir: setup.data_dir,
            quotas: setup.quotas,
            store: None,
            replayer: None,
        })
    }

    /// With the embedded store: the Events and Timelines pages read it.
    pub fn with_store(mut self, store: SqliteStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Quarantined items are replayed through `replayer` (ingest's storing path).
    pub fn with_replayer(mut self, replayer: Arc<dyn Replayer>) -> Self {
        self.replayer = Some(replayer);
        self
    }

    /// Says where the console is, and answers it.
    pub fn print_url(self) -> Self {
        let hint = match self.access {
            Access::Token(_) => " (open it with ?token=<--console-token>)",
            _ => "",
        };
        println!("  Console: http://{}/console{hint}", self.local);
        self
    }

    /// The whole local stream, in order (a local tool's stream: thousands, not millions).
    fn stream(&self) -> Result<Vec<StreamRecord>, ConsoleError> {
        let store = self.store.as_ref().ok_or(ConsoleError::NoStream)?;
        let mut records = Vec::new();
        let mut after = 0;
        loop {
            let batch = store
                .read_after(after, 1_000)
                .map_err(ConsoleError::Stream)?;
            let Some(last) = batch.last() else { break };
            after = last.sequence_number.parse().unwrap_or(i64::MAX);
            let done = batch.len() < 1_000;
            records.extend(batch);
            if done {
                break;
            }
        }
        Ok(records)
    }

    fn crm_updates(&self) -> Vec<crm_sync::StatusUpdate> {
        JsonLines::new(self.data_dir.join("crm.jsonl")).read_all()
    }

    fn ledger_row(&self, sid: &str) -> Result<Option<crm_sync::ports::LedgerRow>, ConsoleError> {
        let path = crm_sync::startup::local_ledger_path(&self.data_dir);
        if !path.exists() {
            return Ok(None);
        }
        crm_sync::adapters::sqlite::SqliteStatusLedger::open(&path)
            .map_err(|e| ConsoleError::Ledger(Box::new(e)))?
            .row(sid)
            .map_err(|e| ConsoleError::Ledger(Box::new(e)))
    }

    fn alerts(&self) -> Vec<quota_alert::Alert> {
        JsonLines::new(self.data_dir.join("alerts.jsonl")).read_all()
    }

    fn actions(&self) -> Vec<actions::Action> {
        self.actions.read_all()
    }

    /// What changes the pages other than Deliveries: the stream's length and the files'.
    fn data_version(&self) -> (u64, [u64; 4]) {
        let records = self
            .store
            .as_ref()
            .and_then(|s| s.count_after(0).ok())
            .unwrap_or(0);
        let length =
            |name: &str| std::fs::metadata(self.data_dir.join(name)).map_or(0, |m| m.len());
        (
            records,
            [
                length("quarantine.jsonl"),
                length("crm.jsonl"),
                length("alerts.jsonl"),
                length(actions::ACTIONS_FILE),
            ],
        )
    }
}

/// The console's routes, each an exact path (so that every other path, `/console/…/twilio/events`
/// included, still reaches ingest as before).
pub fn router(console: Arc<Console>) -> Router {
    let page = || get(dispatch).head(dispatch);
    Router::new()
        .route("/console", page())
        .route("/console/", page())
        .route("/console/deliveries", page())
        .route("/console/deliveries/{id}", page())
        .route("/console/events", page())
        .route("/console/timelines", page())
        .route("/console/quotas", page())
        .route("/console/quarantine", page())
        .route("/console/quarantine/{id}/replay", post(dispatch))
        .route("/console/quarantine/{id}/discard", post(dispatch))
        .route("/console/live", get(dispatch))
        .route("/console/assets/console.js", get(dispatch))
        .route("/console/assets/console.css", get(dispatch))
        .with_state(console)
}

/// What every console answer carries: no caching, no framing, no referrer to other sites (a
/// `?token=` must not leak; same-origin requests keep theirs, so a form's POST carries its
/// `Origin`), scripts and styles from this console only.
fn page_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                 img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
    ]
}

fn html_response(status: StatusCode, body: String) -> Response {
    (status, page_headers(), body).into_response()
}

async fn dispatch(State(console): State<Arc<Console>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let view = View::new(&path, query.as_deref());
    match console
        .access
        .check(&parts.method, &parts.headers, view.param("token"))
    {
        access::Verdict::Allowed => {}
        access::Verdict::Login { cookie } => {
            let mut response = Redirect::to(&path).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            return response;
        }
        access::Verdict::NeedsToken => {
            let body = html::page(
                "Console token",
                "",
                None,
                "<p>This console wants its token (serve's <code>--console-token</code>).</p>\
                 <form method=\"get\"><input type=\"password\" name=\"token\" autocomplete=\"off\"> \
                 <button>Open</button></form>",
            );
            return html_response(StatusCode::UNAUTHORIZED, body);
        }
        access::Verdict::Forbidden(why) => {
            return (StatusCode::FORBIDDEN, page_headers(), html::esc(why)).into_response();
        }
    }
    let result = route(&console, &parts.method, &path, &view).await;
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(
    console: &Arc<Console>,
    method: &Method,
    path: &str,
    view: &View,
) -> Result<Response, ConsoleError> {
    let rest = path.trim_start_matches("/console");
    let html = |body: String| html_response(StatusCode::OK, body);
    Ok(match rest.trim_end_matches('/') {
        "" => Redirect::to("/console/deliveries").into_response(),
        "/deliveries" => html(pages::deliveries::list(console, view)),
        "/events" => html(pages::events::list(console, view)?),
        "/timelines" => html(pages::timelines::page(console, view)?),
        "/quotas" => html(pages::quotas::page(console, view).await?),
        "/quarantine" => html(pages::quarantine::page(console, view)?),
        "/live" => live(Arc::clone(console)).into_response(),
        "/assets/console.js" => asset("text/javascript; charset=utf-8", html::SCRIPT),
        "/assets/console.css" => asset("text/css; charset=utf-8", html::STYLE),
        other => {
            if let Some(id) = other.strip_prefix("/deliveries/") {
                match id
                    .parse()
                    .ok()
                    .and_then(|id| pages::deliveries::one(console, view, id))
                {
                    Some(page) => html(page),
                    None => not_found("No such delivery: the console keeps the last thousand."),
                }
            } else if let Some(rest) = other.strip_prefix("/quarantine/") {
                match (rest.rsplit_once('/'), *method == Method::POST) {
                    (Some((id, "replay")), true) => {
                        actions::replay(console, id).await?;
                        Redirect::to("/console/quarantine").into_response()
                    }
                    (Some((id, "discard")), true) => {
                        actions::discard(console, id)?;
                        Redirect::to("/console/quarantine").into_response()
                    }
                    _ => not_found("No such page."),
                }
            } else {
                not_found("No such page.")
            }
        }
    })
}

fn not_found(message: &str) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::page(
            "Not found",
            "",
            None,
            &format!("<p>{}</p>", html::esc(message)),
        ),
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Body::from(text),
    )
        .into_response()
}

/// How often the live feed looks at the stream and the data directory's files.
const DATA_POLL: Duration = Duration::from_secs(1);

/// Server-sent events: `deliveries` at once for each new delivery (from the recorder's
/// broadcast), `data` within a second of a change to the stream or a data file.
fn live(
    console: Arc<Console>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let deliveries = console.recorder.subscribe();
    let version = console.data_version();
    let state = (console, deliveries, version);
    let stream = futures_util::stream::unfold(
        state,
        |(console, mut deliveries, version)| async move {
            let mut tick = tokio::time::interval(DATA_POLL);
            tick.tick().await;
            loop {
                tokio::select! {
                    received = deliveries.recv() => {
                        use tokio::sync::broadcast::error::RecvError;
                        match received {
                            Ok(id) => {
                                let event = Event::default().event("deliveries").data(id.to_string());
                                return Some((Ok(event), (console, deliveries, version)));
                            }
                            // Missed some: one refresh covers them all.
                            Err(RecvError::Lagged(_)) => {
                                let event = Event::default().event("deliveries").data("lagged");
                                return Some((Ok(event), (console, deliveries, version)));
                            }
                            Err(RecvError::Closed) => return None,
                        }
                    }
                    _ = tick.tick() => {
                        let now = console.data_version();
                        if now != version {
                            let event = Event::default().event("data").data(now.0.to_string());
                            return Some((Ok(event), (console, deliveries, now)));
                        }
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
