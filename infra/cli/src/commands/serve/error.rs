//! Why `serve` stops, and which exit code that is: 2 when the command line cannot work as given
//! (nothing was served), 1 when something failed at run time.

use super::consumers::ConsumerStartError;
use crate::commands::CliError;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(
        "cannot listen on {addr}: is another serve running? Pick another --port (0 picks a free one) or --host"
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the data directory {}: check --data-dir", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot open the embedded store in {}: check that --data-dir is writable and that no other program holds its database",
        path.display()
    )]
    Store {
        path: PathBuf,
        #[source]
        source: ingest::adapters::sqlite::SqliteError,
    },
    #[error(transparent)]
    Consumer(#[from] ConsumerStartError),
    #[error("cannot start reconciling with Twilio's REST API")]
    Reconcile(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Console(super::console::WeakToken),
}

impl ServeError {
    fn is_usage(&self) -> bool {
        match self {
            Self::Listen { .. } | Self::DataDir { .. } | Self::Console(_) => true,
            Self::Consumer(e) => e.is_usage(),
            Self::Runtime(_) | Self::Store { .. } | Self::Reconcile(_) => false,
        }
    }
}

impl From<ServeError> for CliError {
    fn from(e: ServeError) -> Self {
        if e.is_usage() {
            Self::usage(e)
        } else {
            Self::failed(e)
        }
    }
}
