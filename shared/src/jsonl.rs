//! A JSON-lines file: one serialised value a line, appended and synced. What `serve` writes in
//! its data directory where AWS would use a queue or a topic: the quarantine, the CRM updates
//! it would send, the quota alerts.
//!
//! # Torn writes
//!
//! An append can stop part-way: the disk fills up, the sync fails, the process is killed. A
//! torn line must never swallow the next item (appended in place, that item would be glued
//! onto the torn line and neither would parse). Both defences are used, because each covers
//! what the other cannot:
//!
//! - **Rollback.** The writer records the file's length before an append; when the write or
//!   the sync fails, it truncates the file back to that length and syncs, so a failed append
//!   leaves the file as it was and the caller's error means "nothing was written". This covers
//!   the common case (disk full, quota exceeded) and keeps files free of debris.
//! - **Tolerance.** Rollback cannot run when the process dies mid-write, or when the
//!   truncation fails too. So a writer that finds the file not ending in `'\n'` starts its line
//!   with `'\n'`: the torn fragment becomes a line of its own and the new item stays whole.
//!   Readers skip lines that do not parse and say how many ([`Contents::skipped`]), so a torn
//!   line costs only itself, and an operator can see that something was torn.
//!
//! Rollback truncates, so it is only safe with one writer at a time: appends to the same path
//! from one process are serialised by a lock shared by every [`JsonLines`] on that path, and
//! each file has one writing process (`serve`, or a function run locally).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

#[derive(Debug)]
pub struct JsonLines<T> {
    path: PathBuf,
    /// Shared by every `JsonLines` on this path in this process, so appends never interleave
    /// and a rollback never truncates another writer's line.
    lock: Arc<Mutex<()>>,
    kind: PhantomData<fn(T)>,
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents<T> {
    /// Every line that parsed, in file order.
    pub values: Vec<T>,
    /// Lines that did not parse (torn by a crash, or not this type) and were skipped.
    pub skipped: usize,
}

impl<T> Default for Contents<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            skipped: 0,
        }
    }
}

/// Why a JSON-lines file could not be written or read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum JsonLinesError {
    #[error("cannot write a line to {}: the value does not serialise to JSON: {source}", path.display())]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "cannot open {} to append: {source}; check that its directory exists and is writable",
        path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot append to {}: {source}; nothing was written (the partial line was rolled back): \
         check free space and permissions",
        path.display()
    )]
    Append {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot append to {}: {source}, and the partial line could not be rolled back \
         ({rollback}); the next append starts on a new line and readers skip the torn one: \
         check free space and permissions",
        path.display()
    )]
    AppendNotRolledBack {
        path: PathBuf,
        #[source]
        source: io::Error,
        rollback: io::Error,
    },
    #[error("cannot read {}: {source}; check that it is readable", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot rewrite {}: {source}; the file is unchanged: check free space and permissions",
        path.display()
    )]
    Rewrite {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl JsonLinesError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            Self::Serialize { path, .. }
            | Self::Open { path, .. }
            | Self::Append { path, .. }
            | Self::AppendNotRolledBack { path, .. }
            | Self::Read { path, .. }
            | Self::Rewrite { path, .. } => path,
        }
    }
}

/// One lock per file path in this process (see [`JsonLines::lock`]).
fn lock_for(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Weak<Mutex<()>>>>> = OnceLock::new();
    // The same file named two ways (relative, absolute) must get the same lock.
    let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // The map holds no invariant a panic could break, so a poisoned lock is still usable.
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, lock| lock.strong_count() > 0);
    let lock = Arc::new(Mutex::new(()));
    locks.insert(key, Arc::downgrade(&lock));
    lock
}

