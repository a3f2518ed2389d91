//! The classic webhook routes (`/twilio/message-status`, `/twilio/call-status`,
//! `/twilio/inbound-messages`) of a running `serve`, over real HTTP, with requests signed by
//! Twilio's official Python library (tests/fixtures/twilio/classic/classic-callbacks.json): each
//! becomes the Event Streams event of the same fact, a changed or re-split one is refused, and
//! the same fact from both sources is one event in the stream.

use super::helpers::{Server, data_dir, dump, lines_once_consumed, post, start_serve};
use serde_json::Value;
use std::path::Path;
use twilio_events::signature::{Algorithm, BodyEncoding, SigningKey, compute_signature, sign};

const FORM: &str = "application/x-www-form-urlencoded";

/// The signed cases and their token.
struct Fixtures {
    token: String,
    cases: Vec<Value>,
}

fn fixtures() -> Fixtures {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/twilio/classic/classic-callbacks.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Fixtures {
        token: all["auth_token"].as_str().unwrap().to_owned(),
        cases: all["cases"].as_array().unwrap().clone(),
    }
}

fn text<'v>(case: &'v Value, field: &str) -> &'v str {
    case[field].as_str().unwrap_or_default()
}

/// The base URL the fixtures were signed for (the route's URL without the route).
fn public_url(case: &Value) -> String {
    text(case, "url")
        .strip_suffix(text(case, "route"))
        .unwrap()
        .to_owned()
}

fn serve_for(fixtures: &Fixtures, name: &str) -> (Server, std::path::PathBuf) {
    let dir = data_dir(name);
    let public = public_url(&fixtures.cases[0]);
    let server = start_serve(&fixtures.token, &dir, &["--public-url", &public]);
    (server, dir)
}

fn deliver(server: &Server, case: &Value, body: &str) -> (u16, String) {
    post(
        server,
        text(case, "route"),
        FORM,
        text(case, "signature"),
        body.as_bytes(),
    )
}

/// `data` fields of each Event Streams schema, per tests/fixtures/twilio/classic/
/// event-streams-schemas.md: (required, allowed).
fn schema_fields(event_type: &str) -> (&'static [&'static str], &'static [&'static str]) {
    if event_type.starts_with("com.twilio.messaging.message.") {
        (
            &[
                "messageSid",
                "timestamp",
                "accountSid",
                "eventName",
                "apiVersion",
                "from",
                "to",
                "messageStatus",
            ],
            &[
                "messagingServiceSid",
                "errorCode",
                "body",
                "statusCallBackUrl",
                "tags",
                "mnc",
                "mcc",
                "rawDlrDoneDate",
                "numberOfSegments",
                "dateUpdated",
            ],
        )
    } else if event_type == "com.twilio.messaging.inbound-message.received" {
        (
            &["messageSid", "timestamp"],
            &[
                "accountSid",
                "eventName",
                "from",
                "to",
                "body",
                "numMedia",
                "numSegments",
                "messagingServiceSid",
                "fromCity",
                "fromState",
                "fromZip",
                "fromCountry",
                "toCity",
                "toState",
                "toZip",
                "toCountry",
                "mcc",
                "mnc",
                "optOutType",
                "recipients",
                "referralCtwaClid",
            ],
        )
    } else {
        (
            &["sid", "request"],
            &["requestDateCreated", "timestamp", "eventSid", "response"],
        )
    }
}

fn assert_shape(event: &Value) {
    let event_type = event["type"].as_str().unwrap();
    let data = event["data"].as_object().unwrap();
    let (required, optional) = schema_fields(event_type);
    for field in required {
        assert!(data.contains_key(*field), "{event_type}: no data.{field}");
    }
    for field in data.keys() {
        assert!(
            required.contains(&field.as_str()) || optional.contains(&field.as_str()),
            "{event_type}: data.{field} is not in the Event Streams schema"
        );
    }
    // The types the schemas give.
    for integer in ["errorCode", "numMedia", "numSegments", "numberOfSegments"] {
        if let Some(value) = data.get(integer) {
            assert!(value.is_u64(), "{event_type}: data.{integer} = {value}");
        }
    }
    if let Some(status) = data.get("messageStatus") {
        let status = status.as_str().unwrap();
        assert_eq!(status, status.to_uppercase());
    }
    if event_type.starts_with("com.twilio.voice.") {
        assert_eq!(data["request"]["method"], "POST");
        assert!(data["request"]["parameters"]["CallSid"].is_string());
    }
}

