//! The adapters, one file per backend behind the ports of [`crate::ports`]:
//! [`twilio_api`] (Twilio's REST API over HTTPS), [`ledger`] (crm-sync's ledgers, DynamoDB and,
//! with `local`, SQLite), [`ingest_core`] (ingest's storing path), and `memory` (fakes for
//! tests, feature `testing`).

pub mod ingest_core;
pub mod ledger;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod twilio_api;
