//! `X-Twilio-Signature`: deciding whether a request really comes from Twilio, and signing
//! requests exactly as Twilio does (for tests, the simulator and users).
//!
//! How Twilio signs (docs/twilio.md §2):
//! - JSON bodies (Event Streams): Twilio appends `bodySHA256=<hex sha256 of the raw body>` to the
//!   sink URL and signs the full URL alone. Both the URL signature and the body hash must match.
//!   A JSON body whose URL has no `bodySHA256` is not covered by any signature: rejected.
//! - Form bodies (classic callbacks, Usage Triggers): the URL followed by every parameter as
//!   `name + value`, sorted by name. Nothing separates them, so the signature does not fix
//!   where a parameter ends: form routes check each value (`crate::event::form`).
//! - Which of the two a request is comes from the receiver's route, never from the request.
//! - HMAC-SHA1 keyed with an Auth Token, or HMAC-SHA256 keyed with the shared key named by
//!   `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256`.
//! - Twilio is inconsistent about spelling out the default port, so the URL is tried both with
//!   and without it, as every official helper library does.
//!
//! Comparisons are constant-time; errors say which check failed and never carry a secret.
//! A verified request says which secret matched, and so which accounts it may carry events of
//! ([`AccountScope`]).

mod document;
mod secrets;
mod url;

pub use document::{SecretDocumentError, secrets_from_document};
pub use secrets::{AccountScope, MatchedKey, Secret, SecretSet, SecretSpecError, SigningKey};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
pub const SIGNATURE_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";
pub const BODY_HASH_PARAM: &str = "bodySHA256";

/// The HMAC a signature is computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
}

impl Algorithm {
    /// The name Twilio uses in `X-Twilio-Webhooks-Signature-Settings`.
    pub fn header_name(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC_SHA1",
            Self::HmacSha256 => "HMAC_SHA256",
        }
    }

    fn from_header_name(name: &str) -> Option<Self> {
        match name {
            n if n.eq_ignore_ascii_case("HMAC_SHA1") => Some(Self::HmacSha1),
            n if n.eq_ignore_ascii_case("HMAC_SHA256") => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

/// How the body is covered by the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    /// Raw body, covered by `bodySHA256` in the URL (Event Streams JSON deliveries).
    Json,
    /// `application/x-www-form-urlencoded` parameters appended to the signed string.
    Form,
}

impl BodyEncoding {
    /// Form only when the content type says so; anything else is hashed as a raw body. For
    /// tools that look at a request out of context (`twilio-events verify`); a receiver takes
    /// the encoding from its route and checks the content type with [`Self::admits`].
    pub fn from_content_type(content_type: &str) -> Self {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Self::Form
        } else {
            Self::Json
        }
    }

    /// Whether a request whose `Content-Type` is `content_type` can be of this encoding:
    /// `application/json` (or a `+json` type) for JSON, `application/x-www-form-urlencoded`
    /// for forms, parameters such as `charset` ignored. No content type at all agrees with
    /// either, the encoding being the route's.
    pub fn admits(self, content_type: Option<&str>) -> bool {
        let Some(content_type) = content_type else {
            return true;
        };
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match self {
            Self::Json => {
                essence.eq_ignore_ascii_case("application/json")
                    || essence.split_once('/').is_some_and(|(kind, sub)| {
                        kind.eq_ignore_ascii_case("application")
                            && sub.len() > 5
                            && sub[sub.len() - 5..].eq_ignore_ascii_case("+json")
                    })
            }
            Self::Form => essence.eq_ignore_ascii_case("application/x-www-form-urlencoded"),
        }
    }

    /// What a request most likely is when its content type is unknown: JSON when the URL
    /// carries `bodySHA256` (only raw-body deliveries do), form-encoded otherwise.
    pub fn guess_from_url(url: &str) -> Self {
        if url::query_param(url, BODY_HASH_PARAM).is_some() {
            Self::Json
        } else {
            Self::Form
        }
    }
}

