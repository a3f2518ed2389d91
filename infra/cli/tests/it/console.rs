//! `serve`'s console at /console: the pages in a real headless browser (chromium through
//! chromedriver, `webdriver.rs`), and its access rules and masking over plain HTTP. Screenshots
//! land in target/console-screenshots/ (CI keeps them; the README's come from there).

use super::helpers::{self, Server, data_dir};
use super::webdriver::Browser;
use std::path::Path;
use std::time::Duration;
use twilio_events::quarantine::QuarantinedItem;
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

const TOKEN: &str = "console-test-token";
const CONSOLE_TOKEN: &str = "a-console-token-0123456789";
const PHONE: &str = "+15551234567";
const BODY: &str = "hello secret words";
/// Live updates must show within this, however busy the machine.
const LIVE: Duration = Duration::from_secs(20);

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A message event with a phone number and a body (what the console must mask).
fn message_event(i: usize, status: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.{status}","source":"/2010-04-01/Accounts/AC5/Messages/SM{i:032}.json","id":"EZ{i:032}{status}","time":"{}","data":{{"messageSid":"SM{i:032}","accountSid":"AC5","to":"{PHONE}","from":"+15550000000","body":"{BODY}","messageStatus":"{}"}}}}"#,
        now(),
        status.to_uppercase()
    )
}

/// POSTs `body` to /twilio/events signed with `token` for `signed_for` (serve's own URL when
/// `None`); answers the status.
fn deliver(server: &Server, body: &str, token: &str, signed_for: Option<&str>) -> u16 {
    let own = format!("http://127.0.0.1:{}/twilio/events", server.port);
    let signed = sign(
        &SigningKey::AuthToken(token.into()),
        signed_for.unwrap_or(&own),
        body.as_bytes(),
        BodyEncoding::Json,
    );
    let query = signed.url.split_once('?').map_or("", |(_, q)| q);
    let target = format!("/twilio/events?{query}");
    helpers::post(
        server,
        &target,
        "application/json",
        &signed.signature,
        body.as_bytes(),
    )
    .0
}

/// One raw request: status, head and body.
fn request(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{}\r\n", server.port));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    helpers::exchange(server, head.as_bytes(), b"")
}

