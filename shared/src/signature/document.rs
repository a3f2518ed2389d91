//! The Twilio secret document: the secrets a receiver verifies with, as kept in Secrets
//! Manager (ingest), in a file (`serve --secrets-file`, `verify --secrets-file`) or in
//! `TWILIO_AUTH_TOKEN`.

use super::SecretSet;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A Twilio secret document that cannot be used. Says where a problem is, never what the
/// value was: values here are secrets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretDocumentError {
    #[error(
        "not the expected JSON document (line {line}, column {column}): expected \
         {{\"auth_tokens\": [...], \"shared_keys\": {{...}}, \"accounts\": {{...}}}}"
    )]
    NotTheDocument { line: usize, column: usize },
    #[error("shared key {0:?} is empty")]
    EmptySharedKey(String),
    #[error("holds no auth token and no shared key")]
    NoSecrets,
}

/// The secret document kept in Secrets Manager (or given to `serve`), any of:
/// - a plain Auth Token string;
/// - `{"auth_tokens": ["new", "old"], "shared_keys": {"<key id>": "<secret>"}}`;
/// - per account: `{"accounts": {"AC…": {"auth_tokens": ["…"]}}, "shared_keys": {…}}`.
pub fn secrets_from_document(document: &str) -> Result<SecretSet, SecretDocumentError> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Account {
        #[serde(default)]
        auth_tokens: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Document {
        #[serde(default)]
        auth_tokens: Vec<String>,
        #[serde(default)]
        shared_keys: BTreeMap<String, String>,
        #[serde(default)]
        accounts: BTreeMap<String, Account>,
    }
    let trimmed = document.trim();
    let mut secrets = SecretSet::new();
    if !trimmed.starts_with('{') {
        secrets.add_auth_tokens_csv(trimmed);
    } else {
        // serde's message may quote a value, and values here are secrets: say where, not what.
        // (So serde's error is not kept as the source.)
        let doc: Document =
            serde_json::from_str(trimmed).map_err(|e| SecretDocumentError::NotTheDocument {
                line: e.line(),
                column: e.column(),
            })?;
        let tokens = doc
            .auth_tokens
            .iter()
            .chain(doc.accounts.values().flat_map(|a| a.auth_tokens.iter()));
        for token in tokens.filter(|t| !t.trim().is_empty()) {
            secrets.add_auth_token(token.trim());
        }
        for (id, secret) in &doc.shared_keys {
            if secret.is_empty() {
                return Err(SecretDocumentError::EmptySharedKey(id.clone()));
            }
            secrets.add_shared_key(id.as_str(), secret.as_str());
        }
    }
    if secrets.is_empty() {
        return Err(SecretDocumentError::NoSecrets);
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_documents_in_every_form() {
        assert_eq!(
            secrets_from_document("tok1,tok2")
                .unwrap()
                .auth_tokens()
                .len(),
            2
        );
        let s = secrets_from_document(r#"{"auth_tokens":["a"],"accounts":{"AC1":{"auth_tokens":["b","c"]}},"shared_keys":{"k1":"s1"}}"#).unwrap();
        assert_eq!(s.auth_tokens().len(), 3);
        assert!(s.shared_key("k1").is_some());
        assert!(secrets_from_document("{}").is_err());
        let err = secrets_from_document(r#"{"auth_tokens":"very-secret"}"#).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(
            !err.to_string().contains("very-secret"),
            "never echo a secret: {err}"
        );
    }
}
