//! The topic on a Kafka cluster (Amazon MSK, Confluent Cloud, any Kafka), through librdkafka.
//!
//! The producer is idempotent (`enable.idempotence`: the broker drops a retried batch it already
//! wrote, and keeps each partition's order through retries) with `acks=all`, and partitions by
//! key with `murmur2_random`, the hash Kafka's Java clients use, so a resource's events land on
//! the partition any other Kafka tool would choose for its key. It is built once per execution
//! environment and reused across invocations.

use crate::adapters::msk_iam::MskIamTokens;
use crate::config::{KafkaConnection, SaslMechanism};
use crate::ports::{Delivered, ProduceError, Topic, TopicMessage};
use rdkafka::ClientConfig;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long librdkafka keeps trying one message (through broker restarts and leader changes)
/// before it reports a failure; an invocation stops waiting at its own deadline before that.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// After purging the unsent at a deadline, how long to wait for librdkafka to report them.
const PURGE_REPORT_WAIT: Duration = Duration::from_millis(200);

/// The client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot create the Kafka producer: {0}; check KAFKA_BOOTSTRAP_SERVERS, \
     KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_MECHANISM"
)]
pub struct KafkaClientError(#[source] KafkaError);

/// librdkafka's callbacks: logs into `tracing`, and MSK IAM tokens when configured.
pub struct ForwarderContext {
    msk_iam: Option<MskIamTokens>,
}

impl ClientContext for ForwarderContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // librdkafka's lines name brokers and topics, never message contents or passwords.
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, "Kafka client: {reason}");
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let tokens = self
            .msk_iam
            .as_ref()
            .ok_or("OAUTHBEARER is only used with KAFKA_SASL_MECHANISM=AWS_MSK_IAM")?;
        let token = tokens.token()?;
        Ok(OAuthToken {
            token: token.token,
            principal_name: "kafka-forward".to_owned(),
            lifetime_ms: token.expires_at_ms,
        })
    }
}

type Client = FutureProducer<ForwarderContext>;

/// A topic on a Kafka cluster.
pub struct KafkaTopic {
    /// Replaced after an invocation ends with messages purged (see [`KafkaTopic::renew`]).
    producer: RwLock<Arc<Client>>,
    config: ClientConfig,
    msk_iam: Option<MskIamTokens>,
    topic: String,
}

impl std::fmt::Debug for KafkaTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTopic")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaTopic {
    /// The producer for `connection` (no broker is contacted until the first message).
    /// `msk_iam` signs the tokens of `KAFKA_SASL_MECHANISM=AWS_MSK_IAM`.
    pub fn connect(
        connection: &KafkaConnection,
        msk_iam: Option<MskIamTokens>,
    ) -> Result<Self, KafkaClientError> {
        let config = client_config(connection);
        let producer = create(&config, &msk_iam)?;
        Ok(Self {
            producer: RwLock::new(Arc::new(producer)),
            config,
            msk_iam,
            topic: connection.topic.clone(),
        })
    }

    fn current(&self) -> Option<Arc<Client>> {
        self.producer.read().ok().map(|p| Arc::clone(&p))
    }

    /// A new producer (a new producer id) in place of one whose queue was purged: an idempotent
    /// producer continues after a purge by bumping its epoch, which not every Kafka-protocol
    /// broker supports (KIP-360); a new one needs nothing from the broker. Rare: only after an
    /// invocation's deadline came before its acknowledgements.
    fn renew(&self) {
        match create(&self.config, &self.msk_iam) {
            Ok(fresh) => {
                if let Ok(mut producer) = self.producer.write() {
                    *producer = Arc::new(fresh);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not renew the Kafka producer; keeping the old one")
            }
        }
    }

    fn enqueue(
        &self,
        producer: &Client,
        message: &TopicMessage<'_>,
        deadline: Instant,
    ) -> Result<DeliveryFuture, ProduceError> {
        let headers = message.headers.iter().fold(
            OwnedHeaders::new_with_capacity(message.headers.len()),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            },
        );
        let mut record = FutureRecord::to(&self.topic)
            .key(message.key)
            .payload(message.value)
            .headers(headers);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                // The client's queue is full (a broker is slow or away): let it drain.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if Instant::now() >= deadline {
                        return Err(ProduceError::NotSent);
                    }
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(classify(error)),
            }
        }
    }
}

