//! `twilio-events reconcile` as a user runs it after an outage: a real `serve` (its embedded
//! store, its crm-sync writing the CRM file), deliveries signed as Twilio signs them with a
//! fifth of them lost, and Twilio's REST API played by the scripted fake of
//! [`crate::twilio_rest`] — then by Stoplight Prism serving Twilio's own OpenAPI description
//! (twilio_api_v2010.json), as a validating proxy in front of the fake and as a mock.

use crate::helpers::{Server, data_dir, lines_once_consumed, post, start_serve};
use crate::prism::{Description, Prism};
use crate::twilio_rest::{ACCOUNT, RestFake, TOKEN, message_json};
use crm_sync::adapters::sqlite::SqliteStatusLedger;
use crm_sync::ports::StatusLedger;
use crm_sync::update::StatusUpdate;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use twilio_events::signature::{BodyEncoding, SigningKey, sign};
use twilio_events_testkit::events::StatusEvent;

fn sid(n: u32) -> String {
    format!("SM{n:032x}")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn reconcile(
    dir: &Path,
    api_base: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
    extra: &[&str],
) -> Output {
    reconcile_for(ACCOUNT, dir, api_base, since, until, extra)
}

/// `twilio-events reconcile` on the embedded store in `dir`, reading `account`'s resources.
fn reconcile_for(
    account: &str,
    dir: &Path,
    api_base: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
    extra: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args([
            "reconcile",
            "--since",
            &rfc3339(since),
            "--until",
            &rfc3339(until),
            "--data-dir",
        ])
        .arg(dir)
        .args([
            "--account-sid",
            account,
            "--auth-token",
            TOKEN,
            "--api-base",
            api_base,
        ])
        .args(extra)
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .output()
        .unwrap()
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "reconcile failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Posts `events` to `serve` as Event Streams does: JSON arrays, signed with the Auth Token.
fn deliver(server: &Server, events: &[Value]) {
    let url = format!("http://127.0.0.1:{}/twilio/events", server.port);
    for batch in events.chunks(40) {
        let body = serde_json::to_vec(batch).unwrap();
        let signed = sign(
            &SigningKey::AuthToken(TOKEN.into()),
            &url,
            &body,
            BodyEncoding::Json,
        );
        let target = signed
            .url
            .trim_start_matches(&format!("http://127.0.0.1:{}", server.port))
            .to_owned();
        let (status, answer) = post(
            server,
            &target,
            "application/json",
            &signed.signature,
            &body,
        );
        assert_eq!(status, 200, "{answer}");
    }
}

/// A small deterministic generator (no dependency for a test's dice).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % sides
    }
}

const RANKS: [(&str, u8); 5] = [
    ("queued", 2),
    ("sent", 4),
    ("delivered", 6),
    ("undelivered", 6),
    ("failed", 6),
];

fn rank(status: &str) -> u8 {
    RANKS
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, r)| *r)
        .unwrap()
}

/// Each SID's CRM writes, in order.
fn writes(crm: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut by_sid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in crm {
        by_sid
            .entry(line["sid"].as_str().unwrap().to_owned())
            .or_default()
            .push(line["status"].as_str().unwrap().to_owned());
    }
    by_sid
}