fn get(server: &Server, target: &str) -> (u16, String) {
    let (status, _, body) = request(server, "GET", target, &[]);
    (status, body)
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < LIVE, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quotas_file(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("quotas.json");
    std::fs::write(
        &path,
        r#"{"quotas":[{"name":"sms-daily","counts":"messages","window":"day","limit":10,"thresholds":[0.5,0.8,1.0]}]}"#,
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn each_console_page_loads_and_a_signed_delivery_appears_without_a_reload() {
    // GIVEN serve with quotas, two messages already delivered, and the console open
    let dir = data_dir("console-pages");
    let quotas = quotas_file(&dir);
    let server = helpers::start_serve(TOKEN, &dir, &["--quotas", &quotas]);
    // (SM2's "sent" arrives after its "delivered": stale; its "delivered" again: a duplicate;
    // six messages sent: the 50% alert)
    let earlier = [
        (1, "sent"),
        (2, "delivered"),
        (2, "sent"),
        (3, "sent"),
        (4, "sent"),
        (5, "sent"),
        (6, "sent"),
        (2, "delivered"),
    ];
    for (i, status) in earlier {
        assert_eq!(
            deliver(
                &server,
                &format!("[{}]", message_event(i, status)),
                TOKEN,
                None
            ),
            200
        );
    }
    let base = format!("http://127.0.0.1:{}", server.port);
    let browser = Browser::start();
    browser.open(&format!("{base}/console"));
    browser.wait_for("tr[data-delivery]", LIVE);
    browser.wait_for("body[data-live-open]", LIVE);
    browser.run("window.notReloaded = true;");

    // WHEN a new signed delivery arrives
    let status = deliver(
        &server,
        &format!("[{}]", message_event(1, "delivered")),
        TOKEN,
        None,
    );
    assert_eq!(status, 200);

    // THEN it shows on the Deliveries page without a reload
    let posts = "return Array.from(document.querySelectorAll('tr[data-delivery]'))\
                 .filter(r => r.innerText.includes('POST /twilio/events')).length;";
    eventually("the new delivery on the page", || browser.run(posts) == 9);
    assert_eq!(browser.run("return window.notReloaded === true;"), true);
    let row = browser.text("tr[data-delivery]");
    assert!(
        row.contains("POST /twilio/events") && row.contains("accepted"),
        "{row}"
    );
    browser.screenshot("deliveries");

    // AND every page loads, masked
    let sid = format!("SM{:032}", 1);
    let stale = format!("SM{:032}", 2);
    for (path, name, ready) in [
        ("/console/events".to_owned(), "events", "tr[data-event]"),
        (
            format!("/console/timelines?sid={stale}"),
            "timeline",
            "tr.stale + tr.dup",
        ),
        (
            "/console/quotas".to_owned(),
            "quotas",
            "tr[data-quota=\"sms-daily\"][data-alerts=\"1\"]",
        ),
        (
            "/console/quarantine".to_owned(),
            "quarantine",
            "main table, main p.empty",
        ),
    ] {
        browser.open(&format!("{base}{path}"));
        browser.wait_for(ready, LIVE);
        // The first event's (or item's) JSON open: masked too.
        browser.run("const d = document.querySelector('details'); if (d) d.open = true;");
        let text = browser.run("return document.body.innerText;");
        let text = text.as_str().unwrap();
        assert!(
            !text.contains("5551234567") && !text.contains(BODY),
            "{name} shows a number or body: {text}"
        );
        browser.screenshot(name);
    }
    // SM1's timeline: sent, then delivered, both pushed; six messages counted against the quota.
    browser.open(&format!("{base}/console/timelines?sid={sid}"));
    browser.wait_for("tr.pushed", LIVE);
    let rows = browser.run("return document.querySelectorAll('tr.pushed').length;");
    assert_eq!(rows, 2, "sent and delivered both move the message forward");
    browser.open(&format!("{base}/console/quotas"));
    let quota = browser.text("tr[data-quota=\"sms-daily\"]");
    assert!(
        quota.contains("sms-daily") && quota.contains("60%"),
        "{quota}"
    );
}

#[test]
fn a_refused_signature_opened_in_the_console_says_why_and_which_url_was_signed() {
    // GIVEN serve, and a delivery signed for http://localhost:PORT (not serve's 127.0.0.1)
    let dir = data_dir("console-signature");
    let server = helpers::start_serve(TOKEN, &dir, &[]);
    let localhost = format!("http://localhost:{}/twilio/events", server.port);
    let status = deliver(
        &server,
        &format!("[{}]", message_event(7, "sent")),
        TOKEN,
        Some(&localhost),
    );
    assert_eq!(status, 503, "a refused signature is answered 503");

    // WHEN it is opened in the console
    let browser = Browser::start();
    browser.open(&format!(
        "http://127.0.0.1:{}/console/deliveries",
        server.port
    ));
    browser.wait_for("tr[data-delivery] td.sig", LIVE);
    browser.click("tr[data-delivery] a");
    browser.wait_for("#reason", LIVE);

    // THEN it names the reason, the URL verified against and the one the signature is for
    let reason = browser.text("#reason");
    assert!(
        reason.contains("does not match any configured secret"),
        "{reason}"
    );
    let verified = browser.text("#verified-url");
    assert!(
        verified.starts_with(&format!("http://127.0.0.1:{}/twilio/events", server.port)),
        "{verified}"
    );
    let matching = browser.text("#matching-url");
    assert!(matching.starts_with(&localhost), "{matching}");
    assert!(reason.contains("--public-url"), "{reason}");
    assert!(!reason.contains(TOKEN), "never the token");
    browser.screenshot("delivery-refused");
}

#[test]
fn a_quarantined_item_replayed_in_the_console_reaches_the_stream() {
    // GIVEN a delivery an older version quarantined, readable now (the fix)
    let dir = data_dir("console-replay");
    std::fs::create_dir_all(&dir).unwrap();
    let event = message_event(9, "sent");
    let item = QuarantinedItem::new(
        "ingest",
        "malformed-delivery",
        "could not be read",
        event.as_bytes(),
    );
    std::fs::write(
        dir.join("quarantine.jsonl"),
        format!("{}\n", serde_json::to_string(&item).unwrap()),
    )
    .unwrap();
    let server = helpers::start_serve(TOKEN, &dir, &[]);
    let base = format!("http://127.0.0.1:{}", server.port);

    // WHEN it is replayed from the Quarantine page
    let browser = Browser::start();
    browser.open(&format!("{base}/console/quarantine"));
    browser.wait_for(&format!("tr[data-item=\"{}\"]", item.id), LIVE);
    browser.run("document.querySelector('details').open = true;");
    browser.screenshot("quarantine-item");
    browser.click(&format!("button[data-replay=\"{}\"]", item.id));

    // THEN the action is recorded, the item is gone, and its event is in the stream
    browser.wait_for("tr[data-action=\"replay\"]", LIVE);
    let log = browser.text("tr[data-action=\"replay\"]");
    assert!(log.contains("1 event(s) stored"), "{log}");
    assert_eq!(
        browser.run(&format!(
            "return document.querySelector('tr[data-item=\"{}\"]') === null;",
            item.id
        )),
        true
    );
    browser.open(&format!("{base}/console/events?sid=SM{:032}", 9));
    browser.wait_for("tr[data-event]", LIVE);
    let row = browser.text("tr[data-event]");
    assert!(row.contains("message.sent"), "{row}");
    let actions = std::fs::read_to_string(dir.join("console-actions.jsonl")).unwrap();
    assert!(actions.contains("\"action\":\"replay\""), "{actions}");
    drop(server);
    assert!(
        helpers::dump(&dir)
            .iter()
            .any(|line| line.contains(&format!("EZ{:032}sent", 9))),
        "the replayed event is in the stream"
    );
}

#[test]
fn the_console_masks_numbers_and_bodies_unless_revealed_for_one_view() {
    let dir = data_dir("console-mask");
    let server = helpers::start_serve(TOKEN, &dir, &[]);
    assert_eq!(
        deliver(
            &server,
            &format!("[{}]", message_event(3, "sent")),
            TOKEN,
            None
        ),
        200
    );
    eventually("the event in the stream", || {
        get(&server, "/console/events").1.contains("tr data-event")
    });
    let (status, page) = get(&server, "/console/events");
    assert_eq!(status, 200);
    assert!(page.contains(&format!("SM{:032}", 3)));
    assert!(
        !page.contains("5551234567") && !page.contains(BODY),
        "masked by default"
    );
    assert!(page.contains("[body hidden: 18 characters]"));
    let (_, revealed) = get(&server, "/console/events?reveal=1");
    assert!(
        revealed.contains(PHONE) && revealed.contains(BODY),
        "revealed on request"
    );
    let (_, again) = get(&server, "/console/events");
    assert!(!again.contains(BODY), "a reveal lasts one page view");
}

#[test]
fn on_loopback_the_console_answers_only_requests_to_a_loopback_name() {
    let dir = data_dir("console-loopback");
    let server = helpers::start_serve(TOKEN, &dir, &[]);
    assert_eq!(get(&server, "/console/deliveries").0, 200);
    // A tunnel (its public host name, X-Forwarded-For) or a DNS-rebinding page: refused.
    for headers in [
        &[("Host", "abc.ngrok.app")][..],
        &[("Host", "attacker.example:3000")][..],
        &[("X-Forwarded-For", "203.0.113.9")][..],
    ] {
        let (status, _, _) = request(&server, "GET", "/console/deliveries", headers);
        assert_eq!(status, 403, "{headers:?}");
    }
    // An action from another site's page is refused, from the console's own accepted.
    let (status, _, _) = request(
        &server,
        "POST",
        "/console/quarantine/x/discard",
        &[("Origin", "http://attacker.example")],
    );
    assert_eq!(status, 403);
    let (status, _, _) = request(&server, "POST", "/console/quarantine/x/discard", &[]);
    assert_eq!(status, 403, "no Origin, no action");
    let origin = format!("http://127.0.0.1:{}", server.port);
    let (status, head, _) = request(
        &server,
        "POST",
        "/console/quarantine/x/discard",
        &[("Origin", &origin)],
    );
    assert_eq!(status, 303, "{head}");
    // Every page says: no framing, scripts from itself only, no referrer.
    let (_, head, _) = request(&server, "GET", "/console/deliveries", &[]);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("referrer-policy: same-origin"));
}

#[test]
fn off_loopback_the_console_needs_its_token_and_ingest_is_unchanged() {
    // Without a token, no console: /console is ingest's unknown route, as before.
    let dir = data_dir("console-off");
    let server = helpers::start_serve(TOKEN, &dir, &["--host", "0.0.0.0"]);
    let (status, body) = get(&server, "/console/deliveries");
    assert_eq!(status, 404);
    assert!(body.contains("unknown route"), "{body}");
    drop(server);
    let server = helpers::start_serve(TOKEN, &dir, &["--no-console"]);
    assert_eq!(get(&server, "/console/deliveries").0, 404, "--no-console");
    drop(server);

    // With one, every console route wants it; the ingest routes do not change.
    let server = helpers::start_serve(
        TOKEN,
        &dir,
        &["--host", "0.0.0.0", "--console-token", CONSOLE_TOKEN],
    );
    for path in [
        "/console/deliveries",
        "/console/events",
        "/console/live",
        "/console/quarantine",
    ] {
        assert_eq!(get(&server, path).0, 401, "{path}");
    }
    let (status, _, _) = request(
        &server,
        "GET",
        "/console/deliveries",
        &[("Authorization", "Bearer wrong-token-0123456789")],
    );
    assert_eq!(status, 401);
    let bearer = format!("Bearer {CONSOLE_TOKEN}");
    let (status, _, _) = request(
        &server,
        "GET",
        "/console/deliveries",
        &[("Authorization", &bearer)],
    );
    assert_eq!(status, 200);
    let (status, head, _) = request(
        &server,
        "GET",
        &format!("/console/events?token={CONSOLE_TOKEN}"),
        &[],
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(CONSOLE_TOKEN),
        "the cookie holds a hash of the token"
    );
    let location = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("location: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    assert_eq!(
        location, "/console/events",
        "the token leaves the address bar"
    );
    let value = cookie.split(';').next().unwrap();
    let (status, _, _) = request(&server, "GET", "/console/events", &[("Cookie", value)]);
    assert_eq!(status, 200);
    // (serve's URL is http://0.0.0.0:PORT, what Twilio would be told to call)
    let own = format!("http://0.0.0.0:{}/twilio/events", server.port);
    let event = format!("[{}]", message_event(4, "sent"));
    assert_eq!(deliver(&server, &event, TOKEN, Some(&own)), 200);

    // A token too short to resist guessing is a usage error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args([
            "serve",
            "--port",
            "0",
            "--auth-token",
            TOKEN,
            "--console-token",
            "short",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-token must be at least"));
}
