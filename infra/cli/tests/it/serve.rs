//! `twilio-events serve` as a user runs it: a real process, real HTTP, requests signed as
//! Twilio signs them, the embedded store on disk across a restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Command;
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

const TOKEN: &str = "serve-test-token";

use super::helpers::{self, Server, data_dir, dump};

fn start(data_dir: &Path, extra: &[&str]) -> Server {
    helpers::start_serve(TOKEN, data_dir, extra)
}

/// POSTs a body as Twilio would (signed for the URL serve prints), returns status and body.
fn deliver(server: &Server, path: &str, body: &[u8], encoding: BodyEncoding) -> (u16, String) {
    post(server, path, body, encoding, TOKEN)
}

fn post(
    server: &Server,
    path: &str,
    body: &[u8],
    encoding: BodyEncoding,
    token: &str,
) -> (u16, String) {
    let url = format!("http://127.0.0.1:{}{path}", server.port);
    let signed = sign(&SigningKey::AuthToken(token.into()), &url, body, encoding);
    let target = signed
        .url
        .split_once(&format!("127.0.0.1:{}", server.port))
        .unwrap()
        .1;
    let content_type = match encoding {
        BodyEncoding::Json => "application/json",
        BodyEncoding::Form => "application/x-www-form-urlencoded",
    };
    helpers::post(server, target, content_type, &signed.signature, body)
}

fn event(i: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","source":"/2010-04-01/Accounts/AC5/Messages/SM{i:032}.json","id":"EZ{i:032}","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{i:032}","accountSid":"AC5","messageStatus":"DELIVERED"}}}}"#
    )
}

#[test]
fn serve_accepts_drops_duplicates_and_keeps_its_store_across_a_restart() {
    let dir = data_dir("restart");
    let events: Vec<String> = (0..5).map(event).collect();
    {
        // GIVEN serve on a fresh data directory
        let server = start(&dir, &[]);
        // WHEN three deliveries arrive, one of them twice
        for e in &events[..3] {
            let (status, body) = deliver(
                &server,
                "/twilio/events",
                format!("[{e}]").as_bytes(),
                BodyEncoding::Json,
            );
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = deliver(
            &server,
            "/twilio/events",
            format!("[{}]", events[0]).as_bytes(),
            BodyEncoding::Json,
        );
        assert_eq!(status, 200);
        assert!(body.contains("\"duplicates\":1"), "{body}");
        // AND a forged one
        let (status, _) = post(
            &server,
            "/twilio/events",
            format!("[{}]", events[4]).as_bytes(),
            BodyEncoding::Json,
            "wrong",
        );
        assert_eq!(status, 503);
    }
    // THEN the stream holds each accepted event once, byte for byte
    assert_eq!(dump(&dir), events[..3].to_vec());
    // WHEN serve restarts on the same directory
    let server = start(&dir, &[]);
    // THEN a redelivered event is still a duplicate, and new events are appended
    let (status, body) = deliver(
        &server,
        "/twilio/events",
        format!("[{},{}]", events[1], events[3]).as_bytes(),
        BodyEncoding::Json,
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("\"accepted\":1") && body.contains("\"duplicates\":1"),
        "{body}"
    );
    drop(server);
    assert_eq!(dump(&dir), events[..4].to_vec());
}

#[test]
fn serve_turns_usage_trigger_callbacks_into_events_and_quarantines_garbage() {
    let dir = data_dir("usage");
    let server = start(&dir, &[]);
    let form = b"AccountSid=AC00000000000000000000000000000005&UsageTriggerSid=UT00000000000000000000000000000005&UsageCategory=sms&TriggerBy=count&TriggerValue=100&CurrentValue=101&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&IdempotencyToken=t5";
    assert_eq!(
        deliver(&server, "/twilio/usage-triggers", form, BodyEncoding::Form).0,
        200
    );
    assert!(
        deliver(&server, "/twilio/usage-triggers", form, BodyEncoding::Form)
            .1
            .contains("\"duplicates\":1")
    );
    let (status, _) = deliver(&server, "/twilio/events", b"{not json", BodyEncoding::Json);
    assert_eq!(
        status, 200,
        "a valid signature over garbage: kept, acknowledged"
    );
    drop(server);
    let stream = dump(&dir);
    assert_eq!(stream.len(), 1);
    assert!(
        stream[0].contains("\"type\":\"io.twilio-events.usage-trigger.fired\""),
        "{}",
        stream[0]
    );
    let quarantine = std::fs::read_to_string(dir.join("quarantine.jsonl")).unwrap();
    assert!(quarantine.contains("{not json"), "{quarantine}");
}

/// Delivers one event as a one-element array; the HTTP status.
fn deliver_event(server: &Server, event: &str) -> u16 {
    deliver(
        server,
        "/twilio/events",
        format!("[{event}]").as_bytes(),
        BodyEncoding::Json,
    )
    .0
}

/// Every JSON line of a file the consumers write (`crm.jsonl`, `alerts.jsonl`).
fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    twilio_events::jsonl::JsonLines::<serde_json::Value>::new(path).read_all()
}