impl<T: Serialize + DeserializeOwned> JsonLines<T> {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            lock: lock_for(&path),
            path,
            kind: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `value` as one line and syncs it to disk. On error nothing was written, or (see
    /// [`JsonLinesError::AppendNotRolledBack`]) a torn line is left that readers skip.
    pub fn append(&self, value: &T) -> Result<(), JsonLinesError> {
        self.lock()?.append(value).map(|_| ())
    }

    /// Every value written so far, and how many lines were skipped. A missing file is empty.
    pub fn read(&self) -> Result<Contents<T>, JsonLinesError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(parse(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Contents::default()),
            Err(source) => Err(self.error(|path| JsonLinesError::Read { path, source })),
        }
    }

    /// Every value written so far; lines that do not parse, and an unreadable file, are
    /// skipped silently. [`read`](Self::read) says what was skipped.
    pub fn read_all(&self) -> Vec<T> {
        self.read().map(|c| c.values).unwrap_or_default()
    }

    /// Holds this file for a sequence of operations no other writer in this process can
    /// interleave with (the quarantine's check-then-append). Creates the file.
    pub(crate) fn lock(&self) -> Result<Locked<'_, T>, JsonLinesError> {
        // A panic while appending leaves at worst a torn line, which the next append handles.
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|source| self.error(|path| JsonLinesError::Open { path, source }))?;
        Ok(Locked {
            lines: self,
            file,
            _guard: guard,
        })
    }

    fn error(&self, make: impl FnOnce(PathBuf) -> JsonLinesError) -> JsonLinesError {
        make(self.path.clone())
    }
}

/// Parses every line; a final line without its `'\n'` is parsed too (a crash can cut a
/// write right before it, leaving a whole value).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Contents<T> {
    let mut contents = Contents::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(value) => contents.values.push(value),
            Err(_) => contents.skipped += 1,
        }
    }
    contents
}

/// A [`JsonLines`] file held open under its lock.
pub(crate) struct Locked<'a, T> {
    lines: &'a JsonLines<T>,
    file: File,
    _guard: MutexGuard<'a, ()>,
}

/// The two steps of an append that fail when the disk is full: a seam so tests can make
/// either fail part-way on a real file.
trait AppendTarget {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
}

