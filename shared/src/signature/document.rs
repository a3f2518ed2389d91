//! The Twilio secret document: the secrets a receiver verifies with, as kept in Secrets
//! Manager (ingest), in a file (`serve --secrets-file`, `verify --secrets-file`) or in
//! `TWILIO_AUTH_TOKEN`.

use super::SecretSet;
use crate::event::form::is_sid;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// A Twilio secret document that cannot be used. Says where a problem is, never what the
/// value was: values here are secrets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretDocumentError {
    #[error(
        "not the expected JSON document (line {line}, column {column}): expected \
         {{\"auth_tokens\": [...], \"shared_keys\": {{...}}, \"accounts\": {{\"AC...\": \
         {{\"auth_tokens\": [...], \"shared_keys\": {{...}}, \"subaccounts\": [...]}}}}}}"
    )]
    NotTheDocument { line: usize, column: usize },
    #[error("shared key {0:?} is empty")]
    EmptySharedKey(String),
    /// Which key a request names must be clear: one id, one secret, one account.
    #[error("shared key {0:?} is listed twice; give each shared key one id")]
    DuplicateSharedKey(String),
    /// An account SID is shown only when it looks like one (it might be a misplaced secret).
    #[error("{place}: {shown} is not an account SID (AC followed by 32 hex digits)")]
    NotAnAccountSid { place: &'static str, shown: String },
    #[error("holds no auth token and no shared key")]
    NoSecrets,
}

/// The secret document kept in Secrets Manager (or given to `serve --secrets-file`,
/// `verify --secrets-file`, or in `TWILIO_AUTH_TOKEN`), any of:
/// - a plain Auth Token string (several, comma-separated, during a rotation);
/// - `{"auth_tokens": ["new", "old"], "shared_keys": {"<key id>": "<secret>"}}`;
/// - per account: `{"accounts": {"AC…": {"auth_tokens": ["…"], "shared_keys": {…},
///   "subaccounts": ["AC…"]}}}`, with or beside the top-level lists.
///
/// A secret listed under an account is bound to it: a delivery it verifies may only carry
/// events of that account and of the subaccounts listed with it (a parent's sink subscribed
/// with `ReceiveEventsFromSubaccounts` is signed with the parent's token: docs/twilio.md §6).
/// The flat forms (a plain token, the top-level `auth_tokens` and `shared_keys`) are bound to
/// no account, that is to any account, as before accounts were bound: right when one account
/// sends to the receiver, and what a deployment with several tenants should not use.
pub fn secrets_from_document(document: &str) -> Result<SecretSet, SecretDocumentError> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Account {
        #[serde(default)]
        auth_tokens: Vec<String>,
        #[serde(default)]
        shared_keys: BTreeMap<String, String>,
        #[serde(default)]
        subaccounts: Vec<String>,
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
        for token in doc.auth_tokens.iter().filter(|t| !t.trim().is_empty()) {
            secrets.add_auth_token(token.trim());
        }
        let mut key_ids = BTreeSet::new();
        let mut check_key = |id: &str, secret: &str| {
            if secret.is_empty() {
                return Err(SecretDocumentError::EmptySharedKey(id.to_owned()));
            }
            if !key_ids.insert(id.to_owned()) {
                return Err(SecretDocumentError::DuplicateSharedKey(id.to_owned()));
            }
            Ok(())
        };
        for (id, secret) in &doc.shared_keys {
            check_key(id, secret)?;
            secrets.add_shared_key(id.as_str(), secret.as_str());
        }
        for (sid, account) in &doc.accounts {
            account_sid("a key of accounts", sid)?;
            for token in account.auth_tokens.iter().filter(|t| !t.trim().is_empty()) {
                secrets.add_account_auth_token(sid.as_str(), token.trim());
            }
            for (id, secret) in &account.shared_keys {
                check_key(id, secret)?;
                secrets.add_account_shared_key(sid.as_str(), id.as_str(), secret.as_str());
            }
            for subaccount in &account.subaccounts {
                account_sid("subaccounts", subaccount)?;
                secrets.add_subaccount(sid.as_str(), subaccount.as_str());
            }
        }
    }
    if secrets.is_empty() {
        return Err(SecretDocumentError::NoSecrets);
    }
    Ok(secrets)
}

fn account_sid(place: &'static str, value: &str) -> Result<(), SecretDocumentError> {
    if is_sid(value, "AC") {
        return Ok(());
    }
    let shown = if value.starts_with("AC") && value.len() <= 40 {
        format!("{value:?}")
    } else {
        "a value (not shown)".to_owned()
    };
    Err(SecretDocumentError::NotAnAccountSid { place, shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{AccountScope, MatchedKey};

    #[test]
    fn secret_documents_in_every_form() {
        assert_eq!(
            secrets_from_document("tok1,tok2")
                .unwrap()
                .auth_tokens()
                .len(),
            2
        );
        let s = secrets_from_document(r#"{"auth_tokens":["a"],"accounts":{"AC00000000000000000000000000000001":{"auth_tokens":["b","c"]}},"shared_keys":{"k1":"s1"}}"#).unwrap();
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

    const A: &str = "AC0000000000000000000000000000000a";
    const SUB: &str = "AC0000000000000000000000000000000b";
    const B: &str = "AC0000000000000000000000000000000c";

    #[test]
    fn each_account_is_bound_to_its_secrets_and_listed_subaccounts() {
        let doc = format!(
            r#"{{"auth_tokens": ["flat"],
                "accounts": {{
                  "{A}": {{"auth_tokens": ["tok-a"], "shared_keys": {{"ka": "sa"}}, "subaccounts": ["{SUB}"]}},
                  "{B}": {{"auth_tokens": ["tok-b"]}}
                }}}}"#
        );
        let s = secrets_from_document(&doc).unwrap();
        let scope = |key| s.scope(&key);
        assert_eq!(scope(MatchedKey::AuthToken(0)), AccountScope::Any, "flat");
        assert!(scope(MatchedKey::AuthToken(1)).allows(Some(SUB)));
        assert!(!scope(MatchedKey::AuthToken(1)).allows(Some(B)));
        assert_eq!(scope(MatchedKey::AuthToken(2)).account(), Some(B));
        assert!(!scope(MatchedKey::AuthToken(2)).allows(Some(A)));
        assert_eq!(scope(MatchedKey::SharedKey("ka".into())).account(), Some(A));
        assert!(scope(MatchedKey::SharedKey("ka".into())).allows(Some(SUB)));
    }

    #[test]
    fn account_sids_and_key_ids_are_checked() {
        let err =
            secrets_from_document(r#"{"accounts": {"AC1": {"auth_tokens": ["t"]}}}"#).unwrap_err();
        assert!(
            matches!(err, SecretDocumentError::NotAnAccountSid { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("\"AC1\""), "{err}");
        let err = secrets_from_document(
            r#"{"accounts": {"very-secret-token-as-a-key": {"auth_tokens": ["t"]}}}"#,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("very-secret"), "{err}");
        let doc = format!(
            r#"{{"accounts": {{"{A}": {{"auth_tokens": ["t"], "subaccounts": ["ACnope"]}}}}}}"#
        );
        assert!(
            secrets_from_document(&doc)
                .unwrap_err()
                .to_string()
                .starts_with("subaccounts: ")
        );
        let doc = format!(
            r#"{{"shared_keys": {{"k": "s"}}, "accounts": {{"{A}": {{"shared_keys": {{"k": "t"}}}}}}}}"#
        );
        assert_eq!(
            secrets_from_document(&doc),
            Err(SecretDocumentError::DuplicateSharedKey("k".into()))
        );
    }
}
