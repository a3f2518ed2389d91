//! `twilio-events stream replay`: a consumer of `serve` rewound reads the stream again; into the
//! same CRM it changes nothing, into a fresh one (`--fresh`) it rebuilds its state exactly (the
//! same final status per message and call; fewer writes, since a replayed batch holds several
//! statuses of one resource and crm-sync writes only the furthest).

use super::helpers::{Server, data_dir, dump, settled_lines, start_serve};
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
    let lines = settled_lines(&dir.join("crm.jsonl"));
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