/// Why a request was not accepted as Twilio's. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no X-Twilio-Signature header: the request was not signed by Twilio")]
    MissingSignature,
    #[error(
        "the URL has no bodySHA256 query parameter, so the JSON body is not covered by the signature"
    )]
    MissingBodyHash,
    #[error(
        "the body's SHA-256 does not match the URL's bodySHA256: the body was changed after signing"
    )]
    BodyHashMismatch,
    #[error(
        "the signature does not match any configured secret for this URL: check the auth token (or \
         shared key) and that the configured public URL is exactly the one Twilio calls"
    )]
    SignatureMismatch,
    #[error("the signature names shared key {0:?}, which is not configured")]
    UnknownKeyId(String),
    #[error("the signature uses algorithm {0:?}, which this receiver does not support")]
    UnknownAlgorithm(String),
    #[error("malformed X-Twilio-Webhooks-Signature-Settings header: {0}")]
    MalformedSettings(&'static str),
    #[error("no secret is configured to verify with")]
    NoSecrets,
}

impl VerifyError {
    /// A short machine-readable name for the failure, for metrics and for `serve`'s console.
    pub fn class(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing-signature",
            Self::MissingBodyHash => "missing-body-hash",
            Self::BodyHashMismatch => "body-hash-mismatch",
            Self::SignatureMismatch => "signature-mismatch",
            Self::UnknownKeyId(_) => "unknown-key-id",
            Self::UnknownAlgorithm(_) => "unknown-algorithm",
            Self::MalformedSettings(_) => "malformed-settings",
            Self::NoSecrets => "no-secrets",
        }
    }
}

/// One request as received, with the URL Twilio called (public base URL plus the raw query
/// string), never a URL rebuilt from what API Gateway passes on.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub url: &'a str,
    pub body: &'a [u8],
    pub encoding: BodyEncoding,
    pub signature: Option<&'a str>,
    pub signature_settings: Option<&'a str>,
}

/// A verified request: which key matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub key: MatchedKey,
    pub algorithm: Algorithm,
}

/// The parsed `X-Twilio-Webhooks-Signature-Settings` header.
#[derive(Debug, PartialEq, Eq)]
struct Settings<'a> {
    key_id: Option<&'a str>,
    algorithm: Algorithm,
}

fn parse_settings(header: Option<&str>) -> Result<Settings<'_>, VerifyError> {
    let mut settings = Settings {
        key_id: None,
        algorithm: Algorithm::HmacSha1,
    };
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(settings);
    };
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or(VerifyError::MalformedSettings("expected name=value pairs"))?;
        match name.trim() {
            n if n.eq_ignore_ascii_case("key") => settings.key_id = Some(value.trim()),
            n if n.eq_ignore_ascii_case("algorithm") => {
                settings.algorithm = Algorithm::from_header_name(value.trim())
                    .ok_or_else(|| VerifyError::UnknownAlgorithm(value.trim().to_owned()))?;
            }
            // Unknown settings are ignored, for forward compatibility.
            _ => {}
        }
    }
    if settings.algorithm == Algorithm::HmacSha256 && settings.key_id.is_none() {
        return Err(VerifyError::MalformedSettings(
            "algorithm=HMAC_SHA256 needs key=<shared key id>",
        ));
    }
    Ok(settings)
}

/// A secret turned into a keyed HMAC once, so that each verification starts from the keyed
/// state instead of hashing the key again.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
}

impl KeyedMac {
    fn new(algorithm: Algorithm, secret: &[u8]) -> Self {
        match algorithm {
            Algorithm::HmacSha1 => Self::Sha1(keyed(secret)),
            Algorithm::HmacSha256 => Self::Sha256(keyed(secret)),
        }
    }

    /// Whether `signature` (decoded) is the MAC of `url` and the form parameters, compared in
    /// constant time.
    fn verifies(&self, url: &str, form: Option<&[(String, String)]>, signature: &[u8]) -> bool {
        fn run<M: Mac + Clone>(
            mac: &M,
            url: &str,
            form: Option<&[(String, String)]>,
            signature: &[u8],
        ) -> bool {
            let mut mac = mac.clone();
            feed(&mut mac, url, form);
            mac.verify_slice(signature).is_ok()
        }
        match self {
            Self::Sha1(mac) => run(mac, url, form, signature),
            Self::Sha256(mac) => run(mac, url, form, signature),
        }
    }
}

