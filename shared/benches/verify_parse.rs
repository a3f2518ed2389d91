//! Verify + parse per delivery: the work ingest does on every request before any I/O.
//! The same deliveries (infra/bench/cases.json) are timed with Twilio's Python helper by
//! infra/bench/compare.sh, which reports the ratio.

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use std::hint::black_box;
use twilio_events::signature::{BodyEncoding, SecretSet, SignedRequest, Verifier};

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    url: String,
    body: String,
    auth_token: String,
    signature: String,
}

fn verify_and_parse(c: &mut Criterion) {
    let cases: Cases =
        serde_json::from_str(include_str!("../../infra/bench/cases.json")).expect("cases.json");
    let mut group = c.benchmark_group("verify_parse");
    for case in &cases.cases {
        let verifier = Verifier::new(SecretSet::new().with_auth_token(case.auth_token.as_str()));
        let request = SignedRequest {
            url: &case.url,
            body: case.body.as_bytes(),
            encoding: BodyEncoding::Json,
            signature: Some(&case.signature),
            signature_settings: None,
        };
        assert!(
            verifier.verify(&request).is_ok(),
            "{} must verify",
            case.name
        );
        group.bench_function(format!("{}/verify-only", case.name), |b| {
            b.iter(|| black_box(verifier.verify(black_box(&request)).is_ok()))
        });
        group.bench_function(format!("{}/parse-only", case.name), |b| {
            b.iter(|| {
                black_box(
                    twilio_events::parse_delivery(black_box(request.body)).map(|d| d.events.len()),
                )
            })
        });
        group.bench_function(&case.name, |b| {
            b.iter(|| {
                let request = black_box(&request);
                let verified = verifier.verify(request).is_ok();
                let delivery = twilio_events::parse_delivery(request.body).expect("parses");
                let keys: usize = delivery.events.iter().map(|e| e.resource_key().len()).sum();
                black_box((verified, keys))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify_and_parse);
criterion_main!(benches);
