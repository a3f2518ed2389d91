//! Secrets from the command line or the environment, shared by `verify` and `serve`.

use clap::Args;
use twilio_events::signature::SecretSet;

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

impl SecretArgs {
    pub fn secret_set(&self) -> Result<SecretSet, String> {
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
                .map_err(|e| format!("--shared-key: {e}"))?;
        }
        if set.is_empty() {
            return Err("no secret given: pass --auth-token TOKEN (or set TWILIO_AUTH_TOKEN), or --shared-key ID=SECRET".into());
        }
        Ok(set)
    }
}