#[test]
fn each_callback_signed_by_twilios_library_becomes_the_event_streams_event_of_its_fact() {
    // GIVEN serve at the URL the fixtures were signed for
    let fixtures = fixtures();
    let (server, dir) = serve_for(&fixtures, "classic-all");

    // WHEN each signed callback is posted to its route
    for case in &fixtures.cases {
        let (status, answer) = deliver(&server, case, text(case, "body"));
        // THEN it is accepted; an inbound message is answered with empty TwiML (no reply)
        assert_eq!(status, 200, "{}: {answer}", text(case, "name"));
        if text(case, "route") == "/twilio/inbound-messages" {
            assert!(answer.contains("<Response/>"), "{answer}");
        }
    }
    drop(server);

    // AND each is in the stream once, as its Event Streams type, in that schema's shape, with
    // the webhook it came from and its original parameters
    let stream: Vec<Value> = dump(&dir)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(stream.len(), fixtures.cases.len());
    for case in &fixtures.cases {
        let expect = &case["expect"];
        let sid = expect["sid"].as_str().unwrap();
        let matching: Vec<&Value> = stream
            .iter()
            .filter(|e| e["type"] == expect["type"] && e.to_string().contains(sid))
            .filter(|e| e["twiliowebhookform"].as_str() == Some(text(case, "body")))
            .collect();
        assert_eq!(matching.len(), 1, "{}", text(case, "name"));
        let event = matching[0];
        assert!(event["id"].as_str().unwrap().starts_with("classic-"));
        assert!(
            event["twiliowebhook"]
                .as_str()
                .unwrap()
                .ends_with("-webhook")
                || event["twiliowebhook"]
                    .as_str()
                    .unwrap()
                    .ends_with("-callback")
        );
        assert_shape(event);
    }
}

