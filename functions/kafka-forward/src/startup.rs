//! Wiring the core to its adapters, once at start: the Kafka producer (its SASL login read from
//! Secrets Manager, or MSK IAM tokens signed with the function's role) and the SQS quarantine
//! for the Lambda ([`aws`]); a plaintext local broker and the quarantine file for
//! `twilio-events serve --kafka-brokers` ([`local`]).

use crate::adapters::kafka::{KafkaClientError, KafkaTopic};
use crate::adapters::msk_iam::{MskIamError, MskIamTokens};
use crate::config::{Config, KafkaConnection, Login, SaslMechanism, SaslMechanismName};
use crate::processor::KafkaForward;
use twilio_events::metrics::{NoMetrics, StdoutSink};
use twilio_events::quarantine::{FileQuarantine, SqsQuarantine};
use twilio_events::secrets_manager::{SecretReadError, read_secret_string};

/// The function as the Lambda runs it.
pub type AwsKafkaForward = KafkaForward<KafkaTopic, SqsQuarantine, StdoutSink>;

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Secret(#[from] SecretReadError),
    /// The message names the secret, never its value.
    #[error(
        "secret {id} is not a Kafka login: store {{\"username\": \"…\", \"password\": \"…\"}} \
         ({reason})"
    )]
    NotALogin { id: String, reason: String },
    #[error(transparent)]
    MskIam(#[from] MskIamError),
    #[error(transparent)]
    Client(#[from] KafkaClientError),
}

/// The connection `config` describes, its login read from Secrets Manager.
pub async fn connection(
    config: &Config,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<KafkaConnection, StartupError> {
    let login = match &config.credentials_secret_arn {
        Some(id)
            if config
                .sasl_mechanism
                .is_some_and(SaslMechanismName::needs_login) =>
        {
            let document = read_secret_string(secrets, id).await?;
            let login: Login =
                serde_json::from_str(&document).map_err(|e| StartupError::NotALogin {
                    id: id.clone(),
                    // serde's message for a missing field names it; for a syntax error it
                    // gives a position, never the text.
                    reason: e.to_string(),
                })?;
            Some(login)
        }
        _ => None,
    };
    let sasl = match (config.sasl_mechanism, login) {
        (Some(SaslMechanismName::AwsMskIam), _) => Some(SaslMechanism::MskIam),
        (Some(SaslMechanismName::Plain), Some(login)) => Some(SaslMechanism::Plain(login)),
        (Some(SaslMechanismName::ScramSha256), Some(login)) => Some(SaslMechanism::Scram {
            sha512: false,
            login,
        }),
        (Some(SaslMechanismName::ScramSha512), Some(login)) => Some(SaslMechanism::Scram {
            sha512: true,
            login,
        }),
        // Config::from_lookup refuses a login mechanism without a secret.
        _ => None,
    };
    Ok(KafkaConnection {
        bootstrap_servers: config.bootstrap_servers.clone(),
        topic: config.topic.clone(),
        security_protocol: config.security_protocol,
        sasl,
    })
}

/// The Lambda's forwarder, its clients built once from `sdk`.
pub async fn aws(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<AwsKafkaForward, StartupError> {
    let connection = connection(config, &aws_sdk_secretsmanager::Client::new(sdk)).await?;
    let msk_iam = match connection.sasl {
        Some(SaslMechanism::MskIam) => Some(MskIamTokens::start(sdk).await?),
        _ => None,
    };
    let topic = KafkaTopic::connect(&connection, msk_iam)?;
    tracing::info!(
        topic = %connection.topic,
        security_protocol = connection.security_protocol.as_str(),
        sasl_mechanism = connection.sasl.as_ref().map(SaslMechanism::kafka_name),
        "Kafka producer ready"
    );
    Ok(KafkaForward::new(
        topic,
        SqsQuarantine::deployed(
            sdk,
            config.quarantine_queue_url.clone(),
            config.quarantine_bucket.as_deref(),
        ),
        StdoutSink,
    ))
}

/// The forwarder `twilio-events serve --kafka-brokers` runs: a broker without TLS or SASL,
/// records that are not CloudEvents to `<data_dir>/quarantine.jsonl`.
pub fn local(
    connection: &KafkaConnection,
    data_dir: &std::path::Path,
) -> Result<KafkaForward<KafkaTopic, FileQuarantine, NoMetrics>, StartupError> {
    Ok(KafkaForward::new(
        KafkaTopic::connect(connection, None)?,
        FileQuarantine::new(data_dir.join("quarantine.jsonl")),
        NoMetrics,
    ))
}
