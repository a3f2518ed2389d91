//! The functions' binaries under a real Lambda Runtime API emulator, as Lambda runs them.
//!
//! The emulator is cargo-lambda's (`cargo lambda watch --only-lambda-apis`, from PyPI like the
//! other tools; path in `TWILIO_EVENTS_CARGO_LAMBDA`, set by infra/scripts/test.sh). Why it:
//! it is maintained, installs offline-capable from a registry in seconds, needs no Docker (AWS's
//! own runtime interface emulator ships as a container image or a GitHub release binary, neither
//! from a registry), and implements the Runtime API a function talks to (`invocation/next`,
//! `response`, `error`, `init/error`) plus the Invoke API a test calls.
//!
//! A test builds an [`EmulatedStack`] for one function of template.yaml: the resources the
//! function's environment refers to are created in the AWS emulators (tables with the
//! template's key schemas), the environment is the template's own with those ids, and the
//! binary runs against the Runtime API with it.

use crate::aws::{
    create_queue, create_stream, ddb_local_endpoint, moto_endpoint, sdk_config, unique,
};
use crate::sam_template::{Resolution, SamTemplate};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root (cargo-lambda reads the workspace's metadata from it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn wait_for_port(port: u16, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port} after {within:?}");
}

/// Lines a child process writes, collected as it writes them.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    fn collect(&self, stream: impl std::io::Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lines that are JSON objects (the functions log one object a line).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(serde_json::Value::is_object)
            .collect()
    }
}

/// cargo-lambda's Runtime API emulator, on its own port, for one function.
pub struct RuntimeEmulator {
    child: Child,
    port: u16,
    output: Output,
}

impl RuntimeEmulator {
    pub fn start() -> Self {
        let cargo_lambda = std::env::var("TWILIO_EVENTS_CARGO_LAMBDA").unwrap_or_else(|_| {
            panic!(
                "TWILIO_EVENTS_CARGO_LAMBDA is not set: run the tests with infra/scripts/test.sh, \
                 which installs cargo-lambda (infra/scripts/services.sh install-tools)"
            )
        });
        let port = free_port();
        let mut child = Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(repo_root())
            // tower_http's debug lines record each Runtime API call the function makes.
            .env("RUST_LOG", "info,tower_http=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cargo_lambda}: {e}"));
        let output = Output::default();
        output.collect(child.stdout.take().expect("piped"));
        output.collect(child.stderr.take().expect("piped"));
        wait_for_port(port, Duration::from_secs(30));
        Self {
            child,
            port,
            output,
        }
    }

    /// `AWS_LAMBDA_RUNTIME_API` for a function run against this emulator.
    pub fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }

    /// Invokes the function (RequestResponse) and returns its answer.
    pub async fn invoke(&self, payload: &serde_json::Value) -> serde_json::Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        );
        let request = reqwest::Client::new()
            .post(&url)
            .timeout(Duration::from_secs(60))
            .json(payload)
            .send();
        tokio::pin!(request);
        // A function that fails to start never answers: say so at once, with what it said.
        let response = loop {
            tokio::select! {
                answer = &mut request => break answer.unwrap_or_else(|e| panic!("invoke {url}: {e}")),
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if self.received_init_error() {
                        panic!(
                            "the function reported an init error to the Runtime API instead of answering:\n{}",
                            self.output
                                .lines()
                                .iter()
                                .filter(|l| l.contains("rror"))
                                .cloned()
                                .collect::<Vec<_>>()
                                .join("\n")
                        );
                    }
                }
            }
        };
        let status = response.status();
        let body = response.bytes().await.expect("an answer body");
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "invoke answered {status} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Whether the function reported an init error through the Runtime API, and the
    /// emulator took it.
    pub fn received_init_error(&self) -> bool {
        self.output.lines().iter().any(|l| {
            l.contains("uri=/.rt/2018-06-01/runtime/init/error")
                && l.contains("finished processing request")
                && l.contains("status=200")
        })
    }

    pub fn output(&self) -> &Output {
        &self.output
    }
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A function's binary running against a [`RuntimeEmulator`].
pub struct FunctionProcess {
    child: Child,
    output: Output,
}

impl FunctionProcess {
    pub fn spawn(
        binary: &Path,
        env: &BTreeMap<String, String>,
        emulator: &RuntimeEmulator,
    ) -> Self {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let output = Output::default();
        output.collect(child.stdout.take().expect("piped"));
        output.collect(child.stderr.take().expect("piped"));
        Self { child, output }
    }

