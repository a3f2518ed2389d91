//! A CRM that is a file (feature `local`): `twilio-events serve` without `--crm-url` appends
//! each update to `<data-dir>/crm.jsonl`, one HTTP-contract body a line.

use crate::ports::{Crm, CrmError};
use crate::update::StatusUpdate;
use std::path::{Path, PathBuf};
use twilio_events::jsonl::JsonLines;

/// A CRM that appends each update it is given to a JSON-lines file.
#[derive(Debug)]
pub struct JsonlCrm {
    file: JsonLines<StatusUpdate>,
}

impl JsonlCrm {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: JsonLines::new(path),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Every update written so far.
    pub fn updates(&self) -> Vec<StatusUpdate> {
        self.file.read_all()
    }
}

impl Crm for JsonlCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        self.file
            .append(update)
            .map_err(|e| CrmError::Connection(e.to_string()))
    }
}
