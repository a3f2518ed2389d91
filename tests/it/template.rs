//! Checks template.yaml (the AWS SAM template) for the properties the deployment relies on, so
//! that none of them can silently regress: runtime and architecture, how SAM builds each binary,
//! the ingest timeout under Twilio's 5 seconds, the event source mappings that keep one bad
//! record from blocking a shard, the tables' keys and TTL, stream encryption, every alarm and
//! its wiring to the alert topic, and the outputs a user needs.
//!
//! cfn-lint and `sam validate --lint` (infra/scripts/test.sh) check the template's syntax and
//! CloudFormation rules; this test checks what is ours.
//!
//! CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) parse as tagged YAML
//! values; `Ref`/`Fn::GetAtt` long forms are accepted as well.

use serde_yaml_ng::Value;
use serde_yaml_ng::value::TaggedValue;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let path = repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
    })
}

/// `value[key]`, or a panic naming the path.
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    let mut current = value;
    for (i, key) in path.iter().enumerate() {
        current = current
            .get(*key)
            .unwrap_or_else(|| panic!("template: missing {}", path[..=i].join(".")));
    }
    current
}

fn try_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn resources() -> &'static serde_yaml_ng::Mapping {
    at(template(), &["Resources"])
        .as_mapping()
        .expect("Resources is a mapping")
}

fn resource(id: &str) -> &'static Value {
    at(template(), &["Resources", id])
}

fn props(id: &str) -> &'static Value {
    at(template(), &["Resources", id, "Properties"])
}

fn of_type(kind: &str) -> Vec<(String, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(id, r)| (id.as_str().expect("string ids").to_owned(), r))
        .collect()
}

/// A scalar as text (YAML numbers and booleans included).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn tagged<'a>(v: &'a Value, short: &str, long: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) => {
            let TaggedValue { tag, value } = &**t;
            (*tag == short).then_some(value)
        }
        Value::Mapping(m) if m.len() == 1 => m.get(long),
        _ => None,
    }
}

/// The logical id `v` refers to with `!Ref`, if it is one.
fn ref_target(v: &Value) -> Option<String> {
    tagged(v, "Ref", "Ref").map(text)
}

/// `(logical id, attribute)` of a `!GetAtt`, if it is one.
fn getatt_target(v: &Value) -> Option<(String, String)> {
    let inner = tagged(v, "GetAtt", "Fn::GetAtt")?;
    match inner {
        Value::String(s) => {
            let (id, attr) = s.split_once('.')?;
            Some((id.to_owned(), attr.to_owned()))
        }
        Value::Sequence(parts) if parts.len() == 2 => Some((text(&parts[0]), text(&parts[1]))),
        _ => None,
    }
}

fn is_ref_to(v: &Value, id: &str) -> bool {
    ref_target(v).as_deref() == Some(id)
}

fn parameter_default(name: &str) -> String {
    text(at(template(), &["Parameters", name, "Default"]))
}

/// A function property, falling back to `Globals.Function`.
fn function_property(id: &str, name: &str) -> &'static Value {
    try_at(props(id), &[name])
        .or_else(|| try_at(template(), &["Globals", "Function", name]))
        .unwrap_or_else(|| panic!("{id}: no {name}, neither on the function nor in Globals"))
}

const FUNCTIONS: [(&str, &str, &str); 5] = [
    ("IngestFunction", "ingest", "functions/ingest"),
    ("CrmSyncFunction", "crm-sync", "functions/crm-sync"),
    ("QuotaAlertFunction", "quota-alert", "functions/quota-alert"),
    ("ReconcileFunction", "reconcile", "functions/reconcile"),
    (
        "KafkaForwardFunction",
        "kafka-forward",
        "functions/kafka-forward",
    ),
];

#[test]
fn it_is_a_sam_template() {
    assert_eq!(
        text(at(template(), &["Transform"])),
        "AWS::Serverless-2016-10-31"
    );
    let functions: BTreeSet<String> = of_type("AWS::Serverless::Function")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.0.to_owned()).collect();
    assert_eq!(functions, expected);
}

#[test]
fn functions_run_on_al2023_arm64_built_by_cargo_lambda() {
    for (id, binary, code_uri) in FUNCTIONS {
        assert_eq!(
            text(function_property(id, "Runtime")),
            "provided.al2023",
            "{id}"
        );
        let arch = function_property(id, "Architectures")
            .as_sequence()
            .unwrap_or_else(|| panic!("{id}: Architectures is a list"));
        assert_eq!(arch.iter().map(text).collect::<Vec<_>>(), ["arm64"], "{id}");
        assert_eq!(text(function_property(id, "Handler")), "bootstrap", "{id}");
        assert!(
            is_ref_to(function_property(id, "Tracing"), "TracingMode"),
            "{id}: X-Ray follows the TracingMode parameter"
        );
        assert_eq!(
            text(at(props(id), &["LoggingConfig", "LogFormat"])),
            "JSON",
            "{id}: JSON logs"
        );
        assert_eq!(
            text(at(resource(id), &["Metadata", "BuildMethod"])),
            "rust-cargolambda",
            "{id}"
        );
        assert_eq!(
            text(at(resource(id), &["Metadata", "BuildProperties", "Binary"])),
            binary,
            "{id}: SAM passes Binary to `cargo lambda build --bin`"
        );
        // CodeUri is the package directory, and that package defines the binary.
        assert_eq!(text(at(props(id), &["CodeUri"])), code_uri, "{id}");
        let manifest = std::fs::read_to_string(repo_root().join(code_uri).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{id}: {code_uri}/Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")),
            "{id}: {code_uri}/Cargo.toml defines no [[bin]] named {binary}"
        );
        let memory = text(at(props(id), &["MemorySize"])).parse::<u32>().unwrap();
        assert!((128..=10240).contains(&memory), "{id}: MemorySize {memory}");
    }
}

#[test]
fn each_function_has_the_memory_size_docs_cost_md_derives() {
    // Lambda sells CPU with memory (1,769 MB = one vCPU); docs/cost.md §3 measures each
    // function's CPU and derives these: ingest and quota-alert at the smallest size, crm-sync at
    // 256 MB for its CPU per record.
    for (id, expected) in [
        ("IngestFunction", 128),
        ("QuotaAlertFunction", 128),
        ("CrmSyncFunction", 256),
    ] {
        let memory = text(at(props(id), &["MemorySize"])).parse::<u32>().unwrap();
        assert_eq!(memory, expected, "{id}: MemorySize (docs/cost.md §3)");
    }
    let cost = std::fs::read_to_string(repo_root().join("docs/cost.md")).expect("docs/cost.md");
    assert!(
        cost.contains("MemorySize"),
        "docs/cost.md explains the memory sizes"
    );
}

#[test]
fn ingest_answers_within_twilios_five_seconds() {
    let timeout: u32 = text(function_property("IngestFunction", "Timeout"))
        .parse()
        .expect("a literal number of seconds");
    assert!(
        timeout < 5,
        "ingest Timeout {timeout} s: Twilio gives up after 5 s"
    );
    let events = at(props("IngestFunction"), &["Events"])
        .as_mapping()
        .expect("ingest Events");
    let mut routes = BTreeSet::new();
    for (name, event) in events {
        assert_eq!(text(at(event, &["Type"])), "HttpApi", "{name:?}");
        let p = at(event, &["Properties"]);
        assert!(is_ref_to(at(p, &["ApiId"]), "TwilioHttpApi"), "{name:?}");
        assert_eq!(text(at(p, &["PayloadFormatVersion"])), "2.0", "{name:?}");
        let integration_timeout: u32 = text(at(p, &["TimeoutInMillis"])).parse().unwrap();
        assert!(integration_timeout <= 5000, "{name:?}");
        routes.insert(format!(
            "{} {}",
            text(at(p, &["Method"])),
            text(at(p, &["Path"]))
        ));
    }
    // Every route the code serves, and no other.
    let served: BTreeSet<String> = ingest::ROUTES
        .iter()
        .map(|route| format!("POST {}", route.path()))
        .collect();
    assert_eq!(routes, served);
    assert_eq!(served.len(), 5);
}

fn env(id: &str) -> &'static Value {
    at(props(id), &["Environment", "Variables"])
}

#[test]
fn functions_get_the_settings_their_code_reads() {
    let ingest = env("IngestFunction");
    // "auto" breaks the cycle HttpApi -> Function -> HttpApi: ingest takes the URL from the
    // request context unless a custom domain's URL is given.
    assert!(is_ref_to(at(ingest, &["PUBLIC_BASE_URL"]), "PublicBaseUrl"));
    assert_eq!(parameter_default("PublicBaseUrl"), "auto");
    for (var, target) in [
        ("TWILIO_SECRET_ARN", "TwilioSecret"),
        ("DEDUP_TABLE", "DedupTable"),
        ("STREAM_NAME", "EventStream"),
        ("QUARANTINE_QUEUE_URL", "QuarantineQueue"),
    ] {
        assert!(is_ref_to(at(ingest, &[var]), target), "ingest {var}");
    }
    let crm = env("CrmSyncFunction");
    assert!(is_ref_to(at(crm, &["LEDGER_TABLE"]), "LedgerTable"));
    assert!(is_ref_to(
        at(crm, &["QUARANTINE_QUEUE_URL"]),
        "QuarantineQueue"
    ));
    assert!(is_ref_to(at(crm, &["CRM_URL"]), "CrmUrl"));
    assert!(is_ref_to(at(crm, &["CRM_KIND"]), "CrmKind"));
    let quota = env("QuotaAlertFunction");
    assert!(is_ref_to(at(quota, &["COUNTER_TABLE"]), "CounterTable"));
    assert!(is_ref_to(at(quota, &["ALERT_TOPIC_ARN"]), "AlertTopic"));
    assert!(is_ref_to(
        at(quota, &["QUARANTINE_QUEUE_URL"]),
        "QuarantineQueue"
    ));
    assert!(try_at(quota, &["QUOTAS_JSON"]).is_some());
    assert!(try_at(quota, &["QUOTAS_SSM_PARAMETER"]).is_some());
    // The default quota document must be one quota-alert accepts (it refuses an empty list).
    let quotas: serde_json::Value =
        serde_json::from_str(&parameter_default("QuotasJson")).expect("QuotasJson is JSON");
    assert!(
        !quotas["quotas"]
            .as_array()
            .expect("a quotas list")
            .is_empty()
    );
}

#[test]
fn policies_are_least_privilege() {
    for (id, _, _) in FUNCTIONS {
        let policies = at(props(id), &["Policies"])
            .as_sequence()
            .expect("Policies list");
        for policy in policies {
            // Only inline statements: no managed policy names such as AmazonDynamoDBFullAccess.
            let statements = at(policy, &["Statement"])
                .as_sequence()
                .expect("statements");
            for statement in statements {
                // Conditional statements (!If [cond, statement, !Ref AWS::NoValue]).
                let statement = match tagged(statement, "If", "Fn::If") {
                    Some(Value::Sequence(branches)) => &branches[1],
                    _ => statement,
                };
                let actions = at(statement, &["Action"]);
                let actions: Vec<String> = match actions {
                    Value::Sequence(a) => a.iter().map(text).collect(),
                    other => vec![text(other)],
                };
                for action in &actions {
                    assert!(!action.contains('*'), "{id}: wildcard action {action}");
                }
                let resource = at(statement, &["Resource"]);
                assert!(
                    !matches!(resource, Value::String(s) if s == "*"),
                    "{id}: {actions:?} on Resource \"*\""
                );
            }
        }
    }
}

