//! Issue 12 against a running `twilio-events serve`, over real HTTP: what a captured request,
//! a tenant's token or a rotated secret can and cannot do. And `verify` judging the same
//! account bindings. Each attack is first shown to verify as Twilio signed it.

use super::helpers::{Server, data_dir, dump, post, start_serve_with};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

const ACCOUNT_A: &str = "AC0000000000000000000000000000000a";
const SUBACCOUNT_OF_A: &str = "AC000000000000000000000000000000a1";
const ACCOUNT_B: &str = "AC0000000000000000000000000000000b";
const TOKEN: &str = "hardening-token";

/// A request signed as Twilio signs it for `path` on this server.
struct Signed {
    target: String,
    signature: String,
    body: Vec<u8>,
}

fn signed(server: &Server, token: &str, path: &str, body: &[u8], encoding: BodyEncoding) -> Signed {
    let origin = format!("http://127.0.0.1:{}", server.port);
    let delivery = sign(
        &SigningKey::AuthToken(token.into()),
        &format!("{origin}{path}"),
        body,
        encoding,
    );
    Signed {
        target: delivery.url[origin.len()..].to_owned(),
        signature: delivery.signature,
        body: body.to_vec(),
    }
}

fn deliver(server: &Server, request: &Signed) -> (u16, String) {
    let content_type = if request.target.starts_with("/twilio/usage-triggers") {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    post(
        server,
        &request.target,
        content_type,
        &request.signature,
        &request.body,
    )
}

fn event_of(account: &str, id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/{account}/Messages/SM{id}.json","id":"{id}","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{id}","accountSid":"{account}","messageStatus":"SENT"}}}}"#
    )
}

fn batch(events: &[String]) -> Vec<u8> {
    format!("[{}]", events.join(",")).into_bytes()
}

/// The quarantine's lines (none when the file was never created).
fn quarantined(data_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(data_dir.join("quarantine.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The string a form signature covers: the URL, then each parameter's name and value, sorted.
fn form_signed_string(url: &str, body: &[u8]) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    params
        .into_iter()
        .fold(url.to_owned(), |s, (k, v)| s + &k + &v)
}

#[test]
fn serve_refuses_an_event_streams_signature_replayed_as_a_form() {
    let dir = data_dir("replay-as-form");
    let server = start_serve_with(&dir, &["--auth-token", TOKEN]);
    // GIVEN a captured delivery: its signature covers "<url>?bodySHA256=<hash>"
    let captured = signed(
        &server,
        TOKEN,
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZ1")]),
        BodyEncoding::Json,
    );
    // WHEN it is replayed without the query, as a form whose one parameter name is the query
    let query = captured.target.split_once('?').unwrap().1;
    let name: String = form_urlencoded::byte_serialize(format!("?{query}").as_bytes()).collect();
    let body = format!("{name}=").into_bytes();
    let url = format!("http://127.0.0.1:{}/twilio/events", server.port);
    assert_eq!(
        form_signed_string(&url, &body),
        format!("{url}?{query}"),
        "the form spells exactly what Twilio signed"
    );
    let (status, answer) = post(
        &server,
        "/twilio/events",
        "application/x-www-form-urlencoded",
        &captured.signature,
        &body,
    );
    // THEN 415 (the old server verified it as a form, quarantined it and answered 200)
    assert_eq!(status, 415, "{answer}");
    // AND sent as JSON it has no bodySHA256: refused too
    let (status, _) = post(
        &server,
        "/twilio/events",
        "application/json",
        &captured.signature,
        &body,
    );
    assert_eq!(status, 503);
    drop(server);
    assert!(quarantined(&dir).is_empty(), "{:?}", quarantined(&dir));
    assert!(dump(&dir).is_empty());
}

const USAGE_TRIGGER_FORM: &str = "AccountSid=AC0000000000000000000000000000000a&CurrentValue=1003&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&IdempotencyToken=4e33&Recurring=daily&TriggerBy=count&TriggerValue=1000&UsageCategory=sms&UsageTriggerSid=UT00000000000000000000000000000001";

#[test]
fn serve_refuses_a_re_split_usage_trigger_callback() {
    let dir = data_dir("resplit");
    let server = start_serve_with(&dir, &["--auth-token", TOKEN]);
    let genuine = signed(
        &server,
        TOKEN,
        "/twilio/usage-triggers",
        USAGE_TRIGGER_FORM.as_bytes(),
        BodyEncoding::Form,
    );
    assert_eq!(deliver(&server, &genuine).0, 200);
    // GIVEN the same callback re-split: DateFired's name takes the start of its value, so the
    // signed string, and the signature, stay the same
    let resplit = USAGE_TRIGGER_FORM.replace("DateFired=Fri%2C", "DateFiredFri=%2C");
    let url = format!("http://127.0.0.1:{}/twilio/usage-triggers", server.port);
    assert_eq!(
        form_signed_string(&url, resplit.as_bytes()),
        form_signed_string(&url, USAGE_TRIGGER_FORM.as_bytes())
    );
    // WHEN it is replayed with the genuine signature
    let (status, answer) = deliver(
        &server,
        &Signed {
            body: resplit.into_bytes(),
            ..genuine
        },
    );
    // THEN it is refused, naming the field (the old server took it as a new reading)
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("DateFired"), "{answer}");
    drop(server);
    assert_eq!(dump(&dir).len(), 1, "the genuine callback only");
    assert!(quarantined(&dir).is_empty());
}

fn write_secrets(path: &Path, document: &str) {
    // Written whole, then renamed, as an editor or a deploy would.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, document).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tenants_document(token_a: &str) -> String {
    format!(
        r#"{{"accounts": {{
            "{ACCOUNT_A}": {{"auth_tokens": ["{token_a}"], "subaccounts": ["{SUBACCOUNT_OF_A}"]}},
            "{ACCOUNT_B}": {{"auth_tokens": ["tok-b"]}}
        }}}}"#
    )
}

