//! `twilio-events sign`: what Twilio would send for a body, for tests and troubleshooting.

use super::{CliError, Outcome, encoding, read_input};
use clap::Args;
use std::path::PathBuf;
use twilio_events::signature::{BodyEncoding, SecretSet, SecretSpecError, SigningKey, sign};

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The sink URL (Twilio appends bodySHA256 to it for JSON bodies).
    #[arg(long)]
    url: String,
    /// The body to sign (- for standard input).
    #[arg(long, value_name = "PATH")]
    body_file: PathBuf,
    /// Default: application/json, unless the body looks form-encoded.
    #[arg(long, value_name = "CT")]
    content_type: Option<String>,
    /// Sign with this Auth Token (HMAC-SHA1), as Twilio signs webhooks.
    #[arg(
        long,
        value_name = "TOKEN",
        conflicts_with = "shared_key",
        required_unless_present = "shared_key"
    )]
    auth_token: Option<String>,
    /// Sign with this shared key (HMAC-SHA256), written ID=SECRET.
    #[arg(long, value_name = "ID=SECRET")]
    shared_key: Option<String>,
    /// Print a curl command that sends the signed request instead.
    #[arg(long)]
    curl: bool,
}

/// The signing key given cannot be used: a usage error.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("--shared-key: cannot use the value given")]
    SharedKey(#[source] SecretSpecError),
    #[error("pass --auth-token TOKEN or --shared-key ID=SECRET")]
    NoKey,
}

impl From<SignError> for CliError {
    fn from(e: SignError) -> Self {
        Self::usage(e)
    }
}

pub fn run(args: SignArgs) -> Result<Outcome, CliError> {
    let body = read_input(&args.body_file)?;
    let key = match (&args.auth_token, &args.shared_key) {
        (Some(token), _) => SigningKey::AuthToken(token.as_str().into()),
        (None, Some(spec)) => {
            let mut set = SecretSet::new();
            set.add_shared_key_spec(spec)
                .map_err(SignError::SharedKey)?;
            let id = set.shared_key_ids().next().unwrap_or_default().to_owned();
            let secret = set
                .shared_key(&id)
                .cloned()
                .ok_or(SignError::SharedKey(SecretSpecError::Empty))?;
            SigningKey::SharedKey { id, secret }
        }
        (None, None) => return Err(SignError::NoKey.into()),
    };
    let looks_like_json = matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'[' | b'{')
    );
    let encoding = encoding(args.content_type.as_deref(), || {
        if looks_like_json || body.is_empty() {
            BodyEncoding::Json
        } else {
            BodyEncoding::Form
        }
    });
    let content_type = args.content_type.clone().unwrap_or_else(|| {
        match encoding {
            BodyEncoding::Json => "application/json",
            BodyEncoding::Form => "application/x-www-form-urlencoded",
        }
        .to_owned()
    });
    let signed = sign(&key, &args.url, &body, encoding);
    if args.curl {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut cmd = format!("curl -sS -X POST {}", quote(&signed.url));
        cmd.push_str(&format!(
            " -H {}",
            quote(&format!("Content-Type: {content_type}"))
        ));
        for (name, value) in signed.headers() {
            cmd.push_str(&format!(" -H {}", quote(&format!("{name}: {value}"))));
        }
        cmd.push_str(&format!(
            " --data-binary @{}",
            quote(&args.body_file.display().to_string())
        ));
        println!("{cmd}");
    } else {
        println!("URL: {}", signed.url);
        println!("Content-Type: {content_type}");
        for (name, value) in signed.headers() {
            println!("{name}: {value}");
        }
    }
    Ok(Outcome::Ok)
}
