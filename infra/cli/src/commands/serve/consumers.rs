//! The stream's consumers inside `serve` (crm-sync, quota-alert with `--quotas`, the Kafka
//! forwarder with `--kafka-brokers`): each reads the local stream from its checkpoint, in
//! batches, the way a Kinesis event source mapping feeds a Lambda: a batch that reports
//! failures is retried from its first failed record, with backoff.

use ingest::adapters::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use twilio_events::stream::BatchProcessor;

/// The consumers' names: their checkpoints in the store (`twilio-events stream replay`).
pub const CRM_SYNC: &str = "crm-sync";
pub const QUOTA_ALERT: &str = "quota-alert";
pub const KAFKA_FORWARD: &str = "kafka-forward";

/// Records per batch, as an event source mapping's BatchSize.
const BATCH_SIZE: usize = 100;
/// How long a consumer may take over one batch.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What the consumers are told by `serve`'s flags.
#[derive(Clone, Debug, Default)]
pub struct ConsumerOptions {
    pub crm_url: Option<String>,
    pub crm_token: Option<String>,
    pub quotas: Option<PathBuf>,
    pub kafka: Option<KafkaTarget>,
}

/// Where `--kafka-brokers` forwards the stream.
#[derive(Clone, Debug)]
pub struct KafkaTarget {
    /// `host:port[,host:port…]`, plaintext (a local broker).
    pub brokers: String,
    pub topic: String,
}

/// A consumer that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerStartError {
    #[error("crm-sync cannot start")]
    CrmSync(#[source] crm_sync::startup::StartupError),
    #[error("quota-alert cannot start")]
    QuotaAlert(#[source] quota_alert::startup::StartupError),
    #[cfg(feature = "kafka")]
    #[error("the Kafka forwarder cannot start")]
    KafkaForward(#[source] kafka_forward::startup::StartupError),
    #[cfg(not(feature = "kafka"))]
    #[error(
        "this build of twilio-events has no Kafka forwarder: it was built without its default \
         `kafka` feature (cargo run -p twilio-events-cli -- serve … builds it)"
    )]
    KafkaNotBuilt,
}

impl ConsumerStartError {
    /// Whether a flag is at fault (a --crm-url, --quotas file or --data-dir that cannot work),
    /// rather than a store that failed.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::CrmSync(e) => !matches!(e, crm_sync::startup::StartupError::Ledger(_)),
            Self::QuotaAlert(e) => matches!(
                e,
                quota_alert::startup::StartupError::Quotas(_)
                    | quota_alert::startup::StartupError::QuotasFrom { .. }
            ),
            // A --kafka-brokers the client cannot use.
            #[cfg(feature = "kafka")]
            Self::KafkaForward(_) => true,
            #[cfg(not(feature = "kafka"))]
            Self::KafkaNotBuilt => true,
        }
    }
}

/// Starts crm-sync (always: to the CRM at `crm_url`, else into `<data-dir>/crm.jsonl`) and
/// quota-alert (with a quotas file), each on its own checkpoint.
pub async fn spawn_all(
    store: &SqliteStore,
    data_dir: &Path,
    options: ConsumerOptions,
) -> Result<JoinSet<()>, ConsumerStartError> {
    let mut consumers = JoinSet::new();
    let crm =
        crm_sync::startup::local_processor(data_dir, options.crm_url.clone(), options.crm_token)
            .await
            .map_err(ConsumerStartError::CrmSync)?;
    match &options.crm_url {
        Some(url) => println!("  crm-sync: pushing status changes to {url}"),
        None => println!(
            "  crm-sync: writing status changes to {} (pass --crm-url to call a CRM)",
            data_dir.join("crm.jsonl").display()
        ),
    }
    consumers.spawn(consume(CRM_SYNC, store.clone(), crm));
    if let Some(quotas) = &options.quotas {
        let alerts = quota_alert::startup::local(data_dir, quotas)
            .map_err(ConsumerStartError::QuotaAlert)?;
        println!(
            "  quota-alert: quotas from {}, alerts to {}",
            quotas.display(),
            data_dir.join("alerts.jsonl").display()
        );
        consumers.spawn(consume(QUOTA_ALERT, store.clone(), alerts));
    }
    if let Some(target) = &options.kafka {
        spawn_kafka_forward(&mut consumers, store, data_dir, target)?;
    }
    Ok(consumers)
}

/// The Kafka forwarder on its own checkpoint: the Lambda's code, on a plaintext local broker.
#[cfg(feature = "kafka")]
fn spawn_kafka_forward(
    consumers: &mut JoinSet<()>,
    store: &SqliteStore,
    data_dir: &Path,
    target: &KafkaTarget,
) -> Result<(), ConsumerStartError> {
    let connection =
        kafka_forward::config::KafkaConnection::plaintext(&target.brokers, &target.topic);
    let forwarder = kafka_forward::startup::local(&connection, data_dir)
        .map_err(ConsumerStartError::KafkaForward)?;
    println!(
        "  kafka-forward: every event to topic {} on {}",
        target.topic, target.brokers
    );
    consumers.spawn(consume(KAFKA_FORWARD, store.clone(), forwarder));
    Ok(())
}

#[cfg(not(feature = "kafka"))]
fn spawn_kafka_forward(
    _: &mut JoinSet<()>,
    _: &SqliteStore,
    _: &Path,
    _: &KafkaTarget,
) -> Result<(), ConsumerStartError> {
    Err(ConsumerStartError::KafkaNotBuilt)
}

/// Feeds `processor` the stream from its checkpoint, for ever.
pub async fn consume<P: BatchProcessor>(name: &'static str, store: SqliteStore, processor: P) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let checkpoint = match store.checkpoint(name) {
            Ok(seq) => seq,
            Err(error) => {
                tracing::error!(consumer = name, %error, "cannot read checkpoint");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let batch = match store.read_after(checkpoint, BATCH_SIZE) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(consumer = name, %error, "cannot read the stream");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if batch.is_empty() {
            // Woken by the next append, or every second in case a wake-up was missed.
            let _ = tokio::time::timeout(Duration::from_secs(1), store.appended()).await;
            continue;
        }
        let outcome = processor
            .process(&batch, Instant::now() + BATCH_TIMEOUT)
            .await;
        let done_up_to = match outcome.first_failure(&batch) {
            None => batch.last().map(|r| r.sequence_number.clone()),
            Some(failed) => {
                let position = batch
                    .iter()
                    .position(|r| r.sequence_number == failed.sequence_number)
                    .unwrap_or(0);
                position
                    .checked_sub(1)
                    .map(|i| batch[i].sequence_number.clone())
            }
        };
        if let Some(seq) = done_up_to.and_then(|s| s.parse::<i64>().ok()) {
            if let Err(error) = store.save_checkpoint(name, seq).await {
                tracing::error!(consumer = name, %error, "cannot save checkpoint");
            }
        }
        if outcome.failed.is_empty() {
            backoff = Duration::from_millis(200);
        } else {
            tracing::warn!(
                consumer = name,
                failed = outcome.failed.len(),
                "batch failures; retrying from the first"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}
