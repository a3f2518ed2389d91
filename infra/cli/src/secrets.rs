//! Secrets from the command line or the environment, shared by `verify` and `serve`.

use clap::Args;
use twilio_events::signature::{SecretSet, SecretSpecError};

#[derive(Args, Debug, Clone)]
pub struct SecretArgs {
    /// An account's Auth Token (repeat during rotation or for several accounts).
    /// Also read from TWILIO_AUTH_TOKEN (comma-separated).
    #[arg(
        long = "auth-token",
        value_name = "TOKEN",
        env = "TWILIO_AUTH_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub auth_tokens: Vec<String>,

    /// A shared key for HMAC-SHA256 webhook signatures, written ID=SECRET (repeatable).
    #[arg(long = "shared-key", value_name = "ID=SECRET")]
    pub shared_keys: Vec<String>,
}

/// The secrets given cannot be used: a usage error.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("--shared-key: cannot use the value given")]
    SharedKey(#[source] SecretSpecError),
    #[error(
        "no secret given: pass --auth-token TOKEN (or set TWILIO_AUTH_TOKEN), or --shared-key ID=SECRET"
    )]
    NoSecret,
}

impl From<SecretsError> for crate::commands::CliError {
    fn from(e: SecretsError) -> Self {
        Self::usage(e)
    }
}

impl SecretArgs {
    pub fn secret_set(&self) -> Result<SecretSet, SecretsError> {
        let mut set = SecretSet::new();
        for token in self
            .auth_tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
        {
            set.add_auth_token(token);
        }
        for spec in &self.shared_keys {
            set.add_shared_key_spec(spec)
                .map_err(SecretsError::SharedKey)?;
        }
        if set.is_empty() {
            return Err(SecretsError::NoSecret);
        }
        Ok(set)
    }
}
