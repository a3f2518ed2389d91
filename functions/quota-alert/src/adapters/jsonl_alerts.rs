//! The alert publisher of `twilio-events serve --quotas FILE`: each alert printed to stderr and
//! appended to `<data-dir>/alerts.jsonl`.

use crate::alert::Alert;
use crate::ports::{AlertPublishError, AlertPublisher};
use std::path::{Path, PathBuf};
use twilio_events::jsonl::JsonLines;

/// Prints each alert to stderr and appends its JSON to a file, one object a line.
#[derive(Debug)]
pub struct FileAlertPublisher {
    file: JsonLines<Alert>,
}

impl FileAlertPublisher {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: JsonLines::new(path),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Every alert written so far.
    pub fn alerts(&self) -> Vec<Alert> {
        self.file.read_all()
    }
}

impl AlertPublisher for FileAlertPublisher {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertPublishError> {
        // The shared JSON-lines file reports its failures as text (naming the file).
        self.file
            .append(alert)
            .map_err(|detail| AlertPublishError::new(&alert.quota, detail))?;
        eprintln!("quota alert: {}", alert.summary);
        Ok(())
    }
}
