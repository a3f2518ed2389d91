//! Why a signature was refused, precisely: verified again, off the delivery path, when someone
//! opens the delivery. The reason is [`VerifyError`]'s; for a signature that matches nothing,
//! the request is verified against the URLs Twilio may have signed instead (another scheme,
//! host, port, path prefix, trailing slash or query), so the page can say which one it was
//! signed for. Only yes/no answers come out of the verifier: no token, no signature, no MAC.

use super::deliveries::{Delivery, RefusedRequest};
use ingest::config::IngestSettings;
use ingest::service::{Route, configured_signed_url};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use twilio_events::signature::{BODY_HASH_PARAM, SignedRequest, Verifier, VerifyError};

/// What the console says about one refused signature.
#[derive(Debug, PartialEq, Eq)]
pub struct Diagnosis {
    /// The refusal as the verifier words it (`VerifyError`'s message), or why none was found.
    pub reason: String,
    /// The variant's name, for the page and for tests.
    pub class: &'static str,
    /// The URL `serve` verified against: its public URL, the route, the query as received.
    pub verified_against: Option<String>,
    /// A URL the signature does match, and how it differs from the one verified against.
    pub matches: Option<Candidate>,
    /// The body's SHA-256 against the URL's `bodySHA256`, for a JSON route.
    pub body_hash: Option<BodyHash>,
    /// What to check, in order.
    pub advice: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    pub differs_by: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BodyHash {
    /// Hex, as the URL carries it (a hash of the body: not secret).
    pub in_url: String,
    pub of_body: String,
}

impl BodyHash {
    pub fn matches(&self) -> bool {
        self.in_url.eq_ignore_ascii_case(&self.of_body)
    }
}

/// What the diagnosis knows of `serve`: the secrets and public URLs ingest verifies with, and
/// the address it listens on.
pub struct Context<'a> {
    pub verifier: &'a Verifier,
    pub settings: &'a IngestSettings,
    pub local: SocketAddr,
}

pub fn diagnose(delivery: &Delivery, context: &Context<'_>) -> Option<Diagnosis> {
    let refused = delivery.refused.as_ref()?;
    let body = delivery.body.as_deref().unwrap_or_default();
    let Some(route) = Route::from_path(&delivery.path) else {
        return Some(Diagnosis {
            reason: "not a webhook route".into(),
            class: "not-a-route",
            verified_against: None,
            matches: None,
            body_hash: None,
            advice: vec![],
        });
    };
    let url =
        configured_signed_url(context.settings, route, delivery.query.as_deref()).into_owned();
    let verify = |url: &str| {
        context.verifier.verify(&SignedRequest {
            url,
            body,
            encoding: route.encoding(),
            signature: refused.signature.as_deref(),
            signature_settings: refused.signature_settings.as_deref(),
        })
    };
    let body_hash = (route.encoding() == twilio_events::signature::BodyEncoding::Json)
        .then(|| query_param(delivery.query.as_deref(), BODY_HASH_PARAM))
        .flatten()
        .map(|in_url| BodyHash {
            in_url,
            of_body: hex::encode(Sha256::digest(body)),
        });
    let mut diagnosis = Diagnosis {
        reason: String::new(),
        class: "",
        verified_against: Some(url.clone()),
        matches: None,
        body_hash,
        advice: Vec::new(),
    };
    let error = match verify(&url) {
        Ok(_) => {
            diagnosis.reason = "the signature verifies now".into();
            diagnosis.class = "verifies-now";
            diagnosis.advice.push(
                "If the answer said an event's account is not one the verifying secret may sign \
                 for: the events belong to a subaccount the secret document does not list under \
                 its parent (--secrets-file). Otherwise the secret was changed since (a new \
                 --secrets-file): Twilio's retry will be accepted."
                    .into(),
            );
            return Some(diagnosis);
        }
        Err(error) => error,
    };
    diagnosis.reason = error.to_string();
    diagnosis.class = error.class();
    let advice = &mut diagnosis.advice;
    match &error {
        VerifyError::MissingSignature => advice.push(
            "Twilio signs every request: this one was not sent by Twilio (a curl, a health \
             check), or a proxy in front of serve removed the X-Twilio-Signature header."
                .into(),
        ),
        VerifyError::NoSecrets => advice.push(
            "No Auth Token is configured: start serve with --auth-token (or TWILIO_AUTH_TOKEN), \
             --account-token or --secrets-file."
                .into(),
        ),
        VerifyError::UnknownKeyId(_) => advice.push(
            "The request is signed with a shared key (HMAC-SHA256) whose id is not configured: \
             add it with --shared-key ID=SECRET or to the secrets file."
                .into(),
        ),
        VerifyError::UnknownAlgorithm(_) | VerifyError::MalformedSettings(_) => advice.push(
            "Check the X-Twilio-Webhooks-Signature-Settings header: Twilio sends \
             key=<id>,algorithm=HMAC_SHA256."
                .into(),
        ),
        VerifyError::MissingBodyHash => advice.push(
            "Event Streams deliveries carry ?bodySHA256= in their URL. Either this did not come \
             from an Event Streams sink (a classic webhook pointed at /twilio/events? use \
             /twilio/message-status or /twilio/call-status) or a proxy dropped the query string."
                .into(),
        ),
        VerifyError::BodyHashMismatch => advice.push(
            "The URL's signature is right but the body is not the one signed: something between \
             Twilio and serve changed it (a proxy re-encoding or pretty-printing JSON), or the \
             request was replayed with another body."
                .into(),
        ),
        VerifyError::SignatureMismatch => {
            diagnosis.matches = candidates(&url, &delivery.path, refused, context)
                .into_iter()
                .find(|candidate| match verify(&candidate.url) {
                    Ok(_) => true,
                    Err(e) => e == VerifyError::BodyHashMismatch,
                });
            match &diagnosis.matches {
                Some(candidate) => advice.push(format!(
                    "The signature is right for {} ({}): Twilio calls a different URL from the \
                     one serve checks against. Start serve with --public-url set to that URL's \
                     base, or change the URL configured in Twilio to serve's.",
                    candidate.url, candidate.differs_by
                )),
                None => {
                    advice.push(
                        "No URL serve could have been called at matches either, so the secret \
                         differs: check that the Auth Token is the one of the account (or \
                         subaccount) that owns the sink or number, and that it was not rotated \
                         (the primary token, not a secondary one you promoted)."
                            .into(),
                    );
                    if route.encoding() == twilio_events::signature::BodyEncoding::Form {
                        advice.push(
                            "For a form callback the parameters are signed too: a proxy that \
                             adds, drops or re-encodes a parameter breaks the signature."
                                .into(),
                        );
                    }
                }
            }
        }
    }
    if diagnosis.body_hash.as_ref().is_some_and(|h| !h.matches())
        && error != VerifyError::BodyHashMismatch
    {
        advice.push(
            "The body's SHA-256 does not match the URL's bodySHA256 either: the body was \
             changed after signing."
                .into(),
        );
    }
    Some(diagnosis)
}