#[test]
fn one_run_puts_every_message_at_its_final_status_without_a_regression_and_a_second_stores_nothing()
{
    // GIVEN 1,000 messages, each queued → sent → delivered (85 %), undelivered (10 %) or failed
    // (5 %), whose Event Streams events reached `serve` with a fifth of them lost (in random
    // order within each message's lifecycle: a lost `sent` leaves the CRM at `queued`), 30 of
    // them never seen at all; and 10 more that the ledger holds at `sent` but Twilio has since
    // deleted (404)
    let dir = data_dir("reconcile-1000");
    let server = start_serve(TOKEN, &dir, &[]);
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::from_secs(600);
    let mut dice = Dice(2026);
    let mut finals: BTreeMap<String, &str> = BTreeMap::new();
    let mut delivered_events = Vec::new();
    let mut api_messages = Vec::new();
    let (mut lost, mut total, mut never_seen) = (0, 0, 0u64);
    for n in 1..=1000u32 {
        let sid = sid(n);
        let sent_at = start + Duration::from_millis(u64::from(n) * 300);
        let end = match dice.roll(100) {
            0..=84 => "delivered",
            85..=94 => "undelivered",
            _ => "failed",
        };
        finals.insert(sid.clone(), end);
        let mut seen = false;
        for (step, status) in ["queued", "sent", end].into_iter().enumerate() {
            total += 1;
            let never_seen = n > 970;
            if never_seen || dice.roll(5) == 0 {
                lost += 1;
                continue;
            }
            seen = true;
            let at = sent_at + Duration::from_secs(step as u64);
            delivered_events.push(
                StatusEvent::message(&sid, status)
                    .at(&rfc3339(at))
                    .to_json(),
            );
        }
        if !seen {
            never_seen += 1;
        }
        api_messages.push(message_json(
            &sid,
            end,
            sent_at,
            sent_at + Duration::from_secs(2),
        ));
    }
    let deleted: Vec<String> = (2001..=2010).map(sid).collect();
    for sid in &deleted {
        delivered_events.push(
            StatusEvent::message(sid, "sent")
                .at(&rfc3339(start))
                .to_json(),
        );
    }
    // About a fifth of the 2,910 events of messages that were not lost whole.
    let random = (lost - 90, total - 90);
    assert!(
        random.0 * 6 > random.1 && random.0 * 4 < random.1,
        "{random:?}"
    );
    deliver(&server, &delivered_events);
    let before = writes(&lines_once_consumed(&dir, "crm-sync", "crm.jsonl"));
    let behind: BTreeSet<&String> = finals
        .iter()
        .filter(|(sid, end)| before.get(*sid).and_then(|w| w.last()) != Some(&end.to_string()))
        .map(|(sid, _)| sid)
        .collect();
    assert!(
        behind.len() > 150,
        "the scenario leaves many behind: {}",
        behind.len()
    );
    assert!(never_seen >= 30, "{never_seen}");
    assert_eq!(
        before.len() as u64,
        1000 - never_seen + 10,
        "what was never seen is not in the CRM"
    );

    // AND Twilio's REST API (the fake) throttling eight of the stuck messages twice each
    let fake = RestFake::start(api_messages, 100);
    let throttled: Vec<String> = behind
        .iter()
        .filter(|sid| before.contains_key(**sid))
        .take(8)
        .map(|s| (*s).clone())
        .collect();
    for sid in &throttled {
        fake.throttle(sid, 2);
    }

    // WHEN one reconcile run covers the window
    let since = start - Duration::from_secs(60);
    let until = OffsetDateTime::now_utc() + Duration::from_secs(60);
    let first = report(&reconcile(&dir, &fake.base, since, until, &["--json"]));

    // THEN every message that was behind is stored at its final status, once
    assert_eq!(
        first["stored"].as_u64(),
        Some(behind.len() as u64),
        "{first}"
    );
    assert_eq!(first["discovered"].as_u64(), Some(never_seen), "{first}");
    assert_eq!(first["not_stored"].as_u64(), Some(0), "{first}");
    assert_eq!(
        first["gave_up"].as_u64(),
        Some(0),
        "429s are waited out: {first}"
    );
    // AND the deleted ones are named, each asked for once
    let not_found: BTreeSet<String> = first["not_found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(not_found, deleted.iter().cloned().collect());
    let requests = fake.requests();
    for sid in &deleted {
        assert_eq!(
            requests.iter().filter(|r| r.contains(sid.as_str())).count(),
            1,
            "{sid}"
        );
    }
    // AND each throttled message was asked for three times (two 429s, then the answer)
    for sid in &throttled {
        assert_eq!(
            requests
                .iter()
                .filter(|r| r.contains(&format!("Messages/{sid}.json")))
                .count(),
            3,
            "{sid}"
        );
    }
    // AND the sweep paged through the whole window (1,000 messages, pages of 100)
    assert_eq!(first["listed"].as_u64(), Some(1000));
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.contains("/Messages.json"))
            .count(),
        10
    );

    // AND the CRM holds every message's final status, moved only forward, one write per move
    let after = writes(&lines_once_consumed(&dir, "crm-sync", "crm.jsonl"));
    for (sid, end) in &finals {
        let moves = after
            .get(sid)
            .unwrap_or_else(|| panic!("{sid} never reached the CRM"));
        assert_eq!(
            moves.last().map(String::as_str),
            Some(*end),
            "{sid}: {moves:?}"
        );
        let ranks: Vec<u8> = moves.iter().map(|s| rank(s)).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{sid}: {moves:?}");
    }
    let added: usize =
        after.values().map(Vec::len).sum::<usize>() - before.values().map(Vec::len).sum::<usize>();
    assert_eq!(added, behind.len(), "one write per message that was behind");

    // WHEN it runs again
    fake.forget_requests();
    let second = report(&reconcile(&dir, &fake.base, since, until, &["--json"]));
    // THEN nothing is ahead any more, and nothing is stored
    assert_eq!(
        (
            second["advanced"].as_u64(),
            second["discovered"].as_u64(),
            second["stored"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{second}"
    );
    drop(server);
}

/// Puts `sid` at `status` in the embedded ledger, as crm-sync does.
fn ledger_at(dir: &Path, sid: &str, status: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let ledger = SqliteStatusLedger::open(&crm_sync::startup::local_ledger_path(dir)).unwrap();
    let event = StatusEvent::message(sid, status).to_bytes();
    let event = twilio_events::CloudEvent::parse(std::str::from_utf8(&event).unwrap()).unwrap();
    let update = StatusUpdate::from_event(&event).unwrap().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(ledger.claim(&update))
        .unwrap();
}

#[test]
fn what_reconcile_asks_of_twilio_holds_to_twilios_own_openapi_description() {
    // GIVEN Prism validating every request against twilio_api_v2010.json, in front of the fake
    // holding three messages, one of which the ledger holds at `sent`
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let fake = RestFake::start(
        (1..=3).map(|n| message_json(&sid(n), "delivered", now - Duration::from_secs(60), now)),
        2,
    );
    let prism = Prism::proxy(Description::ApiV2010, &fake.base);
    let dir = data_dir("reconcile-prism");
    ledger_at(&dir, &sid(1), "sent");
    // WHEN reconcile fetches the stuck one and sweeps the window (two pages of messages, calls)
    let out = reconcile(
        &dir,
        &prism.base,
        now - Duration::from_secs(600),
        now + Duration::from_secs(60),
        &["--json", "--dry-run"],
    );
    // THEN it read everything through the proxy, and Prism found nothing to object to
    let run = report(&out);
    assert_eq!(run["listed"].as_u64(), Some(3), "{run}");
    assert_eq!(run["looked_up"].as_u64(), Some(1), "{run}");
    assert_eq!(run["repairs"].as_array().unwrap().len(), 3, "{run}");
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("Messages/{}.json", sid(1)))),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("Page=1")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("/Calls.json")),
        "{requests:?}"
    );
    assert_eq!(
        unexpected(prism.violations()),
        Vec::<String>::new(),
        "{}",
        prism.output()
    );
}

