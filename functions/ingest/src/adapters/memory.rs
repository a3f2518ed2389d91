//! In-memory stores with the same semantics as the real ones: for unit tests of the core and
//! for benchmarks without network. Faults can be injected. Behind the `testing` feature:
//! production code never builds them.

use crate::ports::{
    DedupClaim, DedupOutcome, DedupStore, DedupStoreError, EntryError, EventPublisher,
    OutgoingRecord, RecordState, SecretSource, SecretSourceError, StreamPublishError,
    claim_decision,
};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use twilio_events::signature::SecretSet;

/// A test that panicked while holding a fake's lock.
const POISONED: &str = "the fake's lock is poisoned";

#[derive(Debug, Default)]
pub struct MemoryDedupStore {
    records: Mutex<HashMap<String, RecordState>>,
    /// Calls to make fail, counted down.
    pub fail_next_claims: AtomicUsize,
    pub calls: AtomicUsize,
}

impl MemoryDedupStore {
    pub fn state(&self, key: &str) -> Option<RecordState> {
        self.records.lock().ok()?.get(key).cloned()
    }
}

impl DedupStore for MemoryDedupStore {
    async fn claim(&self, claims: &[DedupClaim]) -> Vec<DedupOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_next_claims.load(Ordering::SeqCst) > 0 {
            self.fail_next_claims.fetch_sub(1, Ordering::SeqCst);
            return claims
                .iter()
                .map(|_| {
                    DedupOutcome::Failed(DedupStoreError::backend(
                        "ProvisionedThroughputExceededException (injected)",
                    ))
                })
                .collect();
        }
        let Ok(mut records) = self.records.lock() else {
            return claims
                .iter()
                .map(|_| DedupOutcome::Failed(DedupStoreError::backend(POISONED)))
                .collect();
        };
        claims
            .iter()
            .map(|claim| {
                let outcome = claim_decision(records.get(&claim.key), claim);
                if matches!(outcome, DedupOutcome::Claimed) {
                    records.insert(
                        claim.key.clone(),
                        RecordState::InProgress {
                            token: claim.token.clone(),
                            lease_until_ms: claim.lease_until_ms,
                            expires_at_s: claim.expires_at_s,
                        },
                    );
                }
                outcome
            })
            .collect()
    }

    async fn complete(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut records = self
            .records
            .lock()
            .map_err(|_| DedupStoreError::backend(POISONED))?;
        for claim in claims {
            records.insert(
                claim.key.clone(),
                RecordState::Completed {
                    expires_at_s: claim.expires_at_s,
                },
            );
        }
        Ok(())
    }

    async fn release(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut records = self
            .records
            .lock()
            .map_err(|_| DedupStoreError::backend(POISONED))?;
        for claim in claims {
            if matches!(records.get(&claim.key), Some(RecordState::InProgress { token, .. }) if *token == claim.token)
            {
                records.remove(&claim.key);
            }
        }
        Ok(())
    }
}

/// A stream in memory. `fail_every` makes every n-th entry fail (PutRecords partial failure);
/// `fail_next_puts` fails whole calls (throttling).
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    pub records: Mutex<Vec<(String, Vec<u8>)>>,
    pub fail_every: AtomicUsize,
    pub fail_next_puts: AtomicUsize,
    pub puts: AtomicUsize,
    entries_seen: AtomicUsize,
}

impl MemoryPublisher {
    pub fn stored(&self) -> Vec<(String, Vec<u8>)> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl EventPublisher for MemoryPublisher {
    async fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        if self.fail_next_puts.load(Ordering::SeqCst) > 0 {
            self.fail_next_puts.fetch_sub(1, Ordering::SeqCst);
            return Err(StreamPublishError::new(
                "ProvisionedThroughputExceededException (injected)",
            ));
        }
        let every = self.fail_every.load(Ordering::SeqCst);
        let mut stored = self
            .records
            .lock()
            .map_err(|_| StreamPublishError::new(POISONED))?;
        Ok(records
            .iter()
            .map(|r| {
                let n = self.entries_seen.fetch_add(1, Ordering::SeqCst) + 1;
                if every > 0 && n % every == 0 {
                    Err(EntryError::Throttled {
                        message: "injected".into(),
                    })
                } else {
                    stored.push((r.partition_key.to_owned(), r.data.to_vec()));
                    Ok(())
                }
            })
            .collect())
    }
}

/// A secret store in memory: what it holds can be replaced (a rotation), reads are counted, and
/// `unreachable` makes them fail. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemorySecretSource {
    secrets: Arc<Mutex<SecretSet>>,
    pub reads: Arc<AtomicUsize>,
    pub unreachable: Arc<AtomicBool>,
}

impl MemorySecretSource {
    pub fn new(secrets: SecretSet) -> Self {
        Self {
            secrets: Arc::new(Mutex::new(secrets)),
            ..Self::default()
        }
    }

    /// Replaces what the store holds, as `put-secret-value` does.
    pub fn put(&self, secrets: SecretSet) {
        if let Ok(mut held) = self.secrets.lock() {
            *held = secrets;
        }
    }
}

impl SecretSource for MemorySecretSource {
    fn read(&self) -> BoxFuture<'_, Result<SecretSet, SecretSourceError>> {
        Box::pin(async move {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.unreachable.load(Ordering::SeqCst) {
                return Err(SecretSourceError::Unreadable(
                    "the secret store is unreachable (injected)".into(),
                ));
            }
            self.secrets
                .lock()
                .map(|s| s.clone())
                .map_err(|_| SecretSourceError::Unreadable(POISONED.into()))
        })
    }
}
