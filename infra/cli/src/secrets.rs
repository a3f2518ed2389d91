//! Secrets from the command line, a secrets file or the environment, shared by `verify` and
//! `serve`.

use clap::Args;
use ingest::adapters::secret_file::SecretFileSource;
use ingest::ports::SecretSourceError;
use std::path::PathBuf;
use twilio_events::signature::{SecretSet, SecretSpecError};

#[derive(Args, Debug, Clone)]
pub struct SecretArgs {
    /// An Auth Token bound to no account: it verifies events of any account, right when one
    /// account sends here (repeat during a rotation). Also read from TWILIO_AUTH_TOKEN
    /// (comma-separated).
    #[arg(
        long = "auth-token",
        value_name = "TOKEN",
        env = "TWILIO_AUTH_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub auth_tokens: Vec<String>,

    /// An account's Auth Token, bound to it: a delivery it verifies may carry that account's
    /// events only (repeatable: several accounts, or old and new during a rotation).
    #[arg(long = "account-token", value_name = "ACCOUNT_SID=TOKEN")]
    pub account_tokens: Vec<String>,

    /// A shared key for HMAC-SHA256 webhook signatures, written ID=SECRET (repeatable).
    #[arg(long = "shared-key", value_name = "ID=SECRET")]
    pub shared_keys: Vec<String>,

    /// The Twilio secret document, as kept in the deployed secret (JSON: each account's
    /// auth_tokens, shared_keys and the subaccounts it signs for; or top-level lists bound to
    /// no account). `serve` reads it again when it changes.
    #[arg(long = "secrets-file", value_name = "PATH")]
    pub secrets_file: Option<PathBuf>,
}

/// The secrets given cannot be used: a usage error.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("--shared-key: cannot use the value given")]
    SharedKey(#[source] SecretSpecError),
    #[error("--account-token: cannot use the value given")]
    AccountToken(#[source] SecretSpecError),
    #[error("--secrets-file {}: cannot use it", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: SecretSourceError,
    },
    #[error(
        "no secret given: pass --auth-token TOKEN (or set TWILIO_AUTH_TOKEN), --account-token \
         ACCOUNT_SID=TOKEN, --shared-key ID=SECRET or --secrets-file PATH"
    )]
    NoSecret,
}

impl From<SecretsError> for crate::commands::CliError {
    fn from(e: SecretsError) -> Self {
        Self::usage(e)
    }
}

impl SecretArgs {
    /// Every secret given, and the secrets file to follow when there is one (its secrets are
    /// in the set, before those of the flags).
    pub fn load(&self) -> Result<(SecretSet, Option<SecretFileSource>), SecretsError> {
        let flags = self.flag_secrets()?;
        let (set, file) = match &self.secrets_file {
            Some(path) => {
                let file = SecretFileSource::new(path).with_secrets_beside(flags);
                let set = file.read_now().map_err(|source| SecretsError::File {
                    path: path.clone(),
                    source,
                })?;
                (set, Some(file))
            }
            None => (flags, None),
        };
        if set.is_empty() {
            return Err(SecretsError::NoSecret);
        }
        Ok((set, file))
    }

    /// Every secret given.
    pub fn secret_set(&self) -> Result<SecretSet, SecretsError> {
        self.load().map(|(set, _)| set)
    }

    /// The secrets of the flags alone.
    fn flag_secrets(&self) -> Result<SecretSet, SecretsError> {
        let mut set = SecretSet::new();
        for token in self
            .auth_tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
        {
            set.add_auth_token(token);
        }
        for spec in &self.account_tokens {
            set.add_account_token_spec(spec)
                .map_err(SecretsError::AccountToken)?;
        }
        for spec in &self.shared_keys {
            set.add_shared_key_spec(spec)
                .map_err(SecretsError::SharedKey)?;
        }
        Ok(set)
    }
}
