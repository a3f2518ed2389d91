//! Reading a secret from AWS Secrets Manager: the one place every function does it (ingest's
//! Twilio secret document, crm-sync's CRM tokens), so they fail the same way and say the same
//! thing when they cannot.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

/// Why a secret could not be read. The message names the secret (its ARN or name, never its
/// value) and what to check.
#[derive(Debug, thiserror::Error)]
pub enum SecretReadError {
    #[error(
        "cannot read secret {id}: {}; check that it exists in this region and that the \
         function's role may call secretsmanager:GetSecretValue on it",
        DisplayErrorContext(.source)
    )]
    Unreadable {
        id: String,
        #[source]
        source: Box<SdkError<GetSecretValueError>>,
    },
    #[error("secret {id} has no string value: store it as a string (SecretString), not binary")]
    NotAString { id: String },
}

/// The current string value of secret `id` (an ARN or a name).
pub async fn read_secret_string(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<String, SecretReadError> {
    let output = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|source| SecretReadError::Unreadable {
            id: id.to_owned(),
            source: Box::new(source),
        })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| SecretReadError::NotAString { id: id.to_owned() })
}