/// The value of `name` in a raw query string, undecoded (a hex hash needs no decoding).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A URL in its parts, as far as a candidate needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parts {
    scheme: String,
    authority: String,
    path: String,
    query: Option<String>,
}

impl Parts {
    fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query.to_owned())),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        Some(Self {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            path: path.to_owned(),
            query,
        })
    }

    fn url(&self) -> String {
        let mut url = format!("{}://{}{}", self.scheme, self.authority, self.path);
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// How `self` differs from `base`, in words.
    fn differences(&self, base: &Self) -> String {
        let mut words = Vec::new();
        if self.scheme != base.scheme {
            words.push(format!("{} instead of {}", self.scheme, base.scheme));
        }
        if self.authority != base.authority {
            words.push(format!(
                "host {} instead of {}",
                self.authority, base.authority
            ));
        }
        if self.path != base.path {
            words.push(format!("path {} instead of {}", self.path, base.path));
        }
        if self.query != base.query {
            words.push("a different query string".to_owned());
        }
        words.join(", ")
    }
}

/// The URLs Twilio may have signed when it was not `verified`: each scheme, each host the
/// request or serve knows of (with and without a port), the path as received (an API Gateway
/// stage or a base path before the route) or as expected, with or without a trailing slash,
/// with the query as received or reduced to `bodySHA256`.
fn candidates(
    verified: &str,
    received_path: &str,
    refused: &RefusedRequest,
    context: &Context<'_>,
) -> Vec<Candidate> {
    let Some(base) = Parts::parse(verified) else {
        return Vec::new();
    };
    let mut schemes = vec![base.scheme.clone()];
    for scheme in [
        refused.forwarded_proto.as_deref(),
        Some("https"),
        Some("http"),
    ]
    .into_iter()
    .flatten()
    {
        if !schemes.iter().any(|s| s == scheme) {
            schemes.push(scheme.to_owned());
        }
    }
    let mut hosts = vec![base.authority.clone()];
    let local = context.local.to_string();
    let localhost = format!("localhost:{}", context.local.port());
    for host in [
        refused.forwarded_host.as_deref(),
        refused.host.as_deref(),
        Some(local.as_str()),
        Some(localhost.as_str()),
    ]
    .into_iter()
    .flatten()
    {
        let without_port = host.rsplit_once(':').map(|(h, _)| h.to_owned());
        for host in std::iter::once(host.to_owned()).chain(without_port) {
            if !host.is_empty() && !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    let mut paths = vec![base.path.clone()];
    for path in [
        received_path.to_owned(),
        format!("{}/", base.path.trim_end_matches('/')),
        format!("{}/", received_path.trim_end_matches('/')),
        base.path.trim_end_matches('/').to_owned(),
    ] {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let mut queries = vec![base.query.clone()];
    let body_hash_only = base
        .query
        .as_deref()
        .and_then(|q| query_param(Some(q), BODY_HASH_PARAM))
        .map(|hash| format!("{BODY_HASH_PARAM}={hash}"));
    if body_hash_only != base.query {
        queries.push(body_hash_only);
    }
    let mut found = Vec::new();
    for scheme in &schemes {
        for authority in &hosts {
            for path in &paths {
                for query in &queries {
                    let parts = Parts {
                        scheme: scheme.clone(),
                        authority: authority.clone(),
                        path: path.clone(),
                        query: query.clone(),
                    };
                    if parts != base {
                        found.push(Candidate {
                            url: parts.url(),
                            differs_by: parts.differences(&base),
                        });
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;
    use twilio_events::signature::{BodyEncoding, SecretSet, SigningKey, sign};

    const TOKEN: &str = "diagnosis-token";

    fn refused_delivery(signed_for: &str, path_and_query: &str, body: &[u8]) -> Delivery {
        let signed = sign(
            &SigningKey::AuthToken(TOKEN.into()),
            signed_for,
            body,
            BodyEncoding::Json,
        );
        let query = signed.url.split_once('?').map(|(_, q)| q.to_owned());
        let _ = path_and_query;
        Delivery {
            id: 1,
            at: time::OffsetDateTime::now_utc(),
            method: "POST".into(),
            path: path_and_query.into(),
            query,
            status: 503,
            duration: Duration::ZERO,
            answer: String::new(),
            body: Some(Bytes::copy_from_slice(body)),
            refused: Some(RefusedRequest {
                signature: Some(signed.signature),
                signature_settings: None,
                content_type: Some("application/json".into()),
                host: Some("127.0.0.1:3000".into()),
                forwarded_host: None,
                forwarded_proto: None,
            }),
        }
    }

    fn run(delivery: &Delivery, token: Option<&str>) -> Diagnosis {
        let secrets = token.map_or_else(SecretSet::new, |t| SecretSet::new().with_auth_token(t));
        let verifier = Verifier::new(secrets);
        let settings = IngestSettings::for_base_url("http://127.0.0.1:3000");
        let context = Context {
            verifier: &verifier,
            settings: &settings,
            local: "127.0.0.1:3000".parse().unwrap(),
        };
        diagnose(delivery, &context).unwrap()
    }

    #[test]
    fn a_signature_for_the_tunnel_url_is_found_and_named() {
        let delivery = refused_delivery(
            "https://example.ngrok.app/twilio/events",
            "/twilio/events",
            b"[]",
        );
        let diagnosis = run(&delivery, Some(TOKEN));
        assert_eq!(diagnosis.class, "signature-mismatch");
        assert_eq!(
            diagnosis
                .verified_against
                .as_deref()
                .unwrap()
                .split('?')
                .next(),
            Some("http://127.0.0.1:3000/twilio/events")
        );
        // The tunnel's host is unknown here, so no candidate matches: the token is blamed.
        assert!(diagnosis.matches.is_none());
        let mut delivery = delivery;
        delivery.refused.as_mut().unwrap().host = Some("example.ngrok.app".into());
        delivery.refused.as_mut().unwrap().forwarded_proto = Some("https".into());
        let diagnosis = run(&delivery, Some(TOKEN));
        let shown = format!("{diagnosis:?}");
        assert!(!shown.contains(TOKEN), "never the token: {shown}");
        let found = diagnosis.matches.expect("the tunnel URL matches");
        assert!(
            found
                .url
                .starts_with("https://example.ngrok.app/twilio/events?bodySHA256=")
        );
        assert!(
            found.differs_by.contains("https instead of http"),
            "{found:?}"
        );
    }

    #[test]
    fn a_stage_prefix_is_found() {
        let delivery = refused_delivery(
            "http://127.0.0.1:3000/prod/twilio/events",
            "/prod/twilio/events",
            b"[]",
        );
        let found = run(&delivery, Some(TOKEN)).matches.expect("a candidate");
        assert!(
            found.differs_by.contains("path /prod/twilio/events"),
            "{found:?}"
        );
    }

    #[test]
    fn no_token_and_a_changed_body_are_named() {
        let delivery = refused_delivery(
            "http://127.0.0.1:3000/twilio/events",
            "/twilio/events",
            b"[]",
        );
        assert_eq!(run(&delivery, None).class, "no-secrets");
        let mut changed = delivery;
        changed.body = Some(Bytes::from_static(b"[ ]"));
        let diagnosis = run(&changed, Some(TOKEN));
        assert_eq!(diagnosis.class, "body-hash-mismatch");
        assert!(!diagnosis.body_hash.unwrap().matches());
    }
}
