//! Every signature vector made with Twilio's official library gets its expected verdict.

use twilio_events::signature::{SecretSet, SignedRequest, Verifier, VerifyError};
use twilio_events_testkit::{published_vectors, signature_vectors};

#[test]
fn every_vector_gets_its_expected_verdict() {
    let vectors = signature_vectors();
    let mut disagreements = Vec::new();
    for vector in &vectors {
        let verdict = Verifier::new(vector.secrets()).verify(&vector.request());
        if verdict.is_ok() != vector.valid {
            disagreements.push(format!(
                "{}: expected valid={} ({}), got {verdict:?}",
                vector.name, vector.valid, vector.why
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} vectors disagree:\n{}",
        disagreements.len(),
        vectors.len(),
        disagreements.join("\n")
    );
}

#[test]
fn invalid_vectors_fail_for_the_reason_they_give() {
    for vector in signature_vectors().iter().filter(|v| !v.valid) {
        let err = Verifier::new(vector.secrets())
            .verify(&vector.request())
            .unwrap_err();
        let expected = if vector.why.contains("bodySHA256") && vector.why.contains("no bodySHA256")
        {
            VerifyError::MissingBodyHash
        } else if vector.why.contains("does not match bodySHA256") {
            VerifyError::BodyHashMismatch
        } else {
            VerifyError::SignatureMismatch
        };
        assert_eq!(err, expected, "{}: {}", vector.name, vector.why);
    }
}

#[test]
fn published_vectors_verify_with_and_without_the_default_port() {
    let vectors = published_vectors();
    assert_eq!(vectors.len(), 3);
    for v in &vectors {
        let verifier = Verifier::new(SecretSet::new().with_auth_token(v.auth_token.as_str()));
        let mut signatures = vec![v.signature.as_str()];
        signatures.extend(v.signature_with_port.as_deref());
        for signature in signatures {
            let request = SignedRequest {
                url: &v.url,
                body: &v.body,
                encoding: v.encoding,
                signature: Some(signature),
                signature_settings: None,
            };
            assert!(
                verifier.verify(&request).is_ok(),
                "{}: {signature}",
                v.source
            );
        }
    }
}
