//! What the forwarder needs from the outside — a Kafka topic, [`Topic`] — and the pure rules
//! every adapter shares: what a stream record becomes on the topic ([`TopicMessage`]) and what
//! a batch's produce results mean for the stream ([`outcome`]).
//!
//! A message on the topic is the record, unchanged: value = the event's JSON byte for byte as
//! Twilio sent it, key = the stream's partition key (the resource key: MessageSid, CallSid, …),
//! so one resource's events go to one partition in order. Headers follow the CloudEvents Kafka
//! protocol binding: every context attribute as a `ce_` header (`ce_specversion`, `ce_id`,
//! `ce_type`, `ce_source`, `ce_time`, extensions such as `ce_twilioreconciled`), so a consumer can
//! route and deduplicate without parsing the value, and `content-type`. Because the value is the
//! whole event (not only its `data`, as the binding's binary mode would carry), `content-type` is
//! `application/cloudevents+json`: a CloudEvents SDK then reads the value as the event itself
//! (the binding's structured mode) instead of taking the whole event for its data.

use std::future::Future;
use std::time::Instant;
use twilio_events::stream::{BatchOutcome, StreamRecord};

/// The `content-type` header of every message (see the module's documentation).
pub const CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// The attributes the binding maps to `ce_` headers must be strings, numbers or booleans; these
/// are never headers: the payload itself, and the content type (the value's, in `content-type`).
const NOT_HEADERS: [&str; 3] = ["data", "data_base64", "datacontenttype"];

/// One Kafka message, borrowed from the stream record it is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMessage<'r> {
    /// The resource key: Kafka's default partitioner puts equal keys on one partition.
    pub key: &'r str,
    /// The event's JSON, as received.
    pub value: &'r [u8],
    /// `ce_` headers in the event's attribute order, then `content-type`.
    pub headers: Vec<(String, String)>,
}

/// A record that is not a CloudEvent object: it cannot be given the binding's headers. The
/// message says what is wrong, never what the record holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotACloudEvent {
    #[error("the record is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("the event has no `{0}` string attribute, which every CloudEvent must have")]
    MissingAttribute(&'static str),
    #[error("the attribute `{0}` is not a string, number or boolean")]
    UnsupportedAttribute(String),
}

impl<'r> TopicMessage<'r> {
    /// The message for `record`: its key, its data as the value, its attributes as headers.
    pub fn from_record(record: &'r StreamRecord) -> Result<Self, NotACloudEvent> {
        // Top-level attributes only: `data` stays an unparsed slice.
        let attributes = top_level_attributes(&record.data)?;
        let mut headers = Vec::with_capacity(attributes.len() + 1);
        for required in ["specversion", "id", "type", "source"] {
            if !attributes
                .iter()
                .any(|(name, value)| name == required && !value.is_empty())
            {
                return Err(NotACloudEvent::MissingAttribute(required));
            }
        }
        for (name, value) in attributes {
            headers.push((format!("ce_{name}"), value));
        }
        headers.push(("content-type".to_owned(), CONTENT_TYPE.to_owned()));
        Ok(Self {
            key: &record.partition_key,
            value: &record.data,
            headers,
        })
    }
}

/// The event's context attributes as header values, in the order the event lists them.
fn top_level_attributes(data: &[u8]) -> Result<Vec<(String, String)>, NotACloudEvent> {
    use serde_json::Value;
    use serde_json::value::RawValue;
    let object: Vec<(String, &RawValue)> = serde_json::from_slice::<OrderedObject<'_>>(data)
        .map_err(|e| NotACloudEvent::NotAnObject(e.to_string()))?
        .0;
    let mut attributes = Vec::with_capacity(object.len());
    for (name, raw) in object {
        if NOT_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::String(s)) => s,
            Ok(Value::Number(n)) => n.to_string(),
            Ok(Value::Bool(b)) => b.to_string(),
            // A null attribute is an absent one.
            Ok(Value::Null) => continue,
            _ => return Err(NotACloudEvent::UnsupportedAttribute(name)),
        };
        attributes.push((name, value));
    }
    Ok(attributes)
}

/// A JSON object's members in document order, values left unparsed.
struct OrderedObject<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for OrderedObject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Members<'a> {
            type Value = OrderedObject<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((name, value)) =
                    map.next_entry::<String, &'de serde_json::value::RawValue>()?
                {
                    members.push((name, value));
                }
                Ok(OrderedObject(members))
            }
        }
        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// Where an acknowledged message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Why one message is not on the topic, or not known to be.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The message itself can never be written (larger than the topic accepts, say): it is
    /// set aside in the quarantine rather than retried for ever.
    #[error("the topic rejects this message: {0}")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Not written this time (a broker away, a leader changing, authorisation missing): retried.
    #[error("the message was not written: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No acknowledgement before the deadline: the message may or may not be on the topic (the
    /// one case a retry can duplicate; consumers deduplicate by `ce_id`).
    #[error("no acknowledgement before the invocation's deadline")]
    Unacknowledged,
    /// Never sent: taken back out of the client's queue at the deadline.
    #[error("not sent before the invocation's deadline")]
    NotSent,
}

