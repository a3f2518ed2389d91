//! What Twilio would send: message lifecycles, calls, sink test events, TaskRouter rate-limit
//! events and Usage Trigger callbacks, with realistic mixes and timing, then the delivery plan
//! (duplicates delivered again later, events of one resource delivered out of order).

use std::collections::HashMap;
use twilio_events::classic::{ClassicRequest, ClassicWebhook, classic_event};
use twilio_events::signature::BodyEncoding;

/// A small, seedable PRNG (SplitMix64): reproducible runs without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// Exponentially distributed with the given mean (for arrival gaps and delays).
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// Where a delivery goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Events,
    UsageTriggers,
    MessageStatus,
    CallStatus,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Events => "/twilio/events",
            Route::UsageTriggers => "/twilio/usage-triggers",
            Route::MessageStatus => "/twilio/message-status",
            Route::CallStatus => "/twilio/call-status",
        }
    }

    pub fn encoding(self) -> BodyEncoding {
        match self {
            Route::Events => BodyEncoding::Json,
            Route::UsageTriggers | Route::MessageStatus | Route::CallStatus => BodyEncoding::Form,
        }
    }
}

/// One generated event: the id it has in the stream, and the body of its delivery.
#[derive(Clone, Debug)]
pub struct Event {
    /// The fact the event reports (`<account>#<dedup identity>`, as ingest deduplicates): an
    /// Event Streams event and the status callback of the same status share it.
    pub fact: String,
    pub kind: &'static str,
    pub route: Route,
    pub body: bytes::Bytes,
    /// Index of the resource (message, call…) it belongs to, and its rank in the lifecycle.
    pub resource: usize,
    pub step: usize,
    /// Simulated time since the start, in milliseconds.
    pub at_ms: u64,
}

/// The events, and the order of deliveries (indices into `events`; a duplicate appears twice).
#[derive(Debug, Default)]
pub struct Plan {
    pub events: Vec<Event>,
    pub deliveries: Vec<usize>,
    /// Deliveries that are a second copy of an event.
    pub duplicates: usize,
    /// Events delivered before an earlier event of the same resource.
    pub reordered: usize,
    pub by_kind: HashMap<&'static str, usize>,
    /// Every message and call as Twilio's REST API shows it once the plan has happened (its
    /// last planned status): what `--resources` writes for a reconciliation to read back.
    pub resources: Vec<serde_json::Value>,
}

/// A message's or call's lifecycle, for its REST API view ([`Plan::resources`]).
struct Lifecycle {
    resource: usize,
    kind: &'static str,
    sid: String,
    /// Each step's REST status and simulated time.
    steps: Vec<(&'static str, u64)>,
    error_code: Option<u32>,
    /// Message segments, or call duration (seconds).
    size: u64,
}

const ACCOUNT: &str = "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9";
/// Example numbers from the reserved 555-01xx range: never a real subscriber.
const FROM: &str = "+12065550100";
const TO: &str = "+14155550199";

struct Generator<'a> {
    rng: &'a mut Rng,
    /// Share of message and call resources whose statuses also come as status callbacks.
    classic: f64,
    run: u64,
    next_id: u64,
    events: Vec<Event>,
    lifecycles: Vec<Lifecycle>,
    start: time::OffsetDateTime,
}

