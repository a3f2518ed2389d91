//! Delivering as Twilio delivers: a 5-second timeout; 429, 5xx, timeouts and connection errors
//! retried with exponential backoff and full jitter (for up to 4 hours, both scaled down by
//! `--retry-scale` for a local run); any other 4xx drops the event with no retry.

use super::traffic::{Plan, Rng};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

/// Twilio keeps retrying for this long.
pub const TWILIO_RETRY_WINDOW: Duration = Duration::from_secs(4 * 3600);
/// First backoff, and the longest one, before scaling.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    pub base_url: String,
    pub key: SigningKey,
    /// Deliveries started per second (first attempts); `None` for as fast as possible.
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub retry_scale: f64,
    pub max_retry_time: Duration,
    /// Stop starting new deliveries after this long (retries of started ones still finish).
    pub duration: Option<Duration>,
    pub seed: u64,
}

/// What happened to one delivery in the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    NotStarted,
    Accepted,
    /// Any 4xx but 429: Twilio drops it at once.
    Dropped4xx,
    /// Still failing when the retry window closed.
    DroppedRetryWindow,
}

/// Counters shared by the workers and the progress bar.
#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicU64,
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    pub in_retry: AtomicU64,
    pub status_2xx: AtomicU64,
    pub status_429: AtomicU64,
    pub status_5xx: AtomicU64,
    pub status_4xx: AtomicU64,
    pub timeouts: AtomicU64,
    pub connection_errors: AtomicU64,
    pub finished: AtomicBool,
}