/// A Kafka topic.
pub trait Topic: Send + Sync {
    /// Produces `messages` in order and waits for each acknowledgement until `deadline`. One
    /// result per message, in the same order.
    fn produce(
        &self,
        messages: &[TopicMessage<'_>],
        deadline: Instant,
    ) -> impl Future<Output = Vec<Result<Delivered, ProduceError>>> + Send;
}

/// What a batch's results mean for the stream: every record whose message is not acknowledged
/// is reported by sequence number (the source retries from the lowest). `results` pairs the
/// record's index in the batch with its produce result; records not listed are done.
pub fn outcome<E>(
    records: &[StreamRecord],
    results: &[(usize, Result<Delivered, E>)],
) -> BatchOutcome {
    BatchOutcome {
        failed: results
            .iter()
            .filter(|(_, result)| result.is_err())
            .filter_map(|(index, _)| records.get(*index))
            .map(|record| record.sequence_number.clone())
            .collect(),
    }
}

/// How many acknowledged messages come after the first failure of a batch: the source
/// retries from that failure, so these are produced again (duplicates a consumer drops by
/// `ce_id`).
pub fn produced_again<E>(results: &[(usize, Result<Delivered, E>)]) -> usize {
    let Some(first_failure) = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(index, _)| *index)
        .min()
    else {
        return 0;
    };
    results
        .iter()
        .filter(|(index, r)| *index > first_failure && r.is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &str) -> StreamRecord {
        StreamRecord {
            sequence_number: "1".into(),
            partition_key: "SM0123".into(),
            data: data.as_bytes().to_vec(),
            arrived_at: None,
        }
    }

    #[test]
    fn an_event_becomes_a_keyed_message_with_its_attributes_as_headers() {
        // GIVEN an event as Twilio sends it, with an extension attribute and escapes
        let json = r#"{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","source":"/2010-04-01/Accounts/AC1/Messages/SM0123.json","id":"EZ\u0031","dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/2","datacontenttype":"application/json","time":"2026-11-30T10:00:00.000Z","twilioreconciled":"rest-api","data":{"messageStatus":"DELIVERED","to":"+15005550006"}}"#;
        let record = record(json);
        // WHEN it is made a message
        let message = TopicMessage::from_record(&record).unwrap();
        // THEN the value is the record byte for byte, the key the resource key
        assert_eq!(message.value, json.as_bytes());
        assert_eq!(message.key, "SM0123");
        // AND every context attribute is a ce_ header, decoded, in order; no data, no phone number
        let headers: Vec<(&str, &str)> = message
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            headers,
            vec![
                ("ce_specversion", "1.0"),
                ("ce_type", "com.twilio.messaging.message.delivered"),
                ("ce_source", "/2010-04-01/Accounts/AC1/Messages/SM0123.json"),
                ("ce_id", "EZ1"),
                (
                    "ce_dataschema",
                    "https://events-schemas.twilio.com/Messaging.MessageStatus/2"
                ),
                ("ce_time", "2026-11-30T10:00:00.000Z"),
                ("ce_twilioreconciled", "rest-api"),
                ("content-type", CONTENT_TYPE),
            ]
        );
    }

    #[test]
    fn what_is_not_a_cloudevent_is_refused_naming_what_is_missing() {
        assert!(matches!(
            TopicMessage::from_record(&record("[1]")),
            Err(NotACloudEvent::NotAnObject(_))
        ));
        assert_eq!(
            TopicMessage::from_record(&record(r#"{"specversion":"1.0","type":"t","source":"s"}"#)),
            Err(NotACloudEvent::MissingAttribute("id"))
        );
        assert_eq!(
            TopicMessage::from_record(&record(
                r#"{"specversion":"1.0","id":"","type":"t","source":"s"}"#
            )),
            Err(NotACloudEvent::MissingAttribute("id"))
        );
        assert_eq!(
            TopicMessage::from_record(&record(
                r#"{"specversion":"1.0","id":"1","type":"t","source":"s","x":{"a":1}}"#
            )),
            Err(NotACloudEvent::UnsupportedAttribute("x".into()))
        );
        // AND numbers, booleans and nulls are what the binding allows
        let typed = record(
            r#"{"specversion":"1.0","id":"1","type":"t","source":"s","n":3,"b":true,"z":null}"#,
        );
        let message = TopicMessage::from_record(&typed).unwrap();
        assert!(message.headers.contains(&("ce_n".into(), "3".into())));
        assert!(message.headers.contains(&("ce_b".into(), "true".into())));
        assert!(!message.headers.iter().any(|(k, _)| k == "ce_z"));
    }

    #[test]
    fn failures_are_reported_by_sequence_number_and_what_follows_them_counted() {
        let records: Vec<StreamRecord> = (0..4)
            .map(|i| StreamRecord {
                sequence_number: format!("s{i}"),
                ..record("{}")
            })
            .collect();
        let ok = |offset| {
            Ok(Delivered {
                partition: 0,
                offset,
            })
        };
        let results: Vec<(usize, Result<Delivered, ProduceError>)> = vec![
            (0, ok(10)),
            (1, Err(ProduceError::Unacknowledged)),
            (2, ok(11)),
            (3, Err(ProduceError::NotSent)),
        ];
        assert_eq!(outcome(&records, &results).failed, vec!["s1", "s3"]);
        assert_eq!(produced_again(&results), 1);
        assert_eq!(produced_again(&results[..1]), 0);
    }
}
