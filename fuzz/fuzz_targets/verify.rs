//! Signature verification on arbitrary requests, and sign-then-verify round trips.
//!
//! Input layout (chosen so that real requests make readable seeds):
//!   byte 0: flags — bit 0: form body (else JSON); bit 1: an X-Twilio-Signature header is
//!           present; bit 2: an X-Twilio-Webhooks-Signature-Settings header is present;
//!           bits 3-4: the key the round trip signs with (0: first Auth Token, 1: second,
//!           2: the shared key, 3: first Auth Token).
//!   then:   URL \0 signature \0 settings \0 body (the body is everything after the third NUL).
//!
//! Asserts: `verify` never panics and what it reports is consistent; anything `sign` produces
//! for the URL and body verifies, with the key it was signed with; a JSON body changed after
//! signing is rejected as BodyHashMismatch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use twilio_events::signature::{
    Algorithm, BodyEncoding, MatchedKey, SecretSet, SignedRequest, SigningKey, Verified,
    Verifier, VerifyError, sign,
};

// The rotation pair and one shared key of tests/fixtures/twilio/signature-vectors.json, so that the
// published vectors used as seeds verify.
const TOKENS: [&str; 2] = [
    "016e51c6b36d6f3c9f0ac9056a4ad683",
    "4283fefc63f0cd0e873a0000c6d07ef7",
];
const SHARED_KEY_ID: &str = "webhooks_sharedkey_b700f15810725166";
const SHARED_KEY: &str = "cUk+fYFfU2TxpxIxmC4wr59M9O6UbZ15XQV8Be4aqKA=";

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    Verifier::new(
        SecretSet::new()
            .with_auth_token(TOKENS[0])
            .with_auth_token(TOKENS[1])
            .with_shared_key(SHARED_KEY_ID, SHARED_KEY),
    )
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.splitn(4, |&b| b == 0);
    let url = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let signature = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let settings = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let body = fields.next().unwrap_or_default();
    let encoding = if flags & 1 == 1 {
        BodyEncoding::Form
    } else {
        BodyEncoding::Json
    };

    // 1. Whatever arrives: no panic, and an accepted request names a configured key with the
    //    algorithm that key signs with.
    let request = SignedRequest {
        url: &url,
        body,
        encoding,
        signature: (flags & 2 != 0).then_some(&*signature),
        signature_settings: (flags & 4 != 0).then_some(&*settings),
    };
    match VERIFIER.verify(&request) {
        Ok(Verified {
            key: MatchedKey::AuthToken(i),
            ..
        }) => assert!(i < TOKENS.len(), "matched token {i} of {}", TOKENS.len()),
        Ok(Verified {
            key: MatchedKey::SharedKey(id),
            ..
        }) => assert_eq!(id, SHARED_KEY_ID),
        Err(VerifyError::NoSecrets) => panic!("NoSecrets with secrets configured"),
        Err(_) => {}
    }

    // 2. Round trip. Preconditions (documented in docs/fuzzing.md): the URL carries no
    //    bodySHA256 of its own (signing an already signed URL is not signing) and no fragment
    //    (never sent over HTTP, so Twilio never signs one).
    if url.contains('#') || BodyEncoding::guess_from_url(&url) == BodyEncoding::Json {
        return;
    }
    let (key, expected) = match (flags >> 3) & 3 {
        1 => (
            SigningKey::AuthToken(TOKENS[1].into()),
            MatchedKey::AuthToken(1),
        ),
        2 => (
            SigningKey::SharedKey {
                id: SHARED_KEY_ID.into(),
                secret: SHARED_KEY.into(),
            },
            MatchedKey::SharedKey(SHARED_KEY_ID.into()),
        ),
        _ => (
            SigningKey::AuthToken(TOKENS[0].into()),
            MatchedKey::AuthToken(0),
        ),
    };
    let algorithm = match key {
        SigningKey::AuthToken(_) => Algorithm::HmacSha1,
        SigningKey::SharedKey { .. } => Algorithm::HmacSha256,
    };
    let signed = sign(&key, &url, body, encoding);
    let verify_signed = |body: &[u8]| {
        VERIFIER.verify(&SignedRequest {
            url: &signed.url,
            body,
            encoding,
            signature: Some(&signed.signature),
            signature_settings: signed.signature_settings.as_deref(),
        })
    };
    assert_eq!(
        verify_signed(body),
        Ok(Verified {
            key: expected,
            algorithm
        }),
        "sign then verify failed for url {url:?} ({encoding:?}), signed url {:?}",
        signed.url
    );
    if encoding == BodyEncoding::Json {
        let mut tampered = body.to_vec();
        tampered.push(b' ');
        assert_eq!(
            verify_signed(&tampered),
            Err(VerifyError::BodyHashMismatch),
            "a JSON body changed after signing was not caught"
        );
    }
});
