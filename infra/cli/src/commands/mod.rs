pub mod parse;
pub mod serve;
pub mod setup;
pub mod sign;
pub mod simulate;
pub mod stream;
pub mod verify;

use std::path::Path;

/// What a command ends with: the process exit code and, for failures, what to tell the user.
pub enum Outcome {
    Ok,
    /// Exit 1: the input was read and judged (invalid signature, unparseable delivery).
    Rejected,
}

/// A usage or input error (exit 2), with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| InputError(format!("cannot read standard input: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))
}

/// The body encoding from `--content-type`, or as guessed.
pub fn encoding(
    content_type: Option<&str>,
    guess: impl FnOnce() -> twilio_events::BodyEncoding,
) -> twilio_events::BodyEncoding {
    content_type.map_or_else(guess, twilio_events::BodyEncoding::from_content_type)
}
