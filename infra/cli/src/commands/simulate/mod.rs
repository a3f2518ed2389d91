//! `twilio-events simulate`: realistic Twilio traffic to any endpoint, delivered as Twilio
//! delivers it, then a report of what was accepted, retried and dropped and, read back from the
//! stream, what was lost and what was duplicated.
//!
//! Definitions used in the report:
//! - `events`: distinct event ids generated; `deliveries`: planned deliveries (events plus
//!   duplicates); `sent`: HTTP requests made (first attempts and retries); `retried`: retries.
//! - `accepted`: deliveries answered 2xx; `dropped`: deliveries given up (a 4xx other than 429,
//!   or still failing when the retry window closed).
//! - `events_accepted`: distinct ids with at least one 2xx; `never_accepted`: distinct ids
//!   with none (all their deliveries dropped or not started).
//! - `facts`: distinct facts the events report (a message or call reaching a status, …): with
//!   `--classic`, an Event Streams event and the status callback of the same status are one
//!   fact, which the stream must hold once, whichever source came first.
//! - `lost`: facts with an accepted delivery that are not in the stream: the endpoint said "got
//!   it" and does not have it. Must be 0.
//! - `duplicated`: our facts present more than once in the stream. Should be 0.

mod deliver;
mod progress;
mod stream;
mod traffic;
mod units;

use super::{CliError, Outcome};
use clap::Args;
use deliver::{Counters, DeliveryOptions, Fate};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use twilio_events::signature::SigningKey;
use units::{ValueError, parse_duration, parse_rate};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The endpoint's base URL (deliveries go to URL/twilio/events and URL/twilio/usage-triggers).
    #[arg(long, value_name = "URL")]
    url: String,
    /// The Auth Token to sign with, as Twilio does.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true
    )]
    auth_token: String,
    /// How many distinct events to generate (default 1000, or rate × duration with --duration).
    #[arg(long, value_name = "N")]
    events: Option<usize>,
    /// Stop starting deliveries after this long (30s, 5m…); started ones finish their retries.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Target rate of deliveries: 500/s, 30000/m, or max.
    #[arg(long, value_name = "N/s", default_value = "200/s", value_parser = rate)]
    rate: Rate,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Share of events delivered a second time, later (0.05 = 5%).
    #[arg(long, default_value_t = 0.05, value_parser = share)]
    duplicates: f64,
    /// Share of events delivered before the previous event of their resource (0.20 = 20%).
    #[arg(long, default_value_t = 0.20, value_parser = share)]
    reorder: f64,
    /// Share of messages and calls whose statuses also come as classic status callbacks (to
    /// /twilio/message-status and /twilio/call-status), as during a migration to Event Streams.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    classic: f64,
    /// Scales Twilio's backoff (1 s doubling to 10 min) and its 4-hour retry window:
    /// 0.001 retries after ~1 ms and gives up after ~14 s.
    #[arg(long, default_value_t = 1.0)]
    retry_scale: f64,
    /// Give up on a delivery after this long (default: 4h × --retry-scale).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_retry_time: Option<Duration>,
    /// How long to wait for an answer (Twilio: 5s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Read the local stream of `serve` in DIR afterwards, to count lost and duplicated events.
    #[arg(long, value_name = "DIR", conflicts_with = "kinesis_stream")]
    data_dir: Option<PathBuf>,
    /// Read this Kinesis stream afterwards (AWS_ENDPOINT_URL for an emulator).
    #[arg(long, value_name = "NAME")]
    kinesis_stream: Option<String>,
    /// Write every simulated message and call, as Twilio's REST API would show it once the
    /// traffic has happened (its last status), to FILE as JSON lines (`kind` says which): what a
    /// fake of the REST API serves for `twilio-events reconcile` to read back.
    #[arg(long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Seed of the traffic (the same seed, the same events and plan).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Deliveries per second, or `None` for as fast as the endpoint answers.
#[derive(Clone, Copy, Debug)]
struct Rate(Option<f64>);

fn rate(text: &str) -> Result<Rate, ValueError> {
    parse_rate(text).map(Rate)
}

