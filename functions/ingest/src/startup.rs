//! Wiring: the core on its adapters, built once at start. [`aws`] for the Lambda (from its
//! [`Config`]); [`local`], behind the `local` feature, on the embedded SQLite store for
//! `twilio-events serve`, and [`with_secret_file`] for `serve --secrets-file`.

use crate::adapters::dynamodb::DynamoDedupStore;
use crate::adapters::kinesis::KinesisPublisher;
use crate::adapters::secrets_manager::SecretsManagerSource;
use crate::config::{Config, SecretDocumentError, TwilioSecretSource, secrets_from_document};
use crate::service::Ingest;
use twilio_events::metrics::StdoutSink;
use twilio_events::quarantine::SqsQuarantine;
use twilio_events::secrets_manager::{SecretReadError, read_secret_string};
use twilio_events::signature::{SecretSet, Verifier};

/// The SDK configuration ingest's clients are built from: the environment's region and
/// credentials, as `aws_config::load_from_env`, without stalled-stream protection. That
/// protection watches every request and response body for a throughput floor with a timer of
/// its own, per call; ingest's bodies are a few hundred bytes, publishing is bounded by the
/// request's deadline (`IngestRequest::deadline`), and the function's timeout ends any other
/// stalled call (a claim left behind expires with its lease).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
        )
        .load()
        .await
}

/// The DynamoDB client of the dedup store: `sdk`'s, with the endpoint resolved once and kept
/// (see [`LastEndpoint`]).
pub fn dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::endpoint::DefaultResolver;
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .endpoint_resolver(LastEndpoint::new(DefaultResolver::new()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The Kinesis client of the publisher: `sdk`'s, with the endpoint resolved once and kept.
pub fn kinesis_client(sdk: &aws_config::SdkConfig) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::endpoint::DefaultResolver;
    let config = aws_sdk_kinesis::config::Builder::from(sdk)
        .endpoint_resolver(LastEndpoint::new(DefaultResolver::new()))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// An SDK endpoint resolver that keeps the last endpoint it resolved with the parameters it
/// was resolved from, and answers the same parameters with it again. The SDK's own resolver
/// runs the service's endpoint rules on every call; for ingest's clients the parameters
/// (region, endpoint override, account) never change, so the rules' answer cannot either.
/// Different parameters are resolved by the SDK's resolver, as without this.
#[derive(Debug)]
pub struct LastEndpoint<R, P> {
    resolver: R,
    last: std::sync::Mutex<Option<(P, aws_sdk_dynamodb::config::endpoint::Endpoint)>>,
}

impl<R, P: PartialEq + Clone> LastEndpoint<R, P> {
    pub fn new(resolver: R) -> Self {
        Self {
            resolver,
            last: std::sync::Mutex::new(None),
        }
    }

    fn resolve<'a>(
        &'a self,
        params: &'a P,
        resolve: impl Fn(&'a R, &'a P) -> aws_sdk_dynamodb::config::endpoint::EndpointFuture<'a>,
    ) -> aws_sdk_dynamodb::config::endpoint::EndpointFuture<'a> {
        use futures_util::FutureExt;
        if let Ok(last) = self.last.lock()
            && let Some((p, endpoint)) = last.as_ref()
            && p == params
        {
            return aws_sdk_dynamodb::config::endpoint::EndpointFuture::ready(Ok(endpoint.clone()));
        }
        // The SDK's resolvers answer at once (their future is ready); one that would not is
        // simply awaited, and its answer not kept.
        let future = resolve(&self.resolver, params);
        match future.now_or_never() {
            Some(Ok(endpoint)) => {
                if let Ok(mut last) = self.last.lock() {
                    *last = Some((params.clone(), endpoint.clone()));
                }
                aws_sdk_dynamodb::config::endpoint::EndpointFuture::ready(Ok(endpoint))
            }
            Some(Err(error)) => {
                aws_sdk_dynamodb::config::endpoint::EndpointFuture::ready(Err(error))
            }
            None => resolve(&self.resolver, params),
        }
    }
}

impl aws_sdk_dynamodb::config::endpoint::ResolveEndpoint
    for LastEndpoint<
        aws_sdk_dynamodb::config::endpoint::DefaultResolver,
        aws_sdk_dynamodb::config::endpoint::Params,
    >
{
    fn resolve_endpoint<'a>(
        &'a self,
        params: &'a aws_sdk_dynamodb::config::endpoint::Params,
    ) -> aws_sdk_dynamodb::config::endpoint::EndpointFuture<'a> {
        self.resolve(params, |r, p| {
            aws_sdk_dynamodb::config::endpoint::ResolveEndpoint::resolve_endpoint(r, p)
        })
    }
}