    /// Waits for the process to exit (a failed start), or `None` if it still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads drain what the process wrote last.
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn output(&self) -> &Output {
        &self.output
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The resources one function's template environment refers to, created in the emulators,
/// and the environment the function gets.
pub struct EmulatedStack {
    /// Logical id → physical id (table name, stream name, queue URL, topic or secret ARN).
    pub resources: BTreeMap<String, String>,
    /// The function's environment, as template.yaml gives it, plus the emulator endpoints.
    pub env: BTreeMap<String, String>,
}

impl EmulatedStack {
    /// For `function_id` (e.g. `IngestFunction`): parameters override the template's defaults;
    /// `secrets` gives a Secrets Manager secret's value by logical id.
    pub async fn for_function(
        function_id: &str,
        parameters: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Self {
        let template = SamTemplate::load();
        let expressions = template.environment(function_id);
        let mut referenced = BTreeSet::new();
        for value in expressions.values() {
            collect_refs(value, &mut referenced);
        }
        let moto = sdk_config(&moto_endpoint()).await;
        let ddb_local = sdk_config(&ddb_local_endpoint()).await;
        let mut resources = BTreeMap::new();
        for id in referenced {
            let Some(kind) = template.try_resource_type(&id) else {
                continue; // a parameter
            };
            let physical = match kind {
                "AWS::DynamoDB::Table" => {
                    let name = unique(&id.to_lowercase());
                    create_table(
                        &aws_sdk_dynamodb::Client::new(&ddb_local),
                        &name,
                        &template.table_keys(&id),
                        &template.table_indexes(&id),
                    )
                    .await;
                    name
                }
                "AWS::Kinesis::Stream" => {
                    let name = unique(&id.to_lowercase());
                    create_stream(&aws_sdk_kinesis::Client::new(&moto), &name, 1).await;
                    name
                }
                "AWS::SQS::Queue" => {
                    create_queue(
                        &aws_sdk_sqs::Client::new(&moto),
                        &unique(&id.to_lowercase()),
                    )
                    .await
                }
                "AWS::S3::Bucket" => {
                    // S3 bucket names are lower case, at most 63 characters.
                    let name = unique("quarantine").to_lowercase();
                    let s3 = aws_sdk_s3::config::Builder::from(&moto)
                        .force_path_style(true)
                        .build();
                    aws_sdk_s3::Client::from_conf(s3)
                        .create_bucket()
                        .bucket(&name)
                        .send()
                        .await
                        .expect("create bucket");
                    name
                }
                "AWS::SNS::Topic" => aws_sdk_sns::Client::new(&moto)
                    .create_topic()
                    .name(unique(&id.to_lowercase()))
                    .send()
                    .await
                    .expect("create topic")
                    .topic_arn()
                    .unwrap_or_default()
                    .to_owned(),
                "AWS::SecretsManager::Secret" => {
                    let value = secrets.get(&id).cloned().unwrap_or_else(|| {
                        crate::sam_template::scalar(
                            &template.resource(&id)["Properties"]["SecretString"],
                        )
                    });
                    aws_sdk_secretsmanager::Client::new(&moto)
                        .create_secret()
                        .name(unique(&id.to_lowercase()))
                        .secret_string(value)
                        .send()
                        .await
                        .expect("create secret")
                        .arn()
                        .unwrap_or_default()
                        .to_owned()
                }
                other => panic!("the runtime tests cannot create a {other} ({id})"),
            };
            resources.insert(id, physical);
        }
        let resolution = Resolution {
            parameters,
            resources: &resources,
        };
        let mut env: BTreeMap<String, String> = expressions
            .iter()
            .map(|(k, v)| (k.clone(), template.resolve(v, &resolution)))
            .collect();
        env.insert("AWS_ENDPOINT_URL".into(), moto_endpoint());
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), ddb_local_endpoint());
        env.insert("AWS_REGION".into(), "us-east-1".into());
        env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        Self { resources, env }
    }

    /// The physical id of a resource the stack created.
    pub fn physical(&self, logical_id: &str) -> &str {
        self.resources
            .get(logical_id)
            .unwrap_or_else(|| panic!("the function's environment does not refer to {logical_id}"))
    }
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Tagged(t) => {
            if t.tag == "Ref" {
                out.insert(crate::sam_template::scalar(&t.value));
            } else {
                collect_refs(&t.value, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            if k.as_str() == Some("Ref") {
                out.insert(crate::sam_template::scalar(v));
            } else {
                collect_refs(v, out);
            }
        }),
        _ => {}
    }
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    keys: &[(String, String, String)],
    indexes: &[crate::sam_template::TableIndex],
) {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let key = |attribute: &str, key_type: &str| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(KeyType::from(key_type))
            .build()
            .expect("key schema element")
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    let mut defined = BTreeSet::new();
    let all_keys = keys
        .iter()
        .chain(indexes.iter().flat_map(|i| i.keys.iter()));
    for (attribute, _, attribute_type) in all_keys {
        if defined.insert(attribute.clone()) {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::from(attribute_type.as_str()))
                    .build()
                    .expect("attribute definition"),
            );
        }
    }
    for (attribute, key_type, _) in keys {
        request = request.key_schema(key(attribute, key_type));
    }
    for index in indexes {
        let projection = if index.projected.is_empty() {
            Projection::builder().projection_type(ProjectionType::All)
        } else {
            index.projected.iter().fold(
                Projection::builder().projection_type(ProjectionType::Include),
                |p, a| p.non_key_attributes(a),
            )
        };
        let gsi = index
            .keys
            .iter()
            .fold(
                GlobalSecondaryIndex::builder().index_name(&index.name),
                |g, (attribute, key_type, _)| g.key_schema(key(attribute, key_type)),
            )
            .projection(projection.build())
            .build()
            .expect("global secondary index");
        request = request.global_secondary_indexes(gsi);
    }
    request.send().await.unwrap_or_else(|e| {
        panic!(
            "create table {name}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        )
    });
}