pub struct Outcome {
    pub fates: Vec<Fate>,
    /// Latency of every answered request (any status), sorted.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

/// A delivery's slot in the plan, its fate and the latencies of its attempts.
type Finished = (usize, (Fate, Vec<Duration>));

enum Attempt {
    Accepted,
    Retry,
    Drop,
}

/// The wait before retry number `retry` (1-based): full jitter over an exponential backoff.
pub fn backoff(retry: u32, scale: f64, rng: &mut Rng) -> Duration {
    let exp = BACKOFF_BASE.as_secs_f64() * 2f64.powi(retry.saturating_sub(1).min(30) as i32);
    let ceiling = exp.min(BACKOFF_CAP.as_secs_f64()) * scale;
    // Half fixed, half jitter: never hammer at once, never synchronise retries.
    Duration::from_secs_f64(ceiling * (0.5 + 0.5 * rng.unit()))
}

pub async fn run(
    plan: Arc<Plan>,
    options: DeliveryOptions,
    counters: Arc<Counters>,
) -> Result<Outcome, reqwest::Error> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .timeout(options.timeout)
        .build()?;
    let base = options.base_url.trim_end_matches('/').to_owned();
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let options = Arc::new(options);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let interval = options.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut fates = vec![Fate::NotStarted; plan.deliveries.len()];
    let mut latencies = Vec::with_capacity(plan.deliveries.len());
    let mut record = |joined: Option<Result<Finished, tokio::task::JoinError>>| {
        if let Some(Ok((slot, (fate, mut l)))) = joined {
            fates[slot] = fate;
            latencies.append(&mut l);
        }
    };
    for (slot, &event) in plan.deliveries.iter().enumerate() {
        if let Some(limit) = options.duration {
            if started.elapsed() >= limit {
                break;
            }
        }
        if let Some(interval) = interval {
            let due = started + interval.mul_f64(slot as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        // Do not run far ahead of the workers: at most a few thousand deliveries waiting.
        while tasks.len() > options.concurrency * 4 + 1024 {
            record(tasks.join_next().await);
        }
        let (client, plan, options, permits, counters) = (
            client.clone(),
            Arc::clone(&plan),
            Arc::clone(&options),
            Arc::clone(&permits),
            Arc::clone(&counters),
        );
        let url = format!("{base}{}", plan.events[event].route.path());
        counters.started.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let fate = deliver(
                &client, &plan, event, &url, &options, &permits, &counters, slot,
            )
            .await;
            (slot, fate)
        });
    }
    while !tasks.is_empty() {
        record(tasks.join_next().await);
    }
    counters.finished.store(true, Ordering::Relaxed);
    latencies.sort();
    Ok(Outcome {
        fates,
        latencies,
        elapsed: started.elapsed(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn deliver(
    client: &reqwest::Client,
    plan: &Plan,
    event: usize,
    url: &str,
    options: &DeliveryOptions,
    permits: &Semaphore,
    counters: &Counters,
    slot: usize,
) -> (Fate, Vec<Duration>) {
    let event = &plan.events[event];
    let encoding = event.route.encoding();
    let signed = sign(&options.key, url, &event.body, encoding);
    let content_type = match encoding {
        BodyEncoding::Json => "application/json",
        BodyEncoding::Form => "application/x-www-form-urlencoded",
    };
    let mut rng = Rng::new(options.seed ^ (slot as u64).wrapping_mul(0x9E37_79B9));
    let first = Instant::now();
    let mut latencies = Vec::with_capacity(1);
    let mut retry = 0u32;
    loop {
        let attempt = {
            let Ok(_permit) = permits.acquire().await else {
                return (Fate::DroppedRetryWindow, latencies);
            };
            counters.sent.fetch_add(1, Ordering::Relaxed);
            let mut request = client
                .post(&signed.url)
                .header("Content-Type", content_type)
                .header("User-Agent", "TwilioProxy/1.1")
                .body(event.body.clone());
            for (name, value) in signed.headers() {
                request = request.header(name, value);
            }
            let sent = Instant::now();
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    latencies.push(sent.elapsed());
                    classify(status, counters)
                }
                Err(e) => {
                    if e.is_timeout() {
                        counters.timeouts.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.connection_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Attempt::Retry
                }
            }
        };
        match attempt {
            Attempt::Accepted => {
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                if retry > 0 {
                    counters.in_retry.fetch_sub(1, Ordering::Relaxed);
                }
                return (Fate::Accepted, latencies);
            }
            Attempt::Drop => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                if retry > 0 {
                    counters.in_retry.fetch_sub(1, Ordering::Relaxed);
                }
                return (Fate::Dropped4xx, latencies);
            }
            Attempt::Retry => {
                retry += 1;
                let wait = backoff(retry, options.retry_scale, &mut rng);
                if first.elapsed() + wait > options.max_retry_time {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    if retry > 1 {
                        counters.in_retry.fetch_sub(1, Ordering::Relaxed);
                    }
                    return (Fate::DroppedRetryWindow, latencies);
                }
                if retry == 1 {
                    counters.in_retry.fetch_add(1, Ordering::Relaxed);
                }
                counters.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn classify(status: u16, counters: &Counters) -> Attempt {
    match status {
        200..=299 => {
            counters.status_2xx.fetch_add(1, Ordering::Relaxed);
            Attempt::Accepted
        }
        429 => {
            counters.status_429.fetch_add(1, Ordering::Relaxed);
            Attempt::Retry
        }
        500..=599 => {
            counters.status_5xx.fetch_add(1, Ordering::Relaxed);
            Attempt::Retry
        }
        400..=499 => {
            counters.status_4xx.fetch_add(1, Ordering::Relaxed);
            Attempt::Drop
        }
        // 1xx/3xx: Twilio does not follow redirects for sinks; treat as a failure to retry.
        _ => {
            counters.status_5xx.fetch_add(1, Ordering::Relaxed);
            Attempt::Retry
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped_and_scaled() {
        let mut rng = Rng::new(3);
        for retry in 1..20 {
            let ceiling = (2f64.powi(retry as i32 - 1)).min(600.0) * 0.01;
            let wait = backoff(retry, 0.01, &mut rng).as_secs_f64();
            assert!(
                wait >= ceiling * 0.5 - 1e-9 && wait <= ceiling + 1e-9,
                "{retry}: {wait}"
            );
        }
    }
}
