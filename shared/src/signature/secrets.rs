//! The secrets a receiver holds: Auth Tokens (HMAC-SHA1) and shared keys (HMAC-SHA256 by id).
//!
//! Several at once, because tokens rotate (old and new are both live for a while) and one
//! deployment may receive for several accounts. `Debug` never shows a secret.

use std::fmt;

/// A secret's bytes. `Debug` prints `Secret(<redacted>)`; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into().into_boxed_slice())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

/// A key that signs: an account's Auth Token, or a shared key named by its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningKey {
    AuthToken(Secret),
    SharedKey { id: String, secret: Secret },
}

/// What verification matched, so logs and metrics can tell rotation progress apart
/// (a delivery verified with the second token means Twilio has not switched yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchedKey {
    /// The position of the Auth Token in the set (0 = first configured).
    AuthToken(usize),
    SharedKey(String),
}

/// Every secret this receiver accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretSet {
    auth_tokens: Vec<Secret>,
    shared_keys: Vec<(String, Secret)>,
}

/// A secret specification that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretSpecError {
    #[error("a shared key must be written ID=SECRET (got a value with no '=')")]
    SharedKeyWithoutId,
    #[error("an empty secret is not a secret: check the value given")]
    Empty,
}

impl SecretSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_auth_token(mut self, token: impl Into<Secret>) -> Self {
        self.add_auth_token(token);
        self
    }

    pub fn with_shared_key(mut self, id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        self.add_shared_key(id, secret);
        self
    }

    pub fn add_auth_token(&mut self, token: impl Into<Secret>) {
        self.auth_tokens.push(token.into());
    }

    pub fn add_shared_key(&mut self, id: impl Into<String>, secret: impl Into<Secret>) {
        self.shared_keys.push((id.into(), secret.into()));
    }

    /// Adds the comma-separated tokens of a `TWILIO_AUTH_TOKEN`-style value (blanks ignored).
    pub fn add_auth_tokens_csv(&mut self, csv: &str) {
        for token in csv.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            self.add_auth_token(token);
        }
    }

    /// Adds a shared key written `ID=SECRET` (the secret may itself contain '=').
    pub fn add_shared_key_spec(&mut self, spec: &str) -> Result<(), SecretSpecError> {
        let (id, secret) = spec
            .split_once('=')
            .ok_or(SecretSpecError::SharedKeyWithoutId)?;
        if id.trim().is_empty() || secret.is_empty() {
            return Err(SecretSpecError::Empty);
        }
        self.add_shared_key(id.trim(), secret);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.auth_tokens.is_empty() && self.shared_keys.is_empty()
    }

    pub fn auth_tokens(&self) -> &[Secret] {
        &self.auth_tokens
    }

    pub fn shared_key(&self, id: &str) -> Option<&Secret> {
        self.shared_keys
            .iter()
            .find(|(key_id, _)| key_id == id)
            .map(|(_, secret)| secret)
    }

    pub fn shared_key_ids(&self) -> impl Iterator<Item = &str> {
        self.shared_keys.iter().map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let set = SecretSet::new()
            .with_auth_token("tok-very-secret")
            .with_shared_key("key1", "shh-shared");
        let shown = format!(
            "{set:?} {:?}",
            SigningKey::AuthToken("tok-very-secret".into())
        );
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("shh-shared"), "{shown}");
        assert!(shown.contains("key1"));
    }

    #[test]
    fn csv_tokens_and_shared_key_specs() {
        let mut set = SecretSet::new();
        set.add_auth_tokens_csv(" a, ,b,");
        assert_eq!(set.auth_tokens().len(), 2);
        set.add_shared_key_spec("id1=c2VjcmV0==").unwrap();
        assert_eq!(set.shared_key("id1").unwrap().expose(), b"c2VjcmV0==");
        assert_eq!(
            set.add_shared_key_spec("nokey"),
            Err(SecretSpecError::SharedKeyWithoutId)
        );
        assert_eq!(set.add_shared_key_spec("id="), Err(SecretSpecError::Empty));
    }
}