/// `body` with the parameter `name=sid` re-split as `name` + the SID's two letters `=` the rest.
fn resplit_parameter(body: &str, name: &str, sid: &str) -> String {
    body.split('&')
        .map(|pair| {
            if pair == format!("{name}={sid}") {
                format!("{name}{}={}", &sid[..2], &sid[2..])
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn a_callback_changed_in_any_byte_or_re_split_is_refused_and_nothing_is_stored() {
    let fixtures = fixtures();
    let (server, dir) = serve_for(&fixtures, "classic-refused");
    for case in &fixtures.cases {
        let body = text(case, "body");
        // GIVEN the callback changed in one byte (each byte in turn),
        // or its signature changed in one character
        let mut changed_bodies = Vec::new();
        for i in 0..body.len() {
            let mut changed = body.as_bytes().to_vec();
            changed[i] ^= 0x01;
            changed_bodies.push(String::from_utf8_lossy(&changed).into_owned());
        }
        // WHEN each is posted with the genuine signature, THEN each is refused
        for changed in &changed_bodies {
            let (status, answer) = deliver(&server, case, changed);
            assert_ne!(status, 200, "{}: {changed}: {answer}", text(case, "name"));
        }
        let signature = text(case, "signature");
        for i in 0..signature.len() - 1 {
            let mut forged = signature.as_bytes().to_vec();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let (status, _) = post(
                &server,
                text(case, "route"),
                FORM,
                std::str::from_utf8(&forged).unwrap(),
                body.as_bytes(),
            );
            assert_ne!(status, 200, "{}: signature byte {i}", text(case, "name"));
        }

        // GIVEN it re-split: the SID parameter's name takes the SID's two letters, so the
        // string Twilio signed (URL, then names and values, sorted) is unchanged
        let (name, sid) = if text(case, "route") == "/twilio/call-status" {
            ("CallSid", case["expect"]["sid"].as_str().unwrap())
        } else {
            ("MessageSid", case["expect"]["sid"].as_str().unwrap())
        };
        let resplit = resplit_parameter(body, name, sid);
        assert_ne!(resplit, body);
        assert_eq!(
            compute_signature(
                Algorithm::HmacSha1,
                fixtures.token.as_bytes(),
                text(case, "url"),
                Some(resplit.as_bytes()),
            ),
            text(case, "signature"),
            "{}: the re-split keeps the signature",
            text(case, "name")
        );
        // WHEN posted with the genuine signature, THEN it is refused as unreadable, naming
        // the parameter, never taken as a new event
        let (status, answer) = deliver(&server, case, &resplit);
        assert_eq!(status, 400, "{}: {answer}", text(case, "name"));
        assert!(answer.contains(name), "{answer}");
    }
    drop(server);
    assert!(dump(&dir).is_empty());
}

#[test]
fn the_same_fact_from_event_streams_and_from_a_status_callback_is_one_event() {
    // GIVEN a delivered status callback, and the Event Streams event of the same fact
    let fixtures = fixtures();
    let (server, dir) = serve_for(&fixtures, "classic-both");
    let callback = fixtures
        .cases
        .iter()
        .find(|c| text(c, "name") == "message-delivered")
        .unwrap();
    let sid = callback["expect"]["sid"].as_str().unwrap();
    let account = callback["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "AccountSid")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    let event = format!(
        r#"[{{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","source":"/2010-04-01/Accounts/{account}/Messages/{sid}.json","id":"EZ00000000000000000000000000000e51","time":"2026-11-30T10:00:00.000Z","data":{{"messageSid":"{sid}","accountSid":"{account}","messageStatus":"DELIVERED"}}}}]"#
    );
    let public = public_url(callback);
    let signed = sign(
        &SigningKey::AuthToken(fixtures.token.as_str().into()),
        &format!("{public}/twilio/events"),
        event.as_bytes(),
        BodyEncoding::Json,
    );
    let target = signed.url[public.len()..].to_owned();

    // WHEN both arrive (Event Streams first, then the callback, then Twilio retries each)
    for _ in 0..2 {
        let (status, answer) = post(
            &server,
            &target,
            "application/json",
            &signed.signature,
            event.as_bytes(),
        );
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = deliver(&server, callback, text(callback, "body"));
        assert_eq!(status, 200, "{answer}");
    }
    drop(server);

    // THEN the stream holds the fact once: the Event Streams event, which came first
    let stream = dump(&dir);
    assert_eq!(stream.len(), 1, "{stream:?}");
    assert!(stream[0].contains("EZ00000000000000000000000000000e51"));
}

#[test]
fn parse_reads_each_classic_callback_as_its_event_streams_event() {
    let fixtures = fixtures();
    for case in &fixtures.cases {
        // WHEN a callback body is given to `parse` (the callback told by its parameters)
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_twilio-events"))
            .args(["parse", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text(case, "body").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // THEN it prints the normalised event's summary, without phone numbers or bodies
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            text(case, "name"),
            String::from_utf8_lossy(&out.stderr)
        );
        let line: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            line["type"],
            case["expect"]["type"],
            "{}",
            text(case, "name")
        );
        assert_eq!(line["resource"], case["expect"]["sid"]);
        assert!(
            !stdout.contains("+1206555") && !stdout.contains("4821"),
            "{stdout}"
        );
    }
}

/// Runs `simulate --classic` against `server`, reading its stream; returns the JSON report.
fn simulate_mixed(server: &Server, token: &str, dir: &Path) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["simulate", "--auth-token", token, "--json", "--quiet"])
        .args(["--seed", "7", "--events", "600", "--classic", "0.5"])
        .args(["--duplicates", "0.10", "--reorder", "0.30", "--rate", "max"])
        .args(["--concurrency", "16", "--retry-scale", "0.001"])
        .args(["--url", &format!("http://127.0.0.1:{}", server.port)])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{report}");
    report
}

/// Message SIDs with a `sent` status in the stream.
fn sent_messages(stream: &[Value]) -> std::collections::BTreeSet<String> {
    stream
        .iter()
        .filter(|e| e["type"] == "com.twilio.messaging.message.sent")
        .map(|e| e["data"]["messageSid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn mixed_traffic_moves_the_crm_once_per_forward_step_and_counts_each_send_once() {
    const TOKEN: &str = "classic-mixed-token";
    // GIVEN serve, and traffic where half the messages and calls also send status callbacks,
    // with duplicates and disorder
    let dir = data_dir("classic-mixed");
    let server = start_serve(TOKEN, &dir, &[]);
    // WHEN it is delivered
    let report = simulate_mixed(&server, TOKEN, &dir);
    // THEN every fact is in the stream once, from whichever source came first
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert!(
        report["by_kind"]["message-callback"].as_u64().unwrap() > 50,
        "{report}"
    );
    assert!(
        report["by_kind"]["call-callback"].as_u64().unwrap() > 10,
        "{report}"
    );
    assert!(report["facts"].as_u64().unwrap() < report["events"].as_u64().unwrap());
    let crm = lines_once_consumed(&dir, "crm-sync", "crm.jsonl");
    drop(server);
    let stream: Vec<Value> = dump(&dir)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stream.len() as u64, report["in_stream"].as_u64().unwrap());
    let from_callbacks = stream
        .iter()
        .filter(|e| e["twiliowebhook"].is_string())
        .count();
    assert!(from_callbacks > 0, "some facts came first as callbacks");

    // AND the CRM took one write per forward move: per resource, ranks only go up, no status
    // twice, and it ends at the resource's furthest status in the stream
    let mut writes: std::collections::BTreeMap<String, Vec<(u64, String)>> = Default::default();
    for update in &crm {
        writes
            .entry(update["sid"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                update["rank"].as_u64().unwrap(),
                update["status"].as_str().unwrap().to_owned(),
            ));
    }
    assert!(writes.len() > 40, "{}", writes.len());
    for (sid, moves) in &writes {
        assert!(
            moves.windows(2).all(|w| w[0].0 < w[1].0),
            "{sid} went back or stood still: {moves:?}"
        );
        let furthest = stream
            .iter()
            .filter(|e| e.to_string().contains(sid.as_str()))
            .count();
        assert!(moves.len() <= furthest, "{sid}: {moves:?}");
    }

    // GIVEN the same traffic (same seed) to a fresh serve counting sends against two quotas:
    // exactly the number of messages sent, and one more
    let sent = sent_messages(&stream).len();
    assert!(sent > 30, "{sent}");
    let quotas = dir.with_extension("quotas.json");
    std::fs::write(
        &quotas,
        serde_json::json!({"quotas": [
            {"name": "sends-exact", "counts": "messages", "window": "rolling-24h", "limit": sent, "thresholds": [1.0]},
            {"name": "sends-one-more", "counts": "messages", "window": "rolling-24h", "limit": sent + 1, "thresholds": [1.0]}
        ]})
        .to_string(),
    )
    .unwrap();
    let second = data_dir("classic-mixed-quota");
    let server = start_serve(TOKEN, &second, &["--quotas", quotas.to_str().unwrap()]);
    let report = simulate_mixed(&server, TOKEN, &second);
    assert_eq!(report["duplicated"], 0, "{report}");
    // THEN the exact quota is reached with use = the sends, and the other never is: no send
    // was counted twice, though half came from both sources
    let alerts = lines_once_consumed(&second, "quota-alert", "alerts.jsonl");
    drop(server);
    assert_eq!(
        sent_messages(
            &dump(&second)
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        )
        .len(),
        sent
    );
    let exact: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["quota"] == "sends-exact")
        .collect();
    assert_eq!(exact.len(), 1, "{alerts:?}");
    assert_eq!(exact[0]["used"].as_f64(), Some(sent as f64));
    assert!(
        !alerts.iter().any(|a| a["quota"] == "sends-one-more"),
        "{alerts:?}"
    );
}
