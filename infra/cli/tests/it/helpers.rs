//! What the CLI's process-level tests share: a real `twilio-events serve` on a free port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh, empty data directory for one test.
pub fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts `serve` on a free port with `token` and waits until it says where it listens.
pub fn start_serve(token: &str, data_dir: &Path, extra: &[&str]) -> Server {
    let args: Vec<&str> = ["--auth-token", token]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    start_serve_with(data_dir, &args)
}

/// Starts `serve` with exactly `args` for its secrets and options (none from the environment).
pub fn start_serve_with(data_dir: &Path, args: &[&str]) -> Server {
    start_serve_on(0, data_dir, args)
}

/// [`start_serve_with`] on `port` (0: a free one).
pub fn start_serve_on(port: u16, data_dir: &Path, args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["serve", "--port", &port.to_string(), "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env_remove("TWILIO_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run twilio-events serve");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let first = lines
        .next()
        .expect("serve printed nothing")
        .expect("readable output");
    // "… listening on http://HOST:PORT (…)", whatever the --host.
    let port = first
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|address| address.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, port }
}

/// One raw POST: `target` is the path and query as sent; returns status and body.
pub fn post(
    server: &Server,
    target: &str,
    content_type: &str,
    signature: &str,
    body: &[u8],
) -> (u16, String) {
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nX-Twilio-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, _, body) = exchange(server, head.as_bytes(), body);
    (status, body)
}

/// Sends `head` and `body` on a new connection (the head asks to close it) and reads the whole
/// answer: its status, head and body.
pub fn exchange(server: &Server, head: &[u8], body: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(head).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// The stream, one event per line, after `serve` has stopped.
pub fn dump(data_dir: &Path) -> Vec<String> {
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

/// Waits until `serve`'s `consumer` (`crm-sync`, `quota-alert`) has processed the whole local
/// stream in `data_dir`: its checkpoint is the last sequence number (read with `stream replay
/// --dry-run`, which changes nothing), then returns the lines of `file` in `data_dir`.
pub fn lines_once_consumed(data_dir: &Path, consumer: &str, file: &str) -> Vec<serde_json::Value> {
    let started = std::time::Instant::now();
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_twilio-events"))
            .args([
                "stream",
                "replay",
                "--consumer",
                consumer,
                "--from-start",
                "--dry-run",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .output()
            .unwrap();
        // "<consumer> would read N record(s) again (checkpoint C -> 0); …"
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let number = |after: &str| -> Option<u64> {
            text.split(after)
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        if let (Some(records), Some(checkpoint)) = (number("would read "), number("(checkpoint ")) {
            if records > 0 && checkpoint == records {
                break;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "{consumer} did not catch up: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::fs::read_to_string(data_dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Serves `app` on a free port of 127.0.0.1, in a thread of its own for the rest of the test
/// process (the tests' fakes of Twilio's APIs and of CRMs); answers `http://127.0.0.1:PORT`.
pub fn serve_in_background(app: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}
