//! The secrets in use, and reading them again after a rotation without a restart.
//!
//! A warm instance keeps the secrets it read at start. When Twilio starts signing with a new
//! Auth Token, every signature fails until the instance learns it; so on a signature failure
//! the core asks for the secret again, when the copy in hand is older than
//! `IngestSettings::secret_refresh` (a minute by default): at most one read per interval per
//! instance, whatever the number of failing requests ([`crate::ports::secret_refresh_due`]).
//! The failing delivery is answered 503 until then, and Twilio's retry gets in.

use crate::ports::{SecretSource, SecretSourceError, secret_refresh_due};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use twilio_events::signature::Verifier;

/// What asking for a refresh did.
#[derive(Debug)]
pub(crate) enum Refresh {
    /// No source to read again (secrets given inline): what is in hand is all there is.
    NoSource,
    /// Read less than an interval ago: not again yet.
    NotDue,
    /// Read again; the new secrets are in use.
    Read,
    /// Could not read; the secrets in hand stay, and the next try waits an interval.
    Failed(SecretSourceError),
}

pub(crate) struct SecretCache {
    verifier: RwLock<Arc<Verifier>>,
    source: Option<Arc<dyn SecretSource>>,
    /// When the secret was last read, or a read last tried.
    last_read: Mutex<OffsetDateTime>,
    /// One read at a time: concurrent failures (under `serve`) wait for it, then find it done.
    reading: tokio::sync::Mutex<()>,
}

impl SecretCache {
    /// Secrets read at `now`, with no source to read them again.
    pub(crate) fn new(verifier: Verifier, now: OffsetDateTime) -> Self {
        Self {
            verifier: RwLock::new(Arc::new(verifier)),
            source: None,
            last_read: Mutex::new(now),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The secrets in hand were just read from `source` (at `now`); read it again from now on.
    pub(crate) fn follow(&mut self, source: Arc<dyn SecretSource>, now: OffsetDateTime) {
        self.source = Some(source);
        *self
            .last_read
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// The secrets in use. A request keeps the ones it started with.
    pub(crate) fn verifier(&self) -> Arc<Verifier> {
        Arc::clone(&self.verifier.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn last_read(&self) -> OffsetDateTime {
        *self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the secret again if the copy in hand is at least `every` old.
    pub(crate) async fn refresh_if_due(&self, now: OffsetDateTime, every: Duration) -> Refresh {
        let Some(source) = &self.source else {
            return Refresh::NoSource;
        };
        if !secret_refresh_due(self.last_read(), now, every) {
            return Refresh::NotDue;
        }
        let _reading = self.reading.lock().await;
        // Another request may have read it while this one waited.
        if !secret_refresh_due(self.last_read(), now, every) {
            return Refresh::NotDue;
        }
        self.read(source.as_ref(), now).await
    }

    /// Reads the secret now, whatever its age (`serve` calls this when its file changes).
    pub(crate) async fn reload(&self, now: OffsetDateTime) -> Refresh {
        let Some(source) = &self.source else {
            return Refresh::NoSource;
        };
        let _reading = self.reading.lock().await;
        self.read(source.as_ref(), now).await
    }

    async fn read(&self, source: &dyn SecretSource, now: OffsetDateTime) -> Refresh {
        // A failed read counts as a read: a broken source is tried once per interval.
        *self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
        match source.read().await {
            Ok(secrets) => {
                let verifier = Arc::new(Verifier::new(secrets));
                *self
                    .verifier
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = verifier;
                Refresh::Read
            }
            Err(error) => Refresh::Failed(error),
        }
    }
}
