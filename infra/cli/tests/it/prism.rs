//! Stoplight Prism serving one of Twilio's own OpenAPI descriptions ([`Description`]: the
//! Events API's, the Messaging API's or the 2010-04-01 REST API's, in
//! tests/fixtures/twilio/openapi/, from twilio/twilio-oai), so that what `setup` and `reconcile`
//! send is checked by something this project did not write.
//!
//! Two modes: [`Prism::mock`] answers from the description alone (its examples) and refuses a
//! request that breaks it with 422; [`Prism::proxy`] forwards every call to an upstream (the
//! tests' stateful fake of Twilio's APIs) and logs each way the request or the answer breaks
//! the description as a `Violation:` line, which [`Prism::violations`] collects. (Of an answer,
//! Prism 5.14.2's proxy checks the status code and headers; it does not read the upstream's body,
//! so the fake's answer bodies are only as faithful as the description's examples they copy.)
//!
//! The proxy runs without `--errors` (which would turn a violation into Prism's own error
//! answer) because of one Prism limitation: it reads a repeated form key (`Types=…&Types=…`, how
//! Twilio's API and its official libraries send a list) as one value, so it reports a list field
//! as "must be array" (stoplightio/prism#2473). Tests allow exactly that violation and no other.
//!
//! Prism is installed by `infra/scripts/services.sh install-tools`; infra/scripts/test.sh puts its
//! path in `TWILIO_EVENTS_PRISM`.

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prism may take to load the description and listen (a Node.js start on a busy CI).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Which of Twilio's OpenAPI descriptions (copied into tests/fixtures/twilio/openapi/) Prism
/// serves.
#[derive(Clone, Copy, Debug)]
pub enum Description {
    /// `twilio_events_v1.json`: `events.twilio.com`.
    EventsV1,
    /// `twilio_messaging_v1.json`: `messaging.twilio.com`.
    MessagingV1,
    /// `twilio_api_v2010.json`: `api.twilio.com`, paths below `/2010-04-01`.
    ApiV2010,
}

impl Description {
    fn path(self) -> PathBuf {
        let file = match self {
            Self::EventsV1 => "twilio_events_v1.json",
            Self::MessagingV1 => "twilio_messaging_v1.json",
            Self::ApiV2010 => "twilio_api_v2010.json",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/twilio/openapi")
            .join(file)
    }

    /// What the API root a client is given ends with.
    fn root(self) -> &'static str {
        match self {
            Self::EventsV1 | Self::MessagingV1 => "/v1",
            // Clients of api.twilio.com are given the host; paths carry /2010-04-01.
            Self::ApiV2010 => "",
        }
    }
}

pub struct Prism {
    child: Child,
    log: PathBuf,
    /// The API root to give setup (`--events-api-base`, `--messaging-api-base`).
    pub base: String,
}

impl Prism {
    /// A mock generated from the description: no state, answers from its examples.
    pub fn mock(description: Description) -> Self {
        Self::start("mock", description, &[])
    }

    /// A validating proxy in front of `upstream` (`http://127.0.0.1:PORT`, without `/v1`).
    pub fn proxy(description: Description, upstream: &str) -> Self {
        Self::start("proxy", description, &[upstream])
    }

    fn start(mode: &str, description: Description, extra: &[&str]) -> Self {
        let prism = std::env::var("TWILIO_EVENTS_PRISM").unwrap_or_else(|_| {
            panic!(
                "TWILIO_EVENTS_PRISM is not set: run the tests with infra/scripts/test.sh, which \
                 installs Stoplight Prism (infra/scripts/services.sh install-tools)"
            )
        });
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("prism-{mode}-{port}-{}.log", std::process::id()));
        // `proxy <document> <upstream>`: the upstream comes after the document.
        let child = Command::new(&prism)
            .arg(mode)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(description.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(log.with_extension("err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Prism ({prism}): {e}"));
        let mut prism = Self {
            child,
            log,
            base: format!("http://127.0.0.1:{port}{}", description.root()),
        };
        prism.wait_until_listening();
        prism
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        while !self.output().contains("Prism is listening") {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Prism exited ({status}) before listening:\n{}",
                    self.output()
                );
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "Prism did not listen within {READY_TIMEOUT:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything Prism printed so far (stdout, then stderr).
    pub fn output(&self) -> String {
        let mut text = String::new();
        for path in [self.log.clone(), self.log.with_extension("err")] {
            if let Ok(mut file) = File::open(&path) {
                let _ = file.read_to_string(&mut text);
            }
        }
        text
    }

    /// Prism's log once it stops growing: Prism writes a request's verdict after answering, so
    /// a reader right after the answer can be a line early.
    pub fn settled_output(&self) -> String {
        let started = Instant::now();
        let mut last = self.output();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.output();
            if now == last || started.elapsed() > Duration::from_secs(10) {
                return now;
            }
            last = now;
        }
    }

    /// How many requests Prism received.
    pub fn requests(&self) -> usize {
        self.settled_output().matches("Request received").count()
    }

    /// Prism's error lines: a refused request, a violation, a failed forward.
    pub fn errors(&self) -> Vec<String> {
        self.settled_output()
            .lines()
            .filter(|line| line.contains('✖'))
            .map(str::to_owned)
            .collect()
    }

    /// Each way a request or an answer broke the description (errors and warnings), as
    /// `request.body.Types Request body property Types must be array`.
    pub fn violations(&self) -> Vec<String> {
        self.settled_output()
            .lines()
            .filter_map(|line| line.split_once("Violation: "))
            .map(|(_, violation)| violation.trim().to_owned())
            .collect()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(self.log.with_extension("err"));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
