//! The status ledger in DynamoDB: one item per resource, key `sid` (S).
//!
//! Attributes: `kind`, `status`, `rank` (N), `event_time_ms` (N), `event_id`, `state`
//! (`pending`/`pushed`/`rejected`), `updated_at` (RFC 3339), `expires_at` (N, epoch seconds, for
//! the table's TTL), `changed_at_ms` (N, when the status last moved forward) and, only while the
//! status is not final, `open_kind` (the key of the open index, [`OPEN_INDEX`]). See [`crate::ports`] for why claim, push, settle.

use crate::ports::{
    LedgerDecision, LedgerError, LedgerRow, OPEN_INDEX, OpenResource, Settled, StatusLedger, decide,
};
use crate::update::{ResourceKind, StatusUpdate};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// Ledger rows expire this long after their last change (a late event older than that could
/// then be pushed again; Twilio retries for at most 4 hours).
const KEEP_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Clone, Debug)]
pub struct DynamoStatusLedger {
    client: Client,
    table: String,
}

/// The claim's condition: a new resource, a forward move, or this event still pending.
const CLAIM_CONDITION: &str = "attribute_not_exists(sid) OR #rank < :rank \
     OR (#rank = :rank AND event_time_ms < :time) OR (event_id = :id AND #state = :pending)";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn row_from(item: &HashMap<String, AttributeValue>) -> Option<LedgerRow> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Some(LedgerRow {
        status: text("status").unwrap_or_default(),
        rank: u8::try_from(num("rank")?).ok()?,
        event_time_ms: num("event_time_ms").unwrap_or(0),
        event_id: text("event_id")?,
        state: text("state").unwrap_or_default(),
    })
}

/// A call on the ledger table failed (the source is the SDK's error, with its cause).
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbError {
    #[error(
        "DynamoDB UpdateItem on table {table}: {}; check the table and the role's \
         dynamodb:UpdateItem permission",
        DisplayErrorContext(.source)
    )]
    UpdateItem {
        table: String,
        #[source]
        source: SdkError<UpdateItemError>,
    },
    #[error(
        "DynamoDB Query on table {table}, index {OPEN_INDEX}: {}; check that the table has the \
         index (template.yaml) and the role's dynamodb:Query permission on it",
        DisplayErrorContext(.source)
    )]
    Query {
        table: String,
        #[source]
        source: SdkError<QueryError>,
    },
    #[error(
        "DynamoDB GetItem on table {table}: {}; check the table and the role's \
         dynamodb:GetItem permission",
        DisplayErrorContext(.source)
    )]
    GetItem {
        table: String,
        #[source]
        source: SdkError<GetItemError>,
    },
}

impl DynamoStatusLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn update_failed(&self, source: SdkError<UpdateItemError>) -> LedgerError {
        LedgerError::unavailable(DynamoDbError::UpdateItem {
            table: self.table.clone(),
            source,
        })
    }

    /// The row for `sid` (strongly consistent), for tests and operators.
    pub async fn row(&self, sid: &str) -> Result<Option<LedgerRow>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("sid", s(sid))
            .consistent_read(true)
            .send()
            .await
            .map_err(|source| {
                LedgerError::unavailable(DynamoDbError::GetItem {
                    table: self.table.clone(),
                    source,
                })
            })?;
        Ok(out.item().and_then(row_from))
    }

    /// The resources of `kind` that are not final and last changed in `[from_ms, to_ms)`, from
    /// the open index (eventually consistent: a change of the last second may be missing, and
    /// is found by the next run).
    pub async fn open_between(
        &self,
        kind: ResourceKind,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<OpenResource>, LedgerError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OPEN_INDEX)
                .key_condition_expression(
                    "open_kind = :kind AND changed_at_ms BETWEEN :from AND :to",
                )
                .expression_attribute_values(":kind", s(kind.as_str()))
                .expression_attribute_values(":from", n(from_ms))
                .expression_attribute_values(":to", n(to_ms - 1))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|source| {
                    LedgerError::unavailable(DynamoDbError::Query {
                        table: self.table.clone(),
                        source,
                    })
                })?;
            found.extend(out.items().iter().filter_map(|item| {
                let row = row_from(item)?;
                Some(OpenResource {
                    sid: item.get("sid")?.as_s().ok()?.clone(),
                    kind,
                    status: row.status,
                    rank: row.rank,
                    changed_at_ms: item.get("changed_at_ms")?.as_n().ok()?.parse().ok()?,
                })
            }));
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }
}

impl StatusLedger for DynamoStatusLedger {
    async fn claim(&self, update: &StatusUpdate) -> Result<LedgerDecision, LedgerError> {
        let now = now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("sid", s(&update.sid))
            // A resource that is not final stays in the open index (its `open_kind`) until a
            // final status removes it from there.
            .update_expression(if update.is_final() {
                "SET kind = :kind, #status = :status, #rank = :rank, event_time_ms = :time, \
                 event_id = :id, #state = :pending, updated_at = :now, expires_at = :expires, \
                 changed_at_ms = :changed REMOVE open_kind"
            } else {
                "SET kind = :kind, #status = :status, #rank = :rank, event_time_ms = :time, \
                 event_id = :id, #state = :pending, updated_at = :now, expires_at = :expires, \
                 changed_at_ms = :changed, open_kind = :kind"
            })
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":kind", s(update.kind.as_str()))
            .expression_attribute_values(":status", s(&update.status))
            .expression_attribute_values(":rank", n(update.rank))
            .expression_attribute_values(":time", n(update.event_time_ms()))
            .expression_attribute_values(":id", s(&update.event_id))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(
                ":now",
                s(now
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()),
            )
            .expression_attribute_values(":expires", n(now.unix_timestamp() + KEEP_SECONDS))
            .expression_attribute_values(":changed", n(now.unix_timestamp_nanos() / 1_000_000))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(LedgerDecision::Push),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let current = failed.item().and_then(row_from);
                    // The same decision the condition made, to tell a duplicate from a stale one.
                    Ok(match decide(current.as_ref(), update) {
                        LedgerDecision::Duplicate => LedgerDecision::Duplicate,
                        _ => LedgerDecision::Stale,
                    })
                }
                _ => Err(self.update_failed(e)),
            },
        }
    }

    async fn settle(&self, update: &StatusUpdate, outcome: Settled) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("sid", s(&update.sid))
            .update_expression("SET #state = :state")
            .condition_expression("event_id = :id")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(outcome.as_str()))
            .expression_attribute_values(":id", s(&update.event_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                // Superseded by a later status meanwhile: nothing to settle.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(self.update_failed(e)),
            },
        }
    }
}
