//! `twilio-events verify | sign | parse`, run as a user runs them.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use twilio_events_testkit::{VectorKey, published_vectors, read_sample, signature_vectors};

fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twilio-events"));
    cmd.env_remove("TWILIO_AUTH_TOKEN");
    cmd
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn verify_gives_every_vector_its_expected_verdict() {
    let mut disagreements = Vec::new();
    for v in signature_vectors() {
        let mut cmd = cli();
        cmd.args([
            "verify",
            "--url",
            &v.url,
            "--content-type",
            &v.content_type,
            "--body-file",
            "-",
        ]);
        cmd.arg("--signature")
            .arg(v.header("X-Twilio-Signature").unwrap());
        if let Some(settings) = v.header("X-Twilio-Webhooks-Signature-Settings") {
            cmd.args(["--signature-settings", settings]);
        }
        for key in &v.keys {
            match key {
                VectorKey::AuthToken { secret } => cmd.args(["--auth-token", secret]),
                VectorKey::SharedKey { id, secret } => {
                    cmd.args(["--shared-key", &format!("{id}={secret}")])
                }
            };
        }
        let out = run(&mut cmd, Some(v.body.as_bytes()));
        let expected = if v.valid { 0 } else { 1 };
        if out.status.code() != Some(expected) {
            disagreements.push(format!(
                "{}: exit {:?}, stdout {}, stderr {}",
                v.name,
                out.status.code(),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        let first_word = if v.valid { "valid:" } else { "invalid:" };
        assert!(
            text(&out.stdout).starts_with(first_word),
            "{}: {}",
            v.name,
            text(&out.stdout)
        );
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn verify_reads_tokens_from_the_environment_and_guesses_the_content_type() {
    for v in published_vectors() {
        let mut cmd = cli();
        cmd.args([
            "verify",
            "--url",
            &v.url,
            "--signature",
            &v.signature,
            "--body-file",
            "-",
        ]);
        cmd.env(
            "TWILIO_AUTH_TOKEN",
            format!("not-this-one,{}", v.auth_token),
        );
        let out = run(&mut cmd, Some(&v.body));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            v.source,
            text(&out.stdout)
        );
        assert!(
            text(&out.stdout).contains("auth token #2"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn verify_says_why_a_signature_fails_and_never_prints_the_secret() {
    let v = &published_vectors()[1];
    let mut cmd = cli();
    cmd.args([
        "verify",
        "--url",
        &v.url,
        "--signature",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "--body-file",
        "-",
        "--auth-token",
        &v.auth_token,
    ]);
    let out = run(&mut cmd, Some(&v.body));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("does not match"), "{stdout}");
    assert!(!stdout.contains(&v.auth_token) && !text(&out.stderr).contains(&v.auth_token));

    let no_hash_url = v.url.split('?').next().unwrap();
    let mut cmd = cli();
    cmd.args([
        "verify",
        "--url",
        no_hash_url,
        "--signature",
        &v.signature,
        "--content-type",
        "application/json",
        "--body-file",
        "-",
        "--auth-token",
        &v.auth_token,
    ]);
    let out = run(&mut cmd, Some(&v.body));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("no bodySHA256"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn usage_and_input_errors_exit_2() {
    let out = run(
        cli()
            .args([
                "verify",
                "--url",
                "https://e.com/x",
                "--signature",
                "x",
                "--body-file",
                "/nonexistent/body",
            ])
            .env("TWILIO_AUTH_TOKEN", "t"),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/body"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        cli().args([
            "verify",
            "--url",
            "https://e.com/x",
            "--signature",
            "x",
            "--body-file",
            "-",
        ]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--auth-token"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cli().args(["verify", "--url"]), None);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        cli()
            .args(["sign", "--url", "https://e.com/x", "--body-file", "-"])
            .args(["--shared-key", "no-equals-sign"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("ID=SECRET"),
        "{}",
        text(&out.stderr)
    );
    let empty = std::env::temp_dir().join(format!("cli-no-stream-{}", std::process::id()));
    let out = run(
        cli().args(["stream", "dump", "--data-dir"]).arg(&empty),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("twilio-events serve --data-dir"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sign_prints_what_twilio_sends_and_verify_accepts_it() {
    let body = read_sample("01_webhook_body_test-event_array.json");
    let out = run(
        cli().args([
            "sign",
            "--url",
            "https://96e5-165-225-114-134.ngrok-free.app/webhook",
            "--body-file",
            "-",
            "--auth-token",
            "11111111111111111111111111111111",
        ]),
        Some(&body),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // The published vector for this very body and URL.
    assert!(stdout.contains("URL: https://96e5-165-225-114-134.ngrok-free.app/webhook?bodySHA256=f4dc494f1e604a19df36cdd069f7956b1f261dc954ae1c698ed8b4939fd9ab54"), "{stdout}");
    assert!(
        stdout.contains("X-Twilio-Signature: qovYYTCoTFG3Ga6KmSrRVvSgwm8="),
        "{stdout}"
    );

    let out = run(
        cli().args([
            "sign",
            "--url",
            "https://e.com/x",
            "--body-file",
            "-",
            "--shared-key",
            "k1=c2VjcmV0",
        ]),
        Some(&body),
    );
    let stdout = text(&out.stdout);
    let header = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let url = header("URL:");
    let signature = header("X-Twilio-Signature:");
    let settings = header("X-Twilio-Webhooks-Signature-Settings:");
    assert_eq!(settings, "key=k1,algorithm=HMAC_SHA256");
    let out = run(
        cli().args([
            "verify",
            "--url",
            &url,
            "--signature",
            &signature,
            "--signature-settings",
            &settings,
            "--body-file",
            "-",
            "--shared-key",
            "k1=c2VjcmV0",
        ]),
        Some(&body),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn parse_prints_one_summary_line_per_event() {
    let a = text(&read_sample(
        "04_messaging_message.sent_observed_envelope.json",
    ));
    let b = text(&read_sample(
        "08_taskrouter_apiusage.ratelimits_docs_example.json",
    ));
    let body = format!("[{a},{b}]");
    let out = run(cli().args(["parse", "-"]), Some(body.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "EZf40f223873cb33b29e536dbcc34fb98b");
    assert_eq!(lines[0]["kind"], "message");
    assert_eq!(lines[0]["status"], "sent");
    assert_eq!(lines[0]["resource"], "SMaf53f755fc01b434d69700511984da79");
    assert_eq!(lines[1]["kind"], "rate-limit");
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "account", "id", "kind", "resource", "status", "time", "type"
        ]
    );
    assert!(!text(&out.stdout).contains("+1206"), "no phone numbers");
}

#[test]
fn parse_accepts_a_usage_trigger_form_body() {
    let body = "AccountSid=AC00000000000000000000000000000001&UsageTriggerSid=UT00000000000000000000000000000001&UsageCategory=sms&TriggerValue=10&CurrentValue=11&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&IdempotencyToken=t1";
    let out = run(cli().args(["parse", "-"]), Some(body.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(line["kind"], "usage-trigger");
    assert_eq!(line["resource"], "UT00000000000000000000000000000001");
}

#[test]
fn parse_says_what_it_could_not_read() {
    let out = run(
        cli().args(["parse", "-"]),
        Some(b"[{\"id\":\"EZ1\",\"type\":\"x\"},{\"type\":\"y\"}]"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "the good event is still printed"
    );
    assert!(
        text(&out.stderr).contains("event #1, field `id`: missing"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cli().args(["parse", "-"]), Some(b"[{\"id\":"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not valid JSON"),
        "{}",
        text(&out.stderr)
    );
}