impl aws_sdk_kinesis::config::endpoint::ResolveEndpoint
    for LastEndpoint<
        aws_sdk_kinesis::config::endpoint::DefaultResolver,
        aws_sdk_kinesis::config::endpoint::Params,
    >
{
    fn resolve_endpoint<'a>(
        &'a self,
        params: &'a aws_sdk_kinesis::config::endpoint::Params,
    ) -> aws_sdk_kinesis::config::endpoint::EndpointFuture<'a> {
        self.resolve(params, |r, p| {
            aws_sdk_kinesis::config::endpoint::ResolveEndpoint::resolve_endpoint(r, p)
        })
    }
}

/// The core as the Lambda runs it.
pub type AwsIngest = Ingest<DynamoDedupStore, KinesisPublisher, SqsQuarantine, StdoutSink>;

/// Why ingest could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    SecretUnreadable(Box<SecretReadError>),
    #[error(
        "the Twilio secret {arn}: {source}; put the document docs/deploy.md §4 shows in it, \
         then start fresh execution environments"
    )]
    SecretDocument {
        arn: String,
        #[source]
        source: SecretDocumentError,
    },
    #[cfg(feature = "local")]
    #[error(transparent)]
    Store(#[from] crate::adapters::sqlite::SqliteError),
}

/// The core on DynamoDB, Kinesis and SQS, with the Twilio secrets read (from Secrets Manager
/// when the configuration names a secret, which is then read again after a rotation). The
/// clients are built once, here.
pub async fn aws(config: &Config, sdk: &aws_config::SdkConfig) -> Result<AwsIngest, StartupError> {
    let secrets = twilio_secrets(&config.twilio_secret, sdk).await?;
    let ingest = Ingest::new(
        config.settings.clone(),
        Verifier::new(secrets),
        DynamoDedupStore::new(dynamodb_client(sdk), &config.dedup_table),
        KinesisPublisher::new(kinesis_client(sdk), &config.stream_name),
        SqsQuarantine::deployed(
            sdk,
            &config.quarantine_queue_url,
            config.quarantine_bucket.as_deref(),
        ),
        StdoutSink,
    );
    Ok(match &config.twilio_secret {
        TwilioSecretSource::Arn(arn) => ingest.with_secret_source(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            arn,
        )),
        // Given in the environment: nothing to read again.
        TwilioSecretSource::Inline(_) => ingest,
    })
}

async fn twilio_secrets(
    source: &TwilioSecretSource,
    sdk: &aws_config::SdkConfig,
) -> Result<SecretSet, StartupError> {
    match source {
        TwilioSecretSource::Inline(secrets) => Ok(secrets.clone()),
        TwilioSecretSource::Arn(arn) => {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            let document = read_secret_string(&client, arn)
                .await
                .map_err(|e| StartupError::SecretUnreadable(Box::new(e)))?;
            secrets_from_document(&document).map_err(|source| StartupError::SecretDocument {
                arn: arn.clone(),
                source,
            })
        }
    }
}

#[cfg(feature = "local")]
pub use embedded::{LocalIngest, local, with_secret_file};

#[cfg(feature = "local")]
mod embedded {
    use super::StartupError;
    use crate::adapters::sqlite::SqliteStore;
    use crate::config::IngestSettings;
    use crate::service::Ingest;
    use std::path::Path;
    use twilio_events::metrics::MetricsSink;
    use twilio_events::quarantine::Quarantine;
    use twilio_events::signature::Verifier;

    use crate::adapters::secret_file::SecretFileSource;
    use crate::ports::{Clock, DedupStore, EventPublisher};
    use std::sync::Arc;
    use std::time::Duration;

    /// How often `serve` looks at its secrets file.
    const SECRET_FILE_CHECK: Duration = Duration::from_secs(1);