/// Prism's complaints but one: the description types the page URIs (`uri`, `first_page_uri`,
/// `next_page_uri`) as absolute (`format: uri`), while its own examples, and the live API,
/// give them relative to the API root, as the fake does (Prism's mock flags its own example
/// answers for it).
fn unexpected(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|v| !v.contains("uri must match format \"uri\""))
        .collect()
}

#[test]
fn reconcile_reads_the_answers_twilios_description_gives_as_examples() {
    // GIVEN Prism answering from twilio_api_v2010.json's examples alone, and a ledger holding
    // one message at `queued`
    let prism = Prism::mock(Description::ApiV2010);
    let dir = data_dir("reconcile-prism-mock");
    ledger_at(&dir, &sid(1), "queued");
    let now = OffsetDateTime::now_utc();
    let since = now - Duration::from_secs(3600);
    // WHEN a dry run looks it up
    let out = reconcile(
        &dir,
        &prism.base,
        since,
        now,
        &["--json", "--dry-run", "--no-sweep"],
    );
    // THEN the description's example message is read: one status ahead (`sent`)
    let run = report(&out);
    assert_eq!(run["looked_up"].as_u64(), Some(1), "{run}");
    assert_eq!(run["repairs"][0]["status"], "sent", "{run}");
    assert_eq!(run["gave_up"].as_u64(), Some(0), "{run}");
    // WHEN it also sweeps: the example list page names a next page that answers the same
    // example again (a mock keeps no pages)
    let out = reconcile(&dir, &prism.base, since, now, &["--dry-run"]);
    // THEN the sweep stops on the repeated page, says so, and exits 1 instead of paging forever
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("twice"), "{stderr}");
    assert_eq!(
        unexpected(prism.errors()),
        Vec::<String>::new(),
        "{}",
        prism.output()
    );
}

#[test]
fn reconcile_says_what_it_needs() {
    let dir = data_dir("reconcile-usage");
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["reconcile", "--since", "1h", "--data-dir"])
        .arg(&dir)
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--account-sid"), "{stderr}");
    // Refused credentials stop the run, exit 1, and the token never shows.
    let fake = RestFake::start([], 10);
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["reconcile", "--since", "1h", "--data-dir"])
        .arg(&dir)
        .args([
            "--account-sid",
            ACCOUNT,
            "--auth-token",
            "wrong-token-value",
            "--api-base",
            &fake.base,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("credentials"), "{stderr}");
    assert!(!stderr.contains("wrong-token-value"), "{stderr}");
}