#[test]
fn serve_binds_each_account_to_its_secrets_from_a_secrets_file() {
    let dir = data_dir("tenants-file");
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    write_secrets(&secrets, &tenants_document("tok-a"));
    let server = start_serve_with(&dir, &["--secrets-file", secrets.to_str().unwrap()]);
    // A's token, A's and its listed subaccount's events: accepted.
    let own = signed(
        &server,
        "tok-a",
        "/twilio/events",
        &batch(&[
            event_of(ACCOUNT_A, "EZa1"),
            event_of(SUBACCOUNT_OF_A, "EZs1"),
        ]),
        BodyEncoding::Json,
    );
    assert_eq!(deliver(&server, &own).0, 200);
    // WHEN A's token signs events claiming account B
    let forged = signed(
        &server,
        "tok-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZa2"), event_of(ACCOUNT_B, "EZb1")]),
        BodyEncoding::Json,
    );
    // THEN the delivery is refused whole (the old server merged every token into one list)
    assert_eq!(deliver(&server, &forged).0, 503);
    // AND B's token signs B's events
    let b = signed(
        &server,
        "tok-b",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_B, "EZb1")]),
        BodyEncoding::Json,
    );
    assert_eq!(deliver(&server, &b).0, 200);
    drop(server);
    let stream = dump(&dir);
    assert_eq!(stream.len(), 3, "{stream:?}");
    assert!(
        !stream.iter().any(|e| e.contains("EZa2")),
        "none of the refused delivery"
    );
}

#[test]
fn serve_binds_an_account_token_given_on_the_command_line() {
    let dir = data_dir("account-token");
    let server = start_serve_with(&dir, &["--account-token", &format!("{ACCOUNT_A}=tok-a")]);
    let own = signed(
        &server,
        "tok-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZa1")]),
        BodyEncoding::Json,
    );
    assert_eq!(deliver(&server, &own).0, 200);
    let forged = signed(
        &server,
        "tok-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_B, "EZb1")]),
        BodyEncoding::Json,
    );
    assert_eq!(deliver(&server, &forged).0, 503);
    drop(server);
    assert_eq!(dump(&dir).len(), 1);
}