impl AppendTarget for &File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl<T: Serialize + DeserializeOwned> Locked<'_, T> {
    /// The file's length in bytes.
    pub(crate) fn len(&self) -> Result<u64, JsonLinesError> {
        self.file.metadata().map(|m| m.len()).map_err(|source| {
            self.lines
                .error(|path| JsonLinesError::Read { path, source })
        })
    }

    /// Every value in the first `len` bytes of the file (what [`len`](Self::len) said), and
    /// how many lines were skipped.
    pub(crate) fn read(&self, len: u64) -> Result<Contents<T>, JsonLinesError> {
        let mut bytes = Vec::new();
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.take(len).read_to_end(&mut bytes))
            .map_err(|source| {
                self.lines
                    .error(|path| JsonLinesError::Read { path, source })
            })?;
        Ok(parse(&bytes))
    }

    /// Appends `value` as one line and syncs; returns the file's length after it.
    pub(crate) fn append(&self, value: &T) -> Result<u64, JsonLinesError> {
        self.append_via(value, |file| file)
    }

    fn append_via<'f, W: AppendTarget>(
        &'f self,
        value: &T,
        target: impl FnOnce(&'f File) -> W,
    ) -> Result<u64, JsonLinesError> {
        let lines = self.lines;
        let mut line = serde_json::to_vec(value)
            .map_err(|source| lines.error(|path| JsonLinesError::Serialize { path, source }))?;
        line.push(b'\n');
        let before = self.len()?;
        if before > 0 && !self.ends_with_newline(before)? {
            // A writer died mid-line: finish that line so ours is not glued onto it.
            line.insert(0, b'\n');
        }
        let file = &self.file;
        let mut out = target(file);
        match out.write_all(&line).and_then(|()| out.sync()) {
            Ok(()) => Ok(before + line.len() as u64),
            Err(source) => match file.set_len(before).and_then(|()| file.sync_data()) {
                Ok(()) => Err(lines.error(|path| JsonLinesError::Append { path, source })),
                Err(rollback) => Err(lines.error(|path| JsonLinesError::AppendNotRolledBack {
                    path,
                    source,
                    rollback,
                })),
            },
        }
    }

    /// Replaces the whole file with `values`, one a line: written beside it, synced, then
    /// renamed over it, so a failure leaves the file as it was. Appends open the path afresh,
    /// so they go to the new file.
    pub(crate) fn replace(&self, values: &[T]) -> Result<(), JsonLinesError> {
        let lines = self.lines;
        let mut bytes = Vec::new();
        for value in values {
            serde_json::to_writer(&mut bytes, value)
                .map_err(|source| lines.error(|path| JsonLinesError::Serialize { path, source }))?;
            bytes.push(b'\n');
        }
        let mut temporary = lines.path.clone().into_os_string();
        temporary.push(".rewrite");
        let temporary = PathBuf::from(temporary);
        let written = File::create(&temporary)
            .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_data()))
            .and_then(|()| std::fs::rename(&temporary, &lines.path));
        written.map_err(|source| {
            let _ = std::fs::remove_file(&temporary);
            lines.error(|path| JsonLinesError::Rewrite { path, source })
        })
    }

    fn ends_with_newline(&self, len: u64) -> Result<bool, JsonLinesError> {
        let mut last = [0u8; 1];
        let mut file = &self.file;
        // Reading moves only the read position: O_APPEND writes still go to the end.
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|source| {
                self.lines
                    .error(|path| JsonLinesError::Read { path, source })
            })?;
        Ok(last[0] == b'\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jsonl-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Writes at most `budget` bytes, then fails as a full disk would; optionally fails the
    /// sync instead.
    struct FullDisk<'f> {
        file: &'f File,
        budget: usize,
        fail_sync: bool,
    }

    impl AppendTarget for FullDisk<'_> {
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let n = bytes.len().min(self.budget);
            Write::write_all(&mut self.file, &bytes[..n])?;
            self.budget -= n;
            if n < bytes.len() {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            if self.fail_sync {
                return Err(io::Error::other("sync failed"));
            }
            self.file.sync_data()
        }
    }

    #[test]
    fn a_write_that_fails_part_way_is_rolled_back_to_the_previous_length() {
        // GIVEN a file with one line
        let path = temp_file("partial.jsonl");
        let lines = JsonLines::<u32>::new(&path);
        lines.append(&1).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        // WHEN the next append writes 3 bytes and then the disk is full
        let error = lines
            .lock()
            .unwrap()
            .append_via(&123_456, |file| FullDisk {
                file,
                budget: 3,
                fail_sync: false,
            })
            .unwrap_err();
        // THEN the error names the file, keeps the cause, and the file is as it was
        assert!(matches!(error, JsonLinesError::Append { .. }), "{error}");
        assert_eq!(error.path(), path);
        let cause = std::error::Error::source(&error).unwrap();
        assert_eq!(
            cause.downcast_ref::<io::Error>().unwrap().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        // AND the next append works as if nothing happened
        lines.append(&2).unwrap();
        assert_eq!(
            lines.read().unwrap(),
            Contents {
                values: vec![1, 2],
                skipped: 0
            }
        );
    }

    #[test]
    fn a_failed_sync_is_rolled_back_too() {
        let path = temp_file("sync.jsonl");
        let lines = JsonLines::<u32>::new(&path);
        lines.append(&1).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let error = lines
            .lock()
            .unwrap()
            .append_via(&2, |file| FullDisk {
                file,
                budget: usize::MAX,
                fail_sync: true,
            })
            .unwrap_err();
        assert!(matches!(error, JsonLinesError::Append { .. }), "{error}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        assert_eq!(lines.read_all(), [1]);
    }

    #[test]
    fn appends_through_different_handles_on_one_path_share_a_lock() {
        let path = temp_file("shared-lock.jsonl");
        let a = JsonLines::<u32>::new(&path);
        let b = JsonLines::<u32>::new(&path);
        assert!(Arc::ptr_eq(&a.lock, &b.lock));
    }
}
