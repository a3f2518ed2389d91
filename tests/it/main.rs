//! The cross-crate integration tests, one binary (one link on 2 cores instead of six):
//! signatures and samples from tests/fixtures, ingest on its AWS adapters against the
//! emulators, the dedup store on DynamoDB Local, property tests, and template.yaml's checks.

mod dedup_dynamodb_local;
mod ingest_aws;
mod ingest_hardening;
mod lambda_runtime;
mod properties;
mod samples;
mod signature_vectors;
mod template;