#[test]
fn consumers_cannot_block_a_shard() {
    let mappings = of_type("AWS::Lambda::EventSourceMapping");
    let mut consumers = BTreeSet::new();
    for (id, mapping) in &mappings {
        let p = at(mapping, &["Properties"]);
        consumers.insert(ref_target(at(p, &["FunctionName"])).expect("FunctionName: !Ref"));
        assert_eq!(
            getatt_target(at(p, &["EventSourceArn"])),
            Some(("EventStream".to_owned(), "Arn".to_owned())),
            "{id}"
        );
        let types: Vec<String> = at(p, &["FunctionResponseTypes"])
            .as_sequence()
            .expect("a list")
            .iter()
            .map(text)
            .collect();
        assert_eq!(types, ["ReportBatchItemFailures"], "{id}");
        assert_eq!(text(at(p, &["BisectBatchOnFunctionError"])), "true", "{id}");
        // Bounded retries and record age, so a poison record or a long outage ends in the
        // dead-letter queue instead of blocking the shard until the record expires.
        let retries = at(p, &["MaximumRetryAttempts"]);
        let retries = match ref_target(retries) {
            Some(param) => parameter_default(&param),
            None => text(retries),
        };
        let retries: i64 = retries.parse().unwrap();
        assert!(
            (0..=10_000).contains(&retries),
            "{id}: MaximumRetryAttempts {retries}"
        );
        let age = at(p, &["MaximumRecordAgeInSeconds"]);
        let age = match ref_target(age) {
            Some(param) => parameter_default(&param),
            None => text(age),
        };
        let age: i64 = age.parse().unwrap();
        let retention: i64 = parameter_default("StreamRetentionHours").parse().unwrap();
        assert!(
            (60..=retention * 3600).contains(&age),
            "{id}: MaximumRecordAgeInSeconds {age} must be bounded and within the stream's retention"
        );
        let (queue, attr) =
            getatt_target(at(p, &["DestinationConfig", "OnFailure", "Destination"]))
                .unwrap_or_else(|| panic!("{id}: on-failure destination is !GetAtt <queue>.Arn"));
        assert_eq!(attr, "Arn");
        assert_eq!(
            text(at(resource(&queue), &["Type"])),
            "AWS::SQS::Queue",
            "{id}"
        );
    }
    assert_eq!(
        consumers,
        BTreeSet::from([
            "CrmSyncFunction".to_owned(),
            "QuotaAlertFunction".to_owned(),
            "KafkaForwardFunction".to_owned()
        ])
    );
    // No SAM Kinesis event that would bypass the checks above.
    for (id, _, _) in FUNCTIONS {
        if let Some(Value::Mapping(events)) = try_at(props(id), &["Events"]) {
            for (name, event) in events {
                assert_ne!(text(at(event, &["Type"])), "Kinesis", "{id} {name:?}");
            }
        }
    }
}

/// The allowed values of a parameter, as text.
fn allowed_values(name: &str) -> Vec<String> {
    at(template(), &["Parameters", name, "AllowedValues"])
        .as_sequence()
        .unwrap_or_else(|| panic!("{name}: AllowedValues is a list"))
        .iter()
        .map(text)
        .collect()
}

#[test]
fn x_ray_is_off_by_default_and_active_sampling_is_a_parameter() {
    // Active tracing records most of a small account's invocations at $5 per million traces
    // (docs/cost.md), so it is opt-in.
    assert_eq!(parameter_default("TracingMode"), "PassThrough");
    assert_eq!(allowed_values("TracingMode"), ["PassThrough", "Active"]);
    assert!(is_ref_to(
        at(template(), &["Globals", "Function", "Tracing"]),
        "TracingMode"
    ));
    for (id, _, _) in FUNCTIONS {
        assert!(
            try_at(props(id), &["Tracing"]).is_none(),
            "{id}: tracing comes from Globals (the TracingMode parameter)"
        );
    }
}

#[test]
fn the_stream_is_one_provisioned_shard_by_default_on_demand_a_parameter_and_encrypted() {
    let p = props("EventStream");
    assert_eq!(
        text(at(resource("EventStream"), &["Type"])),
        "AWS::Kinesis::Stream"
    );
    // GIVEN the mode parameter: PROVISIONED by default, ON_DEMAND the alternative
    assert!(is_ref_to(
        at(p, &["StreamModeDetails", "StreamMode"]),
        "StreamMode"
    ));
    assert_eq!(parameter_default("StreamMode"), "PROVISIONED");
    assert_eq!(allowed_values("StreamMode"), ["PROVISIONED", "ON_DEMAND"]);
    // THEN the shard count applies to a provisioned stream only (CloudFormation refuses a
    // ShardCount with ON_DEMAND), one shard by default
    let shards = tagged(at(p, &["ShardCount"]), "If", "Fn::If")
        .and_then(Value::as_sequence)
        .expect("ShardCount: !If [IsProvisionedStream, !Ref StreamShardCount, !Ref AWS::NoValue]");
    assert_eq!(text(&shards[0]), "IsProvisionedStream");
    assert!(is_ref_to(&shards[1], "StreamShardCount"));
    assert!(is_ref_to(&shards[2], "AWS::NoValue"));
    assert_eq!(parameter_default("StreamShardCount"), "1");
    let condition = tagged(
        at(template(), &["Conditions", "IsProvisionedStream"]),
        "Equals",
        "Fn::Equals",
    )
    .and_then(Value::as_sequence)
    .expect("IsProvisionedStream: !Equals [!Ref StreamMode, PROVISIONED]");
    assert!(is_ref_to(&condition[0], "StreamMode"));
    assert_eq!(text(&condition[1]), "PROVISIONED");
    // AND the retention default is the 24 h both modes include: more costs $0.02 per
    // shard-hour on a provisioned stream, more than the shard (docs/cost.md)
    assert_eq!(parameter_default("StreamRetentionHours"), "24");
    assert_eq!(text(at(p, &["StreamEncryption", "EncryptionType"])), "KMS");
    assert!(try_at(p, &["StreamEncryption", "KeyId"]).is_some());
    assert!(is_ref_to(
        at(p, &["RetentionPeriodHours"]),
        "StreamRetentionHours"
    ));
}

#[test]
fn tables_are_on_demand_with_ttl_and_the_keys_the_code_uses() {
    // (table, key schema as the code reads and writes it, point-in-time recovery)
    let tables = [
        ("DedupTable", vec![("pk", "S", "HASH")], false),
        ("LedgerTable", vec![("sid", "S", "HASH")], true),
        (
            "CounterTable",
            vec![("pk", "S", "HASH"), ("sk", "N", "RANGE")],
            true,
        ),
    ];
    for (id, keys, pitr) in tables {
        assert_eq!(text(at(resource(id), &["Type"])), "AWS::DynamoDB::Table");
        let p = props(id);
        assert_eq!(text(at(p, &["BillingMode"])), "PAY_PER_REQUEST", "{id}");
        assert_eq!(
            text(at(p, &["TimeToLiveSpecification", "AttributeName"])),
            "expires_at",
            "{id}"
        );
        assert_eq!(
            text(at(p, &["TimeToLiveSpecification", "Enabled"])),
            "true",
            "{id}"
        );
        let schema: Vec<(String, String)> = at(p, &["KeySchema"])
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| (text(at(k, &["AttributeName"])), text(at(k, &["KeyType"]))))
            .collect();
        let types: Vec<(String, String)> = at(p, &["AttributeDefinitions"])
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    text(at(k, &["AttributeName"])),
                    text(at(k, &["AttributeType"])),
                )
            })
            .collect();
        for (i, (name, ty, kind)) in keys.iter().enumerate() {
            assert_eq!(schema[i], ((*name).to_owned(), (*kind).to_owned()), "{id}");
            assert!(
                types.contains(&((*name).to_owned(), (*ty).to_owned())),
                "{id}: {name} {ty}"
            );
        }
        assert_eq!(schema.len(), keys.len(), "{id}");
        if pitr {
            assert_eq!(
                text(at(
                    p,
                    &[
                        "PointInTimeRecoverySpecification",
                        "PointInTimeRecoveryEnabled"
                    ]
                )),
                "true",
                "{id}: point-in-time recovery"
            );
        }
    }
    // The dedup window the table must hold is at least 24 hours.
    let window: u32 = parameter_default("DedupWindowHours").parse().unwrap();
    assert!(window >= 24);
}

#[test]
fn the_http_api_is_throttled_and_logged() {
    let p = props("TwilioHttpApi");
    assert_eq!(
        text(at(resource("TwilioHttpApi"), &["Type"])),
        "AWS::Serverless::HttpApi"
    );
    assert!(try_at(p, &["DefaultRouteSettings", "ThrottlingRateLimit"]).is_some());
    assert!(try_at(p, &["DefaultRouteSettings", "ThrottlingBurstLimit"]).is_some());
    assert!(try_at(p, &["AccessLogSettings", "DestinationArn"]).is_some());
    assert!(text(at(p, &["AccessLogSettings", "Format"])).contains("$context.status"));
}

/// Every single-metric alarm the deployment promises (issue 6), with what it watches:
/// (logical id, namespace, metric, dimension name, expected dimension value or None for a reference).
const ALARMS: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (
        "IngestErrorsAlarm",
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        None,
    ),
    ("Ingest5xxAlarm", "AWS/ApiGateway", "5xx", "ApiId", None),
    (
        "SignatureFailuresAlarm",
        "TwilioEvents",
        "SignatureFailures",
        "Service",
        Some("ingest"),
    ),
    (
        "PublishFailuresAlarm",
        "TwilioEvents",
        "PublishFailures",
        "Service",
        Some("ingest"),
    ),
    (
        "StoreFailuresAlarm",
        "TwilioEvents",
        "StoreFailures",
        "Service",
        Some("ingest"),
    ),
    (
        "IngestLatencyAlarm",
        "AWS/Lambda",
        "Duration",
        "FunctionName",
        None,
    ),
    (
        "NoEventsAlarm",
        "TwilioEvents",
        "Received",
        "Service",
        Some("ingest"),
    ),
    (
        "QuarantineNotEmptyAlarm",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        None,
    ),
    (
        "CrmSyncDeadLetterAlarm",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        None,
    ),
    (
        "QuotaAlertDeadLetterAlarm",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        None,
    ),
    (
        "CrmSyncIteratorAgeAlarm",
        "AWS/Lambda",
        "IteratorAge",
        "FunctionName",
        None,
    ),
    (
        "QuotaAlertIteratorAgeAlarm",
        "AWS/Lambda",
        "IteratorAge",
        "FunctionName",
        None,
    ),
    (
        "CrmSyncErrorsAlarm",
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        None,
    ),
    (
        "QuotaAlertErrorsAlarm",
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        None,
    ),
    (
        "ReconcileErrorsAlarm",
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        None,
    ),
    (
        "ReconcileRepairedAlarm",
        "TwilioEvents",
        "Repaired",
        "Service",
        Some("reconcile"),
    ),
    (
        "KafkaForwardErrorsAlarm",
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        None,
    ),
    (
        "KafkaForwardIteratorAgeAlarm",
        "AWS/Lambda",
        "IteratorAge",
        "FunctionName",
        None,
    ),
    (
        "KafkaForwardProduceFailuresAlarm",
        "TwilioEvents",
        "ProduceFailures",
        "Service",
        Some("kafka-forward"),
    ),
    (
        "KafkaForwardDeadLetterAlarm",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        None,
    ),
];

/// Alarms on DynamoDB throttling, one per table.
const THROTTLE_ALARMS: &[(&str, &str)] = &[
    ("DedupTableThrottleAlarm", "DedupTable"),
    ("LedgerTableThrottleAlarm", "LedgerTable"),
    ("CounterTableThrottleAlarm", "CounterTable"),
];

const QUOTA_SLOTS: usize = 5;
const QUOTA_THRESHOLDS: [u32; 3] = [50, 80, 100];

fn quota_alarm_ids() -> Vec<String> {
    (1..=QUOTA_SLOTS)
        .flat_map(|slot| QUOTA_THRESHOLDS.map(|t| format!("QuotaAlarm{slot}At{t}")))
        .collect()
}

fn all_expected_alarm_ids() -> BTreeSet<String> {
    ALARMS
        .iter()
        .map(|a| a.0.to_owned())
        .chain(THROTTLE_ALARMS.iter().map(|a| a.0.to_owned()))
        .chain(quota_alarm_ids())
        .collect()
}

fn dimension<'a>(p: &'a Value, name: &str) -> &'a Value {
    let dims = at(p, &["Dimensions"])
        .as_sequence()
        .expect("Dimensions list");
    let found = dims
        .iter()
        .find(|d| text(at(d, &["Name"])) == name)
        .unwrap_or_else(|| panic!("no dimension {name}"));
    at(found, &["Value"])
}

