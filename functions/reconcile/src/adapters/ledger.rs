//! crm-sync's status ledgers, read as the [`LedgerView`] port: DynamoDB (the open index) and,
//! with `local`, the SQLite file `twilio-events serve` keeps. The schema is crm-sync's; these
//! only read it.

use crate::ports::{Known, LedgerError, LedgerView, OpenResource, ResourceKind};
use crm_sync::adapters::dynamodb::DynamoStatusLedger;

impl LedgerView for DynamoStatusLedger {
    async fn open_between(
        &self,
        kind: ResourceKind,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<OpenResource>, LedgerError> {
        DynamoStatusLedger::open_between(self, kind, from_ms, to_ms).await
    }

    async fn known(&self, sid: &str) -> Result<Option<Known>, LedgerError> {
        Ok(self.row(sid).await?.map(|row| Known {
            status: row.status,
            rank: row.rank,
        }))
    }
}

#[cfg(feature = "local")]
mod sqlite {
    use super::*;
    use crm_sync::adapters::sqlite::SqliteStatusLedger;
    impl LedgerView for SqliteStatusLedger {
        async fn open_between(
            &self,
            kind: ResourceKind,
            from_ms: i64,
            to_ms: i64,
        ) -> Result<Vec<OpenResource>, LedgerError> {
            SqliteStatusLedger::open_between(self, kind, from_ms, to_ms)
        }

        async fn known(&self, sid: &str) -> Result<Option<Known>, LedgerError> {
            Ok(self.row(sid)?.map(|row| Known {
                status: row.status,
                rank: row.rank,
            }))
        }
    }
}
