//! The secrets a receiver holds: Auth Tokens (HMAC-SHA1) and shared keys (HMAC-SHA256 by id).
//!
//! Several at once, because tokens rotate (old and new are both live for a while) and one
//! deployment may receive for several accounts. `Debug` never shows a secret.

use std::collections::BTreeMap;
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

/// Which accounts a secret may sign events for. A sink's deliveries are signed with the Auth
/// Token (or a shared key) of the account that owns the sink; a parent's sink subscribed with
/// `ReceiveEventsFromSubaccounts` carries its subaccounts' events, signed with the parent's
/// token (docs/twilio.md §2, §6). So a delivery verified with account A's secret may carry
/// events of A and of the subaccounts listed under A, and of no one else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountScope<'a> {
    /// A secret given without an account (a plain token, the document's top-level
    /// `auth_tokens` or `shared_keys`, `--auth-token`): bound to no account, so any account,
    /// as before secrets had accounts. Right for a single account.
    Any,
    /// A secret of `account`, which may also sign for the `subaccounts` listed under it.
    Account {
        account: &'a str,
        subaccounts: &'a [String],
    },
}

impl AccountScope<'_> {
    /// Whether an event of `account` may be signed with this secret. An event that names no
    /// account cannot be attributed, so only an unbound secret may sign it.
    pub fn allows(&self, account: Option<&str>) -> bool {
        match (self, account) {
            (Self::Any, _) => true,
            (Self::Account { .. }, None) => false,
            (
                Self::Account {
                    account: own,
                    subaccounts,
                },
                Some(account),
            ) => account == *own || subaccounts.iter().any(|s| s == account),
        }
    }

    /// The account the secret belongs to, when it is bound to one.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Any => None,
            Self::Account { account, .. } => Some(account),
        }
    }
}

/// Every secret this receiver accepts, each bound to an account or to none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretSet {
    auth_tokens: Vec<Secret>,
    /// The account of each Auth Token, in the same order (None: bound to no account).
    token_accounts: Vec<Option<String>>,
    shared_keys: Vec<(String, Secret)>,
    /// The account of each shared key, in the same order.
    key_accounts: Vec<Option<String>>,
    /// The subaccounts listed under each account.
    subaccounts: BTreeMap<String, Vec<String>>,
}

