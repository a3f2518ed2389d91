//! `twilio-events stream dump`: the local stream, in order, one event per line as received.

use super::{InputError, Outcome};
use clap::{Args, Subcommand};
use ingest::adapters::sqlite::{SqliteStore, database_path};
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

pub fn run(command: StreamCommand) -> Result<Outcome, InputError> {
    let StreamCommand::Dump(args) = command;
    if !database_path(&args.data_dir).exists() {
        return Err(InputError(format!(
            "no stream in {}: run `twilio-events serve --data-dir {}` first",
            args.data_dir.display(),
            args.data_dir.display()
        )));
    }
    let store = SqliteStore::open(&args.data_dir).map_err(|e| InputError(e.to_string()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = 0;
    loop {
        let batch = store
            .read_after(after, 1000)
            .map_err(|e| InputError(e.to_string()))?;
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
