//! reconcile: puts back into the stream what Twilio's sink gave up on.
//!
//! Twilio retries a sink for four hours, then drops the event for good (docs/twilio.md §3). So
//! an outage longer than that, or a token rotated on one side only, leaves messages and calls
//! whose last statuses never arrived. This function asks Twilio's REST API instead:
//!
//! - **stuck resources**: messages and calls whose last known status (crm-sync's ledger) is not
//!   final are looked up once each time their age crosses 15 minutes, 1 hour, 4 hours and 24
//!   hours (then never again: a message may rest in `sent` for ever);
//! - **unseen resources**: the messages and calls Twilio lists for a time window are compared
//!   with the ledger.
//!
//! A status ahead of the ledger's becomes the event Event Streams sends for it
//! (`twilio_events::reconciled`), and goes through ingest's own storing path
//! ([`ingest::Ingest::admit`]): one dedup claim per fact, the stream put, COMPLETED. Every
//! consumer then sees it like any other event, and crm-sync's ledger rules decide what the CRM
//! gets, so a reconciled status never moves a CRM backwards and running twice stores nothing
//! new.
//!
//! The four places: [`ports`] (what the run needs, and the pure rules: when to look up, what is
//! ahead), [`processor`] (the run), [`adapters`] (Twilio's REST API, the ledgers, ingest's
//! core; fakes behind `testing`), [`config`] + [`startup`].

pub mod adapters;
pub mod config;
pub mod ports;
pub mod processor;
pub mod startup;

pub use processor::{Reconciler, RunPlan, RunReport, StuckLookups, Window};
