//! An in-memory topic for the core's tests (feature `testing`): keeps what it acknowledges,
//! and refuses or leaves unacknowledged the messages a test names.

use crate::ports::{Delivered, ProduceError, Topic, TopicMessage};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

/// A message as the topic keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct MemoryTopic {
    kept: Mutex<Vec<Kept>>,
    /// Values (as text) to refuse.
    refuse: Mutex<HashSet<String>>,
    /// Values (as text) rejected for good.
    reject: Mutex<HashSet<String>>,
    /// Values (as text) never acknowledged.
    silent: Mutex<HashSet<String>>,
}

impl MemoryTopic {
    pub fn kept(&self) -> Vec<Kept> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    pub fn refuse(&self, value: &str) {
        if let Ok(mut r) = self.refuse.lock() {
            r.insert(value.to_owned());
        }
    }

    pub fn reject(&self, value: &str) {
        if let Ok(mut r) = self.reject.lock() {
            r.insert(value.to_owned());
        }
    }

    pub fn never_acknowledge(&self, value: &str) {
        if let Ok(mut s) = self.silent.lock() {
            s.insert(value.to_owned());
        }
    }
}

impl Topic for MemoryTopic {
    async fn produce(
        &self,
        messages: &[TopicMessage<'_>],
        _deadline: Instant,
    ) -> Vec<Result<Delivered, ProduceError>> {
        let refuse = self.refuse.lock().map(|r| r.clone()).unwrap_or_default();
        let silent = self.silent.lock().map(|s| s.clone()).unwrap_or_default();
        let reject = self.reject.lock().map(|r| r.clone()).unwrap_or_default();
        let Ok(mut kept) = self.kept.lock() else {
            return messages
                .iter()
                .map(|_| Err(ProduceError::Unacknowledged))
                .collect();
        };
        messages
            .iter()
            .map(|m| {
                let text = String::from_utf8_lossy(m.value).into_owned();
                if refuse.contains(&text) {
                    return Err(ProduceError::Failed("refused by the test".into()));
                }
                if reject.contains(&text) {
                    return Err(ProduceError::Rejected("rejected by the test".into()));
                }
                if silent.contains(&text) {
                    return Err(ProduceError::Unacknowledged);
                }
                kept.push(Kept {
                    key: m.key.to_owned(),
                    value: m.value.to_vec(),
                    headers: m.headers.clone(),
                });
                Ok(Delivered {
                    partition: 0,
                    offset: kept.len() as i64 - 1,
                })
            })
            .collect()
    }
}
