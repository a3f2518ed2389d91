//! `twilio-events serve` against clients that are slow, idle, too many or too big, over real
//! TCP: the header, body and idle timeouts, the connection cap and the body limit. Each test
//! also sends a genuine signed delivery, the control that must still get through.

use super::helpers::{self, Server, data_dir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

const TOKEN: &str = "serve-limits-token";
/// How late a timeout may fire on a busy machine and still count as on time.
const GRACE: Duration = Duration::from_millis(1500);

fn start(dir: &Path, extra: &[&str]) -> Server {
    helpers::start_serve(TOKEN, dir, extra)
}

fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", server.port)).expect("connect to serve")
}

/// A delivery of events `ids` (one JSON array), each padded to about `pad` bytes.
fn delivery(ids: std::ops::Range<usize>, pad: usize) -> Vec<u8> {
    let events: Vec<String> = ids
        .map(|i| {
            format!(
                r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","source":"/2010-04-01/Accounts/AC7/Messages/SM{i:032}.json","id":"EZ7{i:031}","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{i:032}","accountSid":"AC7","messageStatus":"DELIVERED","pad":"{}"}}}}"#,
                "x".repeat(pad)
            )
        })
        .collect();
    format!("[{}]", events.join(",")).into_bytes()
}

/// The head of a POST of `body` to /twilio/events, signed with `token` as Twilio signs it (no
/// signature at all with `None`).
fn head(server: &Server, body: &[u8], token: Option<&str>, connection: &str) -> String {
    let base = format!("http://127.0.0.1:{}", server.port);
    let signed = sign(
        &SigningKey::AuthToken(token.unwrap_or_default().into()),
        &format!("{base}/twilio/events"),
        body,
        BodyEncoding::Json,
    );
    let signature = match token {
        Some(_) => format!("X-Twilio-Signature: {}\r\n", signed.signature),
        None => String::new(),
    };
    format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n{signature}Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        &signed.url[base.len()..],
        server.port,
        body.len()
    )
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one answer (its head and its Content-Length body); `None` when the connection closes
/// first or nothing complete arrives within `within`.
fn read_answer(stream: &mut TcpStream, within: Duration) -> Option<Answer> {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0; 16 * 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head.split(' ').nth(1)?.parse().ok()?;
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                return Some(Answer { status, body });
            }
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return None,
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// When the server closed `stream` (end of file or reset), reading and discarding whatever it
/// sends first; `None` if it is still open at `deadline`.
fn closed_by(stream: &mut TcpStream, deadline: Instant) -> Option<Instant> {
    let mut chunk = [0; 16 * 1024];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut chunk) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return Some(Instant::now()),
        }
    }
}

/// Writes `bytes` a few at a time, one write every `every`, until done or the server hangs up.
fn trickle(stream: &TcpStream, bytes: Vec<u8>, every: Duration) -> JoinHandle<()> {
    let mut stream = stream.try_clone().expect("clone the connection");
    thread::spawn(move || {
        for piece in bytes.chunks(4) {
            if stream.write_all(piece).is_err() {
                return;
            }
            thread::sleep(every);
        }
    })
}

/// Sends a whole request on its own connection; its answer.
fn post(server: &Server, head: &str, body: &[u8]) -> Option<Answer> {
    let mut stream = connect(server);
    let mut writer = stream.try_clone().expect("clone the connection");
    let (head, body) = (head.as_bytes().to_vec(), body.to_vec());
    // Written beside the read: a refused body is answered before it is all sent.
    thread::spawn(move || {
        let _ = writer.write_all(&head);
        let _ = writer.write_all(&body);
    });
    read_answer(&mut stream, Duration::from_secs(20))
}

/// A genuine delivery, signed and sent whole.
fn deliver(server: &Server, body: &[u8]) -> Answer {
    post(server, &head(server, body, Some(TOKEN), "close"), body).expect("an answer")
}

