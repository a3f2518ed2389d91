use super::{Quarantine, QuarantineError, QuarantinedItem};
use std::path::PathBuf;

/// A JSON-lines file, one item a line (`<data-dir>/quarantine.jsonl` under `serve`).
#[derive(Debug)]
pub struct FileQuarantine {
    file: crate::jsonl::JsonLines<QuarantinedItem>,
}

impl FileQuarantine {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: crate::jsonl::JsonLines::new(path),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// Everything quarantined so far.
    pub fn items(&self) -> Vec<QuarantinedItem> {
        self.file.read_all()
    }
}

impl Quarantine for FileQuarantine {
    async fn put(&self, item: QuarantinedItem) -> Result<(), QuarantineError> {
        self.file.append(&item).map_err(|e| QuarantineError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_quarantine_appends_one_line_per_item() {
        let dir = std::env::temp_dir().join(format!("q-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let q = FileQuarantine::new(dir.join("quarantine.jsonl"));
        let _ = std::fs::remove_file(q.path());
        q.put(QuarantinedItem::new("ingest", "a", "", b"1"))
            .await
            .unwrap();
        q.put(QuarantinedItem::new("ingest", "b", "", b"2"))
            .await
            .unwrap();
        let reasons: Vec<String> = q.items().into_iter().map(|i| i.reason).collect();
        assert_eq!(reasons, ["a", "b"]);
    }
}
