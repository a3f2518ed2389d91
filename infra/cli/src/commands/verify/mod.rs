//! `twilio-events verify`: does this request carry a valid Twilio signature, and if not, why.

use super::{CliError, Outcome, encoding, read_input};
use crate::secrets::SecretArgs;
use clap::Args;
use std::path::PathBuf;
use twilio_events::signature::{BodyEncoding, MatchedKey, SignedRequest, Verifier};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The full URL Twilio requested, query string included (with bodySHA256 for JSON bodies).
    #[arg(long)]
    url: String,
    /// The X-Twilio-Signature header's value.
    #[arg(long)]
    signature: String,
    /// The X-Twilio-Webhooks-Signature-Settings header's value, when there is one.
    #[arg(long, value_name = "HEADER")]
    signature_settings: Option<String>,
    /// The request's Content-Type. Default: application/json when the URL carries bodySHA256,
    /// application/x-www-form-urlencoded otherwise.
    #[arg(long, value_name = "CT")]
    content_type: Option<String>,
    /// The raw request body, byte for byte (- for standard input).
    #[arg(long, value_name = "PATH")]
    body_file: PathBuf,
    #[command(flatten)]
    secrets: SecretArgs,
}

pub fn run(args: VerifyArgs) -> Result<Outcome, CliError> {
    let secrets = args.secrets.secret_set()?;
    let body = read_input(&args.body_file)?;
    let encoding = encoding(args.content_type.as_deref(), || {
        BodyEncoding::guess_from_url(&args.url)
    });
    let request = SignedRequest {
        url: &args.url,
        body: &body,
        encoding,
        signature: Some(&args.signature),
        signature_settings: args.signature_settings.as_deref(),
    };
    match Verifier::new(secrets).verify(&request) {
        Ok(verified) => {
            let key = match verified.key {
                MatchedKey::AuthToken(i) => format!("auth token #{}", i + 1),
                MatchedKey::SharedKey(id) => format!("shared key {id}"),
            };
            println!(
                "valid: signed with {key} ({})",
                verified.algorithm.header_name()
            );
            Ok(Outcome::Ok)
        }
        Err(reason) => {
            println!("invalid: {reason}");
            Ok(Outcome::Rejected)
        }
    }
}
