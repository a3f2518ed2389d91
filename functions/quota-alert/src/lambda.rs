//! The Lambda side: Kinesis events in, partial batch responses out (the shared consumer glue).

pub use twilio_events::kinesis_lambda::{batch_response, handle, run, stream_records};
