//! The DynamoDB adapter: counters, event ids and alert claims in one table.
//!
//! Table (`COUNTER_TABLE`): partition key `pk` (S), sort key `sk` (N), TTL attribute
//! `expires_at`. Items:
//! - `pk = "event#<event id>"`, `sk = 0`: an event already counted (kept 8 days at least);
//! - `pk = "usage#<quota>#<window>"`, `sk = <bucket start, unix s>`, `used` (N): a counter bucket;
//! - `pk = "alert#<quota>#<window>[#<window start>]#<threshold %>"`, `sk = 0`: an alert's claim.
//!
//! An event is counted with one `TransactWriteItems`: a conditional put of its id
//! (`attribute_not_exists(pk) OR expires_at < :now`, since TTL deletion lags: the rule of
//! [`is_recorded`]) and an `ADD` per counter. Expiry is checked in the condition, never left to
//! TTL. An alert is claimed with a conditional put saying [`decide_alert_claim`]'s rule.

#[cfg(doc)]
use crate::ports::is_recorded;
use crate::ports::{
    AlertClaim, AlertClaimOutcome, AlertLedger, AlertLedgerError, CounterError, HeldAlertClaim,
    Increment, Recorded, UsageCounter, decide_alert_claim, wall_clock,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct DynamoUsageCounter {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An alert claim as the item that refused a new one holds it.
fn held_claim(item: &HashMap<String, AttributeValue>) -> Option<HeldAlertClaim> {
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
        _ => None,
    };
    Some(HeldAlertClaim {
        rearm_at: number("rearm_at")?,
        lease_until: number("lease_until")?,
        sent: matches!(item.get("sent")?, AttributeValue::Bool(true)),
    })
}

impl DynamoUsageCounter {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand, with TTL on `expires_at`), as template.yaml declares it;
    /// for tests and local set-ups.
    pub async fn create_table(&self) -> Result<(), CounterError> {
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| CounterError::new("create_table", e))
        };
        let attr = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(|e| CounterError::new("create_table", e))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("sk", ScalarAttributeType::N)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| CounterError::new("create_table", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("expires_at")
                    .build()
                    .map_err(|e| CounterError::new("create_table", e))?,
            )
            .send()
            .await
            .map_err(|e| CounterError::new("create_table", e))?;
        Ok(())
    }
}

impl UsageCounter for DynamoUsageCounter {
    async fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> Result<Recorded, CounterError> {
        let marker = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("event#{event_id}")))
            .item("sk", n(0))
            .item("expires_at", n(event_expires_at))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(wall_clock()))
            .build()
            .map_err(|e| CounterError::new("record", e))?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build());
        for inc in increments {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&inc.counter))
                .key("sk", n(inc.bucket))
                .update_expression("ADD used :n SET expires_at = :exp")
                .expression_attribute_values(":n", n(inc.amount))
                .expression_attribute_values(":exp", n(inc.expires_at))
                .build()
                .map_err(|e| CounterError::new("record", e))?;
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
        }
        match request.send().await {
            Ok(_) => Ok(Recorded::Counted),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(c)
                    if c.cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        .is_some_and(|code| code == "ConditionalCheckFailed") =>
                {
                    Ok(Recorded::Duplicate)
                }
                other => Err(CounterError::new("record", other)),
            },
            Err(e) => Err(CounterError::new("record", e)),
        }
    }

    async fn usage(
        &self,
        counter: &str,
        first_bucket: i64,
        last_bucket: i64,
    ) -> Result<f64, CounterError> {
        let mut total = 0.0;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                .expression_attribute_values(":pk", s(counter))
                .expression_attribute_values(":first", n(first_bucket))
                .expression_attribute_values(":last", n(last_bucket))
                .projection_expression("used")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| CounterError::new("usage", e))?;
            total += output
                .items()
                .iter()
                .filter_map(|item| match item.get("used") {
                    Some(AttributeValue::N(v)) => v.parse::<f64>().ok(),
                    _ => None,
                })
                .sum::<f64>();
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(total),
            }
        }
    }
}

impl AlertLedger for DynamoUsageCounter {
    async fn claim(&self, claim: &AlertClaim) -> Result<AlertClaimOutcome, AlertLedgerError> {
        let now = wall_clock();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&claim.key))
            .item("sk", n(0))
            .item("claim_id", s(&claim.claim_id))
            .item("event_id", s(&claim.event_id))
            .item("used", n(claim.used))
            .item("at", n(claim.at))
            .item("rearm_at", n(claim.rearm_at))
            .item("lease_until", n(claim.lease_until))
            .item("sent", AttributeValue::Bool(false))
            .item("expires_at", n(claim.rearm_at.max(now) + 86_400))
            .condition_expression(
                "attribute_not_exists(pk) OR rearm_at <= :at OR (sent = :false AND lease_until < :now)",
            )
            .expression_attribute_values(":at", n(claim.at))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(AlertClaimOutcome::Claimed),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                PutItemError::ConditionalCheckFailedException(c) => {
                    // The condition refused: the rule, applied to the item that refused, says
                    // whether the alert went out or is in flight. An item it cannot read counts
                    // as sent; a claim the rule would grant (the item changed in between) as in
                    // flight, so that the record is retried.
                    Ok(match c.item().and_then(held_claim) {
                        None => AlertClaimOutcome::AlreadySent,
                        Some(held) => match decide_alert_claim(Some(&held), claim, now) {
                            AlertClaimOutcome::Claimed => AlertClaimOutcome::InFlight,
                            refused => refused,
                        },
                    })
                }
                other => Err(AlertLedgerError::new("claim", other)),
            },
            Err(e) => Err(AlertLedgerError::new("claim", e)),
        }
    }

    async fn confirm(&self, claim: &AlertClaim) -> Result<(), AlertLedgerError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&claim.key))
            .key("sk", n(0))
            .update_expression("SET sent = :true")
            .condition_expression("claim_id = :id")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":id", s(&claim.claim_id))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AlertLedgerError::new("confirm", e))
    }

    async fn release(&self, claim: &AlertClaim) -> Result<(), AlertLedgerError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&claim.key))
            .key("sk", n(0))
            .condition_expression("claim_id = :id")
            .expression_attribute_values(":id", s(&claim.claim_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else's claim now: nothing of ours to release.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(AlertLedgerError::new("release", e)),
        }
    }
}