    /// The core, shared; with `serve --secrets-file`, following the file: read again as soon
    /// as it changes (checked every second, by a task that ends with the core), and after a
    /// signature failure like any secret source. The secrets given to the core must be the
    /// file's as `secrets_file` read them last.
    pub fn with_secret_file<D, P, Q, M, C>(
        ingest: Ingest<D, P, Q, M, C>,
        secrets_file: Option<SecretFileSource>,
    ) -> Arc<Ingest<D, P, Q, M, C>>
    where
        D: DedupStore + 'static,
        P: EventPublisher + 'static,
        Q: Quarantine + 'static,
        M: MetricsSink + 'static,
        C: Clock + 'static,
    {
        let Some(file) = secrets_file else {
            return Arc::new(ingest);
        };
        let ingest = Arc::new(ingest.with_secret_source(file.clone()));
        let core = Arc::downgrade(&ingest);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SECRET_FILE_CHECK);
            loop {
                every.tick().await;
                let Some(ingest) = core.upgrade() else {
                    return;
                };
                if !file.changed() {
                    continue;
                }
                match ingest.reload_secrets().await {
                    Ok(()) => {
                        tracing::warn!(path = %file.path().display(), "read the secrets file again")
                    }
                    Err(error) => {
                        tracing::error!(path = %file.path().display(), %error, "the secrets file changed but cannot be used; the secrets in use stay")
                    }
                }
            }
        });
        ingest
    }

    /// The core on the embedded store: dedup records and the stream in one SQLite database.
    pub type LocalIngest<Q, M> = Ingest<SqliteStore, SqliteStore, Q, M>;

    /// The core on the embedded store in `data_dir` (opened, or created), for `twilio-events
    /// serve`. The store comes back too: the stream consumers read what the core writes.
    pub fn local<Q: Quarantine, M: MetricsSink>(
        settings: IngestSettings,
        verifier: Verifier,
        data_dir: &Path,
        quarantine: Q,
        metrics: M,
    ) -> Result<(LocalIngest<Q, M>, SqliteStore), StartupError> {
        let store = SqliteStore::open(data_dir)?;
        let ingest = Ingest::new(
            settings,
            verifier,
            store.clone(),
            store.clone(),
            quarantine,
            metrics,
        );
        Ok((ingest, store))
    }
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::config::IngestSettings;
    use crate::service::{IngestRequest, Route};
    use std::time::{Duration, Instant};
    use twilio_events::metrics::NoMetrics;
    use twilio_events::quarantine::MemoryQuarantine;
    use twilio_events::signature::{BodyEncoding, SigningKey, sign};

    #[tokio::test]
    async fn the_local_core_writes_to_the_store_it_hands_back() {
        // GIVEN the core wired on an embedded store
        let dir = std::env::temp_dir().join(format!("ingest-startup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let base = "http://127.0.0.1:3000";
        let (ingest, store) = local(
            IngestSettings::for_base_url(base),
            Verifier::new(SecretSet::new().with_auth_token("tok")),
            &dir,
            MemoryQuarantine::default(),
            NoMetrics,
        )
        .unwrap();
        // WHEN a signed delivery comes in
        let body = br#"[{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/AC1/Messages/SM1.json","id":"EZ1","time":"2026-11-20T10:00:00.000Z","data":{"messageSid":"SM1","accountSid":"AC1","messageStatus":"SENT"}}]"#;
        let signed = sign(
            &SigningKey::AuthToken("tok".into()),
            &format!("{base}/twilio/events"),
            body,
            BodyEncoding::Json,
        );
        let response = ingest
            .handle(IngestRequest {
                route: Route::Events,
                raw_query: signed.url.split_once('?').map(|(_, q)| q),
                content_type: Some("application/json"),
                signature: Some(&signed.signature),
                signature_settings: None,
                body,
                request_id: "startup",
                deadline: Instant::now() + Duration::from_secs(3),
                public_base_url: None,
                idempotency_token: None,
            })
            .await;
        // THEN it is answered 200 and the returned store holds the event
        assert_eq!(response.status, 200, "{}", response.body);
        let records = store.read_after(0, 10).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].partition_key, "SM1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::LastEndpoint;
    use aws_sdk_dynamodb::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    use futures_util::FutureExt;

    fn url(resolver: &impl ResolveEndpoint, params: &Params) -> String {
        let endpoint = resolver.resolve_endpoint(params).now_or_never();
        endpoint.unwrap().unwrap().url().to_owned()
    }

    #[test]
    fn the_kept_endpoint_is_the_sdk_resolvers_answer_and_other_parameters_are_resolved_again() {
        // GIVEN the SDK's resolver, and the same kept after its last answer
        let sdk = DefaultResolver::new();
        let kept = LastEndpoint::new(DefaultResolver::new());
        let east = Params::builder().region("us-east-1").build().unwrap();
        let west = Params::builder().region("eu-west-1").build().unwrap();
        let local = Params::builder()
            .region("us-east-1")
            .endpoint("http://127.0.0.1:5099")
            .build()
            .unwrap();
        // WHEN both resolve the same parameters, then others, then the first again
        // THEN they answer alike every time
        for params in [&east, &east, &west, &local, &east] {
            assert_eq!(url(&kept, params), url(&sdk, params));
        }
        assert_eq!(
            url(&kept, &west),
            "https://dynamodb.eu-west-1.amazonaws.com"
        );
        assert_eq!(url(&kept, &local), "http://127.0.0.1:5099");
    }
}
