use super::{Quarantine, QuarantineError, QuarantinedItem};
use crate::jsonl::{Contents, JsonLines, JsonLinesError, Locked};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A JSON-lines file, one item a line (`<data-dir>/quarantine.jsonl` under `serve`), one line
/// per item id: a retry of a delivery already quarantined adds nothing.
#[derive(Debug)]
pub struct FileQuarantine {
    file: JsonLines<QuarantinedItem>,
    index: Mutex<Index>,
}

/// The ids in the file, so a put need not read the whole file.
#[derive(Debug, Default)]
struct Index {
    ids: HashSet<String>,
    /// The file's length when `ids` was last in step with it; `None` before the first read or
    /// after a failed append. Any other length means another writer (another `FileQuarantine`,
    /// another process) changed the file, so it is read again.
    length: Option<u64>,
}

impl Index {
    fn load(&mut self, contents: Contents<QuarantinedItem>, length: u64) {
        self.ids = contents
            .values
            .into_iter()
            .map(|item| item.id)
            .filter(|id| !id.is_empty())
            .collect();
        self.length = Some(length);
    }

    /// Reads the file again unless the index is in step with it.
    fn refresh(&mut self, file: &Locked<'_, QuarantinedItem>) -> Result<(), JsonLinesError> {
        let length = file.len()?;
        if self.length != Some(length) {
            self.load(file.read(length)?, length);
        }
        Ok(())
    }
}

impl FileQuarantine {
    /// A quarantine in the file at `path`; the file's ids are read at the first put.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: JsonLines::new(path),
            index: Mutex::default(),
        }
    }

    /// Like [`new`](Self::new), but reads the file's ids now (creating the file), so a file
    /// that cannot be opened fails at start rather than at the first put.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, JsonLinesError> {
        let quarantine = Self::new(path);
        {
            let file = quarantine.file.lock()?;
            quarantine.index().refresh(&file)?;
        }
        Ok(quarantine)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Everything quarantined so far (lines that do not parse are skipped silently).
    pub fn items(&self) -> Vec<QuarantinedItem> {
        self.file.read_all()
    }

    /// Everything quarantined so far, and how many lines were torn or unreadable.
    pub fn contents(&self) -> Result<Contents<QuarantinedItem>, JsonLinesError> {
        self.file.read()
    }

    /// Removes the item `id` (an operator discarded it, or replayed it into the pipeline) and
    /// answers it; `None` when no item has that id. Under the file's lock, so no put is lost.
    pub fn remove(&self, id: &str) -> Result<Option<QuarantinedItem>, JsonLinesError> {
        let file = self.file.lock()?;
        let mut index = self.index();
        let length = file.len()?;
        let mut items = file.read(length)?.values;
        let Some(position) = items.iter().position(|item| item.id == id) else {
            return Ok(None);
        };
        let removed = items.remove(position);
        file.replace(&items)?;
        // Read again at the next put: the file changed under the index.
        index.length = None;
        Ok(Some(removed))
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|poisoned| {
            // A panic mid-update may have left the ids out of step: read the file again.
            let mut index = poisoned.into_inner();
            index.length = None;
            index
        })
    }
}

impl Quarantine for FileQuarantine {
    async fn put(&self, item: QuarantinedItem) -> Result<(), QuarantineError> {
        // The file's lock first, then the index's: the check and the append are one step for
        // every writer of this path in this process.
        let file = self.file.lock()?;
        let mut index = self.index();
        index.refresh(&file)?;
        if !item.id.is_empty() && index.ids.contains(&item.id) {
            return Ok(());
        }
        match file.append(&item) {
            Ok(length) => {
                index.ids.insert(item.id);
                index.length = Some(length);
                Ok(())
            }
            Err(error) => {
                index.length = None;
                Err(error.into())
            }
        }
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

    #[tokio::test]
    async fn a_removed_item_is_gone_and_can_be_quarantined_again() {
        let dir = std::env::temp_dir().join(format!("q-remove-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let q = FileQuarantine::new(dir.join("quarantine.jsonl"));
        let _ = std::fs::remove_file(q.path());
        let first = QuarantinedItem::new("ingest", "a", "", b"1");
        q.put(first.clone()).await.unwrap();
        q.put(QuarantinedItem::new("ingest", "b", "", b"2"))
            .await
            .unwrap();
        assert_eq!(q.remove(&first.id).unwrap(), Some(first.clone()));
        assert_eq!(q.remove(&first.id).unwrap(), None);
        let reasons: Vec<String> = q.items().into_iter().map(|i| i.reason).collect();
        assert_eq!(reasons, ["b"]);
        q.put(first).await.unwrap();
        assert_eq!(q.items().len(), 2, "the index forgot the removed id");
    }
}
