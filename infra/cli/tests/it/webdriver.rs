//! A small WebDriver client (the W3C protocol over plain HTTP/1.1) driving Debian's chromium
//! through chromedriver, for the console's browser tests: a session, navigation, elements,
//! a script, screenshots. Hand-rolled on a TcpStream, like the other raw requests of these
//! tests, rather than a client crate and its async stack for a dozen calls.
//!
//! infra/scripts/test.sh installs chromium and chromium-driver (`services.sh install-browser`)
//! and exports TWILIO_EVENTS_CHROMIUM and TWILIO_EVENTS_CHROMEDRIVER; without them the
//! Debian paths are tried.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key W3C WebDriver names an element reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tool(variable: &str, debian: &str) -> PathBuf {
    if let Ok(path) = std::env::var(variable) {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(debian);
    assert!(
        path.exists(),
        "{variable} is not set and {debian} does not exist: run the tests with \
         infra/scripts/test.sh, which installs chromium and chromium-driver \
         (infra/scripts/services.sh install-browser)"
    );
    path
}

/// A chromedriver process and one headless chromium session, both ended when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One HTTP exchange with chromedriver; answers the JSON `value`.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    // HTTP/1.1: chromedriver does not answer 1.0, and keeps the connection open after its
    // answer whatever Connection says, so the body is read by its Content-Length.
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let (head_len, body_len) = loop {
        let read = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err(format!(
                "connection closed: {}",
                String::from_utf8_lossy(&response)
            ));
        }
        response.extend_from_slice(&chunk[..read]);
        let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        break (end + 4, length);
    };
    while response.len() < head_len + body_len {
        let read = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&response[head_len..]).into_owned();
    let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error") {
        return Err(format!("{error}: {}", value["message"]));
    }
    Ok(value)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Browser {
    /// Starts chromedriver and a headless chromium (flags that work as root in a container).
    pub fn start() -> Self {
        let chromium = tool("TWILIO_EVENTS_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("TWILIO_EVENTS_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromedriver");
        let started = Instant::now();
        while call(port, "GET", "/status", None).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile =
            std::env::temp_dir().join(format!("console-chromium-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let session = call(port, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        let session = session["sessionId"].as_str().unwrap().to_owned();
        Self {
            driver,
            port,
            session,
            profile,
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(self.port, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page and answers what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The visible text of the first element `selector` matches.
    pub fn text(&self, selector: &str) -> String {
        let element = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": selector })),
        );
        let id = element[ELEMENT].as_str().unwrap().to_owned();
        self.command("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the first element `selector` matches; found again if a live update replaced it
    /// in between.
    pub fn click(&self, selector: &str) {
        let mut attempts = 0;
        loop {
            let element = self.command(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": selector })),
            );
            let id = element[ELEMENT].as_str().unwrap().to_owned();
            let path = format!("/session/{}/element/{id}/click", self.session);
            match call(self.port, "POST", &path, Some(&json!({}))) {
                Ok(_) => return,
                Err(error) if error.contains("stale element") && attempts < 5 => attempts += 1,
                Err(error) => panic!("click {selector}: {error}"),
            }
        }
    }

    /// Waits until an element matches `selector`, at most `within`.
    pub fn wait_for(&self, selector: &str, within: Duration) {
        let script = format!(
            "return document.querySelector({}) !== null;",
            Value::from(selector)
        );
        let started = Instant::now();
        while self.run(&script) != Value::Bool(true) {
            assert!(
                started.elapsed() < within,
                "nothing matched {selector} within {within:?}; the page:\n{}",
                self.run("return document.body.innerText;")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the window as `<target>/console-screenshots/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// `target/console-screenshots`, wherever CARGO_TARGET_DIR puts the target directory: CI keeps
/// it as an artifact.
pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots")
}
