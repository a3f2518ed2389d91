//! `twilio-events stream dump`: the local stream, in order, one event per line as received.

use super::{CliError, Outcome};
use clap::{Args, Subcommand};
use ingest::adapters::sqlite::{SqliteError, SqliteStore, database_path};
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Print every event of the local stream in order, byte for byte as Twilio sent it.
    Dump(DumpArgs),
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The data directory `serve` uses.
    #[arg(long, default_value = ".twilio-events", env = "TWILIO_EVENTS_DATA_DIR")]
    data_dir: PathBuf,
}

/// Why the stream could not be dumped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// A usage error: the directory holds no stream.
    #[error("no stream in {dir}: run `twilio-events serve --data-dir {dir}` first")]
    NoStream { dir: String },
    /// A failure: the store is there but cannot be read.
    #[error("cannot read the local stream in {dir}")]
    Store {
        dir: String,
        #[source]
        source: SqliteError,
    },
}

impl From<DumpError> for CliError {
    fn from(e: DumpError) -> Self {
        match e {
            DumpError::NoStream { .. } => Self::usage(e),
            DumpError::Store { .. } => Self::failed(e),
        }
    }
}

pub fn run(command: StreamCommand) -> Result<Outcome, CliError> {
    let StreamCommand::Dump(args) = command;
    let dir = args.data_dir.display().to_string();
    if !database_path(&args.data_dir).exists() {
        return Err(DumpError::NoStream { dir }.into());
    }
    let store_error = |source| DumpError::Store {
        dir: dir.clone(),
        source,
    };
    let store = SqliteStore::open(&args.data_dir).map_err(store_error)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = 0;
    loop {
        let batch = store.read_after(after, 1000).map_err(store_error)?;
        let Some(last) = batch.last() else { break };
        after = last.sequence_number.parse().unwrap_or(i64::MAX);
        for record in &batch {
            if out
                .write_all(&record.data)
                .and_then(|()| out.write_all(b"\n"))
                .is_err()
            {
                return Ok(Outcome::Ok); // a closed pipe: the reader has what it wanted
            }
        }
    }
    let _ = out.flush();
    Ok(Outcome::Ok)
}
