//! IAM authentication for Amazon MSK and MSK Serverless: SASL/OAUTHBEARER with a token that is a
//! SigV4-presigned `kafka-cluster:Connect` request, signed with the function's role.
//!
//! The token, as AWS's MSK IAM SASL signers make it: the URL
//! `https://kafka.REGION.amazonaws.com/?Action=kafka-cluster%3AConnect`, presigned for the
//! service `kafka-cluster` with the signature in the query (valid 15 minutes, only `host`
//! signed, the empty body's hash as the payload hash), then a `User-Agent` parameter appended, the whole URL base64url
//! encoded without padding. It expires at the signing time plus 15 minutes; librdkafka asks for
//! a new one before then.
//!
//! librdkafka asks from its own thread and cannot wait for the SDK's asynchronous credential
//! chain, so the role's credentials are resolved at start and kept fresh by a task
//! ([`MskIamTokens::start`]).

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How long a token is valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// Appended to the signed URL, as AWS's signers do (MSK logs it with the connection).
const USER_AGENT: &str = concat!("twilio-events-kafka-forward/", env!("CARGO_PKG_VERSION"));
/// How often the cached credentials are resolved again (the role's session lasts far longer).
const CREDENTIALS_REFRESH: Duration = Duration::from_secs(300);

/// Why a token cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum MskIamError {
    #[error(
        "no AWS credentials for MSK IAM authentication: {0}; on Lambda they come from the \
         function's role, elsewhere from the usual AWS environment variables or profile"
    )]
    NoCredentials(#[source] aws_credential_types::provider::error::CredentialsError),
    #[error("no AWS region for MSK IAM authentication: set AWS_REGION")]
    NoRegion,
    #[error("could not sign the MSK IAM token: {0}")]
    Signing(String),
    #[error("the cached credentials' lock is poisoned")]
    Poisoned,
}

/// A token and when it expires, in milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MskIamToken {
    pub token: String,
    pub expires_at_ms: i64,
}

/// The token for `region`, signed with `credentials` at `now`.
pub fn sign_token(
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<MskIamToken, MskIamError> {
    let host = format!("kafka.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=kafka-cluster%3AConnect");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| MskIamError::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        "GET",
        &url,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| MskIamError::Signing(e.to_string()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| MskIamError::Signing(e.to_string()))?
        .into_parts();
    let (_, query) = instructions.into_parts();
    // The server decodes the parameters before checking the signature, so any correct
    // percent-encoding will do.
    let query_start = url.len() - "Action=kafka-cluster%3AConnect".len();
    let mut signed = form_urlencoded::Serializer::for_suffix(url.clone(), query_start);
    for (name, value) in &query {
        signed.append_pair(name, value);
    }
    signed.append_pair("User-Agent", USER_AGENT);
    let signed = signed.finish();
    let expires_at = now + TOKEN_LIFETIME;
    let expires_at_ms = expires_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    Ok(MskIamToken {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed),
        expires_at_ms,
    })
}

/// Tokens on demand from librdkafka's thread, signed with credentials a task keeps fresh.
#[derive(Clone)]
pub struct MskIamTokens {
    region: String,
    credentials: Arc<RwLock<Credentials>>,
}

impl std::fmt::Debug for MskIamTokens {
    // The credentials' own Debug redacts the secret; this leaves them out altogether.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskIamTokens")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl MskIamTokens {
    /// Resolves the credentials once (failing the start if there are none) and spawns the
    /// task that resolves them again every few minutes.
    pub async fn start(sdk: &aws_config::SdkConfig) -> Result<Self, MskIamError> {
        let region = sdk.region().ok_or(MskIamError::NoRegion)?.to_string();
        let provider = sdk.credentials_provider().ok_or_else(|| {
            MskIamError::NoCredentials(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no credentials provider is configured",
                ),
            )
        })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(MskIamError::NoCredentials)?;
        let tokens = Self {
            region,
            credentials: Arc::new(RwLock::new(credentials)),
        };
        tokio::spawn(refresh(provider, Arc::clone(&tokens.credentials)));
        Ok(tokens)
    }

    /// Tokens signed with fixed credentials (tests).
    pub fn fixed(region: &str, credentials: Credentials) -> Self {
        Self {
            region: region.to_owned(),
            credentials: Arc::new(RwLock::new(credentials)),
        }
    }

    /// A token valid from now.
    pub fn token(&self) -> Result<MskIamToken, MskIamError> {
        let credentials = self
            .credentials
            .read()
            .map_err(|_| MskIamError::Poisoned)?
            .clone();
        sign_token(&credentials, &self.region, SystemTime::now())
    }
}

async fn refresh(provider: SharedCredentialsProvider, cache: Arc<RwLock<Credentials>>) {
    loop {
        tokio::time::sleep(CREDENTIALS_REFRESH).await;
        match provider.provide_credentials().await {
            Ok(fresh) => {
                if let Ok(mut cached) = cache.write() {
                    *cached = fresh;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not refresh the credentials for MSK IAM; keeping the last ones");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_token_is_a_presigned_connect_url_valid_fifteen_minutes() {
        // GIVEN a role's temporary credentials and a fixed time
        let credentials = Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            Some("session/token+=".into()),
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_032_800); // 2026-11-30T10:00:00Z
        // WHEN a token is signed
        let token = sign_token(&credentials, "eu-west-1", now).unwrap();
        // THEN it is base64url without padding, of the presigned URL
        assert!(!token.token.contains(['=', '+', '/']));
        let url = decode(&token.token);
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        for expected in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=ASIAEXAMPLE%2F20261130%2Feu-west-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Date=20261130T100000Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=session%2Ftoken%2B%3D",
        ] {
            assert!(url.contains(expected), "{expected} not in {url}");
        }
        // AND the signature is the one AWS's own signer makes for the same request: vectors made
        // with aws-msk-iam-sasl-signer-python 1.0.2 (botocore 1.44.8), its clock fixed at
        // 2026-11-30T10:00:00Z, these credentials, region eu-west-1
        let signature = url
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Signature="))
            .unwrap();
        assert_eq!(
            signature,
            "8bcc22c8d17f8d50d31dda022c540382faf8f7743223f3943fecd616099eee9f"
        );
        let without_session = Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let without_session = decode(
            &sign_token(&without_session, "eu-west-1", now)
                .unwrap()
                .token,
        );
        assert!(
            without_session.contains(
                "&X-Amz-Signature=71561d5ee9fcc1b249c7ec60c86c01dc01cb62ced9f2abae18cc50b8b46cf8e7&"
            ),
            "{without_session}"
        );
        assert!(url.ends_with(&format!(
            "&User-Agent=twilio-events-kafka-forward%2F{}",
            env!("CARGO_PKG_VERSION")
        )));
        // AND it expires with the signature, fifteen minutes on
        assert_eq!(token.expires_at_ms, (1_796_032_800 + 900) * 1000);
        // AND a different secret signs differently (the secret is used, never shown)
        let other = Credentials::new("ASIAEXAMPLE", "other", None, None, "test");
        let other = decode(&sign_token(&other, "eu-west-1", now).unwrap().token);
        assert!(!other.contains(signature));
        assert!(!url.contains("wJalrXUtnFEMI"));
        assert!(!format!("{:?}", MskIamTokens::fixed("eu-west-1", credentials)).contains("wJalr"));
    }
}