/// Polls until `check` holds (the consumers run beside ingest, asynchronously).
fn eventually(what: &str, check: impl Fn() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < until {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn status_event(i: usize, sid: usize, status: &str, second: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.{status}","source":"/2010-04-01/Accounts/AC5/Messages/SM{sid:032}.json","id":"EZ{i:032}","time":"2026-11-26T10:00:{second:02}.000Z","data":{{"messageSid":"SM{sid:032}","accountSid":"AC5","messageStatus":"{}","from":"+12065550100","to":"+14155550199"}}}}"#,
        status.to_uppercase()
    )
}

/// Three messages' lifecycles delivered out of order, with a duplicate.
fn out_of_order_lifecycles() -> (Vec<String>, Vec<(String, &'static str)>) {
    let lifecycle = ["queued", "sent", "delivered", "read"];
    let mut events = Vec::new();
    for sid in 0..3 {
        for (step, status) in lifecycle.iter().enumerate() {
            events.push(status_event(sid * 10 + step, sid, status, step));
        }
    }
    // Latest first, then the rest, then a duplicate of an early one.
    events.reverse();
    events.push(events[5].clone());
    let finals = (0..3).map(|sid| (format!("SM{sid:032}"), "read")).collect();
    (events, finals)
}

fn final_statuses(lines: &[serde_json::Value]) -> std::collections::BTreeMap<String, String> {
    lines
        .iter()
        .map(|l| {
            (
                l["sid"].as_str().unwrap_or_default().to_owned(),
                l["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn serve_keeps_crm_status_current_in_crm_jsonl_without_a_crm() {
    let dir = data_dir("crm-file");
    let server = start(&dir, &[]);
    let (events, finals) = out_of_order_lifecycles();
    for e in &events {
        assert_eq!(deliver_event(&server, e), 200);
    }
    let read = || read_lines(&dir.join("crm.jsonl"));
    eventually("crm.jsonl to hold every message", || {
        final_statuses(&read()).len() == 3
    });
    let lines = read();
    // The latest status arrived first: nothing older is ever written after it.
    let expected: std::collections::BTreeMap<String, String> = finals
        .into_iter()
        .map(|(s, st)| (s, st.to_owned()))
        .collect();
    assert_eq!(final_statuses(&lines), expected);
    assert_eq!(
        lines.len(),
        3,
        "one write per forward move, no regression: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["kind"] == "message" && l["event_id"].is_string() && l["rank"].is_number())
    );
}

/// A CRM that answers 204 to every PUT and remembers (path, body).
type CrmCalls = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

fn fake_crm() -> (String, CrmCalls) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            record
                .lock()
                .unwrap()
                .push((path, serde_json::from_slice(&body).unwrap_or_default()));
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

#[test]
fn serve_pushes_status_changes_to_a_crm_url() {
    let (crm_url, seen) = fake_crm();
    let dir = data_dir("crm-url");
    let server = start(&dir, &["--crm-url", &crm_url]);
    let (events, finals) = out_of_order_lifecycles();
    for e in &events {
        assert_eq!(deliver_event(&server, e), 200);
    }
    eventually("the CRM to hear about every message", || {
        seen.lock().unwrap().len() >= 3
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (sid, status) in finals {
        let call = calls
            .iter()
            .find(|(path, _)| path.ends_with(&format!("/messages/{sid}")))
            .expect("a PUT per message");
        assert_eq!(call.1["status"], status);
    }
    assert!(
        !dir.join("crm.jsonl").exists(),
        "with a CRM URL nothing goes to the file"
    );
}

#[test]
fn serve_raises_quota_alerts_with_a_quotas_file() {
    let dir = data_dir("quotas");
    std::fs::create_dir_all(&dir).unwrap();
    let quotas = dir.join("quotas.json");
    std::fs::write(&quotas, r#"{"quotas":[{"name":"sms-daily","counts":"messages","window":"day","limit":10,"thresholds":[0.5,1.0]}]}"#).unwrap();
    let server = start(&dir, &["--quotas", quotas.to_str().unwrap()]);
    for i in 0..12 {
        let e = status_event(500 + i, 500 + i, "sent", i);
        assert_eq!(deliver_event(&server, &e), 200);
    }
    let read = || read_lines(&dir.join("alerts.jsonl"));
    eventually("two alerts", || read().len() >= 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let alerts = read();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for (alert, (threshold, used)) in alerts.iter().zip([(0.5, 5.0), (1.0, 10.0)]) {
        assert_eq!(alert["quota"], "sms-daily");
        assert_eq!(alert["threshold"].as_f64(), Some(threshold));
        assert_eq!(alert["used"].as_f64(), Some(used));
        assert_eq!(alert["limit"].as_f64(), Some(10.0));
        assert_eq!(alert["window_start"], "2026-11-26T00:00:00Z");
        assert!(alert.get("forecast_exhausted_at").is_some());
    }
}

#[test]
fn serve_refuses_a_bad_quotas_file_at_start_naming_the_field() {
    let dir = data_dir("bad-quotas");
    std::fs::create_dir_all(&dir).unwrap();
    let quotas = dir.join("quotas.json");
    std::fs::write(
        &quotas,
        r#"{"quotas":[{"name":"x","counts":"messages","window":"fortnight","limit":10}]}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args([
            "serve",
            "--port",
            "0",
            "--auth-token",
            TOKEN,
            "--quotas",
            quotas.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("quotas[0].window"), "{stderr}");
}

/// Runs `serve` with `extra` until it exits; its exit code and stderr.
fn serve_until_it_exits(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["serve", "--auth-token", TOKEN, "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_exits_2_when_a_flag_cannot_work_and_1_when_its_store_fails() {
    // GIVEN a port another program holds, WHEN serve is asked for it, THEN exit 2, naming the
    // address, the flag to change and the system's reason
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = data_dir("exit-port");
    let (code, stderr) = serve_until_it_exits(&dir, &["--port", &port]);
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        format!("127.0.0.1:{port}"),
        "--port".into(),
        "cause:".into(),
    ] {
        assert!(stderr.contains(&needle), "{needle} missing from {stderr}");
    }

    // GIVEN a timeout that is not a duration, THEN exit 2, naming the flag
    let (code, stderr) = serve_until_it_exits(&dir, &["--port", "0", "--idle-timeout", "soon"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--idle-timeout"), "{stderr}");

    // GIVEN a data directory whose database cannot be opened (a directory in its place),
    // THEN serve fails at run time: exit 1, saying which store and why
    let dir = data_dir("exit-store");
    std::fs::create_dir_all(dir.join("twilio-events.db")).unwrap();
    let (code, stderr) = serve_until_it_exits(&dir, &["--port", "0"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("embedded store"), "{stderr}");
    assert!(stderr.contains("cause:"), "{stderr}");
}
