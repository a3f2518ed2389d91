//! The Twilio secret document in AWS Secrets Manager (`TWILIO_SECRET_ARN`): read at cold start
//! by [`crate::startup::aws`], and through this source again after a rotation.

use crate::ports::{SecretSource, SecretSourceError};
use futures_util::future::BoxFuture;
use twilio_events::secrets_manager::read_secret_string;
use twilio_events::signature::{SecretSet, secrets_from_document};

/// One secret, by ARN or name.
#[derive(Clone, Debug)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl SecretSource for SecretsManagerSource {
    fn read(&self) -> BoxFuture<'_, Result<SecretSet, SecretSourceError>> {
        Box::pin(async move {
            let document = read_secret_string(&self.client, &self.secret_id)
                .await
                .map_err(|e| SecretSourceError::Unreadable(Box::new(e)))?;
            secrets_from_document(&document).map_err(SecretSourceError::Document)
        })
    }
}