#[test]
fn serve_follows_a_token_rotation_in_its_secrets_file_with_nothing_lost() {
    let dir = data_dir("rotation");
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    write_secrets(&secrets, &tenants_document("old-a"));
    let server = start_serve_with(&dir, &["--secrets-file", secrets.to_str().unwrap()]);
    let before = signed(
        &server,
        "old-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZ1")]),
        BodyEncoding::Json,
    );
    assert_eq!(deliver(&server, &before).0, 200);
    // WHEN the token is rotated: Twilio signs with the new one, then the file is updated
    let after = signed(
        &server,
        "new-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZ2")]),
        BodyEncoding::Json,
    );
    assert_eq!(
        deliver(&server, &after).0,
        503,
        "not learnt yet: Twilio retries"
    );
    write_secrets(&secrets, &tenants_document("new-a"));
    // THEN Twilio's retries get in within seconds, without a restart (the old server kept
    // answering 503 until restarted)
    let until = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    while Instant::now() < until {
        status = deliver(&server, &after).0;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status, 200, "the new token was not learnt");
    // AND a file that cannot be used keeps the secrets in use
    write_secrets(&secrets, "{broken");
    std::thread::sleep(Duration::from_millis(1500));
    let later = signed(
        &server,
        "new-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZ3")]),
        BodyEncoding::Json,
    );
    assert_eq!(deliver(&server, &later).0, 200);
    drop(server);
    assert_eq!(dump(&dir).len(), 3, "every event once");
}

#[test]
fn serve_keeps_one_quarantined_copy_of_a_retried_unreadable_delivery() {
    let dir = data_dir("quarantine-once");
    let server = start_serve_with(&dir, &["--auth-token", TOKEN]);
    let garbage = signed(
        &server,
        TOKEN,
        "/twilio/events",
        b"{not json",
        BodyEncoding::Json,
    );
    // WHEN Twilio delivers the same unreadable delivery three times
    for _ in 0..3 {
        assert_eq!(deliver(&server, &garbage).0, 200);
    }
    drop(server);
    // THEN the quarantine holds it once (the old server appended a copy per retry)
    let lines = quarantined(&dir);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("{not json"));
}

fn verify(url: &str, signature: &str, body: &[u8], secrets: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args([
            "verify",
            "--url",
            url,
            "--signature",
            signature,
            "--body-file",
            "-",
        ])
        .args(secrets)
        .env_remove("TWILIO_AUTH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn verify_says_when_a_secret_signs_for_an_account_it_may_not() {
    let url = "https://hooks.example.com/twilio/events";
    let body = batch(&[event_of(ACCOUNT_B, "EZb1")]);
    let delivery = sign(
        &SigningKey::AuthToken("tok-a".into()),
        url,
        &body,
        BodyEncoding::Json,
    );
    let bound = format!("{ACCOUNT_A}=tok-a");
    // A's token, bound to A, signing B's event: the signature holds, the binding does not.
    let (code, out) = verify(
        &delivery.url,
        &delivery.signature,
        &body,
        &["--account-token", &bound],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("of {ACCOUNT_A}")), "{out}");
    assert!(
        out.contains(&format!("belongs to account {ACCOUNT_B}")),
        "{out}"
    );
    // The same token unbound (--auth-token): valid, as before.
    let (code, out) = verify(
        &delivery.url,
        &delivery.signature,
        &body,
        &["--auth-token", "tok-a"],
    );
    assert_eq!(code, Some(0), "{out}");
    // A secrets file listing B as A's subaccount: valid.
    let dir = data_dir("verify-file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secrets.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"accounts": {{"{ACCOUNT_A}": {{"auth_tokens": ["tok-a"], "subaccounts": ["{ACCOUNT_B}"]}}}}}}"#
        ),
    )
    .unwrap();
    let (code, out) = verify(
        &delivery.url,
        &delivery.signature,
        &body,
        &["--secrets-file", file.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("valid: signed with auth token #1 of"), "{out}");
    // A secrets file that cannot be read is a usage error that names the flag.
    let (code, out) = verify(
        &delivery.url,
        &delivery.signature,
        &body,
        &["--secrets-file", dir.join("missing.json").to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--secrets-file"), "{out}");
}