fn keyed<M: Mac + hmac::digest::KeyInit>(secret: &[u8]) -> M {
    <M as hmac::digest::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

fn feed<M: Mac>(mac: &mut M, url: &str, form: Option<&[(String, String)]>) {
    mac.update(url.as_bytes());
    for (name, value) in form.unwrap_or_default() {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
}

/// Verifies requests against a fixed set of secrets.
#[derive(Clone)]
pub struct Verifier {
    secrets: SecretSet,
    /// One keyed HMAC-SHA1 per Auth Token, in the order given.
    tokens: Vec<KeyedMac>,
    /// One keyed HMAC-SHA256 per shared key.
    shared_keys: Vec<(String, KeyedMac)>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(secrets: SecretSet) -> Self {
        let tokens = secrets
            .auth_tokens()
            .iter()
            .map(|t| KeyedMac::new(Algorithm::HmacSha1, t.expose()))
            .collect();
        let shared_keys = secrets
            .shared_key_ids()
            .filter_map(|id| {
                secrets.shared_key(id).map(|s| {
                    (
                        id.to_owned(),
                        KeyedMac::new(Algorithm::HmacSha256, s.expose()),
                    )
                })
            })
            .collect();
        Self {
            secrets,
            tokens,
            shared_keys,
        }
    }

    pub fn secrets(&self) -> &SecretSet {
        &self.secrets
    }

    /// Which accounts the secret that verified a request may sign for.
    pub fn scope(&self, key: &MatchedKey) -> AccountScope<'_> {
        self.secrets.scope(key)
    }

    pub fn verify(&self, request: &SignedRequest<'_>) -> Result<Verified, VerifyError> {
        let signature = request
            .signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(VerifyError::MissingSignature)?;
        let settings = parse_settings(request.signature_settings)?;

        // The encoding decides what covers the body, and nothing in the request may change it
        // (a receiver takes it from the route, never from Content-Type): a JSON body is covered
        // by the URL's bodySHA256 and nothing else; a form body by its parameters appended to
        // the URL, never by a bodySHA256 (Twilio adds one to raw-body deliveries only). Were
        // the request to choose, a captured JSON delivery's signature could be replayed as a
        // form whose one parameter name spells the signed query string.
        let (form, body_hash) = match request.encoding {
            BodyEncoding::Json => match url::query_param(request.url, BODY_HASH_PARAM) {
                Some(hash) => (None, Some(hash)),
                None => return Err(VerifyError::MissingBodyHash),
            },
            BodyEncoding::Form => (Some(sorted_form_params(request.body)), None),
        };
        let form = form.as_deref();

        // A signature that is not base64 of the right length can match nothing; decoding it once
        // beats encoding every candidate.
        let mut decoded = [0u8; 64];
        let decoded = match BASE64.decode_slice(signature, &mut decoded) {
            Ok(len) => &decoded[..len],
            Err(_) => &[][..],
        };

        // The URL as received first: it is what Twilio signed nearly always. The other port
        // spelling is only built when that fails.
        let variant = std::cell::OnceCell::new();
        let variant = || {
            variant.get_or_init(|| {
                let (with_port, without_port) = url::port_variants(request.url);
                let other = if with_port.as_ref() == request.url {
                    without_port
                } else {
                    with_port
                };
                (other.as_ref() != request.url).then(|| other.into_owned())
            })
        };
        let matches = |mac: &KeyedMac| {
            mac.verifies(request.url, form, decoded)
                || variant()
                    .as_deref()
                    .is_some_and(|other| mac.verifies(other, form, decoded))
        };

        let key = match settings.key_id {
            Some(id) => {
                let secret = self
                    .secrets
                    .shared_key(id)
                    .ok_or_else(|| VerifyError::UnknownKeyId(id.to_owned()))?;
                let matched = match settings.algorithm {
                    Algorithm::HmacSha256 => self
                        .shared_keys
                        .iter()
                        .find(|(key_id, _)| key_id == id)
                        .is_some_and(|(_, mac)| matches(mac)),
                    Algorithm::HmacSha1 => {
                        matches(&KeyedMac::new(Algorithm::HmacSha1, secret.expose()))
                    }
                };
                matched.then(|| MatchedKey::SharedKey(id.to_owned()))
            }
            None => {
                if self.tokens.is_empty() {
                    return Err(VerifyError::NoSecrets);
                }
                self.tokens
                    .iter()
                    .position(matches)
                    .map(MatchedKey::AuthToken)
            }
        }
        .ok_or(VerifyError::SignatureMismatch)?;

        if let Some(expected) = body_hash {
            let mut expected_bytes = [0u8; 32];
            let actual = Sha256::digest(request.body);
            let same = hex::decode_to_slice(expected.as_bytes(), &mut expected_bytes).is_ok()
                && bool::from(actual.as_slice().ct_eq(&expected_bytes));
            if !same {
                return Err(VerifyError::BodyHashMismatch);
            }
        }
        Ok(Verified {
            key,
            algorithm: settings.algorithm,
        })
    }
}

/// The base64 signature of `url` (and, for form bodies, the sorted parameters).
pub fn compute_signature(
    algorithm: Algorithm,
    secret: &[u8],
    url: &str,
    form_body: Option<&[u8]>,
) -> String {
    let form = form_body.map(sorted_form_params);
    let form = form.as_deref();
    let digest = match algorithm {
        Algorithm::HmacSha1 => {
            let mut mac: Hmac<Sha1> = keyed(secret);
            feed(&mut mac, url, form);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::HmacSha256 => {
            let mut mac: Hmac<Sha256> = keyed(secret);
            feed(&mut mac, url, form);
            mac.finalize().into_bytes().to_vec()
        }
    };
    BASE64.encode(digest)
}

/// Form parameters as Twilio's helpers sign them: sorted by name (byte order), and each name's
/// distinct values sorted.
fn sorted_form_params(body: &[u8]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    params.sort();
    params.dedup();
    params
}

/// What Twilio sends for one request: the URL it calls and its signature headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDelivery {
    pub url: String,
    pub signature: String,
    /// `X-Twilio-Webhooks-Signature-Settings`, for shared keys.
    pub signature_settings: Option<String>,
}

impl SignedDelivery {
    /// The headers to send, in the order Twilio sends them.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![(SIGNATURE_HEADER, self.signature.as_str())];
        if let Some(settings) = &self.signature_settings {
            headers.push((SIGNATURE_SETTINGS_HEADER, settings.as_str()));
        }
        headers
    }
}