fn share(text: &str) -> Result<f64, ValueError> {
    let v: f64 = text.parse().map_err(|source| ValueError::Share {
        text: text.to_owned(),
        source,
    })?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(ValueError::ShareRange {
            text: text.to_owned(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum SimulateError {
    #[error("--events 0: nothing to simulate; pass --events N or --duration with a --rate")]
    NothingToDo,
    #[error("--retry-scale must be above 0 (1 = Twilio's real backoff)")]
    RetryScale,
    #[error("--concurrency must be at least 1")]
    Concurrency,
    #[error(
        "--url {0:?} is not an http(s) URL: pass the endpoint's base, like http://127.0.0.1:3000"
    )]
    Url(String),
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write --resources {}", path.display())]
    Resources {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error(transparent)]
    Stream(#[from] stream::StreamReadError),
}

impl From<SimulateError> for CliError {
    fn from(e: SimulateError) -> Self {
        match e {
            SimulateError::NothingToDo
            | SimulateError::RetryScale
            | SimulateError::Concurrency
            | SimulateError::Url(_) => Self::usage(e),
            SimulateError::Runtime(_)
            | SimulateError::Client(_)
            | SimulateError::Stream(_)
            | SimulateError::Resources { .. } => Self::failed(e),
        }
    }
}

#[derive(serde::Serialize, Debug)]
struct Report {
    url: String,
    seed: u64,
    events: usize,
    facts: usize,
    deliveries: usize,
    duplicates_planned: usize,
    reordered_planned: usize,
    by_kind: std::collections::BTreeMap<&'static str, usize>,
    sent: u64,
    accepted: u64,
    retried: u64,
    dropped: u64,
    dropped_4xx: usize,
    dropped_retry_window: usize,
    not_started: usize,
    answers: Answers,
    events_accepted: usize,
    never_accepted: usize,
    stream: Option<String>,
    in_stream: Option<usize>,
    lost: Option<usize>,
    duplicated: Option<usize>,
    never_accepted_but_in_stream: Option<usize>,
    elapsed_s: f64,
    deliveries_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(serde::Serialize, Debug)]
struct Answers {
    #[serde(rename = "2xx")]
    ok: u64,
    #[serde(rename = "429")]
    too_many: u64,
    #[serde(rename = "5xx")]
    server_error: u64,
    #[serde(rename = "4xx")]
    client_error: u64,
    timeouts: u64,
    connection_errors: u64,
}

pub fn run(args: SimulateArgs) -> Result<Outcome, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimulateError::Runtime)?;
    Ok(runtime.block_on(simulate(args))?)
}

async fn simulate(args: SimulateArgs) -> Result<Outcome, SimulateError> {
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        return Err(SimulateError::Url(args.url));
    }
    if args.retry_scale.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(SimulateError::RetryScale);
    }
    if args.concurrency == 0 {
        return Err(SimulateError::Concurrency);
    }
    let count = match (args.events, args.duration, args.rate.0) {
        (Some(n), _, _) => n,
        (None, Some(d), Some(rate)) => (d.as_secs_f64() * rate).ceil() as usize,
        (None, Some(_), None) => 1_000_000,
        (None, None, _) => 1_000,
    };
    if count == 0 {
        return Err(SimulateError::NothingToDo);
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let plan = Arc::new(traffic::generate(
        seed,
        count,
        args.duplicates,
        args.reorder,
        args.classic,
    ));
    if let Some(path) = &args.resources {
        let lines: String = plan.resources.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(path, lines).map_err(|source| SimulateError::Resources {
            path: path.clone(),
            source,
        })?;
    }
    let max_retry_time = args
        .max_retry_time
        .unwrap_or_else(|| deliver::TWILIO_RETRY_WINDOW.mul_f64(args.retry_scale));
    let options = DeliveryOptions {
        base_url: args.url.clone(),
        key: SigningKey::AuthToken(args.auth_token.as_str().into()),
        rate: args.rate.0,
        concurrency: args.concurrency,
        timeout: args.timeout,
        retry_scale: args.retry_scale,
        max_retry_time,
        duration: args.duration,
        seed,
    };
    let counters = Arc::new(Counters::default());
    let bar = (!args.quiet).then(|| {
        tokio::spawn(progress::run(
            Arc::clone(&counters),
            plan.deliveries.len() as u64,
        ))
    });
    let outcome = deliver::run(Arc::clone(&plan), options, Arc::clone(&counters))
        .await
        .map_err(SimulateError::Client)?;
    if let Some(bar) = bar {
        let _ = bar.await;
    }

    // Which distinct events got a 2xx at least once.
    let mut accepted_events = vec![false; plan.events.len()];
    for (slot, fate) in outcome.fates.iter().enumerate() {
        if *fate == Fate::Accepted {
            accepted_events[plan.deliveries[slot]] = true;
        }
    }
    let events_accepted = accepted_events.iter().filter(|a| **a).count();
    let count_fate = |f: Fate| outcome.fates.iter().filter(|x| **x == f).count();

    // Facts, not ids: the stream holds each fact once, from whichever source came first.
    let ours: HashSet<&str> = plan.events.iter().map(|e| e.fact.as_str()).collect();
    let accepted_facts: HashSet<&str> = (0..plan.events.len())
        .filter(|&i| accepted_events[i])
        .map(|i| plan.events[i].fact.as_str())
        .collect();
    let (stream_name, counts) = if let Some(dir) = &args.data_dir {
        (
            Some(format!("local:{}", dir.display())),
            Some(stream::read_local(dir, &ours)?),
        )
    } else if let Some(name) = &args.kinesis_stream {
        (
            Some(format!("kinesis:{name}")),
            Some(stream::read_kinesis(name, &ours).await?),
        )
    } else {
        (None, None)
    };
    let (mut in_stream, mut lost, mut duplicated, mut stray) = (None, None, None, None);
    if let Some(counts) = &counts {
        in_stream = Some(counts.len());
        duplicated = Some(counts.values().filter(|n| **n > 1).count());
        let present = |fact: &str| counts.contains_key(fact);
        lost = Some(accepted_facts.iter().filter(|f| !present(f)).count());
        stray = Some(
            ours.iter()
                .filter(|f| !accepted_facts.contains(*f) && present(f))
                .count(),
        );
    }
    let ms = |p: f64| {
        let l = &outcome.latencies;
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |d| (d.as_secs_f64() * 100_000.0).round() / 100.0)
    };
    let c = &counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let elapsed = outcome.elapsed.as_secs_f64();
    let report = Report {
        url: args.url.clone(),
        seed,
        events: plan.events.len(),
        facts: ours.len(),
        deliveries: plan.deliveries.len(),
        duplicates_planned: plan.duplicates,
        reordered_planned: plan.reordered,
        by_kind: plan.by_kind.iter().map(|(k, v)| (*k, *v)).collect(),
        sent: load(&c.sent),
        accepted: load(&c.accepted),
        retried: load(&c.retried),
        dropped: load(&c.dropped),
        dropped_4xx: count_fate(Fate::Dropped4xx),
        dropped_retry_window: count_fate(Fate::DroppedRetryWindow),
        not_started: count_fate(Fate::NotStarted),
        answers: Answers {
            ok: load(&c.status_2xx),
            too_many: load(&c.status_429),
            server_error: load(&c.status_5xx),
            client_error: load(&c.status_4xx),
            timeouts: load(&c.timeouts),
            connection_errors: load(&c.connection_errors),
        },
        events_accepted,
        never_accepted: plan.events.len() - events_accepted,
        stream: stream_name,
        in_stream,
        lost,
        duplicated,
        never_accepted_but_in_stream: stray,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        deliveries_per_s: (load(&c.accepted) as f64 / elapsed.max(1e-3)).round(),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).unwrap_or_else(|_| "{}".into())
        );
    } else {
        print_text(&report);
    }
    let bad = report.lost.unwrap_or(0) > 0 || report.duplicated.unwrap_or(0) > 0;
    Ok(if bad { Outcome::Rejected } else { Outcome::Ok })
}