impl Generator<'_> {
    fn rfc2822(&self, at_ms: u64) -> String {
        (self.start + time::Duration::milliseconds(at_ms as i64))
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default()
    }

    /// The REST API's view of `life` after its first `steps` steps.
    fn rest_view(&self, life: &Lifecycle, steps: usize) -> Option<serde_json::Value> {
        let (status, last) = *life.steps.get(steps.checked_sub(1)?)?;
        let first = life.steps.first().map_or(0, |s| s.1);
        Some(match life.kind {
            "message" => serde_json::json!({
                "kind": "message", "sid": life.sid, "account_sid": ACCOUNT, "status": status,
                "date_created": self.rfc2822(first), "date_sent": self.rfc2822(first),
                "date_updated": self.rfc2822(last), "from": FROM, "to": TO,
                "error_code": life.error_code.filter(|_| matches!(status, "failed" | "undelivered")),
                "num_segments": life.size.to_string(), "direction": "outbound-api",
                "messaging_service_sid": null, "body": "(simulated)", "api_version": "2010-04-01",
            }),
            _ => serde_json::json!({
                "kind": "call", "sid": life.sid, "account_sid": ACCOUNT, "status": status,
                "date_created": self.rfc2822(first), "start_time": self.rfc2822(first),
                "end_time": if steps == life.steps.len() { serde_json::json!(self.rfc2822(last)) } else { serde_json::Value::Null },
                "date_updated": self.rfc2822(last), "from": FROM, "to": TO,
                "duration": life.size.to_string(), "direction": "outbound-api", "api_version": "2010-04-01",
            }),
        })
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:016x}{:016x}", self.run, self.next_id)
    }

    fn timestamp(&self, at_ms: u64) -> String {
        let t = self.start + time::Duration::milliseconds(at_ms as i64);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "2026-11-26T10:00:00Z".into())
    }

    fn push_json(
        &mut self,
        kind: &'static str,
        resource: usize,
        step: usize,
        at_ms: u64,
        json: serde_json::Value,
    ) {
        let id = json["id"].as_str().unwrap_or_default().to_owned();
        let body = format!("[{json}]");
        let fact = twilio_events::event::CloudEvent::parse(&json.to_string())
            .map(|event| event.dedup_key())
            .unwrap_or_else(|_| id.clone());
        self.events.push(Event {
            fact,
            kind,
            route: Route::Events,
            body: body.into(),
            resource,
            step,
            at_ms,
        });
    }

    /// queued → sent → delivered (→ read) | undelivered | failed, as Twilio reports them.
    fn message(&mut self, resource: usize, t0: u64) {
        let sid = format!("SM{:016x}{:016x}", self.run, resource as u64);
        let r = self.rng.unit();
        let (statuses, error): (&[&str], Option<u32>) = if r < 0.80 {
            (&["queued", "sent", "delivered"], None)
        } else if r < 0.90 {
            (&["queued", "sent", "delivered", "read"], None)
        } else if r < 0.96 {
            (&["queued", "sent", "undelivered"], Some(30003))
        } else {
            (&["queued", "failed"], Some(30008))
        };
        let segments = 1 + u32::from(self.rng.chance(0.15));
        let callbacks = self.rng.chance(self.classic);
        let mut life = Lifecycle {
            resource,
            kind: "message",
            sid: sid.clone(),
            steps: Vec::new(),
            error_code: error,
            size: u64::from(segments),
        };
        let mut at = t0;
        for (step, status) in statuses.iter().enumerate() {
            at += match *status {
                "queued" => 0,
                "sent" | "failed" => 200 + self.rng.exp(800.0) as u64,
                "delivered" | "undelivered" => 1_000 + self.rng.exp(4_000.0) as u64,
                _ => 10_000 + self.rng.exp(120_000.0) as u64,
            };
            life.steps.push((status, at));
            let id = self.id("EZ");
            let mut data = serde_json::json!({
                "messageSid": sid,
                "timestamp": self.timestamp(at),
                "accountSid": ACCOUNT,
                "eventName": format!("com.twilio.messaging.message.{status}"),
                "apiVersion": "2010-04-01",
                "from": FROM,
                "to": TO,
                "messageStatus": status.to_uppercase(),
                "numberOfSegments": segments,
            });
            if let (Some(code), true) = (error, matches!(*status, "undelivered" | "failed")) {
                data["errorCode"] = code.into();
            }
            let json = serde_json::json!({
                "specversion": "1.0",
                "type": format!("com.twilio.messaging.message.{status}"),
                "source": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"),
                "id": id,
                "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/7",
                "datacontenttype": "application/json",
                "time": self.timestamp(at),
                "data": data,
            });
            self.push_json("message", resource, step, at, json);
            if callbacks {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("AccountSid", ACCOUNT)
                    .append_pair("ApiVersion", "2010-04-01")
                    .append_pair("From", FROM)
                    .append_pair("MessageSid", &sid)
                    .append_pair("MessageStatus", status)
                    .append_pair("SmsSid", &sid)
                    .append_pair("SmsStatus", status)
                    .append_pair("To", TO);
                if let (Some(code), true) = (error, matches!(*status, "undelivered" | "failed")) {
                    form.append_pair("ErrorCode", &code.to_string());
                }
                let jitter = self.rng.range(0, 400);
                self.push_classic(
                    ClassicWebhook::MessageStatus,
                    form.finish(),
                    (resource, step, at + jitter),
                );
            }
        }
        self.lifecycles.push(life);
    }

    /// A classic status callback of a fact already planned as an Event Streams event.
    fn push_classic(
        &mut self,
        webhook: ClassicWebhook,
        body: String,
        (resource, step, at_ms): (usize, usize, u64),
    ) {
        let Ok(event) = classic_event(&ClassicRequest {
            webhook,
            url: "",
            form_body: body.as_bytes(),
            idempotency_token: None,
            received_at: self.start,
        }) else {
            return;
        };
        let (kind, route) = match webhook {
            ClassicWebhook::CallStatus => ("call-callback", Route::CallStatus),
            _ => ("message-callback", Route::MessageStatus),
        };
        self.events.push(Event {
            fact: event.dedup_key(),
            kind,
            route,
            body: body.into(),
            resource,
            step,
            at_ms,
        });
    }

    /// initiated → ringing → answered → completed, or a busy / unanswered call.
    fn call(&mut self, resource: usize, t0: u64) {
        let sid = format!("CA{:016x}{:016x}", self.run, resource as u64);
        let r = self.rng.unit();
        let (statuses, final_status): (&[&str], &str) = if r < 0.75 {
            (
                &["initiated", "ringing", "answered", "completed"],
                "completed",
            )
        } else if r < 0.90 {
            (&["initiated", "ringing", "completed"], "no-answer")
        } else {
            (&["initiated", "ringing", "completed"], "busy")
        };
        let talk = 5_000 + self.rng.exp(90_000.0) as u64;
        let callbacks = self.rng.chance(self.classic);
        let mut life = Lifecycle {
            resource,
            kind: "call",
            sid: sid.clone(),
            steps: Vec::new(),
            error_code: None,
            size: if final_status == "completed" {
                talk / 1000
            } else {
                0
            },
        };
        let mut at = t0;
        for (step, status) in statuses.iter().enumerate() {
            at += match *status {
                "initiated" => 0,
                "ringing" => 300 + self.rng.exp(700.0) as u64,
                "answered" => 2_000 + self.rng.exp(6_000.0) as u64,
                _ if final_status == "completed" => talk,
                _ => 20_000 + self.rng.exp(5_000.0) as u64,
            };
            let call_status = match *status {
                "answered" => "in-progress",
                "completed" => final_status,
                other => other,
            };
            life.steps.push((call_status, at));
            let duration = if *status == "completed" && final_status == "completed" {
                talk / 1000
            } else {
                0
            };
            let id = self.id("EZ");
            let json = serde_json::json!({
                "specversion": "1.0",
                "type": format!("com.twilio.voice.status-callback.call.{status}"),
                "source": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"),
                "id": id,
                "dataschema": "https://events-schemas.twilio.com/Voice.WebhookEvent/2",
                "datacontenttype": "application/json",
                "time": self.timestamp(at),
                "data": {
                    "request": {
                        "method": "POST",
                        "parameters": {
                            "CallSid": sid,
                            "AccountSid": ACCOUNT,
                            "CallStatus": call_status,
                            "CallDuration": duration.to_string(),
                            "Direction": "outbound-api",
                            "From": FROM,
                            "To": TO,
                            "ApiVersion": "2010-04-01",
                        }
                    }
                },
            });
            self.push_json("call", resource, step, at, json);
            if callbacks {
                let timestamp = (self.start + time::Duration::milliseconds(at as i64))
                    .format(&time::format_description::well_known::Rfc2822)
                    .unwrap_or_default();
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("AccountSid", ACCOUNT)
                    .append_pair("ApiVersion", "2010-04-01")
                    .append_pair("CallDuration", &duration.to_string())
                    .append_pair("CallSid", &sid)
                    .append_pair("CallStatus", call_status)
                    .append_pair("CallbackSource", "call-progress-events")
                    .append_pair("Direction", "outbound-api")
                    .append_pair("From", FROM)
                    .append_pair("SequenceNumber", &step.to_string())
                    .append_pair("Timestamp", &timestamp)
                    .append_pair("To", TO)
                    .finish();
                let jitter = self.rng.range(0, 400);
                self.push_classic(
                    ClassicWebhook::CallStatus,
                    body,
                    (resource, step, at + jitter),
                );
            }
        }
        self.lifecycles.push(life);
    }

    /// The sink test event Twilio sends when a sink is created or tested.
    fn test_event(&mut self, resource: usize, t0: u64) {
        let id = self.id("EZ");
        let test_id = format!("{:016x}-{resource}", self.run);
        let json = serde_json::json!({
            "specversion": "1.0",
            "type": "com.twilio.eventstreams.test-event",
            "source": "Sink",
            "id": id,
            "dataschema": "https://events-schemas.twilio.com/EventStreams.TestSink/1",
            "datacontenttype": "application/json",
            "time": self.timestamp(t0),
            "data": serde_json::json!({ "test_id": test_id }).to_string(),
        });
        self.push_json("test", resource, 0, t0, json);
    }

    /// A TaskRouter API rate-limit report.
    fn rate_limit(&mut self, resource: usize, t0: u64) {
        let id = self.id("EZ");
        let limit = 25;
        let current = self.rng.range(15, 40);
        let json = serde_json::json!({
            "specversion": "1.0",
            "type": "com.twilio.apiusage.taskrouter.ratelimits",
            "source": format!("/v1/Accounts/{ACCOUNT}/RateLimits"),
            "id": id,
            "dataschema": "https://events-schemas.twilio.com/Twilio.RateLimitResults/2",
            "datacontenttype": "application/json",
            "time": self.timestamp(t0),
            "data": {
                "account_sid": ACCOUNT,
                "product": "taskrouter",
                "resource_key": format!("WS{:032x}", resource % 4),
                "current_rate": current,
                "rate_limit": limit,
                "rate_limited": current > limit,
            },
        });
        self.push_json("ratelimit", resource, 0, t0, json);
    }

    /// A Usage Trigger callback: a form POST; ingest derives the event id from its fields.
    fn usage_trigger(&mut self, resource: usize, t0: u64) -> bool {
        let trigger_sid = format!("UT{:016x}{:016x}", self.run, resource as u64);
        let fired = self.start + time::Duration::milliseconds(t0 as i64);
        let date = fired
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let value = 1_000 * self.rng.range(1, 10);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("AccountSid", ACCOUNT)
            .append_pair("UsageTriggerSid", &trigger_sid)
            .append_pair("DateFired", &date)
            .append_pair("Recurring", "daily")
            .append_pair("UsageCategory", "sms")
            .append_pair("TriggerBy", "count")
            .append_pair("TriggerValue", &value.to_string())
            .append_pair("CurrentValue", &(value + self.rng.range(0, 50)).to_string())
            .append_pair(
                "UsageRecordUri",
                &format!("/2010-04-01/Accounts/{ACCOUNT}/Usage/Records/Today.json?Category=sms"),
            )
            .append_pair("IdempotencyToken", &format!("{trigger_sid}-{t0}"))
            .finish();
        let Ok(event) = twilio_events::usage_trigger::usage_trigger_event(body.as_bytes()) else {
            return false;
        };
        self.events.push(Event {
            fact: event.dedup_key(),
            kind: "usage-trigger",
            route: Route::UsageTriggers,
            body: body.into(),
            resource,
            step: 0,
            at_ms: t0,
        });
        true
    }
}

