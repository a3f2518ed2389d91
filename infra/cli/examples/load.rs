//! A load generator for `twilio-events serve`: unique deliveries signed as Twilio signs them,
//! sent over keep-alive connections by `--concurrency` workers; prints one JSON report with the
//! throughput and latency percentiles. Used by infra/bench/serve_load.sh.
//!
//!     cargo run --release -p twilio-events-cli --example load -- \
//!         --url http://127.0.0.1:3000 --token T --requests 50000 --concurrency 64

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

struct Args {
    url: String,
    token: String,
    requests: usize,
    concurrency: usize,
    events_per_delivery: usize,
}

fn args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:3000".into(),
        token: String::new(),
        requests: 10_000,
        concurrency: 64,
        events_per_delivery: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value,
            "--token" => args.token = value,
            "--requests" => args.requests = value.parse().expect("--requests N"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency N"),
            "--events-per-delivery" => {
                args.events_per_delivery = value.parse().expect("--events-per-delivery N")
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.token.is_empty(), "--token is required");
    args
}

fn event(run: u128, i: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","source":"/2010-04-01/Accounts/AC0a1b2c3d4e5f60718293a4b5c6d7e8f9/Messages/SM{i:032x}.json","id":"EZ{run:016x}{i:016x}","dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/7","datacontenttype":"application/json","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{i:032x}","timestamp":"2026-11-26T10:00:00.000Z","accountSid":"AC0a1b2c3d4e5f60718293a4b5c6d7e8f9","eventName":"com.twilio.messaging.message.delivered","apiVersion":"2010-04-01","from":"+12065550100","to":"+14155550199","messageStatus":"DELIVERED","numberOfSegments":1}}}}"#
    )
}

struct Prepared {
    url: String,
    signature: String,
    body: bytes::Bytes,
}

#[tokio::main]
async fn main() {
    let args = args();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let target = format!("{}/twilio/events", args.url.trim_end_matches('/'));
    let key = SigningKey::AuthToken(args.token.as_str().into());
    let prepared: Vec<Prepared> = (0..args.requests)
        .map(|r| {
            let events: Vec<String> = (0..args.events_per_delivery)
                .map(|e| event(run, r * args.events_per_delivery + e))
                .collect();
            let body = format!("[{}]", events.join(",")).into_bytes();
            let signed = sign(&key, &target, &body, BodyEncoding::Json);
            Prepared {
                url: signed.url,
                signature: signed.signature,
                body: body.into(),
            }
        })
        .collect();
    let prepared = Arc::new(prepared);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, prepared, next) =
                (client.clone(), Arc::clone(&prepared), Arc::clone(&next));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut ok, mut other, mut errors) = (0usize, 0usize, 0usize);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = prepared.get(i) else { break };
                    let sent = Instant::now();
                    let result = client
                        .post(&p.url)
                        .header("Content-Type", "application/json")
                        .header("X-Twilio-Signature", &p.signature)
                        .body(p.body.clone())
                        .send()
                        .await;
                    match result {
                        Ok(response) if response.status() == 200 => {
                            let _ = response.bytes().await;
                            ok += 1;
                        }
                        Ok(response) => {
                            let _ = response.bytes().await;
                            other += 1;
                        }
                        Err(_) => errors += 1,
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, ok, other, errors)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.requests);
    let (mut ok, mut other, mut errors) = (0, 0, 0);
    for worker in workers {
        let (l, o, n, e) = worker.await.unwrap();
        latencies.extend(l);
        ok += o;
        other += n;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": args.requests,
            "events_per_delivery": args.events_per_delivery,
            "concurrency": args.concurrency,
            "ok_200": ok,
            "non_200": other,
            "errors": errors,
            "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
            "deliveries_per_s": (args.requests as f64 / elapsed).round(),
            "p50_ms": (pct(0.50) * 100.0).round() / 100.0,
            "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
            "max_ms": (pct(1.0) * 100.0).round() / 100.0,
        })
    );
}
