//! kafka-forward's integration tests: the library against a real Kafka-protocol broker
//! (Tansu, started per test: see twilio_events_testkit::kafka), fed Kinesis events the way an
//! event source mapping feeds the Lambda.

mod broker;
mod helpers;
mod secrets;