/// Generates `count` events (resources arriving at `rate_per_s` simulated), then the plan.
pub fn generate(seed: u64, count: usize, duplicates: f64, reorder: f64, classic: f64) -> Plan {
    let mut rng = Rng::new(seed);
    let run = rng.next_u64();
    let start = time::OffsetDateTime::now_utc();
    let mut generator = Generator {
        rng: &mut rng,
        classic,
        run,
        next_id: 0,
        events: Vec::with_capacity(count + 4),
        lifecycles: Vec::new(),
        start,
    };
    let mut t = 0f64;
    let mut resource = 0;
    while generator.events.len() < count {
        t += generator.rng.exp(20.0);
        let at = t as u64;
        let r = generator.rng.unit();
        if r < 0.70 {
            generator.message(resource, at);
        } else if r < 0.92 {
            generator.call(resource, at);
        } else if r < 0.96 {
            generator.rate_limit(resource, at);
        } else if r < 0.985 {
            generator.usage_trigger(resource, at);
        } else {
            generator.test_event(resource, at);
        }
        resource += 1;
    }
    let mut events = std::mem::take(&mut generator.events);
    events.truncate(count);
    // What Twilio's REST API shows of each message and call: its last planned status (the last
    // resource may have been cut short by `count`).
    let mut planned_steps: HashMap<usize, usize> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| matches!(e.kind, "message" | "call"))
    {
        let steps = planned_steps.entry(e.resource).or_default();
        *steps = (*steps).max(e.step + 1);
    }
    let resources: Vec<serde_json::Value> = generator
        .lifecycles
        .iter()
        .filter_map(|life| generator.rest_view(life, *planned_steps.get(&life.resource)?))
        .collect();
    // Twilio sends events roughly in the order they happen.
    events.sort_by_key(|e| (e.at_ms, e.resource, e.step));
    let mut plan = Plan {
        deliveries: (0..events.len()).collect(),
        resources,
        ..Plan::default()
    };
    for e in &events {
        *plan.by_kind.entry(e.kind).or_default() += 1;
    }
    // Reorder: an event swaps delivery slots with the previous event of its resource.
    let mut last_slot: HashMap<usize, usize> = HashMap::new();
    for slot in 0..plan.deliveries.len() {
        let resource = events[plan.deliveries[slot]].resource;
        if let Some(&previous) = last_slot.get(&resource) {
            if rng.chance(reorder) {
                plan.deliveries.swap(previous, slot);
                plan.reordered += 1;
                // The later slot now holds the earlier event; the chain continues from it.
            }
        }
        last_slot.insert(resource, slot);
    }
    // Duplicates: the same delivery again, a little later (a retry after a lost answer).
    let mut with_duplicates = Vec::with_capacity(plan.deliveries.len() * 11 / 10);
    let mut pending: Vec<(usize, usize)> = Vec::new(); // (slot to insert at, event)
    for (slot, &event) in plan.deliveries.iter().enumerate() {
        with_duplicates.push(event);
        if rng.chance(duplicates) {
            pending.push((slot + rng.range(1, 200) as usize, event));
            plan.duplicates += 1;
        }
        pending.retain(|&(at, event)| {
            if at <= slot {
                with_duplicates.push(event);
                false
            } else {
                true
            }
        });
    }
    with_duplicates.extend(pending.into_iter().map(|(_, e)| e));
    plan.deliveries = with_duplicates;
    plan.events = events;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_plan_holds_every_event_once_plus_its_duplicates() {
        // GIVEN 2,000 events with 5% duplicates and 20% reordered
        let plan = generate(7, 2_000, 0.05, 0.20, 0.0);
        // THEN every event is delivered, duplicates are extra deliveries of the same event
        assert_eq!(plan.events.len(), 2_000);
        assert_eq!(plan.deliveries.len(), 2_000 + plan.duplicates);
        let distinct: HashSet<usize> = plan.deliveries.iter().copied().collect();
        assert_eq!(distinct.len(), 2_000);
        assert!((50..160).contains(&plan.duplicates), "{}", plan.duplicates);
        assert!(plan.reordered > 100, "{}", plan.reordered);
        // AND ids are unique, and every event kind appears
        let ids: HashSet<&str> = plan.events.iter().map(|e| e.fact.as_str()).collect();
        assert_eq!(ids.len(), 2_000);
        for kind in ["message", "call", "ratelimit", "usage-trigger", "test"] {
            assert!(plan.by_kind.get(kind).copied().unwrap_or(0) > 0, "{kind}");
        }
    }

    #[test]
    fn generated_events_parse_as_twilio_events() {
        let plan = generate(11, 500, 0.0, 0.0, 0.5);
        for e in &plan.events {
            match e.route {
                Route::Events => {
                    let text = std::str::from_utf8(&e.body).unwrap();
                    let delivery = twilio_events::parse_delivery(text.as_bytes()).unwrap();
                    assert_eq!(delivery.events.len(), 1);
                    assert_eq!(delivery.events[0].dedup_key(), e.fact);
                }
                Route::UsageTriggers => {
                    let event = twilio_events::usage_trigger::usage_trigger_event(&e.body).unwrap();
                    assert_eq!(event.dedup_key(), e.fact);
                }
                Route::MessageStatus | Route::CallStatus => {
                    let webhook = if e.route == Route::CallStatus {
                        ClassicWebhook::CallStatus
                    } else {
                        ClassicWebhook::MessageStatus
                    };
                    let event = classic_event(&ClassicRequest {
                        webhook,
                        url: "",
                        form_body: &e.body,
                        idempotency_token: None,
                        received_at: time::OffsetDateTime::now_utc(),
                    })
                    .unwrap();
                    assert_eq!(event.dedup_key(), e.fact);
                    // The callback reports a fact an Event Streams event of the plan reports too.
                    assert!(
                        plan.events
                            .iter()
                            .any(|other| other.route == Route::Events && other.fact == e.fact),
                        "{}",
                        e.fact
                    );
                }
            }
        }
    }
}