#[test]
fn every_alarm_is_present_and_goes_to_the_alert_topic() {
    let present: BTreeSet<String> = of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected = all_expected_alarm_ids();
    let missing: Vec<_> = expected.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "alarms removed from template.yaml: {missing:?}"
    );
    let unlisted: Vec<_> = present.difference(&expected).collect();
    assert!(
        unlisted.is_empty(),
        "new alarms {unlisted:?}: add them to this test and to docs/deploy.md's alarm table"
    );
    for id in &present {
        let p = props(id);
        let actions = at(p, &["AlarmActions"])
            .as_sequence()
            .expect("AlarmActions list");
        assert!(
            actions.iter().any(|a| is_ref_to(a, "AlertTopic")),
            "{id}: AlarmActions must include !Ref AlertTopic"
        );
    }
    assert_eq!(
        text(at(resource("AlertTopic"), &["Type"])),
        "AWS::SNS::Topic"
    );
    // Optional e-mail subscription, behind a condition on the AlertEmail parameter.
    let sub = resource("AlertEmailSubscription");
    assert_eq!(text(at(sub, &["Condition"])), "HasAlertEmail");
    assert_eq!(parameter_default("AlertEmail"), "");
}

#[test]
fn alarms_watch_the_metrics_the_code_publishes() {
    for (id, namespace, metric, dim, value) in ALARMS {
        let p = props(id);
        assert_eq!(text(at(p, &["Namespace"])), *namespace, "{id}");
        assert_eq!(text(at(p, &["MetricName"])), *metric, "{id}");
        let v = dimension(p, dim);
        match value {
            Some(expected) => assert_eq!(text(v), *expected, "{id}"),
            None => assert!(
                ref_target(v).is_some() || getatt_target(v).is_some(),
                "{id}: {dim} must reference a resource of this stack"
            ),
        }
        if *namespace == "TwilioEvents" {
            // The metric name is a literal the service publishes (EMF), not a guess.
            let service = value.expect("TwilioEvents alarms name their service");
            assert_source_mentions(service, metric);
        }
    }
    let p = props("NoEventsAlarm");
    assert_eq!(
        text(at(p, &["TreatMissingData"])),
        "breaching",
        "no delivery = no metric"
    );
    assert!(is_ref_to(at(p, &["EvaluationPeriods"]), "NoEventsMinutes"));
    for (id, table) in THROTTLE_ALARMS {
        let watched: Vec<Watched> = watched_metrics()
            .into_iter()
            .filter(|w| w.alarm == *id)
            .collect();
        assert!(!watched.is_empty(), "{id}: watches no metric");
        for w in watched {
            assert_eq!(w.namespace, "AWS/DynamoDB", "{id}");
            assert!(
                w.metric == "ReadThrottleEvents" || w.metric == "WriteThrottleEvents",
                "{id}: {}",
                w.metric
            );
            assert_eq!(w.dimensions.len(), 1, "{id}");
            assert_eq!(w.dimensions[0].0, "TableName", "{id}");
            assert!(is_ref_to(w.dimensions[0].1, table), "{id}");
        }
    }
    assert_source_mentions("quota-alert", "Utilization");
    for (slot, id) in quota_alarm_ids().iter().enumerate() {
        let p = props(id);
        assert_eq!(text(at(p, &["Namespace"])), "TwilioEvents", "{id}");
        assert_eq!(text(at(p, &["MetricName"])), "Utilization", "{id}");
        assert!(
            matches!(dimension(p, "QuotaName"), Value::Tagged(_)),
            "{id}: QuotaName comes from the QuotaAlarmNames parameter"
        );
        let threshold: u32 = text(at(p, &["Threshold"])).parse().unwrap();
        assert_eq!(threshold, QUOTA_THRESHOLDS[slot % 3], "{id}");
        assert_eq!(
            text(at(resource(id), &["Condition"])),
            format!("HasQuotaAlarm{}", slot / 3 + 1)
        );
    }
}

/// The sources of `functions/<service>/src` (test files excluded), concatenated.
fn service_source(service: &str) -> String {
    let dir = repo_root().join("functions").join(service).join("src");
    let mut stack = vec![dir];
    let mut all = String::new();
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.to_string_lossy().contains("test")
            {
                all.push_str(&std::fs::read_to_string(&path).unwrap());
                all.push('\n');
            }
        }
    }
    all
}

/// The service's sources (tests excluded) contain `"metric"` as a string literal.
fn assert_source_mentions(service: &str, metric: &str) {
    let literal = format!("\"{metric}\"");
    assert!(
        service_source(service).contains(&literal),
        "no {literal} in functions/{service}/src: the alarm watches a metric the service does not publish",
    );
}

/// One metric an alarm reads: its own, or a `MetricStat` of a metric-math alarm.
struct Watched {
    alarm: String,
    namespace: String,
    metric: String,
    dimensions: Vec<(String, &'static Value)>,
    statistic: String,
}

fn dimensions_of(metric: &'static Value) -> Vec<(String, &'static Value)> {
    match try_at(metric, &["Dimensions"]) {
        Some(Value::Sequence(dims)) => dims
            .iter()
            .map(|d| (text(at(d, &["Name"])), at(d, &["Value"])))
            .collect(),
        Some(other) => panic!("Dimensions is a list, got {other:?}"),
        None => Vec::new(),
    }
}

fn watched_metrics() -> Vec<Watched> {
    let mut all = Vec::new();
    for (id, alarm) in of_type("AWS::CloudWatch::Alarm") {
        let p = at(alarm, &["Properties"]);
        if let Some(queries) = try_at(p, &["Metrics"]) {
            for query in queries.as_sequence().expect("Metrics list") {
                if let Some(stat) = try_at(query, &["MetricStat"]) {
                    let metric = at(stat, &["Metric"]);
                    all.push(Watched {
                        alarm: id.clone(),
                        namespace: text(at(metric, &["Namespace"])),
                        metric: text(at(metric, &["MetricName"])),
                        dimensions: dimensions_of(metric),
                        statistic: text(at(stat, &["Stat"])),
                    });
                }
            }
        } else {
            let statistic = try_at(p, &["Statistic"])
                .or_else(|| try_at(p, &["ExtendedStatistic"]))
                .map(text)
                .unwrap_or_else(|| panic!("{id}: no Statistic nor ExtendedStatistic"));
            all.push(Watched {
                alarm: id.clone(),
                namespace: text(at(p, &["Namespace"])),
                metric: text(at(p, &["MetricName"])),
                dimensions: dimensions_of(p),
                statistic,
            });
        }
    }
    all
}

/// The AWS metrics alarms may watch: (namespace, metric, its dimension, the type of the resource
/// the dimension names, how the template names it, the statistic that measures the fault).
/// `!Ref` gives a function's name, an HTTP API's id and a table's name; a queue's `!Ref` is its
/// URL, so its name must come from `!GetAtt <queue>.QueueName`.
const AWS_METRICS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        "AWS::Serverless::Function",
        "Ref",
        "Sum",
    ),
    (
        "AWS/Lambda",
        "IteratorAge",
        "FunctionName",
        "AWS::Serverless::Function",
        "Ref",
        "Maximum",
    ),
    (
        "AWS/Lambda",
        "Duration",
        "FunctionName",
        "AWS::Serverless::Function",
        "Ref",
        "p99",
    ),
    (
        "AWS/ApiGateway",
        "5xx",
        "ApiId",
        "AWS::Serverless::HttpApi",
        "Ref",
        "Sum",
    ),
    (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "AWS::SQS::Queue",
        "QueueName",
        "Maximum",
    ),
    (
        "AWS/DynamoDB",
        "ReadThrottleEvents",
        "TableName",
        "AWS::DynamoDB::Table",
        "Ref",
        "Sum",
    ),
    (
        "AWS/DynamoDB",
        "WriteThrottleEvents",
        "TableName",
        "AWS::DynamoDB::Table",
        "Ref",
        "Sum",
    ),
];

#[test]
fn every_alarm_watches_a_metric_that_is_published_with_its_dimensions() {
    let shared = std::fs::read_to_string(repo_root().join("shared/src/metrics.rs"))
        .expect("shared/src/metrics.rs");
    // The EMF namespace, and the one dimension `Metrics::new(service)` sets.
    assert!(shared.contains("pub const NAMESPACE: &str = \"TwilioEvents\";"));
    assert!(shared.contains("(\"Service\", service)"));
    let consumers: BTreeSet<String> = of_type("AWS::Lambda::EventSourceMapping")
        .iter()
        .filter_map(|(_, m)| ref_target(at(m, &["Properties", "FunctionName"])))
        .collect();
    let watched = watched_metrics();
    assert!(!watched.is_empty());
    for w in &watched {
        let id = &w.alarm;
        if w.namespace == "TwilioEvents" {
            // EMF metrics are found by their exact set of dimensions: one, here.
            let [(name, value)] = &w.dimensions[..] else {
                panic!("{id}: TwilioEvents metrics carry exactly one dimension")
            };
            let (service, publisher) = match name.as_str() {
                "Service" => (text(value), "Metrics::new(".to_owned()),
                "QuotaName" => ("quota-alert".to_owned(), "(\"QuotaName\",".to_owned()),
                other => panic!("{id}: no service publishes a {other} dimension"),
            };
            let source = service_source(&service);
            assert!(
                source.contains(&publisher),
                "{id}: functions/{service}/src publishes no metric with the dimension {name}"
            );
            assert!(
                source.contains(&format!("\"{}\"", w.metric)),
                "{id}: functions/{service}/src does not publish {}",
                w.metric
            );
            // Counts are summed per period; other values (a percentage) are compared at their peak.
            let is_count = source.contains(&format!("count(\"{}\"", w.metric))
                || metric_constant(&source, &w.metric)
                    .is_some_and(|c| source.contains(&format!("count(metric::{c},")));
            if is_count {
                assert_eq!(w.statistic, "Sum", "{id}: {} is a count", w.metric);
            } else {
                assert_ne!(w.statistic, "Sum", "{id}: {} is not a count", w.metric);
            }
            continue;
        }
        let Some((_, _, dim, kind, naming, statistic)) = AWS_METRICS
            .iter()
            .find(|m| m.0 == w.namespace && m.1 == w.metric)
        else {
            panic!(
                "{id}: {} {} is not a metric this test knows AWS to publish: add it to AWS_METRICS",
                w.namespace, w.metric
            )
        };
        assert_eq!(w.statistic, *statistic, "{id}: {}", w.metric);
        let [(name, value)] = &w.dimensions[..] else {
            panic!("{id}: {} is watched by its {dim} alone", w.metric)
        };
        assert_eq!(name, dim, "{id}");
        let target = if *naming == "Ref" {
            ref_target(value)
        } else {
            getatt_target(value)
                .filter(|(_, attr)| attr == naming)
                .map(|(target, _)| target)
        }
        .unwrap_or_else(|| panic!("{id}: {dim} must be the {naming} of a resource of this stack"));
        assert_eq!(
            text(at(resource(&target), &["Type"])),
            *kind,
            "{id}: {dim} names {target}"
        );
        if w.metric == "IteratorAge" {
            assert!(
                consumers.contains(&target),
                "{id}: {target} reads no stream, so it has no IteratorAge"
            );
        }
    }
}

#[test]
fn every_alarm_says_what_missing_data_means() {
    for (id, alarm) in of_type("AWS::CloudWatch::Alarm") {
        let p = at(alarm, &["Properties"]);
        let missing = text(at(p, &["TreatMissingData"]));
        if text(at(p, &["ComparisonOperator"])).starts_with("LessThan") {
            assert_eq!(
                missing, "breaching",
                "{id}: a metric that stops is what an alarm on too little is about"
            );
        } else {
            // These metrics are published when something happens: silence is not a fault.
            assert!(
                missing == "notBreaching" || missing == "ignore",
                "{id}: TreatMissingData {missing}"
            );
        }
    }
}