fn create(
    config: &ClientConfig,
    msk_iam: &Option<MskIamTokens>,
) -> Result<Client, KafkaClientError> {
    config
        .create_with_context(ForwarderContext {
            msk_iam: msk_iam.clone(),
        })
        .map_err(KafkaClientError)
}

/// librdkafka's configuration for `connection`.
fn client_config(connection: &KafkaConnection) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &connection.bootstrap_servers)
        .set("client.id", "twilio-events-kafka-forward")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        .set("linger.ms", "5")
        .set("security.protocol", connection.security_protocol.as_str());
    if connection.security_protocol.uses_tls() {
        // The CA bundle of the system it runs on (Lambda's provided.al2023 has one).
        config.set("ssl.ca.location", "probe");
    }
    match &connection.sasl {
        None => {}
        Some(SaslMechanism::MskIam) => {
            config.set("sasl.mechanism", "OAUTHBEARER");
        }
        Some(mechanism @ (SaslMechanism::Plain(login) | SaslMechanism::Scram { login, .. })) => {
            config
                .set("sasl.mechanism", mechanism.kafka_name())
                .set("sasl.username", &login.username)
                .set("sasl.password", login.password.expose());
        }
    }
    config
}

impl Topic for KafkaTopic {
    async fn produce(
        &self,
        messages: &[TopicMessage<'_>],
        deadline: Instant,
    ) -> Vec<Result<Delivered, ProduceError>> {
        let Some(producer) = self.current() else {
            return messages
                .iter()
                .map(|_| Err(ProduceError::NotSent))
                .collect();
        };
        let mut pending: Vec<Result<DeliveryFuture, ProduceError>> =
            Vec::with_capacity(messages.len());
        for message in messages {
            if Instant::now() >= deadline {
                pending.push(Err(ProduceError::NotSent));
            } else {
                pending.push(self.enqueue(&producer, message, deadline));
            }
        }
        let mut results = Vec::with_capacity(pending.len());
        let mut late = Vec::new();
        for entry in pending {
            match entry {
                Err(error) => results.push(Err(error)),
                Ok(mut delivery) => {
                    match tokio::time::timeout_at(deadline.into(), &mut delivery).await {
                        Ok(report) => results.push(acknowledged(report)),
                        Err(_) => {
                            late.push((results.len(), delivery));
                            results.push(Err(ProduceError::Unacknowledged));
                        }
                    }
                }
            }
        }
        if !late.is_empty() {
            // What never left the client's queue is taken back, so that it is not written
            // after the stream has been told to retry it: only messages already sent to a
            // broker can still be duplicated by the retry.
            producer.purge(PurgeConfig::default().queue());
            let wait_until = Instant::now() + PURGE_REPORT_WAIT;
            for (index, delivery) in &mut late {
                if let Ok(report) = tokio::time::timeout_at(wait_until.into(), delivery).await {
                    // Purged (not sent), refused, or acknowledged between the deadline and the
                    // purge; what is still silent stays unacknowledged.
                    results[*index] = acknowledged(report);
                }
            }
            tracing::warn!(
                unacknowledged = late.len(),
                "the deadline came before every acknowledgement"
            );
            self.renew();
        }
        results
    }
}

/// A delivery report as the port's result.
fn acknowledged<Canceled>(
    report: Result<OwnedDeliveryResult, Canceled>,
) -> Result<Delivered, ProduceError> {
    match report {
        Ok(Ok(delivery)) => Ok(Delivered {
            partition: delivery.partition,
            offset: delivery.offset,
        }),
        Ok(Err((error, _))) => Err(classify(error)),
        Err(_) => Err(ProduceError::Unacknowledged),
    }
}

/// Whether retrying can ever write the message: not when the message itself is what the topic
/// refuses (its size, its form); yes for everything else (brokers, leaders, authorisation).
fn classify(error: KafkaError) -> ProduceError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::PurgeQueue) => ProduceError::NotSent,
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidMessage,
        ) => ProduceError::Rejected(Box::new(error)),
        _ => ProduceError::Failed(Box::new(error)),
    }
}