fn print_text(r: &Report) {
    println!("twilio-events simulate → {} (seed {})", r.url, r.seed);
    println!(
        "  events     {} ({}), {} deliveries ({} duplicates, {} reordered)",
        r.events,
        r.by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.deliveries,
        r.duplicates_planned,
        r.reordered_planned
    );
    println!(
        "  sent       {} requests: accepted {}, retried {}, dropped {} (4xx {}, retry window {}), not started {}",
        r.sent,
        r.accepted,
        r.retried,
        r.dropped,
        r.dropped_4xx,
        r.dropped_retry_window,
        r.not_started
    );
    println!(
        "  answers    2xx {}, 429 {}, 5xx {}, other 4xx {}, timeouts {}, connection errors {}",
        r.answers.ok,
        r.answers.too_many,
        r.answers.server_error,
        r.answers.client_error,
        r.answers.timeouts,
        r.answers.connection_errors
    );
    println!(
        "  throughput {}/s over {} s; latency p50 {} ms, p99 {} ms, max {} ms",
        r.deliveries_per_s, r.elapsed_s, r.p50_ms, r.p99_ms, r.max_ms
    );
    println!(
        "  events     accepted {}, never accepted {}",
        r.events_accepted, r.never_accepted
    );
    match (&r.stream, r.in_stream, r.lost, r.duplicated) {
        (Some(s), Some(n), Some(lost), Some(dup)) => println!(
            "  stream     {s}: {n} of our events; lost {lost}, duplicated {dup}{}",
            if lost == 0 && dup == 0 {
                "  OK"
            } else {
                "  FAILED"
            }
        ),
        _ => println!("  stream     not read (pass --data-dir DIR or --kinesis-stream NAME)"),
    }
}
