//! The Twilio secret document in a file (`twilio-events serve --secrets-file`): read at start,
//! again whenever it changes (`crate::startup::with_secret_file` watches it), and after a
//! signature failure like any source.

use crate::ports::{SecretSource, SecretSourceError};
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use twilio_events::signature::{SecretSet, secrets_from_document};

/// The file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the secrets file {}", path.display())]
pub struct SecretFileError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// A secrets file, plus the secrets given beside it (command-line flags), kept on every read.
/// Clones share what was last read, so a watcher and the core agree on whether it changed.
#[derive(Clone, Debug)]
pub struct SecretFileSource {
    path: PathBuf,
    beside: SecretSet,
    /// The SHA-256 of the content last read (or tried): a change is a different content,
    /// whatever the file's timestamps say.
    last_read: Arc<Mutex<Option<[u8; 32]>>>,
}

impl SecretFileSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            beside: SecretSet::new(),
            last_read: Arc::default(),
        }
    }

    /// Secrets given beside the file, added after the file's on every read.
    pub fn with_secrets_beside(mut self, secrets: SecretSet) -> Self {
        self.beside = secrets;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn content(&self) -> Result<Vec<u8>, SecretFileError> {
        std::fs::read(&self.path).map_err(|source| SecretFileError {
            path: self.path.clone(),
            source,
        })
    }

    /// Reads the file now. A content that cannot be used is remembered as read too, so that
    /// it is reported once, not at every check.
    pub fn read_now(&self) -> Result<SecretSet, SecretSourceError> {
        let content = self
            .content()
            .map_err(|e| SecretSourceError::Unreadable(Box::new(e)))?;
        *self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Sha256::digest(&content).into());
        let mut secrets = secrets_from_document(&String::from_utf8_lossy(&content))
            .map_err(SecretSourceError::Document)?;
        secrets.extend(self.beside.clone());
        Ok(secrets)
    }

    /// Whether the file's content differs from what was last read. A file that cannot be read
    /// now has not changed (it may be being replaced); it is looked at again next time.
    pub fn changed(&self) -> bool {
        let Ok(content) = self.content() else {
            return false;
        };
        let now: [u8; 32] = Sha256::digest(&content).into();
        *self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != Some(now)
    }
}

impl SecretSource for SecretFileSource {
    fn read(&self) -> BoxFuture<'_, Result<SecretSet, SecretSourceError>> {
        // A few hundred bytes: read in place rather than on a blocking thread.
        Box::pin(async move { self.read_now() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilio_events::signature::{AccountScope, MatchedKey};

    #[test]
    fn the_file_is_read_with_the_secrets_beside_it_and_a_change_is_seen() {
        let dir = std::env::temp_dir().join(format!("ingest-secret-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.json");
        std::fs::write(&path, r#"{"auth_tokens": ["one"]}"#).unwrap();
        let source = SecretFileSource::new(&path)
            .with_secrets_beside(SecretSet::new().with_auth_token("flag"));
        let watcher = source.clone();
        assert!(watcher.changed(), "never read yet");
        let secrets = source.read_now().unwrap();
        assert_eq!(
            secrets.auth_tokens().len(),
            2,
            "the file's, then the flag's"
        );
        assert!(!watcher.changed());
        // The same length, another token: still a change.
        std::fs::write(&path, r#"{"auth_tokens": ["two"]}"#).unwrap();
        assert!(watcher.changed());
        std::fs::write(&path, "{broken").unwrap();
        assert!(matches!(
            source.read_now(),
            Err(SecretSourceError::Document(_))
        ));
        assert!(!watcher.changed(), "a broken file is reported once");
        let a = "AC0000000000000000000000000000000a";
        std::fs::write(
            &path,
            format!(r#"{{"accounts": {{"{a}": {{"auth_tokens": ["t"]}}}}}}"#),
        )
        .unwrap();
        let secrets = source.read_now().unwrap();
        assert_eq!(secrets.scope(&MatchedKey::AuthToken(0)).account(), Some(a));
        assert_eq!(secrets.scope(&MatchedKey::AuthToken(1)), AccountScope::Any);
        std::fs::remove_file(&path).unwrap();
        assert!(!watcher.changed(), "gone for now: keep what is in use");
        assert!(matches!(
            source.read_now(),
            Err(SecretSourceError::Unreadable(_))
        ));
    }
}
