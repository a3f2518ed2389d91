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
use std::collections::BTreeSet;
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

const FUNCTIONS: [(&str, &str, &str); 3] = [
    ("IngestFunction", "ingest", "functions/ingest"),
    ("CrmSyncFunction", "crm-sync", "functions/crm-sync"),
    ("QuotaAlertFunction", "quota-alert", "functions/quota-alert"),
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
        assert_eq!(
            text(function_property(id, "Tracing")),
            "Active",
            "{id}: X-Ray"
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
    assert_eq!(
        routes,
        BTreeSet::from([
            "POST /twilio/events".to_owned(),
            "POST /twilio/usage-triggers".to_owned()
        ])
    );
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
            "QuotaAlertFunction".to_owned()
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

#[test]
fn the_stream_is_on_demand_and_encrypted() {
    let p = props("EventStream");
    assert_eq!(
        text(at(resource("EventStream"), &["Type"])),
        "AWS::Kinesis::Stream"
    );
    assert_eq!(
        text(at(p, &["StreamModeDetails", "StreamMode"])),
        "ON_DEMAND"
    );
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

/// Every alarm the deployment promises (issue 6), with what it watches:
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
        "TwilioEvents",
        "Latency",
        "Service",
        Some("ingest"),
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
];

/// Metric-math alarms on DynamoDB throttling, one per table.
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
    let p = props("IngestLatencyAlarm");
    assert_eq!(text(at(p, &["ExtendedStatistic"])), "p99");
    let latency: u32 = parameter_default("LatencyAlarmMilliseconds")
        .parse()
        .unwrap();
    assert!(
        (3000..5000).contains(&latency),
        "p99 alarm near, and under, Twilio's 5 s"
    );
    let p = props("NoEventsAlarm");
    assert_eq!(
        text(at(p, &["TreatMissingData"])),
        "breaching",
        "no delivery = no metric"
    );
    assert!(is_ref_to(at(p, &["EvaluationPeriods"]), "NoEventsMinutes"));
    for (id, table) in THROTTLE_ALARMS {
        let metrics = at(props(id), &["Metrics"]).as_sequence().unwrap();
        let watched: BTreeSet<String> = metrics
            .iter()
            .filter_map(|m| try_at(m, &["MetricStat", "Metric"]))
            .map(|m| {
                assert_eq!(text(at(m, &["Namespace"])), "AWS/DynamoDB", "{id}");
                assert!(is_ref_to(dimension(m, "TableName"), table), "{id}");
                text(at(m, &["MetricName"]))
            })
            .collect();
        assert_eq!(
            watched,
            BTreeSet::from([
                "ReadThrottleEvents".to_owned(),
                "WriteThrottleEvents".to_owned()
            ]),
            "{id}"
        );
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

/// The service's sources (tests excluded) contain `"metric"` as a string literal.
fn assert_source_mentions(service: &str, metric: &str) {
    let dir = repo_root().join("functions").join(service).join("src");
    let literal = format!("\"{metric}\"");
    let mut stack = vec![dir.clone()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.to_string_lossy().contains("test")
                && std::fs::read_to_string(&path).unwrap().contains(&literal)
            {
                return;
            }
        }
    }
    panic!(
        "no {literal} in {}: the alarm watches a metric the service does not publish",
        dir.display()
    );
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
    let rendered = format!("{:?}", at(outputs, &["UsageTriggerUrl", "Value"]));
    assert!(rendered.contains("/twilio/usage-triggers"), "{rendered}");
    assert_eq!(
        text(at(resource("TwilioSecret"), &["Type"])),
        "AWS::SecretsManager::Secret"
    );
    assert_eq!(of_type("AWS::CloudWatch::Dashboard").len(), 1);
}

#[test]
fn the_deploy_guide_explains_every_alarm() {
    let guide =
        std::fs::read_to_string(repo_root().join("docs/deploy.md")).expect("docs/deploy.md");
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
}
