//! `twilio-events stream replay`: a consumer of `serve` rewound reads the stream again; into the
//! same CRM it changes nothing, into a fresh one (`--fresh`) it rebuilds its state exactly (the
//! same final status per message and call; fewer writes, since a replayed batch holds several
//! statuses of one resource and crm-sync writes only the furthest).

use super::helpers::{Server, data_dir, dump, lines_once_consumed, start_serve};
use std::path::Path;
use std::process::{Command, Output};

const TOKEN: &str = "replay-test-token";

fn cli(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// serve on `dir` until its crm-sync has written everything, then stopped; the CRM's lines.
fn run_serve_until_settled(dir: &Path, traffic: bool) -> Vec<serde_json::Value> {
    let server: Server = start_serve(TOKEN, dir, &[]);
    if traffic {
        let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
            .args(["simulate", "--auth-token", TOKEN, "--quiet", "--json"])
            .args(["--seed", "3", "--events", "300", "--rate", "max"])
            .args(["--retry-scale", "0.001"])
            .args(["--url", &format!("http://127.0.0.1:{}", server.port)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stdout));
    }
    let lines = lines_once_consumed(dir, "crm-sync", "crm.jsonl");
    drop(server);
    lines
}

/// Each resource's last update, as a CRM holds it.
fn final_state(
    updates: &[serde_json::Value],
) -> std::collections::BTreeMap<String, serde_json::Value> {
    updates
        .iter()
        .map(|u| (u["sid"].as_str().unwrap().to_owned(), u.clone()))
        .collect()
}

#[test]
fn a_replay_changes_nothing_in_the_same_crm_and_rebuilds_a_fresh_one_exactly() {
    // GIVEN serve took traffic and crm-sync wrote each forward move to the CRM (crm.jsonl)
    let dir = data_dir("replay");
    let crm = run_serve_until_settled(&dir, true);
    assert!(crm.len() > 50, "{}", crm.len());
    let records = dump(&dir).len();

    // WHEN a dry run asks what a replay from the start would read
    let out = cli(
        &[
            "stream",
            "replay",
            "--consumer",
            "crm-sync",
            "--from-start",
            "--dry-run",
        ],
        &dir,
    );
    // THEN it counts the whole stream and changes nothing
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("would read {records} record(s) again")),
        "{}",
        text(&out.stdout)
    );

    // WHEN crm-sync is rewound to the start and serve runs again
    let out = cli(
        &["stream", "replay", "--consumer", "crm-sync", "--from-start"],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rewound"),
        "{}",
        text(&out.stdout)
    );
    let again = run_serve_until_settled(&dir, false);
    // THEN the CRM got nothing new: its ledger knows every status was written
    assert_eq!(again, crm);

    // WHEN it is rewound with --fresh for a new, empty CRM
    std::fs::remove_file(dir.join("crm.jsonl")).unwrap();
    let out = cli(
        &[
            "stream",
            "replay",
            "--consumer",
            "crm-sync",
            "--from-start",
            "--fresh",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rebuilt = run_serve_until_settled(&dir, false);
    // THEN the new CRM ends in exactly the state of the first: each resource's last update
    // (status, rank and the event that set it) is the same, with never more writes
    assert_eq!(final_state(&rebuilt), final_state(&crm));
    assert!(
        rebuilt.len() <= crm.len(),
        "{} > {}",
        rebuilt.len(),
        crm.len()
    );
}

#[test]
fn replay_says_what_it_needs() {
    let dir = data_dir("replay-usage");
    drop(run_serve_until_settled(&dir, true));
    // No start given, or a --since that is not a time: usage errors (exit 2)
    for args in [
        &["stream", "replay", "--consumer", "crm-sync"][..],
        &[
            "stream",
            "replay",
            "--consumer",
            "crm-sync",
            "--since",
            "yesterday",
        ][..],
    ] {
        let out = cli(args, &dir);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A time after everything arrived: nothing to read again
    let out = cli(
        &[
            "stream",
            "replay",
            "--consumer",
            "quota-alert",
            "--since",
            "2999-01-01T00:00:00Z",
            "--dry-run",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("would read 0 record(s)"),
        "{}",
        text(&out.stdout)
    );
    // An hour ago: all of it
    let out = cli(
        &[
            "stream",
            "replay",
            "--consumer",
            "quota-alert",
            "--since",
            "1h",
            "--dry-run",
        ],
        &dir,
    );
    assert!(
        text(&out.stdout).contains(&format!("would read {} record(s)", dump(&dir).len())),
        "{}",
        text(&out.stdout)
    );
}

// ---------------------------------------------------------------------------------------------
// `twilio-events replay` on AWS: moto's Kinesis, and crm-sync's own binary under the Lambda
// Runtime API emulator with the environment template.yaml gives it (tests/src/lambda_runtime.rs).

mod aws {
    use axum::Router;
    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::{Command, Output};
    use std::sync::{Arc, Mutex};
    use twilio_events_testkit::aws::{create_stream, moto_endpoint, sdk_config, unique};
    use twilio_events_testkit::events::StatusEvent;
    use twilio_events_testkit::lambda_runtime::{EmulatedStack, FunctionProcess, RuntimeEmulator};

    /// A CRM on the generic HTTP contract that records each PUT's path and refuses (503) the
    /// paths holding `refuse`.
    struct RecordingCrm {
        url: String,
        puts: Arc<Mutex<Vec<String>>>,
    }

    /// The PUT paths seen, and the path fragment refused for now.
    type CrmState = (Arc<Mutex<Vec<String>>>, Arc<Mutex<String>>);

    async fn record(State((puts, refuse)): State<CrmState>, uri: Uri) -> StatusCode {
        let refuse = refuse.lock().unwrap().clone();
        if !refuse.is_empty() && uri.path().contains(&refuse) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        puts.lock().unwrap().push(uri.path().to_owned());
        StatusCode::OK
    }

    impl RecordingCrm {
        fn start(refuse: Arc<Mutex<String>>) -> Self {
            let puts = Arc::new(Mutex::new(Vec::new()));
            let app = Router::new()
                .fallback(record)
                .with_state((Arc::clone(&puts), refuse));
            let url = crate::helpers::serve_in_background(app);
            Self { url, puts }
        }

        fn puts(&self) -> Vec<String> {
            self.puts.lock().unwrap().clone()
        }
    }

    /// A workspace binary beside this test's executable (`target/<profile>/deps/it-…`).
    fn binary(name: &str) -> PathBuf {
        let exe = std::env::current_exe().unwrap();
        let path = exe.parent().unwrap().parent().unwrap().join(name);
        assert!(
            path.is_file(),
            "{} is missing: run `cargo test --workspace --all-targets`",
            path.display()
        );
        path
    }

    fn replay(stream: &str, emulator: &RuntimeEmulator, extra: &[&str]) -> Output {
        let lambda_endpoint = emulator.runtime_api().trim_end_matches("/.rt").to_owned();
        Command::new(env!("CARGO_BIN_EXE_twilio-events"))
            .args(["replay", "--stream", stream, "--function", "_", "--quiet"])
            .args(extra)
            .env("AWS_ENDPOINT_URL", moto_endpoint())
            .env("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn replay_drives_crm_sync_from_the_stream_once_and_stops_at_a_failed_record() {
        // GIVEN a stream holding three messages' statuses (two shards)
        let sdk = sdk_config(&moto_endpoint()).await;
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        let stream = unique("replay");
        create_stream(&kinesis, &stream, 2).await;
        let messages = [
            "SM000000000000000000000000000000a1",
            "SM000000000000000000000000000000a2",
            "SM000000000000000000000000000000a3",
        ];
        for (i, sid) in messages.iter().enumerate() {
            for (j, status) in ["queued", "sent", "delivered"].iter().enumerate() {
                let event = StatusEvent::message(sid, status)
                    .id(&format!("EZ{i}{j}"))
                    .at(&format!("2026-11-30T10:00:0{j}.000Z"))
                    .to_bytes();
                kinesis
                    .put_record()
                    .stream_name(&stream)
                    .partition_key(*sid)
                    .data(aws_smithy_types::Blob::new(event))
                    .send()
                    .await
                    .unwrap();
            }
        }
        // AND crm-sync's binary, with the template's environment, writing to a CRM that
        // refuses the third message for now
        let refuse = Arc::new(Mutex::new(messages[2].to_owned()));
        let crm = RecordingCrm::start(Arc::clone(&refuse));
        let stack = EmulatedStack::for_function(
            "CrmSyncFunction",
            &BTreeMap::from([
                ("CrmKind".to_owned(), "http".to_owned()),
                ("CrmUrl".to_owned(), crm.url.clone()),
            ]),
            &BTreeMap::new(),
        )
        .await;
        let emulator = RuntimeEmulator::start();
        let _crm_sync = FunctionProcess::spawn(&binary("crm-sync"), &stack.env, &emulator);

        // WHEN a dry run counts the last hour
        let dry = replay(&stream, &emulator, &["--since", "1h", "--dry-run"]);
        assert!(dry.status.success(), "{}", text(&dry.stderr));
        let counted: u64 = text(&dry.stdout)
            .lines()
            .filter_map(|l| l.split("would replay ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
            .sum();
        // THEN it counts all nine records and invokes nothing
        assert_eq!(counted, 9, "{}", text(&dry.stdout));
        assert!(crm.puts().is_empty());

        // WHEN the last hour is replayed into crm-sync
        let first = replay(&stream, &emulator, &["--since", "1h"]);
        // THEN the shard holding the refused message stops there and says how to resume (exit
        // 1), and the other messages reached the CRM at their final status
        assert_eq!(first.status.code(), Some(1), "{}", text(&first.stdout));
        assert!(
            text(&first.stdout).contains("resume with --since"),
            "{}",
            text(&first.stdout)
        );
        let puts = crm.puts();
        for sid in &messages[..2] {
            assert!(
                puts.iter().any(|p| p.contains(sid)),
                "{sid} not in {puts:?}"
            );
        }
        assert!(!puts.iter().any(|p| p.contains(messages[2])));

        // WHEN the CRM takes it again and the replay is run once more
        refuse.lock().unwrap().clear();
        let second = replay(&stream, &emulator, &["--since", "1h"]);
        // THEN every shard goes through; only the refused message is new to the CRM (the
        // ledger knows the others were written), so a replay changes nothing already done
        assert!(second.status.success(), "{}", text(&second.stdout));
        let new: Vec<String> = crm.puts().into_iter().skip(puts.len()).collect();
        assert!(!new.is_empty(), "the refused message arrives");
        assert!(
            new.iter().all(|p| p.contains(messages[2])),
            "only the refused message is written again: {new:?}"
        );
        let third = replay(&stream, &emulator, &["--since", "1h"]);
        assert!(third.status.success(), "{}", text(&third.stdout));
        assert_eq!(crm.puts().len(), puts.len() + new.len(), "nothing more");
    }
}
