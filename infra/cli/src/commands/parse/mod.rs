//! `twilio-events parse`: what a delivery holds, one JSON line per event, without personal data.

use super::{CliError, Outcome, read_input};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use twilio_events::BodyEncoding;
use twilio_events::classic::{ClassicRequest, ClassicWebhook, classic_event};
use twilio_events::event::{CloudEvent, ParseError, parse_delivery};
use twilio_events::usage_trigger::usage_trigger_event;

#[derive(Args, Debug)]
pub struct ParseArgs {
    /// A webhook body (JSON CloudEvents), or a form callback (a Usage Trigger, a message or
    /// call status callback, an inbound message), or - for stdin.
    path: PathBuf,
    /// Default: JSON when the body starts with [ or {, a form-encoded callback otherwise.
    #[arg(long, value_name = "CT")]
    content_type: Option<String>,
    /// Which callback a form body is. Default: told by its parameters (UsageTriggerSid, CallSid,
    /// MessageStatus, or a MessageSid with a Body or NumMedia).
    #[arg(long, value_enum)]
    webhook: Option<FormWebhook>,
}

/// The form callbacks `parse` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormWebhook {
    UsageTrigger,
    MessageStatus,
    CallStatus,
    InboundMessage,
}

impl FormWebhook {
    /// The callback a form body is, by the parameters only it has.
    fn detect(body: &[u8]) -> Option<Self> {
        let names: Vec<String> = form_urlencoded::parse(body)
            .map(|(name, _)| name.into_owned())
            .collect();
        let has = |name: &str| names.iter().any(|n| n == name);
        if has("UsageTriggerSid") {
            Some(Self::UsageTrigger)
        } else if has("CallSid") {
            Some(Self::CallStatus)
        } else if has("MessageStatus") {
            Some(Self::MessageStatus)
        } else if has("MessageSid") && (has("Body") || has("NumMedia")) {
            Some(Self::InboundMessage)
        } else {
            None
        }
    }

    fn event(self, body: &[u8]) -> Result<CloudEvent<'static>, ParseError> {
        let classic = match self {
            Self::UsageTrigger => return usage_trigger_event(body),
            Self::MessageStatus => ClassicWebhook::MessageStatus,
            Self::CallStatus => ClassicWebhook::CallStatus,
            Self::InboundMessage => ClassicWebhook::InboundMessage,
        };
        classic_event(&ClassicRequest {
            webhook: classic,
            // Not known here; only a call's event repeats it.
            url: "",
            form_body: body,
            idempotency_token: None,
            received_at: time::OffsetDateTime::now_utc(),
        })
    }
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
        let Some(webhook) = args.webhook.or_else(|| FormWebhook::detect(&body)) else {
            eprintln!(
                "error: a form body, but not one of the callbacks parse knows (no UsageTriggerSid, CallSid, MessageStatus, or MessageSid with Body or NumMedia); say which with --webhook"
            );
            return Ok(Outcome::Rejected);
        };
        return match webhook.event(&body) {
            Ok(event) => {
                print(summary_line(&event.summary()));
                Ok(Outcome::Ok)
            }
            Err(e) => {
                eprintln!("error: not a valid {webhook:?} callback: {e}");
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