#[test]
fn on_aws_reconcile_stores_through_the_dedup_table_into_kinesis_once() {
    use twilio_events_testkit::aws;
    // GIVEN crm-sync's ledger and ingest's dedup table on DynamoDB Local (with the template's
    // open index), the stream on moto, the ledger holding message 1 at `sent` and message 2 at
    // `delivered`, and Twilio holding 1, 2 and 3 (never seen) delivered
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ledger_table, dedup_table, stream) = (
        aws::unique("ledger"),
        aws::unique("dedup"),
        aws::unique("events"),
    );
    let kinesis = runtime.block_on(async {
        let ddb = aws_sdk_dynamodb::Client::new(&aws::sdk_config(&aws::ddb_local_endpoint()).await);
        aws::create_ledger_table(&ddb, &ledger_table).await;
        aws::create_dedup_table(&ddb, &dedup_table).await;
        let ledger = crm_sync::adapters::dynamodb::DynamoStatusLedger::new(ddb, &ledger_table);
        for (n, status) in [(1, "sent"), (2, "delivered")] {
            let event = StatusEvent::message(&sid(n), status).to_bytes();
            let event =
                twilio_events::CloudEvent::parse(std::str::from_utf8(&event).unwrap()).unwrap();
            let update = StatusUpdate::from_event(&event).unwrap().unwrap();
            ledger.claim(&update).await.unwrap();
        }
        let kinesis = aws_sdk_kinesis::Client::new(&aws::sdk_config(&aws::moto_endpoint()).await);
        aws::create_stream(&kinesis, &stream, 1).await;
        kinesis
    });
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let fake = RestFake::start(
        (1..=3).map(|n| message_json(&sid(n), "delivered", now - Duration::from_secs(120), now)),
        100,
    );
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_twilio-events"))
            .args(["reconcile", "--backend", "aws", "--json"])
            .args(["--since", &rfc3339(now - Duration::from_secs(600))])
            .args(["--until", &rfc3339(now + Duration::from_secs(60))])
            .args([
                "--ledger-table",
                &ledger_table,
                "--dedup-table",
                &dedup_table,
            ])
            .args(["--stream-name", &stream])
            .args([
                "--account-sid",
                ACCOUNT,
                "--auth-token",
                TOKEN,
                "--api-base",
                &fake.base,
            ])
            .env("AWS_ENDPOINT_URL_DYNAMODB", aws::ddb_local_endpoint())
            .env("AWS_ENDPOINT_URL_KINESIS", aws::moto_endpoint())
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    // WHEN reconcile runs on AWS
    let first = report(&run());
    // THEN it looked up the one open message, and stored 1 (advanced) and 3 (never seen)
    assert_eq!(first["looked_up"].as_u64(), Some(1), "{first}");
    assert_eq!(
        (
            first["advanced"].as_u64(),
            first["discovered"].as_u64(),
            first["stored"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{first}"
    );
    let records = runtime.block_on(aws::read_stream(&kinesis, &stream));
    let mut keys: Vec<&str> = records.iter().map(|(key, _, _)| key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec![sid(1).as_str(), sid(3).as_str()]);
    for (_, data, _) in &records {
        let event: Value = serde_json::from_slice(data).unwrap();
        assert_eq!(event["type"], "com.twilio.messaging.message.delivered");
        assert_eq!(event["twilioreconciled"], "rest-api");
    }
    // WHEN it runs again before crm-sync has moved the ledger
    let second = report(&run());
    // THEN the same statuses are found ahead, and the dedup table keeps them out of the stream
    assert_eq!(
        (second["stored"].as_u64(), second["already_stored"].as_u64()),
        (Some(0), Some(2)),
        "{second}"
    );
    assert_eq!(
        runtime.block_on(aws::read_stream(&kinesis, &stream)).len(),
        2
    );
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn after_an_outage_longer_than_twilios_retries_reconcile_puts_back_every_final_status() {
    // GIVEN simulated traffic (messages, calls, rate limits, Usage Triggers, test events),
    // delivered as Twilio delivers with the retry window scaled down to 2 s, to a `serve` that
    // is down for the first 4 s: what was sent then is retried until the window ends, then
    // dropped, as Twilio drops it after 4 hours
    let dir = data_dir("reconcile-outage");
    std::fs::create_dir_all(&dir).unwrap();
    let resources = dir.join("twilio-resources.jsonl");
    let port = free_port();
    let simulate = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["simulate", "--url", &format!("http://127.0.0.1:{port}")])
        .args([
            "--events",
            "900",
            "--rate",
            "150/s",
            "--seed",
            "42",
            "--duplicates",
            "0",
        ])
        .args(["--retry-scale", "0.001", "--max-retry-time", "2s"])
        .args(["--json", "--quiet", "--data-dir"])
        .arg(&dir)
        .arg("--resources")
        .arg(&resources)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let server = crate::helpers::start_serve_on(port, &dir, &["--auth-token", TOKEN]);
    let simulated = simulate.wait_with_output().unwrap();
    let report_of_simulate: Value = serde_json::from_slice(&simulated.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&simulated.stdout),
            String::from_utf8_lossy(&simulated.stderr)
        )
    });
    let dropped = report_of_simulate["dropped_retry_window"].as_u64().unwrap();
    assert!(
        dropped > 100,
        "the outage dropped deliveries: {report_of_simulate}"
    );
    assert_eq!(
        report_of_simulate["lost"].as_u64(),
        Some(0),
        "{report_of_simulate}"
    );

    // WHEN reconcile runs over the traffic's window against Twilio's REST API (the fake holding
    // what the simulation did)
    let fake = RestFake::from_simulated(&resources, 1000);
    let _ = lines_once_consumed(&dir, "crm-sync", "crm.jsonl");
    let now = OffsetDateTime::now_utc();
    let account = std::fs::read_to_string(&resources)
        .unwrap()
        .lines()
        .next()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["account_sid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap();
    let out = reconcile_for(
        &account,
        &dir,
        &fake.base,
        now - Duration::from_secs(3600),
        now + Duration::from_secs(86_400),
        &["--json"],
    );
    let repaired = report(&out);

    // THEN every message's and call's final status is in the stream: lost 0
    let stream: BTreeSet<String> = crate::helpers::dump(&dir)
        .iter()
        .filter_map(|line| {
            twilio_events::CloudEvent::parse(line)
                .ok()
                .map(|e| e.dedup_key())
        })
        .collect();
    let twilio: Vec<twilio_events::reconciled::Resource> = std::fs::read_to_string(&resources)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["kind"] == "message" {
                twilio_events::reconciled::Resource::Message(serde_json::from_value(v).unwrap())
            } else {
                twilio_events::reconciled::Resource::Call(serde_json::from_value(v).unwrap())
            }
        })
        .collect();
    let lost: Vec<&str> = twilio
        .iter()
        .filter(|r| !stream.contains(&r.event(now).unwrap().dedup_key()))
        .map(|r| r.sid())
        .collect();
    assert!(repaired["stored"].as_u64().unwrap() > 0, "{repaired}");
    assert_eq!(
        lost,
        Vec::<&str>::new(),
        "final statuses missing after reconcile"
    );
    // AND the CRM ends at each one's final status
    let crm = writes(&lines_once_consumed(&dir, "crm-sync", "crm.jsonl"));
    for resource in &twilio {
        let final_write = crm.get(resource.sid()).and_then(|w| w.last());
        assert_eq!(
            final_write.map(String::as_str),
            Some(resource.status()),
            "{}",
            resource.sid()
        );
    }
    eprintln!(
        "outage: {dropped} deliveries dropped by the simulated Twilio; reconcile stored {} \
         ({} advanced, {} never seen) of {} messages and calls; lost 0",
        repaired["stored"],
        repaired["advanced"],
        repaired["discovered"],
        twilio.len()
    );
    drop(server);
}

#[test]
fn serve_with_rest_api_credentials_reconciles_on_its_own_timer() {
    // GIVEN Twilio holding a message delivered 15 minutes ago that never reached us, and
    // `serve` given the account, its Auth Token and the REST API's address, reconciling every
    // second
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let sent = now - Duration::from_secs(15 * 60) + Duration::from_secs(3);
    let fake = RestFake::start([message_json(&sid(7), "delivered", sent, sent)], 100);
    let dir = data_dir("reconcile-serve-timer");
    let server = start_serve(
        TOKEN,
        &dir,
        &[
            "--account-sid",
            ACCOUNT,
            "--api-base",
            &fake.base,
            "--reconcile-every",
            "1s",
        ],
    );
    // WHEN its timer's sweeps reach the minute the message was sent
    let crm = lines_once_consumed(&dir, "crm-sync", "crm.jsonl");
    // THEN the message's status is in the stream and the CRM, once
    assert_eq!(
        writes(&crm).get(&sid(7)),
        Some(&vec!["delivered".to_owned()]),
        "{crm:?}"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("/Messages.json?DateSent%3E=")),
        "{:?}",
        fake.requests()
    );
    drop(server);
}
