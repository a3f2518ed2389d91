//! `twilio-events stream`: the local stream of `serve`. `dump` prints it, in order, one event
//! per line as received; `replay` rewinds a consumer so that it reads it again.

use super::{CliError, Outcome};
use clap::{Args, Subcommand};
use ingest::adapters::sqlite::{SqliteError, SqliteStore, database_path};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Print every event of the local stream in order, byte for byte as Twilio sent it.
    Dump(DumpArgs),
    /// Rewind a consumer of `serve` (crm-sync or quota-alert) so that it reads the stream again
    /// from a point in time, after a fix or for a new CRM. Run it with `serve` stopped: the
    /// consumer replays when `serve` starts.
    Replay(ReplayArgs),
}

/// The consumers `serve` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Consumer {
    CrmSync,
    QuotaAlert,
}

impl Consumer {
    fn checkpoint(self) -> &'static str {
        match self {
            Self::CrmSync => super::serve::consumers::CRM_SYNC,
            Self::QuotaAlert => super::serve::consumers::QUOTA_ALERT,
        }
    }

    /// What the consumer remembers of what it did: removed by `--fresh`.
    fn state(self, data_dir: &std::path::Path) -> PathBuf {
        match self {
            Self::CrmSync => crm_sync::startup::local_ledger_path(data_dir),
            Self::QuotaAlert => quota_alert::startup::local_counter_path(data_dir),
        }
    }
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The consumer to rewind.
    #[arg(long, value_enum)]
    consumer: Consumer,
    /// Replay what arrived from this time on: RFC 3339 (2026-11-30T08:00:00Z) or a duration
    /// ago (24h, 90m).
    #[arg(long, value_name = "TIME", conflicts_with = "from_start")]
    since: Option<String>,
    /// Replay the whole stream.
    #[arg(long)]
    from_start: bool,
    /// Also forget what the consumer remembers (crm-sync's ledger of what the CRM holds,
    /// quota-alert's counters), so that it writes everything again: for a new, empty CRM.
    /// Without it a replay changes nothing that was already done (the ledger only moves forward,
    /// counters skip events they counted).
    #[arg(long)]
    fresh: bool,
    /// Only say how many records would be read again.
    #[arg(long)]
    dry_run: bool,
    /// The data directory `serve` uses.
    #[arg(long, default_value = ".twilio-events", env = "TWILIO_EVENTS_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The data directory `serve` uses.
    #[arg(long, default_value = ".twilio-events", env = "TWILIO_EVENTS_DATA_DIR")]
    data_dir: PathBuf,
}

/// Why the stream could not be dumped or a consumer rewound.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
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
    /// A usage error: neither --since nor --from-start.
    #[error("say from when: --since TIME (RFC 3339, or a duration ago like 24h) or --from-start")]
    NoStart,
    /// A usage error: --since that reads as neither.
    #[error(
        "--since {text:?}: write an RFC 3339 time (2026-11-30T08:00:00Z) or a duration ago (24h)"
    )]
    Since { text: String },
    /// A failure: the consumer's state could not be removed.
    #[error("cannot remove {path} (--fresh)")]
    Forget {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<StreamError> for CliError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::NoStream { .. } | StreamError::NoStart | StreamError::Since { .. } => {
                Self::usage(e)
            }
            StreamError::Store { .. } | StreamError::Forget { .. } => Self::failed(e),
        }
    }
}

pub fn run(command: StreamCommand) -> Result<Outcome, CliError> {
    match command {
        StreamCommand::Dump(args) => dump(args),
        StreamCommand::Replay(args) => replay(args),
    }
}

/// The store `serve` keeps in `data_dir`.
fn open_store(data_dir: &Path) -> Result<SqliteStore, StreamError> {
    if !database_path(data_dir).exists() {
        return Err(StreamError::NoStream {
            dir: data_dir.display().to_string(),
        });
    }
    SqliteStore::open(data_dir).map_err(store_error(data_dir))
}

/// A store failure, naming the data directory.
fn store_error(data_dir: &Path) -> impl Fn(SqliteError) -> StreamError + Copy + '_ {
    move |source| StreamError::Store {
        dir: data_dir.display().to_string(),
        source,
    }
}

fn replay(args: ReplayArgs) -> Result<Outcome, CliError> {
    let store = open_store(&args.data_dir)?;
    let store_error = store_error(&args.data_dir);
    let checkpoint = match (&args.since, args.from_start) {
        (_, true) => 0,
        (Some(text), false) => {
            let at =
                super::duration::parse_point_in_time(text).map_err(|_| StreamError::Since {
                    text: text.to_owned(),
                })?;
            store.sequence_before(at).map_err(store_error)?
        }
        (None, false) => return Err(StreamError::NoStart.into()),
    };
    let name = args.consumer.checkpoint();
    let current = store.checkpoint(name).map_err(store_error)?;
    let again = store.count_after(checkpoint).map_err(store_error)?;
    let state = args.consumer.state(&args.data_dir);
    if args.dry_run {
        println!(
            "{name} would read {again} record(s) again (checkpoint {current} -> {checkpoint}){}; nothing was changed",
            if args.fresh {
                format!(", after forgetting {}", state.display())
            } else {
                String::new()
            }
        );
        return Ok(Outcome::Ok);
    }
    if args.fresh {
        // The database and SQLite's companions (a stale WAL must not meet a new database).
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let path = PathBuf::from(format!("{}{suffix}", state.display()));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StreamError::Forget {
                        path: path.display().to_string(),
                        source,
                    }
                    .into());
                }
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    runtime
        .block_on(store.save_checkpoint(name, checkpoint))
        .map_err(store_error)?;
    println!(
        "{name} rewound: it reads {again} record(s) again when `serve` next runs (checkpoint {current} -> {checkpoint}){}",
        if args.fresh {
            format!("; forgot {}", state.display())
        } else {
            String::new()
        }
    );
    Ok(Outcome::Ok)
}

fn dump(args: DumpArgs) -> Result<Outcome, CliError> {
    let store = open_store(&args.data_dir)?;
    let store_error = store_error(&args.data_dir);
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
