//! `twilio-events serve` as a user runs it: a real process, real HTTP, requests signed as
//! Twilio signs them, the embedded store on disk across a restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use twilio_events::signature::{BodyEncoding, SigningKey, sign};

const TOKEN: &str = "serve-test-token";

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts serve on a free port and waits until it says where it listens.
fn start(data_dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["serve", "--port", "0", "--auth-token", TOKEN, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("serve printed nothing").unwrap();
    let port = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, port }
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
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        stream,
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nX-Twilio-Signature: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        signed.signature,
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

fn dump(data_dir: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["stream", "dump", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
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
    let form = b"AccountSid=AC5&UsageTriggerSid=UT5&UsageCategory=sms&TriggerBy=count&TriggerValue=100&CurrentValue=101&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000";
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