#[test]
fn the_latency_alarm_watches_a_figure_that_can_reach_its_threshold() {
    // ingest's own Latency metric stays under its deadline (the timeout minus a margin) and a
    // timed-out invocation records none: an alarm on it at the timeout could never fire. Lambda's
    // Duration covers every invocation, up to the timeout itself.
    let p = props("IngestLatencyAlarm");
    assert_eq!(text(at(p, &["Namespace"])), "AWS/Lambda");
    assert_eq!(text(at(p, &["MetricName"])), "Duration");
    assert!(is_ref_to(dimension(p, "FunctionName"), "IngestFunction"));
    assert_eq!(text(at(p, &["ExtendedStatistic"])), "p99");
    assert_eq!(
        text(at(p, &["ComparisonOperator"])),
        "GreaterThanOrEqualToThreshold"
    );
    assert!(is_ref_to(at(p, &["Threshold"]), "LatencyAlarmMilliseconds"));
    let timeout_ms = 1000
        * text(function_property("IngestFunction", "Timeout"))
            .parse::<u32>()
            .expect("a literal number of seconds");
    let param = at(template(), &["Parameters", "LatencyAlarmMilliseconds"]);
    let number = |key: &str| -> u32 {
        text(at(param, &[key]))
            .parse()
            .unwrap_or_else(|e| panic!("LatencyAlarmMilliseconds {key}: {e}"))
    };
    let (min, max, default) = (number("MinValue"), number("MaxValue"), number("Default"));
    assert!(
        max < timeout_ms,
        "LatencyAlarmMilliseconds MaxValue {max} must stay under ingest's timeout ({timeout_ms} ms), the most Duration can reach"
    );
    assert!(
        (min..=max).contains(&default),
        "default {default} within {min}..={max}"
    );
    // The dashboard draws the alarm's threshold on the alarm's figure.
    let body = tagged(
        at(props("PipelineDashboard"), &["DashboardBody"]),
        "Sub",
        "Fn::Sub",
    )
    .and_then(|v| v.as_sequence())
    .map(|parts| text(&parts[0]))
    .expect("DashboardBody: !Sub [body, variables]");
    assert!(body.contains(r#"["AWS/Lambda", "Duration", "FunctionName", "${IngestFunction}""#));
    assert!(body.contains("${LatencyAlarmMilliseconds}"));
}

/// A function's policy statements, the conditional ones (`!If [cond, statement, ...]`) included.
fn statements(id: &str) -> Vec<&'static Value> {
    at(props(id), &["Policies"])
        .as_sequence()
        .expect("Policies list")
        .iter()
        .flat_map(|policy| {
            at(policy, &["Statement"])
                .as_sequence()
                .expect("statements")
                .iter()
        })
        .map(|s| match tagged(s, "If", "Fn::If") {
            Some(Value::Sequence(branches)) => &branches[1],
            _ => s,
        })
        .collect()
}

fn listed(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(items) => items.iter().collect(),
        one => vec![one],
    }
}

/// The DynamoDB actions the functions may perform on `table`.
fn dynamodb_actions_on(table: &str) -> BTreeSet<String> {
    let arn = Some((table.to_owned(), "Arn".to_owned()));
    FUNCTIONS
        .iter()
        .flat_map(|(id, _, _)| statements(id))
        .filter(|s| {
            listed(at(s, &["Resource"]))
                .iter()
                .any(|r| getatt_target(r) == arn)
        })
        .flat_map(|s| listed(at(s, &["Action"])).into_iter().map(text))
        .collect()
}

const DYNAMODB_READS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:TransactGetItems",
];
const DYNAMODB_WRITES: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
];

#[test]
fn throttle_alarms_watch_the_operations_each_table_serves() {
    for (id, table) in THROTTLE_ALARMS {
        let actions = dynamodb_actions_on(table);
        assert!(!actions.is_empty(), "{table}: no function uses it");
        let mut expected = BTreeSet::new();
        if DYNAMODB_READS.iter().any(|a| actions.contains(*a)) {
            expected.insert("ReadThrottleEvents".to_owned());
        }
        if DYNAMODB_WRITES.iter().any(|a| actions.contains(*a)) {
            expected.insert("WriteThrottleEvents".to_owned());
        }
        let watched: BTreeSet<String> = watched_metrics()
            .into_iter()
            .filter(|w| w.alarm == *id)
            .map(|w| w.metric)
            .collect();
        assert_eq!(
            watched, expected,
            "{id}: the functions' policies allow {actions:?} on {table}; a series for operations nobody performs never has data"
        );
    }
}

#[test]
fn metric_math_alarms_fill_every_series_they_combine() {
    for (id, alarm) in of_type("AWS::CloudWatch::Alarm") {
        let Some(queries) = try_at(alarm, &["Properties", "Metrics"]) else {
            continue;
        };
        let queries = queries.as_sequence().expect("Metrics list");
        let series: Vec<String> = queries
            .iter()
            .filter(|q| try_at(q, &["MetricStat"]).is_some())
            .map(|q| text(at(q, &["Id"])))
            .collect();
        let returned: Vec<&Value> = queries
            .iter()
            .filter(|q| try_at(q, &["ReturnData"]).is_none_or(|r| text(r) == "true"))
            .collect();
        assert_eq!(returned.len(), 1, "{id}: exactly one query returns data");
        for query in queries {
            let Some(expression) = try_at(query, &["Expression"]).map(text) else {
                continue;
            };
            // Without FILL, a series with no data in a period makes the whole expression empty
            // there: a sum with a read series nobody reads would never reach any threshold.
            let mut rest = expression.clone();
            for s in &series {
                rest = rest.replace(&format!("FILL({s}, 0)"), "");
            }
            for s in &series {
                assert!(
                    !rest
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .any(|token| token == s),
                    "{id}: {s} is used without FILL({s}, 0) in {expression:?}"
                );
            }
        }
    }
}

/// Logical ids `v` refers to (`!Ref`, `!GetAtt`, `${...}` in `!Sub`), leaving out the branch an
/// `!If [HasCrm, ...]` takes only when crm-sync is deployed.
fn references(v: &Value, out: &mut BTreeSet<String>) {
    if let Some(target) = ref_target(v) {
        out.insert(target);
        return;
    }
    if let Some((target, _)) = getatt_target(v) {
        out.insert(target);
        return;
    }
    if let Some(inner) = tagged(v, "Sub", "Fn::Sub") {
        match inner {
            Value::Sequence(parts) if parts.len() == 2 => {
                let locals: BTreeSet<String> = parts[1]
                    .as_mapping()
                    .expect("!Sub variables")
                    .keys()
                    .map(text)
                    .collect();
                sub_references(&text(&parts[0]), &locals, out);
                references(&parts[1], out);
            }
            other => sub_references(&text(other), &BTreeSet::new(), out),
        }
        return;
    }
    if let Some(Value::Sequence(branches)) = tagged(v, "If", "Fn::If") {
        if branches.len() == 3 && text(&branches[0]) == "HasCrm" {
            references(&branches[2], out);
            return;
        }
    }
    match v {
        Value::Sequence(items) => items.iter().for_each(|item| references(item, out)),
        Value::Mapping(map) => map.values().for_each(|item| references(item, out)),
        Value::Tagged(t) => references(&t.value, out),
        _ => {}
    }
}

fn sub_references(s: &str, locals: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].split('.').next().unwrap_or_default();
        rest = &after[end + 1..];
        if !name.starts_with('!') && !name.starts_with("AWS::") && !locals.contains(name) {
            out.insert(name.to_owned());
        }
    }
}

/// The resources `v` refers to (parameters and pseudo parameters left out).
fn resource_references(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    references(v, &mut out);
    if let Some(depends) = v.get("DependsOn") {
        out.extend(listed(depends).into_iter().map(text));
    }
    out.retain(|id| resources().contains_key(id.as_str()));
    out
}

/// What exists only when crm-sync is deployed (condition HasCrm: CrmKind=salesforce, or a CrmUrl).
const CRM_SYNC_ONLY: &[&str] = &[
    "CrmSyncLogGroup",
    "CrmSyncFunction",
    "CrmSyncStreamMapping",
    "CrmSyncDeadLetterQueue",
    "LedgerTable",
    "CrmSyncDeadLetterAlarm",
    "CrmSyncIteratorAgeAlarm",
    "CrmSyncErrorsAlarm",
    "LedgerTableThrottleAlarm",
];

#[test]
fn what_only_crm_sync_uses_exists_only_with_crm_sync() {
    // HasCrm, or a condition that implies it (reconcile's HasReconcile: !And [HasCrm, …]).
    let implies_crm = |condition: &str| {
        condition == "HasCrm"
            || try_at(template(), &["Conditions", condition])
                .and_then(|c| tagged(c, "And", "Fn::And"))
                .and_then(Value::as_sequence)
                .is_some_and(|terms| {
                    terms.iter().any(|t| {
                        tagged(t, "Condition", "Condition").map(text).as_deref() == Some("HasCrm")
                            || try_at(t, &["Condition"]).map(text).as_deref() == Some("HasCrm")
                    })
                })
    };
    let with_crm = |v: &Value| {
        try_at(v, &["Condition"])
            .map(text)
            .is_some_and(|c| implies_crm(&c))
    };
    for id in CRM_SYNC_ONLY {
        assert!(with_crm(resource(id)), "{id}: Condition: HasCrm");
    }
    let crm: BTreeSet<String> = resources()
        .iter()
        .filter(|(_, r)| with_crm(r))
        .map(|(id, _)| text(id))
        .collect();
    let watches = |r: &Value| {
        matches!(
            try_at(r, &["Type"]).map(text).as_deref(),
            Some("AWS::CloudWatch::Alarm" | "AWS::CloudWatch::Dashboard")
        )
    };
    for (id, r) in resources() {
        let id = text(id);
        let refs = resource_references(r);
        // Whatever refers to a crm-sync resource exists only with it (or guards the reference).
        if !crm.contains(&id) {
            let missing: Vec<_> = refs.intersection(&crm).collect();
            assert!(
                missing.is_empty(),
                "{id} refers to {missing:?}, which exist only with crm-sync: give it Condition: HasCrm, or guard the reference with !If [HasCrm, ...]"
            );
        }
        // Whatever only crm-sync's resources use exists only with them: without crm-sync it
        // would be deployed, and alarm, with nothing using it. Alarms and the dashboard watch
        // resources; they do not use them.
        let users: BTreeSet<String> = resources()
            .iter()
            .filter(|(user, u)| text(user) != id && !watches(u))
            .filter(|(_, u)| resource_references(u).contains(&id))
            .map(|(user, _)| text(user))
            .collect();
        if !users.is_empty() && users.is_subset(&crm) {
            assert!(
                crm.contains(&id),
                "{id} is used only by {users:?}, which exist only with crm-sync: give it Condition: HasCrm"
            );
        }
    }
    for (name, output) in at(template(), &["Outputs"]).as_mapping().expect("Outputs") {
        if !resource_references(output).is_disjoint(&crm) {
            assert!(
                with_crm(output),
                "output {}: refers to crm-sync's resources, so Condition: HasCrm",
                text(name)
            );
        }
    }
}

#[test]
fn salesforce_settings_cannot_be_left_empty() {
    // With CrmKind=salesforce, crm-sync refuses to start without these settings and every batch
    // would fail: the stack refuses them empty instead (template Rules).
    let config = std::fs::read_to_string(repo_root().join("functions/crm-sync/src/config.rs"))
        .expect("functions/crm-sync/src/config.rs");
    let crm_env = env("CrmSyncFunction");
    let rules = at(template(), &["Rules"]).as_mapping().expect("Rules");
    let equals = |v: &Value| -> Option<(String, String)> {
        match tagged(v, "Equals", "Fn::Equals")? {
            Value::Sequence(pair) if pair.len() == 2 => {
                Some((ref_target(&pair[0])?, text(&pair[1])))
            }
            _ => None,
        }
    };
    let rule = rules
        .values()
        .find(|r| {
            try_at(r, &["RuleCondition"]).and_then(equals)
                == Some(("CrmKind".to_owned(), "salesforce".to_owned()))
        })
        .expect("a rule whose RuleCondition is !Equals [!Ref CrmKind, salesforce]");
    let required: BTreeSet<String> = at(rule, &["Assertions"])
        .as_sequence()
        .expect("Assertions list")
        .iter()
        .map(|a| {
            assert!(
                !text(at(a, &["AssertDescription"])).is_empty(),
                "every assertion says what is missing"
            );
            let not = tagged(at(a, &["Assert"]), "Not", "Fn::Not")
                .and_then(|v| v.as_sequence())
                .expect("Assert: !Not [!Equals [!Ref <parameter>, \"\"]]");
            match equals(&not[0]) {
                Some((param, empty)) if empty.is_empty() => param,
                other => panic!("Assert: !Not [!Equals [!Ref <parameter>, \"\"]], got {other:?}"),
            }
        })
        .collect();
    for var in [
        "SALESFORCE_LOGIN_URL",
        "SALESFORCE_CLIENT_ID",
        "SALESFORCE_CLIENT_SECRET_ARN",
    ] {
        assert!(
            config.contains(&format!("\"{var}\"")),
            "crm-sync's config no longer reads {var}: update this test and the rule"
        );
        let param = ref_target(at(crm_env, &[var]))
            .unwrap_or_else(|| panic!("crm-sync's {var} is !Ref <parameter>"));
        assert!(
            required.contains(&param),
            "the salesforce rule must require {param} ({var})"
        );
    }
}

