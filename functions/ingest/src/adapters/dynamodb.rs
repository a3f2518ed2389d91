//! The dedup store on DynamoDB: one conditional write per claim, the claim decision rule
//! ([`crate::ports::claim_decision`]) stated as its condition.

use crate::ports::{DedupClaim, DedupOutcome, DedupStore, DedupStoreError};
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use futures_util::future::join_all;
use std::collections::HashMap;
use std::time::Duration;

const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";
/// BatchWriteItem takes at most 25 items.
const MAX_BATCH_WRITE: usize = 25;

/// A DynamoDB call that failed, with the SDK's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbError {
    #[error("DynamoDB PutItem (claim) on table {table}: {}", DisplayErrorContext(.source))]
    Claim {
        table: String,
        #[source]
        source: SdkError<PutItemError>,
    },
    #[error("DynamoDB BatchWriteItem (complete) on table {table}: {}", DisplayErrorContext(.source))]
    Complete {
        table: String,
        #[source]
        source: SdkError<BatchWriteItemError>,
    },
    #[error(
        "DynamoDB BatchWriteItem (complete) on table {table}: {left} items still unprocessed \
         after retries (the table is throttling)"
    )]
    Unprocessed { table: String, left: usize },
    #[error("DynamoDB DeleteItem (release) on table {table}: {}", DisplayErrorContext(.source))]
    Release {
        table: String,
        #[source]
        source: SdkError<DeleteItemError>,
    },
    #[error("cannot build a DynamoDB request: {0}")]
    Request(#[source] BuildError),
}

/// Dedup records in a DynamoDB table with a string partition key `pk` and TTL on `expires_at`.
/// Items: `pk` (`<account>#<event id>`), `status` (INPROGRESS or COMPLETED), `claim_token`,
/// `lease_until` (ms), `expires_at` (s). Expiry is checked in the conditions, never left to
/// TTL, which deletes items up to days late.
#[derive(Clone, Debug)]
pub struct DynamoDedupStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDedupStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn claim_one(&self, claim: &DedupClaim) -> DedupOutcome {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(claim.key.clone()))
            .item("status", AttributeValue::S(IN_PROGRESS.into()))
            .item("claim_token", AttributeValue::S(claim.token.clone()))
            .item("lease_until", AttributeValue::N(claim.lease_until_ms.to_string()))
            .item("expires_at", AttributeValue::N(claim.expires_at_s.to_string()))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now_s OR (#status = :in_progress AND lease_until <= :now_ms)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", AttributeValue::N(claim.now_ms.div_euclid(1000).to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(claim.now_ms.to_string()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => DedupOutcome::Claimed,
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let status = failed
                        .item()
                        .and_then(|item| item.get("status"))
                        .and_then(|s| s.as_s().ok());
                    if status.map(String::as_str) == Some(COMPLETED) {
                        DedupOutcome::Duplicate
                    } else {
                        DedupOutcome::InProgress
                    }
                }
                _ => DedupOutcome::Failed(DedupStoreError::backend(DynamoDbError::Claim {
                    table: self.table.clone(),
                    source: error,
                })),
            },
        }
    }

    async fn write_batch(&self, requests: Vec<WriteRequest>) -> Result<(), DedupStoreError> {
        let mut pending = requests;
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|source| {
                    DedupStoreError::backend(DynamoDbError::Complete {
                        table: self.table.clone(),
                        source,
                    })
                })?;
            pending = output
                .unprocessed_items()
                .and_then(|items| items.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(DedupStoreError::backend(DynamoDbError::Unprocessed {
            table: self.table.clone(),
            left: pending.len(),
        }))
    }
}

impl DedupStore for DynamoDedupStore {
    async fn claim(&self, claims: &[DedupClaim]) -> Vec<DedupOutcome> {
        // Conditional writes cannot be batched (BatchWriteItem has no conditions, and a
        // transaction fails whole on the first duplicate): one PutItem per event, all at once.
        join_all(claims.iter().map(|c| self.claim_one(c))).await
    }

    async fn complete(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        let requests: Vec<WriteRequest> = claims
            .iter()
            .map(|claim| {
                let item = HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(claim.key.clone())),
                    ("status".to_owned(), AttributeValue::S(COMPLETED.into())),
                    (
                        "expires_at".to_owned(),
                        AttributeValue::N(claim.expires_at_s.to_string()),
                    ),
                ]);
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| DedupStoreError::backend(DynamoDbError::Request(e)))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, DedupStoreError>>()?;
        // One event (the usual delivery): one batch, moved rather than copied.
        if requests.len() <= MAX_BATCH_WRITE {
            return self.write_batch(requests).await;
        }
        let mut batches = Vec::with_capacity(requests.len().div_ceil(MAX_BATCH_WRITE));
        let mut rest = requests.into_iter();
        loop {
            let batch: Vec<WriteRequest> = rest.by_ref().take(MAX_BATCH_WRITE).collect();
            if batch.is_empty() {
                break;
            }
            batches.push(batch);
        }
        join_all(batches.into_iter().map(|b| self.write_batch(b)))
            .await
            .into_iter()
            .collect()
    }

    async fn release(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        let deletes = claims.iter().map(|claim| async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(claim.key.clone()))
                .condition_expression("claim_token = :token AND #status = :in_progress")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":token", AttributeValue::S(claim.token.clone()))
                .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.into()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                // Someone else's claim now, or already gone: nothing of ours to release.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(source) => Err(DedupStoreError::backend(DynamoDbError::Release {
                    table: self.table.clone(),
                    source,
                })),
            }
        });
        join_all(deletes).await.into_iter().collect()
    }
}
