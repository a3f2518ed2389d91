//! `twilio-events verify`: does this request carry a valid Twilio signature, may the secret
//! that signed it sign for the accounts its events name, and if not, why.

use super::{CliError, Outcome, encoding, read_input};
use crate::secrets::SecretArgs;
use clap::Args;
use std::path::PathBuf;
use twilio_events::signature::{AccountScope, BodyEncoding, MatchedKey, SignedRequest, Verifier};

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
    let verifier = Verifier::new(secrets);
    match verifier.verify(&request) {
        Ok(verified) => {
            let scope = verifier.scope(&verified.key);
            let key = match (&verified.key, scope.account()) {
                (MatchedKey::AuthToken(i), None) => format!("auth token #{}", i + 1),
                (MatchedKey::AuthToken(i), Some(account)) => {
                    format!("auth token #{} of {account}", i + 1)
                }
                (MatchedKey::SharedKey(id), None) => format!("shared key {id}"),
                (MatchedKey::SharedKey(id), Some(account)) => {
                    format!("shared key {id} of {account}")
                }
            };
            let algorithm = verified.algorithm.header_name();
            match foreign_account(&body, encoding, &scope) {
                None => {
                    println!("valid: signed with {key} ({algorithm})");
                    Ok(Outcome::Ok)
                }
                Some(which) => {
                    println!(
                        "invalid: signed with {key} ({algorithm}), but {which}, which that \
                         secret may not sign for (list a subaccount under its parent in the \
                         secrets file)"
                    );
                    Ok(Outcome::Rejected)
                }
            }
        }
        Err(reason) => {
            println!("invalid: {reason}");
            Ok(Outcome::Rejected)
        }
    }
}

/// The first event (or callback) of the body whose account `scope` does not cover, said in
/// words; the same rule as ingest's. A body that cannot be read is not judged here: ingest
/// would quarantine or refuse it on its own grounds.
fn foreign_account(
    body: &[u8],
    encoding: BodyEncoding,
    scope: &AccountScope<'_>,
) -> Option<String> {
    if *scope == AccountScope::Any {
        return None;
    }
    let describe = |what: String, account: Option<&str>| match account {
        Some(account) => format!("{what} belongs to account {account}"),
        None => format!("{what} names no account"),
    };
    match encoding {
        BodyEncoding::Json => {
            let delivery = twilio_events::parse_delivery(body).ok()?;
            delivery
                .events
                .iter()
                .enumerate()
                .find(|(_, e)| !scope.allows(e.owner_account()))
                .map(|(i, e)| describe(format!("event #{i}"), e.owner_account()))
        }
        BodyEncoding::Form => {
            // Every classic callback names its account in AccountSid.
            let account = form_urlencoded::parse(body)
                .find(|(name, _)| name == "AccountSid")
                .map(|(_, value)| value.into_owned());
            (!scope.allows(account.as_deref()))
                .then(|| describe("the callback".to_owned(), account.as_deref()))
        }
    }
}