#[test]
fn quota_alarm_names_refuses_more_names_than_there_are_alarm_slots() {
    let slots = at(template(), &["Conditions"])
        .as_mapping()
        .expect("Conditions")
        .keys()
        .filter(|k| text(k).starts_with("HasQuotaAlarm"))
        .count();
    assert_eq!(slots, QUOTA_SLOTS);
    let param = at(template(), &["Parameters", "QuotaAlarmNames"]);
    let pattern = text(at(param, &["AllowedPattern"]));
    // CloudFormation matches the whole value.
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .unwrap_or_else(|e| panic!("AllowedPattern {pattern:?}: {e}"));
    let names = |n: usize| {
        (1..=n)
            .map(|i| format!("quota-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    for n in 0..=slots {
        assert!(re.is_match(&names(n)), "{n} names must be accepted");
    }
    assert!(
        !re.is_match(&names(slots + 1)),
        "{} names must be refused: only {slots} get alarms, the rest would be dropped silently",
        slots + 1
    );
    // Names as quota-alert accepts them: 1 to 64 letters, digits, '-', '_' or '.'.
    let longest = "q".repeat(64);
    for good in ["limit-errors", "sms.daily_1,Voice-2", longest.as_str()] {
        assert!(re.is_match(good), "{good:?} must be accepted");
    }
    let too_long = "q".repeat(65);
    for bad in ["a,,b", ",a", "a,", "a b", "a, b", "a;b", too_long.as_str()] {
        assert!(!re.is_match(bad), "{bad:?} must be refused");
    }
    assert!(re.is_match(&parameter_default("QuotaAlarmNames")));
    let why = text(at(param, &["ConstraintDescription"]));
    assert!(
        why.contains(&format!("at most {QUOTA_SLOTS}")),
        "ConstraintDescription says the limit: {why}"
    );
}

#[test]
fn the_no_events_alarm_says_what_it_counts() {
    // Received counts the events of deliveries whose signature verified: a delivery that fails
    // the check, or that cannot be read, counts nothing. The description must say so.
    let description = format!("{:?}", at(props("NoEventsAlarm"), &["AlarmDescription"]));
    assert!(
        description.contains("signed") && description.contains("signature check"),
        "{description}"
    );
    assert!(!description.contains("no Twilio delivery"), "{description}");
}

#[test]
fn the_twilio_secret_outlives_the_stack_and_the_guide_says_how_to_remove_it() {
    // CloudFormation deletes a secret with no recovery window: kept, it survives `sam delete`.
    let secret = resource("TwilioSecret");
    let policy = text(at(secret, &["DeletionPolicy"]));
    assert!(
        policy == "Retain" || policy == "RetainExceptOnCreate",
        "TwilioSecret DeletionPolicy {policy}"
    );
    assert_eq!(text(at(secret, &["UpdateReplacePolicy"])), "Retain");
    let guide = deploy_guide();
    assert!(guide.contains(&format!("DeletionPolicy: {policy}")));
    assert!(guide.contains("aws secretsmanager delete-secret"));
}

#[test]
fn the_deploy_guide_finds_the_test_id_where_ingest_logs_it() {
    const MESSAGE: &str = "sink test event received";
    let ingest = service_source("ingest");
    assert!(ingest.contains(&format!("\"{MESSAGE}\"")));
    assert!(ingest.contains("test_id = "));
    // tracing's JSON lines nest an event's fields under "fields" unless flattened.
    let logging = std::fs::read_to_string(repo_root().join("shared/src/logging.rs"))
        .expect("shared/src/logging.rs");
    assert!(logging.contains(".json()") && !logging.contains("flatten_event(true)"));
    let guide = deploy_guide();
    assert!(guide.contains(&format!("fields.message = \"{MESSAGE}\"")));
    assert!(guide.contains("fields.test_id"));
    assert!(guide.contains("--test-id"));
    assert!(guide.contains("cargo install --locked --path infra/cli"));
}

#[test]
fn outputs_give_the_urls_and_resources_a_user_needs() {
    let outputs = at(template(), &["Outputs"]);
    for name in [
        "WebhookUrl",
        "UsageTriggerUrl",
        "StreamName",
        "AlertTopicArn",
        "TwilioSecretArn",
        "DashboardUrl",
    ] {
        assert!(try_at(outputs, &[name, "Value"]).is_some(), "output {name}");
    }
    let rendered = format!("{:?}", at(outputs, &["WebhookUrl", "Value"]));
    assert!(rendered.contains("/twilio/events"), "{rendered}");
    assert!(rendered.contains("TwilioHttpApi"), "{rendered}");
    for (output, path) in [
        ("UsageTriggerUrl", "/twilio/usage-triggers"),
        ("MessageStatusCallbackUrl", "/twilio/message-status"),
        ("CallStatusCallbackUrl", "/twilio/call-status"),
        ("InboundMessageUrl", "/twilio/inbound-messages"),
    ] {
        let rendered = format!("{:?}", at(outputs, &[output, "Value"]));
        assert!(rendered.contains(path), "{output}: {rendered}");
    }
    assert_eq!(
        text(at(resource("TwilioSecret"), &["Type"])),
        "AWS::SecretsManager::Secret"
    );
    assert_eq!(of_type("AWS::CloudWatch::Dashboard").len(), 1);
}

fn deploy_guide() -> String {
    std::fs::read_to_string(repo_root().join("docs/deploy.md")).expect("docs/deploy.md")
}

#[test]
fn the_deploy_guide_explains_every_alarm() {
    let guide = deploy_guide();
    for (id, ..) in ALARMS {
        assert!(
            guide.contains(&format!("`{id}`")),
            "docs/deploy.md: no row for {id}"
        );
    }
    for (id, _) in THROTTLE_ALARMS {
        assert!(
            guide.contains(&format!("`{id}`")),
            "docs/deploy.md: no row for {id}"
        );
    }
    assert!(
        guide.contains("QuotaAlarm<n>At50"),
        "docs/deploy.md: quota alarms"
    );
    // The table of what each alarm watches: a row per alarm naming each metric it reads.
    for w in watched_metrics() {
        let id = if w.alarm.starts_with("QuotaAlarm") {
            "`QuotaAlarm<n>At50`".to_owned()
        } else {
            format!("`{}`", w.alarm)
        };
        let metric = format!("`{}`", w.metric);
        assert!(
            guide
                .lines()
                .any(|l| l.starts_with("| ") && l.contains(&id) && l.contains(&metric)),
            "docs/deploy.md: no table row for {id} naming its metric {metric}"
        );
    }
}

#[test]
fn the_quarantine_bucket_is_private_encrypted_tls_only_and_expires_with_the_queue() {
    // GIVEN the bucket that holds quarantined items too large for an SQS message
    let bucket = props("QuarantineBucket");

    // THEN it is encrypted at rest, closed to the public and to ACLs
    let encryption = listed(at(
        bucket,
        &["BucketEncryption", "ServerSideEncryptionConfiguration"],
    ));
    assert_eq!(
        text(at(
            encryption[0],
            &["ServerSideEncryptionByDefault", "SSEAlgorithm"]
        )),
        "AES256"
    );
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            at(bucket, &["PublicAccessBlockConfiguration", setting]),
            &Value::Bool(true),
            "{setting}"
        );
    }
    let ownership = listed(at(bucket, &["OwnershipControls", "Rules"]));
    assert_eq!(
        text(at(ownership[0], &["ObjectOwnership"])),
        "BucketOwnerEnforced"
    );
    // AND its items expire when the queue's pointers to them do
    let retention_s: u64 = text(at(props("QuarantineQueue"), &["MessageRetentionPeriod"]))
        .parse()
        .unwrap();
    let rules = listed(at(bucket, &["LifecycleConfiguration", "Rules"]));
    let expiry = rules
        .iter()
        .find(|r| try_at(r, &["ExpirationInDays"]).is_some())
        .expect("an expiry rule");
    assert_eq!(text(at(expiry, &["Prefix"])), "quarantine/");
    assert_eq!(text(at(expiry, &["Status"])), "Enabled");
    let days: u64 = text(at(expiry, &["ExpirationInDays"])).parse().unwrap();
    assert_eq!(days * 86_400, retention_s);
    // AND its policy refuses any request without TLS
    let policy = props("QuarantineBucketPolicy");
    assert!(is_ref_to(at(policy, &["Bucket"]), "QuarantineBucket"));
    let statements = listed(at(policy, &["PolicyDocument", "Statement"]));
    assert!(statements.iter().any(|s| {
        text(at(s, &["Effect"])) == "Deny"
            && try_at(s, &["Condition", "Bool", "aws:SecureTransport"]).map(text)
                == Some("false".into())
    }));
}

#[test]
fn every_function_that_quarantines_may_write_only_under_the_buckets_quarantine_prefix() {
    for (id, _, _) in FUNCTIONS {
        // GIVEN a function with a quarantine queue
        if try_at(env(id), &["QUARANTINE_QUEUE_URL"]).is_none() {
            continue;
        }
        // THEN it is given the bucket too
        assert!(
            is_ref_to(at(env(id), &["QUARANTINE_BUCKET"]), "QuarantineBucket"),
            "{id}: QUARANTINE_BUCKET"
        );
        // AND exactly s3:PutObject, on quarantine/* of that bucket
        let s3: Vec<&Value> = statements(id)
            .into_iter()
            .filter(|s| {
                listed(at(s, &["Action"]))
                    .iter()
                    .any(|a| text(a).starts_with("s3:"))
            })
            .collect();
        assert_eq!(s3.len(), 1, "{id}: one S3 statement");
        let actions: Vec<String> = listed(at(s3[0], &["Action"]))
            .into_iter()
            .map(text)
            .collect();
        assert_eq!(actions, ["s3:PutObject"], "{id}");
        let resource = tagged(at(s3[0], &["Resource"]), "Sub", "Fn::Sub")
            .map(text)
            .unwrap_or_default();
        assert_eq!(resource, "${QuarantineBucket.Arn}/quarantine/*", "{id}");
    }
}

#[test]
fn reconcile_runs_on_its_schedule_reads_the_open_index_and_writes_only_through_ingests_path() {
    // The ledger's sparse index, with the keys and attributes crm-sync writes and reconcile
    // queries (crm_sync::ports::OPEN_INDEX).
    let index = at(props("LedgerTable"), &["GlobalSecondaryIndexes"])
        .as_sequence()
        .expect("GlobalSecondaryIndexes")
        .iter()
        .find(|i| text(at(i, &["IndexName"])) == "open-by-change")
        .expect("the open-by-change index");
    let keys: Vec<(String, String)> = at(index, &["KeySchema"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (text(at(k, &["AttributeName"])), text(at(k, &["KeyType"]))))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("open_kind".to_owned(), "HASH".to_owned()),
            ("changed_at_ms".to_owned(), "RANGE".to_owned())
        ]
    );
    let projected: BTreeSet<String> = listed(at(index, &["Projection", "NonKeyAttributes"]))
        .into_iter()
        .map(text)
        .collect();
    for needed in ["status", "rank", "event_id"] {
        assert!(projected.contains(needed), "{needed} not projected");
    }
    // Deployed only with crm-sync (its ledger) and credentials; on its own schedule, the period
    // it is told.
    assert_eq!(
        text(at(resource("ReconcileFunction"), &["Condition"])),
        "HasReconcile"
    );
    let schedule = at(props("ReconcileFunction"), &["Events", "Schedule"]);
    assert_eq!(text(at(schedule, &["Type"])), "Schedule");
    let rate = at(schedule, &["Properties", "Schedule"]);
    let rate = text(tagged(rate, "!Sub", "Fn::Sub").unwrap_or(rate));
    assert_eq!(rate, "rate(${ReconcileEveryMinutes} minutes)");
    let env = env("ReconcileFunction");
    assert!(is_ref_to(
        at(env, &["RECONCILE_EVERY_MINUTES"]),
        "ReconcileEveryMinutes"
    ));
    assert!(is_ref_to(
        at(env, &["TWILIO_API_SECRET_ARN"]),
        "TwilioApiSecretArn"
    ));
    assert!(is_ref_to(at(env, &["LEDGER_TABLE"]), "LedgerTable"));
    assert!(is_ref_to(at(env, &["DEDUP_TABLE"]), "DedupTable"));
    assert!(is_ref_to(at(env, &["STREAM_NAME"]), "EventStream"));
    // What it may do: read the ledger, claim in the dedup table, put to the stream, read its
    // secret. Nothing else.
    let actions: BTreeSet<String> = statements("ReconcileFunction")
        .into_iter()
        .flat_map(|s| listed(at(s, &["Action"])))
        .map(text)
        .collect();
    let expected: BTreeSet<String> = [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "kinesis:PutRecords",
        "secretsmanager:GetSecretValue",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(actions, expected);
    assert_eq!(
        text(at(
            props("ReconcileFunction"),
            &["EventInvokeConfig", "MaximumRetryAttempts"]
        )),
        "0"
    );
}