/// A secret specification that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretSpecError {
    #[error("a shared key must be written ID=SECRET (got a value with no '=')")]
    SharedKeyWithoutId,
    #[error("an account's token must be written ACCOUNT_SID=TOKEN (got a value with no '=')")]
    AccountTokenWithoutAccount,
    /// The text before '=' is not shown: a token written the wrong way round would be.
    #[error(
        "an account's token must be written ACCOUNT_SID=TOKEN, and the part before '=' is not an \
         account SID (AC followed by 32 hex digits)"
    )]
    NotAnAccountSid,
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

    /// `account`'s Auth Token: it verifies only events of `account` and its listed
    /// subaccounts.
    pub fn with_account_auth_token(
        mut self,
        account: impl Into<String>,
        token: impl Into<Secret>,
    ) -> Self {
        self.add_account_auth_token(account, token);
        self
    }

    /// Lists `subaccount` under `account`: `account`'s secrets may sign its events.
    pub fn with_subaccount(
        mut self,
        account: impl Into<String>,
        subaccount: impl Into<String>,
    ) -> Self {
        self.add_subaccount(account, subaccount);
        self
    }

    /// An Auth Token bound to no account.
    pub fn add_auth_token(&mut self, token: impl Into<Secret>) {
        self.auth_tokens.push(token.into());
        self.token_accounts.push(None);
    }

    pub fn add_account_auth_token(&mut self, account: impl Into<String>, token: impl Into<Secret>) {
        self.auth_tokens.push(token.into());
        self.token_accounts.push(Some(account.into()));
    }

    /// A shared key bound to no account.
    pub fn add_shared_key(&mut self, id: impl Into<String>, secret: impl Into<Secret>) {
        self.shared_keys.push((id.into(), secret.into()));
        self.key_accounts.push(None);
    }

    pub fn add_account_shared_key(
        &mut self,
        account: impl Into<String>,
        id: impl Into<String>,
        secret: impl Into<Secret>,
    ) {
        self.shared_keys.push((id.into(), secret.into()));
        self.key_accounts.push(Some(account.into()));
    }

    pub fn add_subaccount(&mut self, account: impl Into<String>, subaccount: impl Into<String>) {
        let listed = self.subaccounts.entry(account.into()).or_default();
        let subaccount = subaccount.into();
        if !listed.contains(&subaccount) {
            listed.push(subaccount);
        }
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

    /// Adds an account's Auth Token written `ACCOUNT_SID=TOKEN`.
    pub fn add_account_token_spec(&mut self, spec: &str) -> Result<(), SecretSpecError> {
        let (account, token) = spec
            .split_once('=')
            .ok_or(SecretSpecError::AccountTokenWithoutAccount)?;
        let account = account.trim();
        if !crate::event::form::is_sid(account, "AC") {
            return Err(SecretSpecError::NotAnAccountSid);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(SecretSpecError::Empty);
        }
        self.add_account_auth_token(account, token);
        Ok(())
    }

    /// Adds every secret and subaccount of `other`, after this set's own.
    pub fn extend(&mut self, other: SecretSet) {
        self.auth_tokens.extend(other.auth_tokens);
        self.token_accounts.extend(other.token_accounts);
        self.shared_keys.extend(other.shared_keys);
        self.key_accounts.extend(other.key_accounts);
        for (account, subaccounts) in other.subaccounts {
            for subaccount in subaccounts {
                self.add_subaccount(account.clone(), subaccount);
            }
        }
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

    /// Which accounts the secret that matched may sign for.
    pub fn scope(&self, key: &MatchedKey) -> AccountScope<'_> {
        let account = match key {
            MatchedKey::AuthToken(i) => self.token_accounts.get(*i).and_then(Option::as_deref),
            MatchedKey::SharedKey(id) => self
                .shared_keys
                .iter()
                .position(|(key_id, _)| key_id == id)
                .and_then(|i| self.key_accounts.get(i))
                .and_then(Option::as_deref),
        };
        match account {
            None => AccountScope::Any,
            Some(account) => AccountScope::Account {
                account,
                subaccounts: self
                    .subaccounts
                    .get(account)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            },
        }
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

    const A: &str = "AC0000000000000000000000000000000a";
    const SUB: &str = "AC0000000000000000000000000000000b";
    const B: &str = "AC0000000000000000000000000000000c";

    #[test]
    fn a_bound_secret_signs_for_its_account_and_listed_subaccounts_only() {
        let set = SecretSet::new()
            .with_auth_token("flat")
            .with_account_auth_token(A, "tok-a")
            .with_subaccount(A, SUB);
        assert_eq!(set.scope(&MatchedKey::AuthToken(0)), AccountScope::Any);
        let scope = set.scope(&MatchedKey::AuthToken(1));
        assert_eq!(scope.account(), Some(A));
        assert!(scope.allows(Some(A)));
        assert!(scope.allows(Some(SUB)));
        assert!(!scope.allows(Some(B)));
        assert!(!scope.allows(None), "an event that names no account");
        assert!(AccountScope::Any.allows(Some(B)) && AccountScope::Any.allows(None));
    }

    #[test]
    fn account_token_specs_name_the_account_first() {
        let mut set = SecretSet::new();
        set.add_account_token_spec(&format!("{A}=tok")).unwrap();
        assert_eq!(set.scope(&MatchedKey::AuthToken(0)).account(), Some(A));
        assert_eq!(
            set.add_account_token_spec("tok"),
            Err(SecretSpecError::AccountTokenWithoutAccount)
        );
        let err = set.add_account_token_spec("very-secret=AC1").unwrap_err();
        assert_eq!(err, SecretSpecError::NotAnAccountSid);
        assert!(!err.to_string().contains("very-secret"));
        assert_eq!(
            set.add_account_token_spec(&format!("{A}= ")),
            Err(SecretSpecError::Empty)
        );
    }
}
