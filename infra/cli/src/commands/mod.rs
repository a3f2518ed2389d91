//! The subcommands, one directory each: `<name>/mod.rs` holds its arguments and its `run`.

pub mod duration;
pub mod parse;
pub mod reconcile;
pub mod replay;
pub mod serve;
pub mod setup;
pub mod sign;
pub mod simulate;
pub mod stream;
pub mod verify;

use std::error::Error;
use std::path::{Path, PathBuf};

/// How a command that ran to the end ends.
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the input was read and judged (a signature that does not match, a delivery that
    /// does not parse, events lost or duplicated); the command printed the verdict.
    Rejected,
}

/// Why a command stopped. The variant decides the exit code; the cause says what happened and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Exit 2: the command line or its input cannot work as given (a missing or malformed flag,
    /// a file that cannot be read); nothing was done.
    #[error("{0}")]
    Usage(#[source] Box<dyn Error + Send + Sync>),
    /// Exit 1: the command ran and failed (the network, Twilio, a store), or could not finish
    /// a step (a sink that could not be validated).
    #[error("{0}")]
    Failed(#[source] Box<dyn Error + Send + Sync>),
}

impl CliError {
    pub fn usage(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Usage(cause.into())
    }

    pub fn failed(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Failed(cause.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }

    /// The error this one classifies (what to print, then its own causes).
    pub fn cause(&self) -> &(dyn Error + Send + Sync + 'static) {
        match self {
            Self::Usage(cause) | Self::Failed(cause) => cause.as_ref(),
        }
    }
}

/// A file named on the command line (or standard input) cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", shown_input(path))]
pub struct ReadInputError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl From<ReadInputError> for CliError {
    fn from(e: ReadInputError) -> Self {
        Self::usage(e)
    }
}

fn shown_input(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, ReadInputError> {
    let error = |source| ReadInputError {
        path: path.to_owned(),
        source,
    };
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(error)?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(error)
}

/// The body encoding from `--content-type`, or as guessed.
pub fn encoding(
    content_type: Option<&str>,
    guess: impl FnOnce() -> twilio_events::BodyEncoding,
) -> twilio_events::BodyEncoding {
    content_type.map_or_else(guess, twilio_events::BodyEncoding::from_content_type)
}
