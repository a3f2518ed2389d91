//! A Kafka-protocol broker for tests: Tansu (crates.io, Apache-2.0; installed and cached by
//! `infra/scripts/services.sh install-kafka`, its path in `TWILIO_EVENTS_TANSU`, set by
//! infra/scripts/test.sh). Each test starts its own broker, so that it can stop and restart it;
//! the broker keeps its log in SQLite (Tansu's memory engine reports wrong high watermarks), so a
//! restarted broker has everything it acknowledged before.
//!
//! Topics are read back with librdkafka's consumer, the client the forwarder itself uses, from
//! the beginning of every partition up to its high watermark.

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One message as read from the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Consumed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The Tansu binary, or a failure that says how to get it.
pub fn tansu_binary() -> PathBuf {
    let path = std::env::var_os("TWILIO_EVENTS_TANSU")
        .map(PathBuf::from)
        .expect(
            "TWILIO_EVENTS_TANSU is not set: run the tests through infra/scripts/test.sh, or \
         export TWILIO_EVENTS_TANSU=$(infra/scripts/services.sh install-kafka)",
        );
    assert!(path.is_file(), "TWILIO_EVENTS_TANSU={path:?} is not a file");
    path
}

/// A running (or stopped) broker on a fixed port with a fixed store.
pub struct Broker {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    /// A broker on a free port, its store in a new directory.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free local port");
        let dir = std::env::temp_dir().join(crate::aws::unique("tansu"));
        std::fs::create_dir_all(&dir).expect("broker dir");
        let mut broker = Self {
            port,
            dir,
            child: None,
            starts: 0,
        };
        broker.restart();
        broker
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the broker's output goes (read it when a test fails).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("tansu.log")
    }

    /// Kills the broker (SIGKILL: nothing is flushed that was not already acknowledged).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and store; returns when it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("broker log");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // Tansu reads the path after `sqlite://` relative to its working directory.
        let store = "sqlite://tansu.db";
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", store])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("broker log"))
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        self.starts += 1;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu does not listen on {} after 30 s; its log: {}",
                self.port,
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        config
    }

    /// Creates `topic` with `partitions` partitions.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let results = admin
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .expect("create_topics");
        for result in results {
            result.unwrap_or_else(|(name, code)| panic!("cannot create topic {name}: {code:?}"));
        }
    }

    /// How many messages `topic` holds: the sum of its partitions' high watermarks.
    pub fn message_count(&self, topic: &str, partitions: i32) -> i64 {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", crate::aws::unique("counter"))
            .create()
            .expect("consumer");
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .map(|(low, high)| high - low)
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Waits until `topic` holds at least `expected` messages and no more arrive for 3 seconds
    /// (so that late duplicates are counted too); returns the count.
    pub fn settled_count(
        &self,
        topic: &str,
        partitions: i32,
        expected: i64,
        within: Duration,
    ) -> i64 {
        let started = Instant::now();
        let mut last = (-1, Instant::now());
        loop {
            let count = self.message_count(topic, partitions);
            if count != last.0 {
                last = (count, Instant::now());
            } else if count >= expected && last.1.elapsed() >= Duration::from_secs(3) {
                return count;
            }
            assert!(
                started.elapsed() < within,
                "{topic} holds {count} of {expected} messages after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every message of `topic`, partition by partition in offset order.
    pub fn read_all(&self, topic: &str, partitions: i32) -> Vec<Consumed> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", crate::aws::unique("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        let mut remaining = 0i64;
        for partition in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("watermarks");
            remaining += high - low;
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        let mut consumed = Vec::new();
        let started = Instant::now();
        while (consumed.len() as i64) < remaining {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "read {} of {remaining} messages of {topic} in 60 s",
                consumed.len()
            );
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let message = message.expect("a message");
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| {
                            (
                                header.key.to_owned(),
                                String::from_utf8_lossy(header.value.unwrap_or_default())
                                    .into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            consumed.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        consumed.sort_by_key(|m| (m.partition, m.offset));
        consumed
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
