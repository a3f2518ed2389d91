//! Fixtures shared by the test suites: Twilio's signature vectors and sample payloads, kept in
//! the repository under `tests/fixtures/` (provenance in `tests/fixtures/README.md`).
//!
//! Tests that need them fail loudly when one is missing rather than pass vacuously.

pub mod aws;
pub mod events;
pub mod kafka;
pub mod lambda_runtime;
pub mod sam_template;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use twilio_events::signature::{BodyEncoding, SecretSet, SignedRequest};

/// `tests/fixtures/` in this repository.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn samples_dir() -> PathBuf {
    fixtures_dir().join("twilio/samples")
}

pub fn read_sample(name: &str) -> Vec<u8> {
    let path = samples_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A key as the vector files describe it.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VectorKey {
    AuthToken { secret: String },
    SharedKey { id: String, secret: String },
}

/// One case of `signature-vectors.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct SignatureVector {
    pub name: String,
    pub keys: Vec<VectorKey>,
    pub url: String,
    pub content_type: String,
    pub body: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub valid: bool,
    pub why: String,
}

impl SignatureVector {
    pub fn secrets(&self) -> SecretSet {
        let mut secrets = SecretSet::new();
        for key in &self.keys {
            match key {
                VectorKey::AuthToken { secret } => secrets.add_auth_token(secret.as_str()),
                VectorKey::SharedKey { id, secret } => {
                    secrets.add_shared_key(id.as_str(), secret.as_str())
                }
            }
        }
        secrets
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            url: &self.url,
            body: self.body.as_bytes(),
            encoding: BodyEncoding::from_content_type(&self.content_type),
            signature: self.header("X-Twilio-Signature"),
            signature_settings: self.header("X-Twilio-Webhooks-Signature-Settings"),
        }
    }
}

/// Every case of `tests/fixtures/twilio/signature-vectors.json`.
pub fn signature_vectors() -> Vec<SignatureVector> {
    #[derive(Deserialize)]
    struct File {
        vectors: Vec<SignatureVector>,
    }
    let path = fixtures_dir().join("twilio/signature-vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: File =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!file.vectors.is_empty(), "no vectors in {}", path.display());
    file.vectors
}

/// One case of `samples/11_published_signature_vectors.json`, flattened into a request.
#[derive(Clone, Debug)]
pub struct PublishedVector {
    pub source: String,
    pub auth_token: String,
    pub url: String,
    pub body: Vec<u8>,
    pub encoding: BodyEncoding,
    pub signature: String,
    /// The signature the same request would carry had Twilio spelled out `:443`.
    pub signature_with_port: Option<String>,
}

pub fn published_vectors() -> Vec<PublishedVector> {
    let text = read_sample("11_published_signature_vectors.json");
    let file: serde_json::Value = serde_json::from_slice(&text).expect("valid JSON");
    let vectors = file["vectors"].as_array().expect("a vectors array");
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    vectors
        .iter()
        .map(|v| {
            let source = s(&v["source"]).unwrap_or_default();
            let auth_token = s(&v["auth_token"]).expect("auth_token");
            let signature = s(&v["x_twilio_signature"]).expect("x_twilio_signature");
            let signature_with_port = s(&v["same_url_with_explicit_443_would_sign_as"]);
            if let Some(params) = v["params"].as_object() {
                let pairs: Vec<(String, String)> = params
                    .iter()
                    .map(|(k, val)| (k.clone(), val.as_str().unwrap_or_default().to_owned()))
                    .collect();
                PublishedVector {
                    source,
                    auth_token,
                    url: s(&v["url"]).expect("url"),
                    body: encode_form(&pairs).into_bytes(),
                    encoding: BodyEncoding::Form,
                    signature,
                    signature_with_port,
                }
            } else {
                let body = match (s(&v["raw_body"]), s(&v["raw_body_file"])) {
                    (Some(body), _) => body.into_bytes(),
                    (None, Some(file)) => read_sample(&file),
                    _ => panic!("vector {source} has no body"),
                };
                PublishedVector {
                    source,
                    auth_token,
                    url: s(&v["signed_url"]).expect("signed_url"),
                    body,
                    encoding: BodyEncoding::Json,
                    signature,
                    signature_with_port,
                }
            }
        })
        .collect()
}

/// `application/x-www-form-urlencoded`, as Twilio encodes it (spaces as `+`).
pub fn encode_form(params: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
