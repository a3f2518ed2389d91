//! CloudEvents as the stream carries them, for tests, benchmarks and demos. No real phone
//! numbers or SIDs.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use twilio_events::stream::StreamRecord;

/// An account SID for examples.
pub const ACCOUNT: &str = "AC00000000000000000000000000000001";

fn time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// A 32-hex-digit suffix from a number, for SIDs.
fn hex32(n: u64) -> String {
    format!("{n:032x}")
}

/// A messaging status event (`status` lowercase: `sent`, `delivered`, …) for message `n`.
pub fn message_event(
    id: &str,
    status: &str,
    n: u64,
    at: OffsetDateTime,
    account: &str,
    segments: u32,
) -> String {
    let sid = format!("SM{}", hex32(n));
    serde_json::json!({
        "specversion": "1.0",
        "type": format!("com.twilio.messaging.message.{status}"),
        "source": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        "id": id,
        "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/5",
        "datacontenttype": "application/json",
        "time": time(at),
        "data": {
            "messageSid": sid,
            "messageStatus": status.to_ascii_uppercase(),
            "accountSid": account,
            "from": "+15550000001",
            "to": "+15550000002",
            "numberOfSegments": segments,
            "timestamp": time(at),
        }
    })
    .to_string()
}

/// `message.sent` for message `n` of [`ACCOUNT`], one segment, with event id `EZ<n>`.
pub fn message_sent(n: u64, at: OffsetDateTime) -> String {
    message_event(&format!("EZ{}", hex32(n)), "sent", n, at, ACCOUNT, 1)
}

/// A completed call of `seconds`.
pub fn call_completed(n: u64, at: OffsetDateTime, seconds: u32) -> String {
    let sid = format!("CA{}", hex32(n));
    serde_json::json!({
        "specversion": "1.0",
        "type": "com.twilio.voice.status-callback.call.completed",
        "source": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"),
        "id": format!("EV{}", hex32(n)),
        "dataschema": "https://events-schemas.twilio.com/Voice.WebhookEvent/2",
        "time": time(at),
        "data": {"request": {"parameters": {
            "CallSid": sid, "CallStatus": "completed", "CallDuration": seconds.to_string(),
            "AccountSid": ACCOUNT, "From": "+15550000001", "To": "+15550000002"
        }}}
    })
    .to_string()
}

/// A TaskRouter rate-limit event.
pub fn rate_limit(n: u64, at: OffsetDateTime, current_rate: f64, rate_limit: f64) -> String {
    serde_json::json!({
        "specversion": "1.0",
        "type": "com.twilio.apiusage.taskrouter.ratelimits",
        "source": "/v1/Workspaces",
        "id": format!("RL{}", hex32(n)),
        "dataschema": "https://events-schemas.twilio.com/Twilio.RateLimitResults/2",
        "time": time(at),
        "data": {
            "account_sid": ACCOUNT, "product": "TaskRouter",
            "resource_key": "WS00000000000000000000000000000001",
            "current_rate": current_rate, "rate_limit": rate_limit,
            "rate_limited": current_rate >= rate_limit
        }
    })
    .to_string()
}

/// An error-log event with `code`.
pub fn error_logged(n: u64, at: OffsetDateTime, code: u32) -> String {
    serde_json::json!({
        "specversion": "1.0",
        "type": "com.twilio.error-logs.error.logged",
        "source": "/v1/Errors",
        "id": format!("NO{}", hex32(n)),
        "time": time(at),
        "data": {"sid": format!("NO{}", hex32(n)), "error_code": code, "account_sid": ACCOUNT,
                 "level": "ERROR", "product_name": "Programmable Messaging"}
    })
    .to_string()
}

/// A Usage Trigger callback's form body, as Twilio posts it to ingest.
pub fn usage_trigger_form(
    category: &str,
    trigger_value: f64,
    current_value: f64,
    token: &str,
) -> String {
    format!(
        "AccountSid={ACCOUNT}&UsageTriggerSid=UT{}&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&Recurring=daily&UsageCategory={category}&TriggerBy=count&TriggerValue={trigger_value}&CurrentValue={current_value}&IdempotencyToken={token}",
        hex32(7)
    )
}

/// `n` distinct `message.sent` events one second apart from `start`, fed with noise: every 10th
/// followed by its `delivered` event (counted by no messages quota), every 7th delivered twice
/// in a row (a duplicate), and after every 100th the previous 20 again (a replay).
#[derive(Clone, Debug)]
pub struct SentScenario {
    /// What the stream carries, in order.
    pub records: Vec<String>,
    /// The distinct `message.sent` event ids, in first-seen order: the k-th counted event is
    /// `counted_ids[k - 1]`.
    pub counted_ids: Vec<String>,
    /// How many records are not `message.sent` (they must cost no write).
    pub uncounted: usize,
}

pub fn sent_scenario(n: u64, start: OffsetDateTime) -> SentScenario {
    let mut records = Vec::new();
    let mut counted_ids = Vec::new();
    let mut sent = Vec::new();
    let mut uncounted = 0;
    for i in 0..n {
        let at = start + time::Duration::seconds(i as i64);
        let event = message_sent(i, at);
        counted_ids.push(format!("EZ{}", hex32(i)));
        records.push(event.clone());
        sent.push(event.clone());
        if i % 7 == 0 {
            records.push(event);
        }
        if i % 10 == 0 {
            records.push(message_event(
                &format!("EZd{}", hex32(i)),
                "delivered",
                i,
                at + time::Duration::seconds(1),
                ACCOUNT,
                1,
            ));
            uncounted += 1;
        }
        if i % 100 == 99 {
            let from = sent.len().saturating_sub(20);
            records.extend_from_slice(&sent[from..]);
        }
    }
    SentScenario {
        records,
        counted_ids,
        uncounted,
    }
}

/// Events as one shard's records, in order (sequence numbers 0, 1, …).
pub fn records(events: &[String]) -> Vec<StreamRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| StreamRecord {
            sequence_number: i.to_string(),
            partition_key: "k".into(),
            data: e.clone().into_bytes(),
            arrived_at: None,
        })
        .collect()
}
