//! A JSON-lines file: one serialised value a line, appended and synced. What `serve` writes in
//! its data directory where AWS would use a queue or a topic: the quarantine, the CRM updates
//! it would send, the quota alerts.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct JsonLines<T> {
    path: PathBuf,
    /// Appends from one process never interleave.
    lock: Mutex<()>,
    kind: PhantomData<fn(T)>,
}

impl<T: Serialize + DeserializeOwned> JsonLines<T> {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
            kind: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `value` as one line and syncs it to disk. The error says which file.
    pub fn append(&self, value: &T) -> Result<(), String> {
        let mut line = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let _guard = self.lock.lock().map_err(|_| "lock poisoned".to_owned())?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Every value written so far (lines that do not parse are skipped).
    pub fn read_all(&self) -> Vec<T> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
