//! `twilio-events parse`: what a delivery holds, one JSON line per event, without personal data.

use super::{CliError, Outcome, read_input};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use twilio_events::BodyEncoding;
use twilio_events::event::parse_delivery;
use twilio_events::usage_trigger::usage_trigger_event;

#[derive(Args, Debug)]
pub struct ParseArgs {
    /// A webhook body (JSON CloudEvents) or a Usage Trigger callback (form), or - for stdin.
    path: PathBuf,
    /// Default: JSON when the body starts with [ or {, a form-encoded Usage Trigger otherwise.
    #[arg(long, value_name = "CT")]
    content_type: Option<String>,
}

pub fn run(args: ParseArgs) -> Result<Outcome, CliError> {
    let body = read_input(&args.path)?;
    let looks_like_json = matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'[' | b'{')
    );
    let encoding = super::encoding(args.content_type.as_deref(), || {
        if looks_like_json || body.is_empty() {
            BodyEncoding::Json
        } else {
            BodyEncoding::Form
        }
    });
    let mut out = std::io::stdout().lock();
    let mut print = |line: String| {
        // A closed pipe (| head) is not an error worth reporting.
        let _ = writeln!(out, "{line}");
    };
    if encoding == BodyEncoding::Form {
        return match usage_trigger_event(&body) {
            Ok(event) => {
                print(summary_line(&event.summary()));
                Ok(Outcome::Ok)
            }
            Err(e) => {
                eprintln!("error: not a Usage Trigger callback: {e}");
                Ok(Outcome::Rejected)
            }
        };
    }
    let delivery = match parse_delivery(&body) {
        Ok(delivery) => delivery,
        Err(e) => {
            eprintln!("error: not an Event Streams delivery: {e}");
            return Ok(Outcome::Rejected);
        }
    };
    for event in &delivery.events {
        print(summary_line(&event.summary()));
    }
    for rejected in &delivery.rejected {
        eprintln!("error: {}", rejected.error);
    }
    Ok(if delivery.rejected.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Rejected
    })
}

fn summary_line(summary: &impl serde::Serialize) -> String {
    serde_json::to_string(summary)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise: {e}\"}}"))
}