/// Signs a request exactly as Twilio does: JSON bodies get `bodySHA256` appended to the URL.
pub fn sign(key: &SigningKey, url: &str, body: &[u8], encoding: BodyEncoding) -> SignedDelivery {
    let url = match encoding {
        BodyEncoding::Json => {
            let separator = if url.contains('?') { '&' } else { '?' };
            let hash = hex::encode(Sha256::digest(body));
            format!("{url}{separator}{BODY_HASH_PARAM}={hash}")
        }
        BodyEncoding::Form => url.to_owned(),
    };
    let form_body = (encoding == BodyEncoding::Form).then_some(body);
    let (secret, algorithm, signature_settings) = match key {
        SigningKey::AuthToken(token) => (token, Algorithm::HmacSha1, None),
        SigningKey::SharedKey { id, secret } => (
            secret,
            Algorithm::HmacSha256,
            Some(format!(
                "key={id},algorithm={}",
                Algorithm::HmacSha256.header_name()
            )),
        ),
    };
    let signature = compute_signature(algorithm, secret.expose(), &url, form_body);
    SignedDelivery {
        url,
        signature,
        signature_settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";

    fn verify(
        secrets: SecretSet,
        url: &str,
        body: &[u8],
        encoding: BodyEncoding,
        signed: &SignedDelivery,
    ) -> Result<Verified, VerifyError> {
        Verifier::new(secrets).verify(&SignedRequest {
            url,
            body,
            encoding,
            signature: Some(&signed.signature),
            signature_settings: signed.signature_settings.as_deref(),
        })
    }

    #[test]
    fn published_twilio_python_json_vector_verifies() {
        // twilio-python's test_validation_of_body_succeeds (tests/fixtures/twilio/samples/11).
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let verified =
            Verifier::new(SecretSet::new().with_auth_token(TOKEN)).verify(&SignedRequest {
                url,
                body,
                encoding: BodyEncoding::Json,
                signature: Some("a9nBmqA0ju/hNViExpshrM61xv4="),
                signature_settings: None,
            });
        assert_eq!(
            verified,
            Ok(Verified {
                key: MatchedKey::AuthToken(0),
                algorithm: Algorithm::HmacSha1
            })
        );
    }

    #[test]
    fn signing_reproduces_the_published_form_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        let signed = sign(
            &SigningKey::AuthToken(TOKEN.into()),
            url,
            body,
            BodyEncoding::Form,
        );
        assert_eq!(signed.signature, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(signed.url, url);
    }

    #[test]
    fn json_without_body_hash_is_rejected_even_when_the_url_signature_is_right() {
        let url = "https://example.com/hook";
        let signed = SignedDelivery {
            url: url.into(),
            signature: compute_signature(Algorithm::HmacSha1, TOKEN.as_bytes(), url, None),
            signature_settings: None,
        };
        let result = verify(
            SecretSet::new().with_auth_token(TOKEN),
            url,
            b"[]",
            BodyEncoding::Json,
            &signed,
        );
        assert_eq!(result, Err(VerifyError::MissingBodyHash));
    }

    #[test]
    fn each_failure_says_why() {
        let secrets = SecretSet::new()
            .with_auth_token(TOKEN)
            .with_shared_key("k1", "s1");
        let body = b"[{}]";
        let signed = sign(
            &SigningKey::AuthToken(TOKEN.into()),
            "https://e.com/x",
            body,
            BodyEncoding::Json,
        );
        let request = |signature: Option<&'static str>, settings: Option<&'static str>| {
            Verifier::new(secrets.clone()).verify(&SignedRequest {
                url: &signed.url,
                body,
                encoding: BodyEncoding::Json,
                signature,
                signature_settings: settings,
            })
        };
        assert_eq!(request(None, None), Err(VerifyError::MissingSignature));
        assert_eq!(
            request(Some("AAAA"), None),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            request(Some("AAAA"), Some("key=nope,algorithm=HMAC_SHA256")),
            Err(VerifyError::UnknownKeyId("nope".into()))
        );
        assert_eq!(
            request(Some("AAAA"), Some("key=k1,algorithm=HMAC_MD5")),
            Err(VerifyError::UnknownAlgorithm("HMAC_MD5".into()))
        );
        assert!(matches!(
            request(Some("AAAA"), Some("garbage")),
            Err(VerifyError::MalformedSettings(_))
        ));
        assert!(matches!(
            request(Some("AAAA"), Some("algorithm=HMAC_SHA256")),
            Err(VerifyError::MalformedSettings(_))
        ));
        let tampered = Verifier::new(secrets.clone()).verify(&SignedRequest {
            url: &signed.url,
            body: b"[{ }]",
            encoding: BodyEncoding::Json,
            signature: Some(&signed.signature),
            signature_settings: None,
        });
        assert_eq!(tampered, Err(VerifyError::BodyHashMismatch));
        let no_tokens = Verifier::new(SecretSet::new()).verify(&SignedRequest {
            url: &signed.url,
            body,
            encoding: BodyEncoding::Json,
            signature: Some(&signed.signature),
            signature_settings: None,
        });
        assert_eq!(no_tokens, Err(VerifyError::NoSecrets));
    }

    #[test]
    fn default_port_spelled_out_or_not_both_verify() {
        let body = b"[]";
        let key = SigningKey::AuthToken(TOKEN.into());
        let signed = sign(&key, "https://e.com:443/x", body, BodyEncoding::Json);
        let received = signed.url.replace(":443", "");
        assert!(
            verify(
                SecretSet::new().with_auth_token(TOKEN),
                &received,
                body,
                BodyEncoding::Json,
                &signed
            )
            .is_ok()
        );
        let signed = sign(&key, "http://e.com/x", body, BodyEncoding::Json);
        let received = signed.url.replace("e.com", "e.com:80");
        assert!(
            verify(
                SecretSet::new().with_auth_token(TOKEN),
                &received,
                body,
                BodyEncoding::Json,
                &signed
            )
            .is_ok()
        );
    }

    #[test]
    fn shared_key_signs_with_sha256_and_names_itself() {
        let key = SigningKey::SharedKey {
            id: "k1".into(),
            secret: "s1".into(),
        };
        let signed = sign(&key, "https://e.com/x", b"[]", BodyEncoding::Json);
        assert_eq!(
            signed.signature_settings.as_deref(),
            Some("key=k1,algorithm=HMAC_SHA256")
        );
        assert_eq!(BASE64.decode(&signed.signature).unwrap().len(), 32);
        let secrets = SecretSet::new().with_shared_key("k1", "s1");
        assert_eq!(
            verify(secrets, &signed.url, b"[]", BodyEncoding::Json, &signed).map(|v| v.key),
            Ok(MatchedKey::SharedKey("k1".into()))
        );
    }

    #[test]
    fn rotation_reports_which_token_matched() {
        let signed = sign(
            &SigningKey::AuthToken("new".into()),
            "https://e.com/x",
            b"[]",
            BodyEncoding::Json,
        );
        let secrets = SecretSet::new()
            .with_auth_token("old")
            .with_auth_token("new");
        assert_eq!(
            verify(secrets, &signed.url, b"[]", BodyEncoding::Json, &signed).map(|v| v.key),
            Ok(MatchedKey::AuthToken(1))
        );
    }

    #[test]
    fn content_type_decides_the_encoding() {
        assert_eq!(
            BodyEncoding::from_content_type("application/x-www-form-urlencoded; charset=utf-8"),
            BodyEncoding::Form
        );
        assert_eq!(
            BodyEncoding::from_content_type("application/json"),
            BodyEncoding::Json
        );
        assert_eq!(
            BodyEncoding::guess_from_url("https://e.com/?bodySHA256=ab"),
            BodyEncoding::Json
        );
        assert_eq!(
            BodyEncoding::guess_from_url("https://e.com/?a=b"),
            BodyEncoding::Form
        );
    }

    #[test]
    fn a_json_signature_replayed_as_a_form_spelling_the_query_is_refused() {
        // GIVEN a captured Event Streams delivery: its signature covers
        // "<url>?bodySHA256=<hash>" and nothing else
        let url = "https://e.com/twilio/events";
        let signed = sign(
            &SigningKey::AuthToken(TOKEN.into()),
            url,
            b"[]",
            BodyEncoding::Json,
        );
        let query = signed.url.split_once('?').unwrap().1;
        // WHEN it is replayed without the query, with a form body whose one parameter name
        // is "?bodySHA256=<hash>": URL + name + value is exactly the string Twilio signed
        let body = format!(
            "{}=",
            form_urlencoded::byte_serialize(format!("?{query}").as_bytes()).collect::<String>()
        );
        let replay = |encoding| {
            Verifier::new(SecretSet::new().with_auth_token(TOKEN)).verify(&SignedRequest {
                url,
                body: body.as_bytes(),
                encoding,
                signature: Some(&signed.signature),
                signature_settings: None,
            })
        };
        // THEN it verifies only when the request may choose the form encoding; a JSON route
        // refuses it for want of a bodySHA256
        assert!(replay(BodyEncoding::Form).is_ok(), "the attack is real");
        assert_eq!(
            replay(BodyEncoding::Json),
            Err(VerifyError::MissingBodyHash)
        );
    }

    #[test]
    fn a_form_is_covered_by_its_parameters_never_by_a_body_hash() {
        // A form posted to a URL carrying a bodySHA256 that matches the body: the signature over
        // the URL alone does not cover the form's parameters.
        let body = b"AccountSid=AC1";
        let url = format!(
            "https://e.com/hook?bodySHA256={}",
            hex::encode(Sha256::digest(body))
        );
        let signature = compute_signature(Algorithm::HmacSha1, TOKEN.as_bytes(), &url, None);
        let result =
            Verifier::new(SecretSet::new().with_auth_token(TOKEN)).verify(&SignedRequest {
                url: &url,
                body,
                encoding: BodyEncoding::Form,
                signature: Some(&signature),
                signature_settings: None,
            });
        assert_eq!(result, Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn content_types_each_encoding_admits() {
        let json = BodyEncoding::Json;
        let form = BodyEncoding::Form;
        assert!(json.admits(Some("application/json")));
        assert!(json.admits(Some("Application/JSON; charset=utf-8")));
        assert!(json.admits(Some("application/cloudevents-batch+json")));
        assert!(json.admits(None));
        assert!(!json.admits(Some("application/x-www-form-urlencoded")));
        assert!(!json.admits(Some("text/plain")));
        assert!(!json.admits(Some("+json")));
        assert!(form.admits(Some("application/x-www-form-urlencoded; charset=utf-8")));
        assert!(form.admits(None));
        assert!(!form.admits(Some("application/json")));
        assert!(!form.admits(Some("multipart/form-data")));
    }

    #[test]
    fn the_matched_secret_says_which_accounts_it_may_sign_for() {
        let a = "AC0000000000000000000000000000000a";
        let verifier = Verifier::new(
            SecretSet::new()
                .with_auth_token("flat")
                .with_account_auth_token(a, "tok-a"),
        );
        let signed = sign(
            &SigningKey::AuthToken("tok-a".into()),
            "https://e.com/x",
            b"[]",
            BodyEncoding::Json,
        );
        let verified = verifier
            .verify(&SignedRequest {
                url: &signed.url,
                body: b"[]",
                encoding: BodyEncoding::Json,
                signature: Some(&signed.signature),
                signature_settings: None,
            })
            .unwrap();
        assert_eq!(verifier.scope(&verified.key).account(), Some(a));
        assert_eq!(verifier.scope(&MatchedKey::AuthToken(0)), AccountScope::Any);
    }
}
