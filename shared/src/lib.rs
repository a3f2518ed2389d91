//! What the twilio-events functions share: deciding whether a request comes from Twilio
//! ([`signature`]), reading what it sent ([`event`], [`usage_trigger`]), and status precedence
//! ([`status`]).

pub mod classic;
pub mod deadline;
pub mod event;
pub mod jsonl;
#[cfg(feature = "kinesis-lambda")]
pub mod kinesis_lambda;
#[cfg(feature = "lambda-init")]
pub mod lambda_init;
#[cfg(feature = "aws")]
pub mod logging;
pub mod metrics;
pub mod quarantine;
pub mod reconciled;
#[cfg(feature = "aws")]
pub mod secrets_manager;
pub mod signature;
pub mod status;
pub mod stream;
pub mod usage_trigger;

pub use event::{CloudEvent, Delivery, Kind, ParseError, parse_delivery};
pub use signature::{BodyEncoding, SecretSet, SignedRequest, Verifier, VerifyError};
