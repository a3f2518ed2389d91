//! crm-sync's integration tests: one binary, one module per subject. The emulators (moto_server,
//! DynamoDB Local) must be running for the modules that use AWS (docs/testing.md).

mod helpers;

mod dynamo_ledger;
mod faults;
mod http_crm;
mod lifecycle;
#[cfg(feature = "local")]
mod local;
mod salesforce;
