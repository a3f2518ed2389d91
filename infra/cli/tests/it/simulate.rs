//! `twilio-events simulate` as a user runs it: against a real `serve` process (nothing lost,
//! nothing duplicated in the stream), and against small flaky servers (Twilio's retry and drop
//! rules).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const TOKEN: &str = "simulate-test-token";

use super::helpers::{self, Server, data_dir};

fn start_serve(data_dir: &Path) -> Server {
    helpers::start_serve(TOKEN, data_dir, &[])
}

/// Runs simulate with `--json`; returns its exit code and report.
fn simulate(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .arg("simulate")
        .args(["--auth-token", TOKEN, "--json", "--quiet", "--seed", "42"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn n(report: &serde_json::Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

#[test]
fn against_serve_nothing_is_lost_and_nothing_duplicated_despite_duplicates_and_disorder() {
    // GIVEN serve on a fresh data directory
    let dir = data_dir("serve");
    let server = start_serve(&dir);
    let url = format!("http://127.0.0.1:{}", server.port);
    // WHEN 400 events are delivered with 10% duplicates and 30% reordered
    let (code, report) = simulate(&[
        "--url",
        &url,
        "--events",
        "400",
        "--duplicates",
        "0.10",
        "--reorder",
        "0.30",
        "--rate",
        "max",
        "--concurrency",
        "16",
        "--retry-scale",
        "0.001",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    // THEN every delivery is accepted and the stream holds each event exactly once
    assert_eq!(code, 0, "{report}");
    assert_eq!(n(&report, "events"), 400);
    assert!(n(&report, "duplicates_planned") > 10, "{report}");
    assert!(n(&report, "reordered_planned") > 20, "{report}");
    assert_eq!(n(&report, "accepted"), n(&report, "deliveries"), "{report}");
    assert_eq!(n(&report, "dropped"), 0, "{report}");
    assert_eq!(n(&report, "lost"), 0, "{report}");
    assert_eq!(n(&report, "duplicated"), 0, "{report}");
    assert_eq!(n(&report, "in_stream"), 400, "{report}");
    // AND every kind of traffic was sent, Usage Trigger callbacks included
    for kind in ["message", "call", "ratelimit", "usage-trigger"] {
        assert!(
            report["by_kind"][kind].as_u64().unwrap_or(0) > 0,
            "{kind}: {report}"
        );
    }
    // AND the text report (without --json) is printed and says OK
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args([
            "simulate",
            "--auth-token",
            TOKEN,
            "--quiet",
            "--events",
            "20",
        ])
        .args(["--rate", "max", "--url", &url, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("lost 0, duplicated 0  OK"), "{text}");
}

#[test]
fn with_a_wrong_token_serve_answers_503_and_simulate_retries_then_gives_up() {
    // GIVEN serve that knows another token (it answers 503: Twilio must retry, not drop)
    let dir = data_dir("wrong-token");
    let server = start_serve(&dir);
    let url = format!("http://127.0.0.1:{}", server.port);
    // WHEN simulate signs with the wrong token and a short retry window
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args([
            "simulate",
            "--auth-token",
            "not-the-token",
            "--json",
            "--quiet",
        ])
        .args(["--events", "5", "--reorder", "0", "--duplicates", "0"])
        .args(["--rate", "max", "--retry-scale", "0.001"])
        .args(["--max-retry-time", "300ms", "--url", &url])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    // THEN each delivery was retried, then dropped when the window closed; none accepted
    assert_eq!(n(&report, "accepted"), 0, "{report}");
    assert_eq!(n(&report, "dropped"), 5, "{report}");
    assert_eq!(n(&report, "dropped_retry_window"), 5, "{report}");
    assert!(n(&report, "retried") >= 5, "{report}");
    assert_eq!(n(&report, "never_accepted"), 5, "{report}");
}

/// A tiny HTTP server answering each request with the status `answer(i)` for the i-th request.
fn flaky_server(answer: impl Fn(usize) -> u16 + Send + Sync + 'static) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, answer) = (Arc::clone(&seen), Arc::clone(&answer));
            std::thread::spawn(move || serve_connection(stream, &seen, &*answer));
        }
    });
    (port, count)
}

fn serve_connection(mut stream: TcpStream, seen: &AtomicUsize, answer: &dyn Fn(usize) -> u16) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = answer(seen.fetch_add(1, Ordering::SeqCst));
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn simulate_against(port: u16, events: &str) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}");
    simulate(&[
        "--url",
        &url,
        "--events",
        events,
        "--duplicates",
        "0",
        "--reorder",
        "0",
        "--rate",
        "max",
        "--concurrency",
        "4",
        "--retry-scale",
        "0.001",
    ])
    .1
}

#[test]
fn a_503_for_a_while_is_retried_until_accepted() {
    // GIVEN an endpoint answering 503 to its first 12 requests, then 200
    let (port, requests) = flaky_server(|i| if i < 12 { 503 } else { 200 });
    // WHEN 4 events are delivered
    let report = simulate_against(port, "4");
    // THEN all are accepted in the end, after 12 retries, none dropped
    assert_eq!(n(&report, "accepted"), 4, "{report}");
    assert_eq!(n(&report, "dropped"), 0, "{report}");
    assert_eq!(n(&report, "retried"), 12, "{report}");
    assert_eq!(n(&report, "sent"), 16, "{report}");
    assert_eq!(requests.load(Ordering::SeqCst), 16);
    assert_eq!(report["answers"]["5xx"], 12, "{report}");
}

#[test]
fn a_429_is_retried_like_a_5xx() {
    let (port, _) = flaky_server(|i| if i % 2 == 0 { 429 } else { 200 });
    let report = simulate_against(port, "3");
    assert_eq!(n(&report, "accepted"), 3, "{report}");
    assert!(n(&report, "retried") >= 1, "{report}");
    assert_eq!(n(&report, "dropped"), 0, "{report}");
}

#[test]
fn a_400_drops_the_event_at_once_with_no_retry() {
    // GIVEN an endpoint answering 400 to everything
    let (port, requests) = flaky_server(|_| 400);
    // WHEN 5 events are delivered
    let report = simulate_against(port, "5");
    // THEN each was sent once and dropped, as Twilio drops on any 4xx but 429
    assert_eq!(n(&report, "sent"), 5, "{report}");
    assert_eq!(n(&report, "retried"), 0, "{report}");
    assert_eq!(n(&report, "dropped"), 5, "{report}");
    assert_eq!(n(&report, "dropped_4xx"), 5, "{report}");
    assert_eq!(n(&report, "accepted"), 0, "{report}");
    assert_eq!(requests.load(Ordering::SeqCst), 5);
}

#[test]
fn a_connection_refused_is_retried_until_the_window_closes() {
    // GIVEN nothing listening on a port
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // WHEN 2 events are delivered with a 200 ms retry window
    let url = format!("http://127.0.0.1:{port}");
    let (_, report) = simulate(&[
        "--url",
        &url,
        "--events",
        "2",
        "--rate",
        "max",
        "--retry-scale",
        "0.001",
        "--max-retry-time",
        "200ms",
    ]);
    // THEN they were retried, then dropped; connection errors counted
    assert_eq!(n(&report, "dropped_retry_window"), 2, "{report}");
    assert!(n(&report, "retried") >= 2, "{report}");
    assert!(
        report["answers"]["connection_errors"].as_u64().unwrap_or(0) >= 2,
        "{report}"
    );
}

#[test]
fn a_stream_that_cannot_be_read_exits_1_and_a_bad_flag_exits_2() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_twilio-events"))
            .args(["simulate", "--auth-token", TOKEN, "--quiet", "--url", &url])
            .args(["--events", "1", "--rate", "max", "--retry-scale", "0.001"])
            .args(["--max-retry-time", "50ms"])
            .args(extra)
            .output()
            .unwrap()
    };
    // GIVEN a --data-dir with no stream, WHEN simulate has sent its traffic and reads it back,
    // THEN it fails at runtime: exit 1, saying why
    let dir = data_dir("no-stream");
    let out = run(&["--data-dir", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no twilio-events.db"), "{stderr}");

    // GIVEN a flag that cannot work, THEN exit 2 before sending anything
    let out = run(&["--concurrency", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--concurrency"), "{stderr}");
}
