//! What the tests share: scratch files, unique names, clients for the emulators.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test (in this run or another helper's) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path to a file that does not exist yet, in a fresh directory.
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("twilio-events-shared-it"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}