/// The event lines of the local stream.
fn stream_dump(dir: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["stream", "dump", "--data-dir"])
        .arg(dir)
        .output()
        .expect("run stream dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_client_that_sends_its_headers_slowly_or_not_at_all_is_closed_at_the_header_timeout() {
    // GIVEN serve with a 1 s header read timeout
    let dir = data_dir("limits-headers");
    let server = start(&dir, &["--header-read-timeout", "1s"]);
    let timeout = Duration::from_secs(1);

    // WHEN one client sends a request head a header line at a time, never finishing it, and
    // another connects and sends nothing
    let mut slow = connect(&server);
    let slow_started = Instant::now();
    let _writer = trickle(
        &slow,
        b"POST /twilio/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            .iter()
            .chain(b"X-Slow: 1\r\n".repeat(40).iter())
            .copied()
            .collect(),
        Duration::from_millis(50),
    );
    let mut silent = connect(&server);
    let silent_started = Instant::now();

    // THEN the server closes both once the timeout has passed, not before
    for (name, stream, started) in [
        ("slow", &mut slow, slow_started),
        ("silent", &mut silent, silent_started),
    ] {
        let closed = closed_by(stream, started + timeout + GRACE)
            .unwrap_or_else(|| panic!("the {name} connection is still open"));
        let after = closed - started;
        assert!(
            after >= timeout - Duration::from_millis(100),
            "{name}: closed after {after:?}, before the timeout"
        );
    }

    // AND a genuine delivery is still accepted
    let answer = deliver(&server, &delivery(0..1, 10));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("\"accepted\":1"), "{answer:?}");
}

#[test]
fn a_body_that_trickles_is_cut_off_at_the_body_timeout_and_nothing_of_it_is_stored() {
    // GIVEN serve with a 1 s body read timeout
    let dir = data_dir("limits-body");
    let server = start(&dir, &["--body-read-timeout", "1s"]);
    let timeout = Duration::from_secs(1);
    let body = delivery(100..101, 400);

    // WHEN a signed delivery's head arrives at once and its body a few bytes every 50 ms
    let mut stream = connect(&server);
    stream
        .write_all(head(&server, &body, Some(TOKEN), "keep-alive").as_bytes())
        .unwrap();
    let started = Instant::now();
    let _writer = trickle(&stream, body.clone(), Duration::from_millis(50));

    // THEN the server answers 503 (Twilio would retry) and closes the connection, after the
    // timeout and not before
    let answer = read_answer(&mut stream, timeout + GRACE).expect("an answer within the timeout");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("--body-read-timeout"), "{answer:?}");
    let closed = closed_by(&mut stream, started + timeout + GRACE).expect("the connection closed");
    assert!(
        closed - started >= timeout - Duration::from_millis(100),
        "closed after {:?}",
        closed - started
    );

    // AND nothing of the delivery was stored: not in the stream, not quarantined, not claimed
    assert_eq!(stream_dump(&dir), Vec::<String>::new());
    assert!(!dir.join("quarantine.jsonl").exists());
    let answer = deliver(&server, &body);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.contains("\"accepted\":1"),
        "the whole delivery is new, not a duplicate: {answer:?}"
    );
    assert_eq!(stream_dump(&dir).len(), 1);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    // GIVEN serve with a 1 s idle timeout (and a longer header timeout)
    let dir = data_dir("limits-idle");
    let server = start(
        &dir,
        &["--idle-timeout", "1s", "--header-read-timeout", "5s"],
    );
    let timeout = Duration::from_secs(1);

    // WHEN a client delivers twice on one keep-alive connection, then stays idle
    let mut stream = connect(&server);
    for (i, pause) in [(200, Duration::ZERO), (201, Duration::from_millis(300))] {
        thread::sleep(pause);
        let body = delivery(i..i + 1, 10);
        stream
            .write_all(head(&server, &body, Some(TOKEN), "keep-alive").as_bytes())
            .unwrap();
        stream.write_all(&body).unwrap();
        let answer = read_answer(&mut stream, Duration::from_secs(5)).expect("an answer");
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let idle_since = Instant::now();

    // THEN the server closes it once the idle timeout has passed, not before
    let closed = closed_by(&mut stream, idle_since + timeout + GRACE)
        .expect("the idle connection is still open");
    assert!(
        closed - idle_since >= timeout - Duration::from_millis(100),
        "closed after {:?}",
        closed - idle_since
    );
    assert_eq!(stream_dump(&dir).len(), 2);
}