/// The name of the `metric::` constant whose value is `metric`, in a service's sources.
fn metric_constant(source: &str, metric: &str) -> Option<String> {
    let constant = regex::Regex::new(&format!(
        r#"pub const ([A-Z_]+): &str = "{}";"#,
        regex::escape(metric)
    ))
    .ok()?;
    constant.captures(source).map(|c| c[1].to_owned())
}

/// The names the service's sources publish as CloudWatch metrics: `.count("X"`, `.add("X"`
/// (ingest's `Status{}xx` as Status2xx, 4xx and 5xx) and crm-sync's `metric::` constants.
/// Tallies (`.tally("X"`) are log fields, not metrics.
fn published_metric_names(service: &str) -> BTreeSet<String> {
    let source = service_source(service);
    let calls = regex::Regex::new(r#"\.(?:count|add)\(\s*"([A-Za-z0-9]+)""#).unwrap();
    let mut names: BTreeSet<String> = calls
        .captures_iter(&source)
        .map(|c| c[1].to_owned())
        .collect();
    if source.contains(r#".count(&format!("Status{}xx""#) {
        names.extend(["Status2xx", "Status4xx", "Status5xx"].map(str::to_owned));
    }
    if let Some(module) = source.split("pub mod metric {").nth(1) {
        let module = module.split("\n}").next().unwrap_or_default();
        let constant = regex::Regex::new(r#"pub const [A-Z_]+: &str = "([A-Za-z0-9]+)";"#).unwrap();
        names.extend(constant.captures_iter(module).map(|c| c[1].to_owned()));
    }
    names
}

#[test]
fn every_custom_metric_a_function_publishes_is_read_by_an_alarm_or_the_dashboard() {
    // CloudWatch bills every metric name × dimension set by the hour (docs/cost.md): what no
    // alarm or dashboard reads is a tally (a log field) or not written.
    // The body and its variables (the widgets of optional functions are variables).
    let body = serde_yaml_ng::to_string(at(props("PipelineDashboard"), &["DashboardBody"]))
        .expect("DashboardBody as text");
    let alarmed: BTreeSet<String> = watched_metrics()
        .into_iter()
        .filter(|w| w.namespace == "TwilioEvents")
        .map(|w| w.metric)
        .collect();
    // quota-alert's Used and Limit sit beside Utilization (one document per quota); its README
    // documents them as metrics for users' own alarms.
    let documented_for_users = ["Used", "Limit"];
    // (service, the fewest metric names it publishes: fewer means the search above lost some).
    // kafka-forward's three are its contract (docs/deploy.md, "Forward to Kafka").
    for (service, at_least) in [
        ("ingest", 5),
        ("crm-sync", 5),
        ("quota-alert", 5),
        ("reconcile", 5),
        ("kafka-forward", 3),
    ] {
        let names = published_metric_names(service);
        assert!(names.len() >= at_least, "{service}: found only {names:?}");
        for name in names {
            let read = alarmed.contains(&name)
                || body.contains(&format!("\"{name}\""))
                || (service == "quota-alert" && documented_for_users.contains(&name.as_str()));
            assert!(
                read,
                "{service} publishes the metric {name}, which no alarm or dashboard widget reads: \
                 make it a tally (Metrics::tally) or show it"
            );
        }
    }
    // kafka-forward's contract: what it forwarded, what Kafka refused (its alarm), what it set
    // aside.
    let kafka = published_metric_names("kafka-forward");
    for name in KAFKA_FORWARD_METRICS {
        assert!(
            kafka.contains(name),
            "kafka-forward does not publish {name} (count(\"{name}\", n)), which its alarm or widget reads"
        );
    }
}

#[test]
fn every_parameter_is_in_the_deploy_guides_table() {
    let guide = deploy_guide();
    let parameters = at(template(), &["Parameters"])
        .as_mapping()
        .expect("Parameters is a mapping");
    for (name, _) in parameters {
        let name = text(name);
        assert!(
            guide.contains(&format!("`{name}`")),
            "docs/deploy.md does not describe the parameter {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Deployments: the template as CloudFormation evaluates it for given parameter values (its
// conditions, rules and `!If`s), to check what a deployment creates, not only what is written.

/// What an intrinsic function evaluates to.
#[derive(Clone, Debug, PartialEq)]
enum Evaluated {
    Text(String),
    List(Vec<String>),
}

/// Pseudo parameters as the deployments below see them.
const PSEUDO_PARAMETERS: &[(&str, &str)] = &[
    ("AWS::Partition", "aws"),
    ("AWS::Region", "us-east-1"),
    ("AWS::AccountId", "111122223333"),
    ("AWS::URLSuffix", "amazonaws.com"),
    ("AWS::StackName", "twilio-events"),
];

/// The template deployed with its parameters' defaults, some of them given other values.
struct Deployment {
    parameters: BTreeMap<String, Evaluated>,
}

impl Deployment {
    /// Each given value must be one the parameter accepts (AllowedValues, AllowedPattern).
    fn with(given: &[(&str, &str)]) -> Self {
        let declared = at(template(), &["Parameters"])
            .as_mapping()
            .expect("Parameters");
        for (name, value) in given {
            let declaration = declared
                .get(*name)
                .unwrap_or_else(|| panic!("no parameter {name}"));
            if let Some(Value::Sequence(allowed)) = declaration.get("AllowedValues") {
                assert!(
                    allowed.iter().any(|a| text(a) == *value),
                    "{name}: {value:?} is not an allowed value"
                );
            }
            if let Some(pattern) = declaration.get("AllowedPattern") {
                let re = regex::Regex::new(&format!("^(?:{})$", text(pattern))).unwrap();
                assert!(re.is_match(value), "{name}: {value:?} does not match");
            }
        }
        let parameters = declared
            .iter()
            .map(|(name, declaration)| {
                let name = text(name);
                let value = given
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
                    .or_else(|| declaration.get("Default").map(text))
                    .unwrap_or_else(|| panic!("{name} has no default"));
                let value = if text(at(declaration, &["Type"])) == "CommaDelimitedList" {
                    Evaluated::List(value.split(',').map(str::to_owned).collect())
                } else {
                    Evaluated::Text(value)
                };
                (name, value)
            })
            .collect();
        Self { parameters }
    }

    /// A parameter's or pseudo parameter's value; `<Id>` or `<Id.Attribute>` for a resource's.
    fn named(&self, name: &str) -> Evaluated {
        if let Some(value) = self.parameters.get(name) {
            return value.clone();
        }
        match PSEUDO_PARAMETERS.iter().find(|(p, _)| *p == name) {
            Some((_, value)) => Evaluated::Text((*value).to_owned()),
            None => Evaluated::Text(format!("<{name}>")),
        }
    }

    fn evaluate(&self, v: &Value) -> Evaluated {
        if let Some(name) = ref_target(v) {
            return self.named(&name);
        }
        if let Some((id, attribute)) = getatt_target(v) {
            return self.named(&format!("{id}.{attribute}"));
        }
        let arguments = |short: &str, long: &str| {
            tagged(v, short, long)
                .and_then(Value::as_sequence)
                .map(|a| a.as_slice())
        };
        if let Some([separator, items]) = arguments("Join", "Fn::Join") {
            return Evaluated::Text(self.list(items).join(&text(separator)));
        }
        if let Some([separator, source]) = arguments("Split", "Fn::Split") {
            let parts = self.text(source);
            return Evaluated::List(
                parts
                    .split(text(separator).as_str())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        if let Some([index, items]) = arguments("Select", "Fn::Select") {
            let index: usize = text(index).parse().expect("!Select index");
            let items = self.list(items);
            return Evaluated::Text(items.get(index).cloned().unwrap_or_else(|| {
                panic!("!Select {index} of {items:?}: CloudFormation fails the deployment")
            }));
        }
        if let Some(inner) = tagged(v, "Sub", "Fn::Sub") {
            return Evaluated::Text(self.substitute(inner));
        }
        match v {
            Value::Sequence(items) => Evaluated::List(items.iter().map(|i| self.text(i)).collect()),
            scalar => Evaluated::Text(text(scalar)),
        }
    }

    fn text(&self, v: &Value) -> String {
        match self.evaluate(v) {
            Evaluated::Text(s) => s,
            Evaluated::List(l) => panic!("a string expected, got the list {l:?}"),
        }
    }

    fn list(&self, v: &Value) -> Vec<String> {
        match self.evaluate(v) {
            Evaluated::List(l) => l,
            Evaluated::Text(s) => panic!("a list expected, got {s:?}"),
        }
    }

    fn substitute(&self, inner: &Value) -> String {
        let (body, variables) = match inner {
            Value::Sequence(parts) if parts.len() == 2 => (text(&parts[0]), Some(&parts[1])),
            other => (text(other), None),
        };
        let mut out = String::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').expect("${ without }");
            let name = &after[..end];
            let value = match variables.and_then(|vars| vars.get(name)) {
                Some(variable) => self.text(variable),
                None => match self.named(name) {
                    Evaluated::Text(s) => s,
                    Evaluated::List(l) => panic!("!Sub of the list parameter {name}: {l:?}"),
                },
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn holds(&self, condition: &str) -> bool {
        self.truth(at(template(), &["Conditions", condition]))
    }

    fn truth(&self, v: &Value) -> bool {
        let arguments = |short: &str, long: &str| {
            tagged(v, short, long)
                .and_then(Value::as_sequence)
                .map(|a| a.as_slice())
        };
        if let Some([a, b]) = arguments("Equals", "Fn::Equals") {
            return self.evaluate(a) == self.evaluate(b);
        }
        if let Some([a]) = arguments("Not", "Fn::Not") {
            return !self.truth(a);
        }
        if let Some(terms) = arguments("And", "Fn::And") {
            return terms.iter().all(|t| self.truth(t));
        }
        if let Some(terms) = arguments("Or", "Fn::Or") {
            return terms.iter().any(|t| self.truth(t));
        }
        if let Some([items, item]) = arguments("Contains", "Fn::Contains") {
            return self.list(items).contains(&self.text(item));
        }
        if let Some([items, item]) = arguments("EachMemberEquals", "Fn::EachMemberEquals") {
            let item = self.text(item);
            return self.list(items).iter().all(|i| *i == item);
        }
        if let Some(name) = tagged(v, "Condition", "Condition") {
            return self.holds(&text(name));
        }
        panic!("not a condition: {v:?}")
    }

    fn creates(&self, id: &str) -> bool {
        try_at(resource(id), &["Condition"]).is_none_or(|c| self.holds(&text(c)))
    }

    fn created(&self) -> BTreeSet<String> {
        resources()
            .keys()
            .map(text)
            .filter(|id| self.creates(id))
            .collect()
    }

    /// `v` as deployed: each `!If` replaced by its branch, `!Ref AWS::NoValue` left out.
    fn resolve(&self, v: &Value) -> Option<Value> {
        if is_ref_to(v, "AWS::NoValue") {
            return None;
        }
        if let Some(Value::Sequence(branches)) = tagged(v, "If", "Fn::If") {
            let taken = if self.holds(&text(&branches[0])) {
                &branches[1]
            } else {
                &branches[2]
            };
            return self.resolve(taken);
        }
        Some(match v {
            Value::Sequence(items) => {
                Value::Sequence(items.iter().filter_map(|i| self.resolve(i)).collect())
            }
            Value::Mapping(map) => Value::Mapping(
                map.iter()
                    .filter_map(|(k, item)| Some((k.clone(), self.resolve(item)?)))
                    .collect(),
            ),
            Value::Tagged(t) => Value::Tagged(Box::new(TaggedValue {
                tag: t.tag.clone(),
                value: self.resolve(&t.value)?,
            })),
            other => other.clone(),
        })
    }

    /// A created resource's properties, as deployed.
    fn props(&self, id: &str) -> Value {
        assert!(self.creates(id), "{id} is not created");
        self.resolve(props(id)).expect("properties")
    }

    /// A function's policy statements, as deployed.
    fn statements(&self, id: &str) -> Vec<Value> {
        let p = self.props(id);
        listed(at(&p, &["Policies"]))
            .into_iter()
            .flat_map(|policy| listed(at(policy, &["Statement"])))
            .cloned()
            .collect()
    }

    /// The names of the template's rules whose assertions these values fail (CloudFormation
    /// then refuses the deployment).
    fn refusing_rules(&self) -> BTreeSet<String> {
        let rules = at(template(), &["Rules"]).as_mapping().expect("Rules");
        rules
            .iter()
            .filter(|(_, rule)| {
                try_at(rule, &["RuleCondition"]).is_none_or(|c| self.truth(c))
                    && listed(at(rule, &["Assertions"]))
                        .iter()
                        .any(|a| !self.truth(at(a, &["Assert"])))
            })
            .map(|(name, _)| text(name))
            .collect()
    }

    /// The dashboard's body as deployed, parsed (it must be JSON in every deployment).
    fn dashboard(&self) -> serde_json::Value {
        let body = self.text(at(&self.props("PipelineDashboard"), &["DashboardBody"]));
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("the dashboard body is not JSON ({e}):\n{body}"))
    }
}

/// Every `!Ref`, `!GetAtt` and `${...}` of what `d` creates (its outputs included) names a
/// resource it creates, a parameter or a pseudo parameter: nothing refers to what a condition
/// left out.
fn assert_every_reference_resolves(d: &Deployment, deployment: &str) {
    let created = d.created();
    let check = |what: String, v: &Value| {
        let mut refs = BTreeSet::new();
        references(&d.resolve(v).expect("present"), &mut refs);
        if let Some(depends) = v.get("DependsOn") {
            refs.extend(listed(depends).into_iter().map(text));
        }
        for r in refs {
            assert!(
                created.contains(&r) || d.parameters.contains_key(&r) || r.starts_with("AWS::"),
                "{deployment}: {what} refers to {r}, which this deployment does not create"
            );
        }
    };
    for id in &created {
        check(id.clone(), resource(id));
    }
    for (name, output) in at(template(), &["Outputs"]).as_mapping().expect("Outputs") {
        if try_at(output, &["Condition"]).is_none_or(|c| d.holds(&text(c))) {
            check(format!("output {}", text(name)), output);
        }
    }
}

/// kafka-forward and what only it uses: deployed only with Kafka bootstrap servers.
const KAFKA_FORWARD_ONLY: &[&str] = &[
    "KafkaForwardLogGroup",
    "KafkaForwardFunction",
    "KafkaForwardStreamMapping",
    "KafkaForwardDeadLetterQueue",
    "KafkaForwardErrorsAlarm",
    "KafkaForwardIteratorAgeAlarm",
    "KafkaForwardProduceFailuresAlarm",
    "KafkaForwardDeadLetterAlarm",
];

/// The EMF metrics kafka-forward publishes (namespace TwilioEvents, Service = kafka-forward).
const KAFKA_FORWARD_METRICS: [&str; 3] = ["Forwarded", "ProduceFailures", "Quarantined"];

const MSK_CLUSTER_ARN: &str =
    "arn:aws:kafka:eu-west-1:123456789012:cluster/events/0a1b2c3d-1234-5678-9abc-def012345678-2";
const MSK_TOPIC_ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:topic/events/0a1b2c3d-1234-5678-9abc-def012345678-2/twilio-events";
const SCRAM_SECRET_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_twilio-events-AbCdEf";

/// Amazon MSK with IAM access control, in two subnets.
fn msk_iam() -> Deployment {
    Deployment::with(&[
        (
            "KafkaBootstrapServers",
            "b-1.events.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.events.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
        ),
        ("KafkaSecurityProtocol", "SASL_SSL"),
        ("KafkaSaslMechanism", "AWS_MSK_IAM"),
        ("KafkaClusterArn", MSK_CLUSTER_ARN),
        (
            "KafkaSubnetIds",
            "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        ),
        ("KafkaSecurityGroupIds", "sg-0123456789abcdef0"),
    ])
}

/// Amazon MSK with SASL/SCRAM, in a subnet.
fn msk_scram() -> Deployment {
    Deployment::with(&[
        (
            "KafkaBootstrapServers",
            "b-1.events.abc123.c2.kafka.eu-west-1.amazonaws.com:9096",
        ),
        ("KafkaSecurityProtocol", "SASL_SSL"),
        ("KafkaSaslMechanism", "SCRAM-SHA-512"),
        ("KafkaCredentialsSecretArn", SCRAM_SECRET_ARN),
        ("KafkaSubnetIds", "subnet-0123456789abcdef0"),
        ("KafkaSecurityGroupIds", "sg-0123456789abcdef0"),
    ])
}

/// Confluent Cloud: SASL_SSL with PLAIN, a public endpoint, no VPC.
fn confluent_cloud() -> Deployment {
    Deployment::with(&[
        (
            "KafkaBootstrapServers",
            "pkc-abc12.eu-west-1.aws.confluent.cloud:9092",
        ),
        ("KafkaSecurityProtocol", "SASL_SSL"),
        ("KafkaSaslMechanism", "PLAIN"),
        (
            "KafkaCredentialsSecretArn",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:confluent-cloud-AbCdEf",
        ),
    ])
}

/// The actions of `statements` that start with `prefix`, each with the resources it is allowed
/// on (`Effect: Allow`), as deployed.
fn allowed(
    d: &Deployment,
    statements: &[Value],
    prefix: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in statements {
        if text(at(s, &["Effect"])) != "Allow" {
            continue;
        }
        for action in listed(at(s, &["Action"])).into_iter().map(text) {
            if action.starts_with(prefix) {
                let resources = listed(at(s, &["Resource"])).into_iter().map(|r| d.text(r));
                out.entry(action).or_default().extend(resources);
            }
        }
    }
    out
}

#[test]
fn with_the_kafka_parameters_left_empty_nothing_kafka_is_deployed() {
    // GIVEN the template's defaults (no KafkaBootstrapServers)
    let d = Deployment::with(&[]);
    assert_eq!(parameter_default("KafkaBootstrapServers"), "");
    assert!(!d.holds("HasKafka"));

    // THEN none of kafka-forward's resources is created, nor anything named after Kafka
    let created = d.created();
    let kafka: Vec<_> = created.iter().filter(|id| id.contains("Kafka")).collect();
    assert!(kafka.is_empty(), "created without Kafka: {kafka:?}");
    for id in KAFKA_FORWARD_ONLY {
        assert_eq!(
            text(at(resource(id), &["Condition"])),
            "HasKafka",
            "{id}: Condition: HasKafka"
        );
    }

    // AND nothing created refers to them or to a Kafka parameter, the dashboard included
    assert_every_reference_resolves(&d, "defaults");
    for id in &created {
        let mut refs = BTreeSet::new();
        references(&d.resolve(resource(id)).unwrap(), &mut refs);
        let kafka: Vec<_> = refs.iter().filter(|r| r.contains("Kafka")).collect();
        assert!(kafka.is_empty(), "{id} refers to {kafka:?} without Kafka");
    }
    let dashboard = d.dashboard().to_string();
    assert!(!dashboard.contains("kafka"), "{dashboard}");
    assert!(d.refusing_rules().is_empty(), "{:?}", d.refusing_rules());
}

#[test]
fn with_bootstrap_servers_kafka_forward_consumes_the_stream_with_its_queue_alarms_and_widget() {
    for (name, d) in [
        ("MSK IAM", msk_iam()),
        ("MSK SCRAM", msk_scram()),
        ("Confluent Cloud", confluent_cloud()),
    ] {
        // GIVEN a Kafka deployment the rules accept
        assert!(
            d.refusing_rules().is_empty(),
            "{name}: {:?}",
            d.refusing_rules()
        );

        // THEN kafka-forward and everything only it uses is created, and every reference
        // resolves
        let created = d.created();
        for id in KAFKA_FORWARD_ONLY {
            assert!(created.contains(*id), "{name}: {id} not created");
        }
        assert_every_reference_resolves(&d, name);

        // AND the dashboard shows its metrics, its lag and its dead letters
        let dashboard = d.dashboard();
        let lines: Vec<String> = dashboard["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .flat_map(|w| {
                w["properties"]["metrics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|line| line.to_string())
            .collect();
        let shows = |needle: &str| lines.iter().any(|l| l.contains(needle));
        assert!(
            shows(r#""TwilioEvents","Forwarded","Service","kafka-forward""#),
            "{name}"
        );
        for metric in KAFKA_FORWARD_METRICS {
            assert!(
                shows(&format!(r#""{metric}""#)),
                "{name}: {metric} on the dashboard"
            );
        }
        assert!(
            shows(r#"["...","twilio-events-kafka-forward"]"#),
            "{name}: iterator age"
        );
        assert!(
            shows(r#""<KafkaForwardDeadLetterQueue.QueueName>""#),
            "{name}: dead letters"
        );
        assert!(
            shows(r#"["AWS/Lambda","Errors","FunctionName","twilio-events-kafka-forward"]"#),
            "{name}: errors"
        );
    }
    // The ProduceFailures alarm reads the metric kafka-forward publishes for refused records.
    let p = props("KafkaForwardProduceFailuresAlarm");
    assert_eq!(text(at(p, &["Namespace"])), "TwilioEvents");
    assert_eq!(text(at(p, &["MetricName"])), "ProduceFailures");
    assert_eq!(text(dimension(p, "Service")), "kafka-forward");
    assert_eq!(text(at(p, &["Threshold"])), "1");
    assert_eq!(text(at(p, &["Statistic"])), "Sum");
}

#[test]
fn kafka_forward_reads_exactly_its_environment_contract() {
    // GIVEN the variables kafka-forward's config.rs reads, and where each comes from
    let contract = [
        ("KAFKA_BOOTSTRAP_SERVERS", "KafkaBootstrapServers"),
        ("KAFKA_TOPIC", "KafkaTopic"),
        ("KAFKA_SECURITY_PROTOCOL", "KafkaSecurityProtocol"),
        ("KAFKA_SASL_MECHANISM", "KafkaSaslMechanism"),
        ("KAFKA_CREDENTIALS_SECRET_ARN", "KafkaCredentialsSecretArn"),
        ("QUARANTINE_QUEUE_URL", "QuarantineQueue"),
        ("QUARANTINE_BUCKET", "QuarantineBucket"),
    ];
    // THEN the function gets each of them, from there, and nothing else
    let env = env("KafkaForwardFunction");
    let names: BTreeSet<String> = env
        .as_mapping()
        .expect("Variables")
        .keys()
        .map(text)
        .collect();
    assert_eq!(names, contract.iter().map(|c| c.0.to_owned()).collect());
    for (var, source) in contract {
        assert!(is_ref_to(at(env, &[var]), source), "{var}: !Ref {source}");
    }
    // AND the defaults are the crate's: TLS, no SASL, the twilio-events topic
    assert_eq!(parameter_default("KafkaSecurityProtocol"), "SSL");
    assert_eq!(
        allowed_values("KafkaSecurityProtocol"),
        ["SSL", "SASL_SSL", "PLAINTEXT", "SASL_PLAINTEXT"]
    );
    assert_eq!(parameter_default("KafkaSaslMechanism"), "");
    assert_eq!(
        allowed_values("KafkaSaslMechanism"),
        ["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"]
    );
    assert_eq!(parameter_default("KafkaTopic"), "twilio-events");
}

#[test]
fn kafka_forwards_mapping_is_as_safe_as_the_other_consumers() {
    // GIVEN crm-sync's mapping, the model of a consumer that keeps each resource's order
    let model = props("CrmSyncStreamMapping");
    let mapping = props("KafkaForwardStreamMapping");
    assert!(is_ref_to(
        at(mapping, &["FunctionName"]),
        "KafkaForwardFunction"
    ));

    // THEN kafka-forward's has the same settings: from the oldest record, one batch at a time
    // per shard (a resource's events stay in order), failures reported per record, bisected,
    // bounded retries and record age
    for setting in [
        "StartingPosition",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "FunctionResponseTypes",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "EventSourceArn",
    ] {
        assert_eq!(at(mapping, &[setting]), at(model, &[setting]), "{setting}");
    }
    assert_eq!(text(at(mapping, &["ParallelizationFactor"])), "1");

    // AND what it gives up on is listed in its own dead-letter queue, which it may write to
    // and which an alarm watches
    let destination = at(mapping, &["DestinationConfig", "OnFailure", "Destination"]);
    assert_eq!(
        getatt_target(destination),
        Some(("KafkaForwardDeadLetterQueue".to_owned(), "Arn".to_owned()))
    );
    let d = confluent_cloud();
    let sqs = allowed(&d, &d.statements("KafkaForwardFunction"), "sqs:");
    assert!(
        sqs["sqs:SendMessage"].contains("<KafkaForwardDeadLetterQueue.Arn>"),
        "{sqs:?}"
    );
    assert_eq!(
        getatt_target(dimension(props("KafkaForwardDeadLetterAlarm"), "QueueName")),
        Some((
            "KafkaForwardDeadLetterQueue".to_owned(),
            "QueueName".to_owned()
        ))
    );
    for alarm in ["KafkaForwardErrorsAlarm", "KafkaForwardIteratorAgeAlarm"] {
        assert!(
            is_ref_to(
                dimension(props(alarm), "FunctionName"),
                "KafkaForwardFunction"
            ),
            "{alarm}"
        );
    }
    // AND its log group is its own, with the stack's retention
    let logging = at(
        props("KafkaForwardFunction"),
        &["LoggingConfig", "LogGroup"],
    );
    assert!(is_ref_to(logging, "KafkaForwardLogGroup"));
    assert!(is_ref_to(
        at(props("KafkaForwardLogGroup"), &["RetentionInDays"]),
        "LogRetentionDays"
    ));
}

#[test]
fn msk_iam_permissions_are_the_producers_on_the_cluster_and_topic_and_exist_only_with_msk_iam() {
    // GIVEN MSK with IAM access control
    let d = msk_iam();
    assert!(d.holds("KafkaUsesMskIam"));

    // THEN the role may connect to that cluster (and produce idempotently) and describe and
    // write that one topic: no other cluster, topic, group or action
    let granted = allowed(&d, &d.statements("KafkaForwardFunction"), "kafka-cluster:");
    let cluster = BTreeSet::from([MSK_CLUSTER_ARN.to_owned()]);
    let topic = BTreeSet::from([MSK_TOPIC_ARN.to_owned()]);
    let expected = BTreeMap::from([
        ("kafka-cluster:Connect".to_owned(), cluster.clone()),
        ("kafka-cluster:WriteDataIdempotently".to_owned(), cluster),
        ("kafka-cluster:DescribeTopic".to_owned(), topic.clone()),
        ("kafka-cluster:WriteData".to_owned(), topic),
    ]);
    assert_eq!(granted, expected);

    // AND it reads no secret
    let d_secrets = allowed(&d, &d.statements("KafkaForwardFunction"), "secretsmanager:");
    assert!(d_secrets.is_empty(), "{d_secrets:?}");

    // AND with SCRAM or PLAIN there is no kafka-cluster permission at all
    for other in [msk_scram(), confluent_cloud()] {
        assert!(!other.holds("KafkaUsesMskIam"));
        let granted = allowed(&other, &other.statements("KafkaForwardFunction"), "kafka");
        assert!(granted.is_empty(), "{granted:?}");
    }
}

#[test]
fn the_kafka_secret_is_the_only_secret_kafka_forward_reads_and_its_key_only_through_secrets_manager()
 {
    // GIVEN MSK SCRAM, whose secret is encrypted with a customer-managed key
    let d = msk_scram();
    let statements = d.statements("KafkaForwardFunction");

    // THEN the role may read that secret, and no other
    let secrets = allowed(&d, &statements, "secretsmanager:");
    assert_eq!(
        secrets,
        BTreeMap::from([(
            "secretsmanager:GetSecretValue".to_owned(),
            BTreeSet::from([SCRAM_SECRET_ARN.to_owned()])
        )])
    );

    // AND it may decrypt with the keys of the secret's account and region only as Secrets
    // Manager decrypting that secret
    let kms: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            listed(at(s, &["Action"]))
                .iter()
                .any(|a| text(a).starts_with("kms:"))
        })
        .collect();
    assert_eq!(kms.len(), 1, "one KMS statement");
    let key = kms[0];
    assert_eq!(
        listed(at(key, &["Action"]))
            .into_iter()
            .map(text)
            .collect::<Vec<_>>(),
        ["kms:Decrypt"]
    );
    assert_eq!(
        d.text(at(key, &["Resource"])),
        "arn:aws:kms:eu-west-1:123456789012:key/*"
    );
    let condition = at(key, &["Condition", "StringEquals"]);
    assert_eq!(
        d.text(at(condition, &["kms:ViaService"])),
        "secretsmanager.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        d.text(at(condition, &["kms:EncryptionContext:SecretARN"])),
        SCRAM_SECRET_ARN
    );

    // AND without a secret (MSK IAM, or plain TLS) there is neither
    for other in [
        msk_iam(),
        Deployment::with(&[("KafkaBootstrapServers", "kafka.internal:9094")]),
    ] {
        assert!(!other.holds("KafkaUsesSecret"));
        let statements = other.statements("KafkaForwardFunction");
        assert!(allowed(&other, &statements, "secretsmanager:").is_empty());
        assert!(allowed(&other, &statements, "kms:").is_empty());
    }
}

#[test]
fn kafka_forward_runs_in_a_vpc_only_when_given_subnets() {
    // GIVEN subnets and security groups (MSK)
    let d = msk_iam();
    assert!(d.holds("KafkaInVpc"));
    // THEN the function is in them, and may manage its network interfaces (SAM attaches
    // AWSLambdaVPCAccessExecutionRole whenever VpcConfig is written)
    let p = d.props("KafkaForwardFunction");
    let vpc = at(&p, &["VpcConfig"]);
    assert_eq!(
        d.list(at(vpc, &["SubnetIds"])),
        ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    );
    assert_eq!(
        d.list(at(vpc, &["SecurityGroupIds"])),
        ["sg-0123456789abcdef0"]
    );
    let denied = |d: &Deployment| -> Vec<String> {
        d.statements("KafkaForwardFunction")
            .iter()
            .filter(|s| text(at(s, &["Effect"])) == "Deny")
            .flat_map(|s| listed(at(s, &["Action"])).into_iter().map(text))
            .collect()
    };
    assert!(denied(&d).is_empty(), "{:?}", denied(&d));

    // GIVEN no subnets (Confluent Cloud's public endpoint)
    let d = confluent_cloud();
    assert!(!d.holds("KafkaInVpc"));
    // THEN no VpcConfig, and the network-interface permissions SAM attaches anyway are denied
    assert!(try_at(&d.props("KafkaForwardFunction"), &["VpcConfig"]).is_none());
    assert_eq!(
        denied(&d),
        [
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses"
        ]
    );
}

#[test]
fn kafka_settings_kafka_forward_cannot_connect_with_are_refused() {
    let bootstrap = ("KafkaBootstrapServers", "kafka.internal:9096");
    let refused = |given: &[(&str, &str)]| Deployment::with(given).refusing_rules();
    let none = BTreeSet::new();
    let rule = |name: &str| BTreeSet::from([name.to_owned()]);

    // Accepted: the documented setups, plain TLS, and anything without bootstrap servers.
    assert_eq!(msk_iam().refusing_rules(), none);
    assert_eq!(msk_scram().refusing_rules(), none);
    assert_eq!(confluent_cloud().refusing_rules(), none);
    assert_eq!(refused(&[bootstrap]), none);
    assert_eq!(refused(&[("KafkaSecurityProtocol", "SASL_SSL")]), none);

    // Refused: SASL without a mechanism, a mechanism without SASL, PLAIN/SCRAM without the
    // secret, MSK IAM without the cluster or without TLS, subnets without security groups.
    assert_eq!(
        refused(&[bootstrap, ("KafkaSecurityProtocol", "SASL_SSL")]),
        rule("KafkaSaslSettings")
    );
    assert_eq!(
        refused(&[
            bootstrap,
            ("KafkaSaslMechanism", "PLAIN"),
            ("KafkaCredentialsSecretArn", SCRAM_SECRET_ARN)
        ]),
        rule("KafkaMechanismNeedsSasl")
    );
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        assert_eq!(
            refused(&[
                bootstrap,
                ("KafkaSecurityProtocol", "SASL_SSL"),
                ("KafkaSaslMechanism", mechanism)
            ]),
            rule("KafkaPasswordSettings"),
            "{mechanism}"
        );
    }
    assert_eq!(
        refused(&[
            bootstrap,
            ("KafkaSecurityProtocol", "SASL_SSL"),
            ("KafkaSaslMechanism", "AWS_MSK_IAM")
        ]),
        rule("KafkaMskIamSettings")
    );
    assert_eq!(
        refused(&[
            bootstrap,
            ("KafkaSecurityProtocol", "SASL_PLAINTEXT"),
            ("KafkaSaslMechanism", "AWS_MSK_IAM"),
            ("KafkaClusterArn", MSK_CLUSTER_ARN)
        ]),
        rule("KafkaMskIamSettings")
    );
    assert_eq!(
        refused(&[bootstrap, ("KafkaSubnetIds", "subnet-0123456789abcdef0")]),
        rule("KafkaVpcSettings")
    );
    // Every Kafka rule says what is missing.
    for (name, r) in at(template(), &["Rules"]).as_mapping().expect("Rules") {
        for a in listed(at(r, &["Assertions"])) {
            assert!(
                !text(at(a, &["AssertDescription"])).is_empty(),
                "{}: AssertDescription",
                text(name)
            );
        }
    }
}

#[test]
fn every_deployment_refers_only_to_what_it_creates() {
    // The template's defaults, crm-sync with reconcile, and each Kafka setup.
    let crm = [
        ("CrmUrl", "https://crm.example.com"),
        (
            "TwilioApiSecretArn",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:twilio-api-AbCdEf",
        ),
    ];
    let everything = {
        let mut all = crm.to_vec();
        all.extend([
            ("KafkaBootstrapServers", "b-1.events.example:9098"),
            ("KafkaSecurityProtocol", "SASL_SSL"),
            ("KafkaSaslMechanism", "AWS_MSK_IAM"),
            ("KafkaClusterArn", MSK_CLUSTER_ARN),
            ("KafkaSubnetIds", "subnet-1,subnet-2"),
            ("KafkaSecurityGroupIds", "sg-1"),
            ("QuotaAlarmNames", "a,b,c,d,e"),
        ]);
        all
    };
    for (name, d) in [
        ("defaults", Deployment::with(&[])),
        ("crm-sync and reconcile", Deployment::with(&crm)),
        ("everything", Deployment::with(&everything)),
        ("MSK SCRAM", msk_scram()),
    ] {
        assert!(
            d.refusing_rules().is_empty(),
            "{name}: {:?}",
            d.refusing_rules()
        );
        assert_every_reference_resolves(&d, name);
        // The dashboard's body is JSON in every one of them.
        d.dashboard();
    }
}

#[test]
fn every_parameter_is_in_one_parameter_group_of_the_console() {
    let groups = at(
        template(),
        &[
            "Metadata",
            "AWS::CloudFormation::Interface",
            "ParameterGroups",
        ],
    );
    let mut grouped = Vec::new();
    for group in listed(groups) {
        grouped.extend(listed(at(group, &["Parameters"])).into_iter().map(text));
    }
    let declared: Vec<String> = at(template(), &["Parameters"])
        .as_mapping()
        .expect("Parameters")
        .keys()
        .map(text)
        .collect();
    let unique: BTreeSet<&String> = grouped.iter().collect();
    assert_eq!(
        unique.len(),
        grouped.len(),
        "a parameter in two groups: {grouped:?}"
    );
    assert_eq!(
        unique,
        declared.iter().collect::<BTreeSet<_>>(),
        "every parameter, in a group"
    );
}