#[test]
fn past_the_connection_cap_a_delivery_waits_and_gets_through_once_a_slot_frees() {
    // GIVEN serve taking at most 2 connections, both held by clients that send nothing
    let dir = data_dir("limits-cap");
    let server = start(
        &dir,
        &["--max-connections", "2", "--header-read-timeout", "6s"],
    );
    let first = connect(&server);
    let mut second = connect(&server);
    thread::sleep(Duration::from_millis(300));

    // WHEN a genuine delivery arrives on a third connection
    let body = delivery(300..301, 10);
    let request = head(&server, &body, Some(TOKEN), "close");
    let mut third = connect(&server);
    third.write_all(request.as_bytes()).unwrap();
    third.write_all(&body).unwrap();

    // THEN it is not served while the cap is reached
    assert!(
        read_answer(&mut third, Duration::from_millis(800)).is_none(),
        "answered past the connection cap"
    );

    // WHEN one of the silent clients goes away
    drop(first);
    let freed = Instant::now();

    // THEN the waiting delivery is served at once, and accepted
    let answer = read_answer(&mut third, Duration::from_secs(2)).expect("served once a slot freed");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        freed.elapsed() < Duration::from_secs(2),
        "{:?}",
        freed.elapsed()
    );
    assert_eq!(stream_dump(&dir).len(), 1);

    // AND the other silent client is still closed at the header timeout, freeing its slot
    assert!(closed_by(&mut second, Instant::now() + Duration::from_secs(6) + GRACE).is_some());
    let answer = deliver(&server, &delivery(301..302, 10));
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// 3 MiB of events (four padded events).
fn three_mib(first_id: usize) -> Vec<u8> {
    let body = delivery(first_id..first_id + 4, 3 * 1024 * 1024 / 4 - 300);
    assert!(body.len() >= 3 * 1024 * 1024 && body.len() < 4 * 1024 * 1024);
    body
}

#[test]
fn a_3_mib_delivery_is_accepted_under_a_4_mib_limit_and_refused_413_under_the_default() {
    // GIVEN serve configured for bodies up to 4 MiB
    let dir = data_dir("limits-4mib");
    let server = start(&dir, &["--max-body-bytes", "4194304"]);
    let body = three_mib(400);

    // WHEN a genuine 3 MiB delivery arrives, THEN it is accepted whole
    let answer = deliver(&server, &body);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("\"accepted\":4"), "{answer:?}");
    // AND its replay is a duplicate
    let answer = deliver(&server, &body);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("\"duplicates\":4"), "{answer:?}");
    // AND the same body tampered with is refused (503: Twilio would retry, nothing stored)
    let mut tampered = three_mib(404);
    let signed_for = head(&server, &tampered, Some(TOKEN), "close");
    let at = tampered.len() - 10;
    tampered[at] = b'y';
    let answer = post(&server, &signed_for, &tampered).expect("an answer");
    assert_eq!(answer.status, 503, "{answer:?}");
    // AND an unsigned one gets 401
    let unsigned = three_mib(408);
    let answer =
        post(&server, &head(&server, &unsigned, None, "close"), &unsigned).expect("an answer");
    assert_eq!(answer.status, 401, "{answer:?}");
    drop(server);
    let stream = stream_dump(&dir);
    assert_eq!(stream.len(), 4);
    assert!(stream.iter().all(|e| e.len() > 700_000));

    // GIVEN serve with the default limit, WHEN the same delivery arrives, THEN 413
    let dir = data_dir("limits-default");
    let server = start(&dir, &[]);
    let answer = deliver(&server, &body);
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(stream_dump(&dir), Vec::<String>::new());
}

#[test]
fn a_body_over_the_limit_is_refused_as_soon_as_the_limit_is_crossed() {
    // GIVEN serve with the default limit (256 KiB)
    let dir = data_dir("limits-early");
    let server = start(&dir, &[]);
    let body = delivery(500..501, 1024 * 1024);

    // WHEN a request says its body is 1 MiB, and sends none of it
    let mut stream = connect(&server);
    stream
        .write_all(head(&server, &body, Some(TOKEN), "keep-alive").as_bytes())
        .unwrap();
    // THEN it is refused at once, from its Content-Length
    let answer =
        read_answer(&mut stream, Duration::from_secs(2)).expect("an answer before the body");
    assert_eq!(answer.status, 413, "{answer:?}");

    // WHEN a chunked body sends 300 KiB and then waits
    let mut stream = connect(&server);
    let signed = head(&server, &body, Some(TOKEN), "keep-alive").replace(
        &format!("Content-Length: {}\r\n", body.len()),
        "Transfer-Encoding: chunked\r\n",
    );
    stream.write_all(signed.as_bytes()).unwrap();
    let chunk = &body[..300 * 1024];
    write!(stream, "{:x}\r\n", chunk.len()).unwrap();
    stream.write_all(chunk).unwrap();
    stream.write_all(b"\r\n").unwrap();
    // THEN it is refused without waiting for the rest
    let answer =
        read_answer(&mut stream, Duration::from_secs(2)).expect("an answer before the end");
    assert_eq!(answer.status, 413, "{answer:?}");

    // AND a genuine delivery is still accepted
    let answer = deliver(&server, &delivery(501..502, 10));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stream_dump(&dir).len(), 1);
}
