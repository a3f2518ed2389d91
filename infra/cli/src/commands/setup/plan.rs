//! What setup would change, decided from what it read: [`plan`] is pure, so `--dry-run` prints
//! exactly what a real run applies, and the rules are tested without a server.
//!
//! The rules: one webhook sink per `--webhook-url` (an active one preferred); a sink that is not
//! active is validated before anything is subscribed (Twilio requires an active sink,
//! docs/twilio.md §6); setup writes only to the subscriptions it manages, those of the sink that
//! carry its `--description`; every subscription of the sink counts for what is already sent.
//! With `--status-callbacks`, each Messaging Service named (and no other) gets the stack's
//! message-status route as its status callback, after the Events API steps; one that has it
//! already is left as it is, and the URL a change replaces is always shown.

use super::events_api::{
    EventType, Sink, SubscribedEvent, Subscription, webhook_sink_configuration,
};
use super::messaging_api::MessagingService;
use reqwest::Url;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What setup read from the Events API.
#[derive(Clone, Debug, Default)]
pub struct TwilioState {
    /// `GET /Types`.
    pub catalogue: Vec<EventType>,
    /// `GET /Sinks`.
    pub sinks: Vec<Sink>,
    /// The subscriptions of the sink [`choose_sink`] picks (none without one), each with its
    /// subscribed events.
    pub subscriptions: Vec<SubscriptionState>,
    /// `GET /Services/{Sid}` (Messaging API) of each service `--status-callbacks` names.
    pub services: Vec<MessagingService>,
}

#[derive(Clone, Debug)]
pub struct SubscriptionState {
    pub subscription: Subscription,
    pub events: Vec<SubscribedEvent>,
}

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct Wanted {
    /// `--webhook-url`, as the user spelled it (compared with the sinks' destinations as is).
    pub destination: String,
    /// `--description`: of the sink and subscription setup creates, and how it recognises the
    /// subscriptions it manages.
    pub description: String,
    pub types: Vec<WantedType>,
    pub prune: bool,
    pub validation: Validation,
    /// `--status-callbacks`: none when the flag is not given.
    pub status_callbacks: Option<StatusCallbacks>,
}

/// The Messaging Services whose status callback should be the stack's message-status route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCallbacks {
    /// The stack's `/twilio/message-status` URL.
    pub url: String,
    /// The services' SIDs (`MG…`), each once, in the order given.
    pub services: Vec<String>,
}

/// One wanted event type, with the schema version the user asked for (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedType {
    pub name: String,
    pub version: Option<u32>,
}

/// How a sink that is not active gets validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validation {
    /// `--test-id`: `POST /Sinks/{Sid}/Validate` with it.
    TestId(String),
    /// `--data-dir`: send the test event, wait for it in a local `serve`'s stream, validate.
    WaitInStream { dir: PathBuf, wait: Duration },
    /// Neither: send the test event, then stop and say how to find its test id.
    SendTestEvent,
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TestId(id) => write!(f, "POST /Sinks/{{Sid}}/Validate with TestId {id}"),
            Self::WaitInStream { dir, wait } => write!(
                f,
                "POST /Sinks/{{Sid}}/Test, wait up to {} s for the test event in {}, then POST /Sinks/{{Sid}}/Validate with its test_id",
                wait.as_secs(),
                dir.display()
            ),
            Self::SendTestEvent => f.write_str(
                "POST /Sinks/{Sid}/Test, then stop: run setup again with --test-id (the test event's data.test_id) to POST /Sinks/{Sid}/Validate",
            ),
        }
    }
}

/// The webhook sink setup uses for a destination, and the others that name it.
#[derive(Debug)]
pub struct SinkChoice<'a> {
    /// An active one if any, else the first listed.
    pub sink: Option<&'a Sink>,
    /// How many webhook sinks send to the destination (the chosen one included).
    pub webhooks: usize,
    /// Sinks naming the destination whose type is not `webhook`: left alone.
    pub not_webhooks: Vec<&'a Sink>,
}

pub fn choose_sink<'a>(sinks: &'a [Sink], destination: &str) -> SinkChoice<'a> {
    let (mut webhooks, not_webhooks): (Vec<&Sink>, Vec<&Sink>) = sinks
        .iter()
        .filter(|s| s.destination().as_deref() == Some(destination))
        .partition(|s| s.is_webhook());
    // Stable: an active one first, then in the order listed.
    webhooks.sort_by_key(|s| !s.is_active());
    SinkChoice {
        sink: webhooks.first().copied(),
        webhooks: webhooks.len(),
        not_webhooks,
    }
}

/// The sink a change is about: one Twilio listed, or the one the plan creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkRef {
    Existing { sid: String, status: String },
    New,
}

impl fmt::Display for SinkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Existing { sid, .. } => f.write_str(sid),
            Self::New => f.write_str("(the new sink)"),
        }
    }
}

/// The schema version of a type to subscribe: the one asked for, or the schema's latest
/// (`GET /Schemas/{Id}`, read only when a change needs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRef {
    Exact(u32),
    LatestOf { schema_id: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeAt {
    pub event_type: String,
    pub version: VersionRef,
}

/// One write to the Events API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `POST /Sinks`: a webhook sink for the destination.
    CreateSink {
        description: String,
        destination: String,
    },
    /// Make a sink that is not active active (see [`Validation`]). For [`SinkRef::New`], only
    /// if the new sink is not active at once (webhook sinks usually are).
    ValidateSink {
        sink: SinkRef,
        validation: Validation,
    },
    /// `POST /Subscriptions`: a subscription of the sink, described as setup's.
    CreateSubscription {
        sink: SinkRef,
        description: String,
        types: Vec<TypeAt>,
    },
    /// `POST /Subscriptions/{Sid}/SubscribedEvents`.
    AddType {
        subscription: String,
        type_at: TypeAt,
    },
    /// `POST /Subscriptions/{Sid}/SubscribedEvents/{Type}`: another schema version.
    MoveType {
        subscription: String,
        event_type: String,
        from: u32,
        to: u32,
    },
    /// `DELETE /Subscriptions/{Sid}/SubscribedEvents/{Type}` (`--prune`).
    RemoveType {
        subscription: String,
        event_type: String,
        version: u32,
    },
    /// `POST /Services/{Sid}` (Messaging API) with `StatusCallback`. `from`: the status
    /// callback it replaces, shown so that the team can go back to it.
    SetStatusCallback {
        service: String,
        friendly_name: Option<String>,
        from: Option<String>,
        to: String,
    },
}

/// What setup found and leaves as it is, printed in order with the changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A wanted type Twilio marks other than `available`.
    TypeStatus {
        event_type: String,
        status: String,
    },
    TypesKnown {
        count: usize,
    },
    SeveralSinks {
        count: usize,
        destination: String,
        using: String,
    },
    /// A sink naming the destination whose type is not `webhook`.
    NotAWebhook {
        sid: String,
        sink_type: String,
        destination: String,
    },
    SinkThere {
        sid: String,
        sink_type: String,
        status: String,
        destination: String,
    },
    SinkActive {
        sid: String,
    },
    /// Another subscription of the sink: its types count as sent. `managed`: it carries
    /// setup's description too (setup changes it); otherwise setup leaves it alone.
    OtherSubscription {
        sid: String,
        sink: String,
        description: Option<String>,
        managed: bool,
    },
    /// An unwanted type in a subscription setup manages, without `--prune`.
    Kept {
        subscription: String,
        event_type: String,
        version: u32,
    },
    /// A type setup would change (remove with `--prune`, or move to the version asked for)
    /// in a subscription it does not manage.
    LeftAlone {
        subscription: String,
        event_type: String,
        version: u32,
        wanted: Option<u32>,
        description: Option<String>,
    },
    /// Nothing to change in the subscriptions: these send every wanted type.
    SubscriptionsThere {
        subscriptions: Vec<String>,
        count: usize,
    },
    /// A Messaging Service whose status callback is the stack's already.
    StatusCallbackThere {
        service: String,
        friendly_name: Option<String>,
        url: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Note(Note),
    Change(Change),
}

/// The steps setup takes, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Setup's description (the [`Note`]s name it).
    pub description: String,
}

impl Plan {
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.steps.iter().filter_map(|step| match step {
            Step::Change(change) => Some(change),
            Step::Note(_) => None,
        })
    }

    /// Changes a dry run reports: all but the validation of a sink not created yet (webhook
    /// sinks usually start active).
    pub fn counted_changes(&self) -> usize {
        self.changes()
            .filter(|c| {
                !matches!(
                    c,
                    Change::ValidateSink {
                        sink: SinkRef::New,
                        ..
                    }
                )
            })
            .count()
    }
}

/// The plan cannot be made from what the command line asks: a usage error.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "Twilio does not know these event types: {} (GET /v1/Types lists them): fix --types",
        .0.join(", ")
    )]
    UnknownTypes(Vec<String>),
    #[error("GET /v1/Types gives no schema for {0}: pass --types {0}@VERSION")]
    NoSchema(String),
    /// A service `--status-callbacks` names that setup did not read (a bug: it reads each).
    #[error("--status-callbacks {0}: the Messaging Service was not read (a bug: please report it)")]
    ServiceNotRead(String),
}

/// The wanted types Twilio does not list.
pub fn check_types(catalogue: &[EventType], wanted: &[WantedType]) -> Result<(), PlanError> {
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|w| !catalogue.iter().any(|t| t.event_type == w.name))
        .map(|w| w.name.clone())
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(PlanError::UnknownTypes(unknown))
    }
}

/// The steps that bring `current` to `wanted`: the Events API's, then the Messaging
/// Services' status callbacks.
pub fn plan(current: &TwilioState, wanted: &Wanted) -> Result<Plan, PlanError> {
    let mut plan = plan_event_streams(current, wanted)?;
    if let Some(callbacks) = &wanted.status_callbacks {
        plan.steps
            .extend(status_callback_steps(&current.services, callbacks)?);
    }
    Ok(plan)
}

/// One step per service named: nothing to do when its status callback is the stack's
/// already (compared as Twilio gives it), else set it, saying what it replaces.
fn status_callback_steps(
    services: &[MessagingService],
    wanted: &StatusCallbacks,
) -> Result<Vec<Step>, PlanError> {
    wanted
        .services
        .iter()
        .map(|sid| {
            let service = services
                .iter()
                .find(|s| s.sid == *sid)
                .ok_or_else(|| PlanError::ServiceNotRead(sid.clone()))?;
            Ok(match service.status_callback() {
                Some(url) if url == wanted.url => Step::Note(Note::StatusCallbackThere {
                    service: sid.clone(),
                    friendly_name: service.friendly_name.clone(),
                    url: url.to_owned(),
                }),
                from => Step::Change(Change::SetStatusCallback {
                    service: sid.clone(),
                    friendly_name: service.friendly_name.clone(),
                    from: from.map(str::to_owned),
                    to: wanted.url.clone(),
                }),
            })
        })
        .collect()
}

/// The Events API's steps: the sink, its validation, the subscriptions.
fn plan_event_streams(current: &TwilioState, wanted: &Wanted) -> Result<Plan, PlanError> {
    check_types(&current.catalogue, &wanted.types)?;
    let catalogue: HashMap<&str, &EventType> = current
        .catalogue
        .iter()
        .map(|t| (t.event_type.as_str(), t))
        .collect();
    let mut steps = Vec::new();
    let note = |steps: &mut Vec<Step>, n: Note| steps.push(Step::Note(n));

    // 1. The wanted types exist.
    for w in &wanted.types {
        if let Some(status) = catalogue
            .get(w.name.as_str())
            .and_then(|t| t.status.as_deref())
            .filter(|s| *s != "available")
        {
            note(
                &mut steps,
                Note::TypeStatus {
                    event_type: w.name.clone(),
                    status: status.to_owned(),
                },
            );
        }
    }
    note(
        &mut steps,
        Note::TypesKnown {
            count: wanted.types.len(),
        },
    );

    // 2. The webhook sink for the URL.
    let choice = choose_sink(&current.sinks, &wanted.destination);
    for other in &choice.not_webhooks {
        note(
            &mut steps,
            Note::NotAWebhook {
                sid: other.sid.clone(),
                sink_type: other.sink_type().to_owned(),
                destination: wanted.destination.clone(),
            },
        );
    }
    if let (Some(sink), true) = (choice.sink, choice.webhooks > 1) {
        note(
            &mut steps,
            Note::SeveralSinks {
                count: choice.webhooks,
                destination: wanted.destination.clone(),
                using: sink.sid.clone(),
            },
        );
    }
    let sink = match choice.sink {
        Some(sink) => {
            note(
                &mut steps,
                Note::SinkThere {
                    sid: sink.sid.clone(),
                    sink_type: sink.sink_type().to_owned(),
                    status: sink.status().to_owned(),
                    destination: wanted.destination.clone(),
                },
            );
            SinkRef::Existing {
                sid: sink.sid.clone(),
                status: sink.status().to_owned(),
            }
        }
        None => {
            steps.push(Step::Change(Change::CreateSink {
                description: wanted.description.clone(),
                destination: wanted.destination.clone(),
            }));
            SinkRef::New
        }
    };

    // 3. The sink is active.
    match (&sink, choice.sink) {
        (SinkRef::Existing { sid, .. }, Some(found)) if found.is_active() => {
            note(&mut steps, Note::SinkActive { sid: sid.clone() });
        }
        _ => steps.push(Step::Change(Change::ValidateSink {
            sink: sink.clone(),
            validation: wanted.validation.clone(),
        })),
    }

    // 4. The subscriptions send the wanted types.
    let version_of = |w: &WantedType| -> Result<VersionRef, PlanError> {
        if let Some(version) = w.version {
            return Ok(VersionRef::Exact(version));
        }
        catalogue
            .get(w.name.as_str())
            .and_then(|t| t.schema_id.clone())
            .map(|schema_id| VersionRef::LatestOf { schema_id })
            .ok_or_else(|| PlanError::NoSchema(w.name.clone()))
    };
    let SinkRef::Existing { sid: sink_sid, .. } = &sink else {
        let types = wanted
            .types
            .iter()
            .map(|w| {
                Ok(TypeAt {
                    event_type: w.name.clone(),
                    version: version_of(w)?,
                })
            })
            .collect::<Result<_, PlanError>>()?;
        steps.push(Step::Change(Change::CreateSubscription {
            sink,
            description: wanted.description.clone(),
            types,
        }));
        return Ok(Plan {
            steps,
            description: wanted.description.clone(),
        });
    };
    let subscriptions: Vec<&SubscriptionState> = current
        .subscriptions
        .iter()
        .filter(|s| {
            s.subscription
                .sink_sid
                .as_deref()
                .is_none_or(|sid| sid == sink_sid)
        })
        .collect();
    let managed = |s: &SubscriptionState| {
        s.subscription.description.as_deref() == Some(wanted.description.as_str())
    };
    // Where missing types go: the first subscription setup manages.
    let target = subscriptions.iter().find(|s| managed(s)).copied();
    for other in &subscriptions {
        if target.is_some_and(|t| t.subscription.sid == other.subscription.sid) {
            continue;
        }
        note(
            &mut steps,
            Note::OtherSubscription {
                sid: other.subscription.sid.clone(),
                sink: sink_sid.clone(),
                description: other.subscription.description.clone(),
                managed: managed(other),
            },
        );
    }
    // Every type any subscription of the sink sends, and where.
    let mut present: BTreeMap<&str, Vec<(&SubscriptionState, u32)>> = BTreeMap::new();
    for subscription in &subscriptions {
        for event in &subscription.events {
            present
                .entry(event.event_type.as_str())
                .or_default()
                .push((subscription, event.schema_version));
        }
    }
    let changes_before = steps.len();
    let mut missing = Vec::new();
    for w in &wanted.types {
        let Some(holders) = present.get(w.name.as_str()) else {
            let type_at = TypeAt {
                event_type: w.name.clone(),
                version: version_of(w)?,
            };
            match target {
                Some(target) => steps.push(Step::Change(Change::AddType {
                    subscription: target.subscription.sid.clone(),
                    type_at,
                })),
                None => missing.push(type_at),
            }
            continue;
        };
        let Some(version) = w.version else { continue };
        for (holder, current) in holders.iter().filter(|(_, v)| *v != version) {
            steps.push(if managed(holder) {
                Step::Change(Change::MoveType {
                    subscription: holder.subscription.sid.clone(),
                    event_type: w.name.clone(),
                    from: *current,
                    to: version,
                })
            } else {
                Step::Note(Note::LeftAlone {
                    subscription: holder.subscription.sid.clone(),
                    event_type: w.name.clone(),
                    version: *current,
                    wanted: Some(version),
                    description: holder.subscription.description.clone(),
                })
            });
        }
    }
    if !missing.is_empty() {
        steps.push(Step::Change(Change::CreateSubscription {
            sink: sink.clone(),
            description: wanted.description.clone(),
            types: missing,
        }));
    }
    for (event_type, holders) in &present {
        if wanted.types.iter().any(|w| w.name == *event_type) {
            continue;
        }
        for (holder, version) in holders {
            let subscription = holder.subscription.sid.clone();
            let event_type = (*event_type).to_owned();
            let version = *version;
            steps.push(match (managed(holder), wanted.prune) {
                (true, true) => Step::Change(Change::RemoveType {
                    subscription,
                    event_type,
                    version,
                }),
                (true, false) => Step::Note(Note::Kept {
                    subscription,
                    event_type,
                    version,
                }),
                (false, _) => Step::Note(Note::LeftAlone {
                    subscription,
                    event_type,
                    version,
                    wanted: None,
                    description: holder.subscription.description.clone(),
                }),
            });
        }
    }
    let changed = steps[changes_before..]
        .iter()
        .any(|s| matches!(s, Step::Change(_)));
    if !changed {
        // setup's own first, then the others.
        let target_sid = target.map(|t| t.subscription.sid.clone());
        let sids: Vec<String> = target_sid
            .iter()
            .cloned()
            .chain(
                subscriptions
                    .iter()
                    .map(|s| s.subscription.sid.clone())
                    .filter(|sid| Some(sid) != target_sid.as_ref()),
            )
            .collect();
        note(
            &mut steps,
            Note::SubscriptionsThere {
                subscriptions: sids,
                count: wanted.types.len(),
            },
        );
    }
    Ok(Plan {
        steps,
        description: wanted.description.clone(),
    })
}

/// The label a step prints under.
pub fn label(step: &Step) -> &'static str {
    match step {
        Step::Note(Note::TypeStatus { .. } | Note::TypesKnown { .. }) => "types",
        Step::Note(
            Note::SeveralSinks { .. } | Note::NotAWebhook { .. } | Note::SinkThere { .. },
        )
        | Step::Change(Change::CreateSink { .. }) => "sink",
        Step::Note(Note::SinkActive { .. }) | Step::Change(Change::ValidateSink { .. }) => {
            "validation"
        }
        Step::Note(Note::StatusCallbackThere { .. })
        | Step::Change(Change::SetStatusCallback { .. }) => "messaging",
        Step::Note(_) | Step::Change(_) => "subscription",
    }
}

/// What a note says, on a dry run and a real run alike.
pub fn describe_note(note: &Note, description: &str) -> String {
    match note {
        Note::TypeStatus { event_type, status } => {
            format!("warning: {event_type} is {status} at Twilio")
        }
        Note::TypesKnown { count } => format!("{count} wanted, all known to Twilio"),
        Note::SeveralSinks {
            count,
            destination,
            using,
        } => format!("note: {count} webhook sinks send to {destination}; using {using}"),
        Note::NotAWebhook {
            sid,
            sink_type,
            destination,
        } => format!(
            "note: {sid} ({sink_type}) also names {destination}; setup only uses webhook sinks and leaves it alone"
        ),
        Note::SinkThere {
            sid,
            sink_type,
            status,
            destination,
        } => format!("already there: {sid} ({sink_type}, {status}) -> {destination}"),
        Note::SinkActive { sid } => format!("{sid} is active: nothing to do"),
        Note::OtherSubscription {
            sid,
            sink,
            managed: true,
            ..
        } => format!(
            "note: {sid} also sends to {sink} (described {description:?} too); its types count as subscribed"
        ),
        Note::OtherSubscription {
            sid,
            sink,
            description: theirs,
            managed: false,
        } => format!(
            "note: {sid} ({}) also sends to {sink}; its types count as subscribed, and setup leaves it alone (it changes only subscriptions described {description:?})",
            described(theirs.as_deref())
        ),
        Note::Kept {
            subscription,
            event_type,
            version,
        } => {
            format!("kept {event_type}@{version} in {subscription}: not wanted, --prune removes it")
        }
        Note::LeftAlone {
            subscription,
            event_type,
            version,
            wanted,
            description: theirs,
        } => {
            let why = match wanted {
                Some(wanted) => format!("--types asks for schema version {wanted}"),
                None => "not wanted".to_owned(),
            };
            format!(
                "left alone: {event_type}@{version} in {subscription} ({why}): {subscription} is not setup's ({}), setup changes only subscriptions described {description:?}",
                described(theirs.as_deref())
            )
        }
        Note::SubscriptionsThere {
            subscriptions,
            count,
        } => format!(
            "already there: {} {} all {count} wanted types",
            subscriptions.join(", "),
            if subscriptions.len() == 1 {
                "sends"
            } else {
                "send"
            }
        ),
        Note::StatusCallbackThere {
            service,
            friendly_name,
            url,
        } => format!(
            "already there: {} sends its message statuses to {}",
            service_named(service, friendly_name.as_deref()),
            shown_url(url)
        ),
    }
}

/// A Messaging Service as messages show it: its SID and Twilio's friendly name.
pub fn service_named(sid: &str, friendly_name: Option<&str>) -> String {
    match friendly_name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{sid} ({name:?})"),
        None => sid.to_owned(),
    }
}

/// A callback URL as setup prints it: a password in it (Twilio calls URLs with
/// `user:password@`) is hidden.
pub fn shown_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            format!("{parsed} (password hidden)")
        }
        _ => url.to_owned(),
    }
}

fn described(description: Option<&str>) -> String {
    match description {
        Some(d) => format!("described {d:?}"),
        None => "no description".to_owned(),
    }
}

/// What a dry run says of a change. `version` shows a schema version (resolved by then).
pub fn describe_planned(change: &Change, version: &dyn Fn(&VersionRef) -> String) -> String {
    let at = |t: &TypeAt| format!("{}@{}", t.event_type, version(&t.version));
    match change {
        Change::CreateSink {
            description,
            destination,
        } => format!(
            "would create a webhook sink -> {destination} (POST /Sinks: Description {description:?}, SinkType webhook, SinkConfiguration {})",
            webhook_sink_configuration(destination)
        ),
        Change::ValidateSink {
            sink: SinkRef::Existing { sid, status },
            validation,
        } => format!("would validate {sid} (now {status}): {validation}"),
        Change::ValidateSink {
            sink: SinkRef::New,
            validation,
        } => format!(
            "if the new sink is not active at once (webhook sinks usually are), would {validation}"
        ),
        Change::CreateSubscription {
            sink,
            description,
            types,
        } => format!(
            "would create a subscription for {sink} with {} types (POST /Subscriptions: Description {description:?}, Types {})",
            types.len(),
            types.iter().map(at).collect::<Vec<_>>().join(", ")
        ),
        Change::AddType {
            subscription,
            type_at,
        } => format!(
            "would add {} to {subscription} (POST /Subscriptions/{subscription}/SubscribedEvents: Type, SchemaVersion)",
            at(type_at)
        ),
        Change::MoveType {
            subscription,
            event_type,
            from,
            to,
        } => format!(
            "would move {event_type} in {subscription} from schema version {from} to {to} (POST /Subscriptions/{subscription}/SubscribedEvents/{event_type})"
        ),
        Change::RemoveType {
            subscription,
            event_type,
            version,
        } => format!(
            "would remove {event_type}@{version} from {subscription} (DELETE /Subscriptions/{subscription}/SubscribedEvents/{event_type})"
        ),
        Change::SetStatusCallback {
            service,
            friendly_name,
            from,
            to,
        } => {
            let named = service_named(service, friendly_name.as_deref());
            let to = shown_url(to);
            match from {
                Some(from) => format!(
                    "would change the status callback of {named} from {} to {to} (POST /Services/{service}: StatusCallback); to go back later, set it to the old URL again",
                    shown_url(from)
                ),
                None => format!(
                    "would set the status callback of {named} to {to} (POST /Services/{service}: StatusCallback); it has none now"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://abc.execute-api.eu-west-1.amazonaws.com/twilio/events";
    const ME: &str = "twilio-events";
    const DELIVERED: &str = "com.twilio.messaging.message.delivered";
    const FAILED: &str = "com.twilio.messaging.message.failed";
    const INBOUND: &str = "com.twilio.messaging.inbound-message.received";

    fn catalogue() -> Vec<EventType> {
        [
            (DELIVERED, Some("Messaging.MessageStatus"), "available"),
            (FAILED, Some("Messaging.MessageStatus"), "available"),
            (INBOUND, Some("Messaging.InboundMessageV1"), "available"),
            ("com.twilio.old.thing", None, "deprecated"),
        ]
        .into_iter()
        .map(|(t, schema, status)| {
            serde_json::from_value(json!({"type": t, "schema_id": schema, "status": status}))
                .unwrap()
        })
        .collect()
    }

    fn sink(sid: &str, sink_type: &str, status: &str, destination: &str) -> Sink {
        serde_json::from_value(json!({
            "sid": sid, "sink_type": sink_type, "status": status,
            "sink_configuration": {"destination": destination, "method": "POST", "batch_events": true}
        }))
        .unwrap()
    }

    fn subscription(
        sid: &str,
        sink: &str,
        description: &str,
        types: &[(&str, u32)],
    ) -> SubscriptionState {
        SubscriptionState {
            subscription: Subscription {
                sid: sid.into(),
                sink_sid: Some(sink.into()),
                description: Some(description.into()),
            },
            events: types
                .iter()
                .map(|(t, v)| SubscribedEvent {
                    event_type: (*t).into(),
                    schema_version: *v,
                })
                .collect(),
        }
    }

    fn state(sinks: Vec<Sink>, subscriptions: Vec<SubscriptionState>) -> TwilioState {
        TwilioState {
            catalogue: catalogue(),
            sinks,
            subscriptions,
            services: vec![],
        }
    }

    fn wanted(types: &[(&str, Option<u32>)], prune: bool) -> Wanted {
        Wanted {
            destination: URL.into(),
            description: ME.into(),
            types: types
                .iter()
                .map(|(name, version)| WantedType {
                    name: (*name).into(),
                    version: *version,
                })
                .collect(),
            prune,
            validation: Validation::SendTestEvent,
            status_callbacks: None,
        }
    }

    fn latest(event_type: &str) -> TypeAt {
        TypeAt {
            event_type: event_type.into(),
            version: VersionRef::LatestOf {
                schema_id: "Messaging.MessageStatus".into(),
            },
        }
    }

    fn active_sink() -> SinkRef {
        SinkRef::Existing {
            sid: "DG1".into(),
            status: "active".into(),
        }
    }

    fn changes(plan: &Plan) -> Vec<Change> {
        plan.changes().cloned().collect()
    }

    fn notes(plan: &Plan) -> Vec<Note> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::Note(n) => Some(n.clone()),
                Step::Change(_) => None,
            })
            .collect()
    }

    #[test]
    fn the_changes_follow_from_what_twilio_holds() {
        let both = [(DELIVERED, None), (FAILED, None)];
        let cases: Vec<(&str, TwilioState, Wanted, Vec<Change>)> = vec![
            (
                "an empty account: a sink, its validation if needed, a subscription",
                state(vec![], vec![]),
                wanted(&both, false),
                vec![
                    Change::CreateSink {
                        description: ME.into(),
                        destination: URL.into(),
                    },
                    Change::ValidateSink {
                        sink: SinkRef::New,
                        validation: Validation::SendTestEvent,
                    },
                    Change::CreateSubscription {
                        sink: SinkRef::New,
                        description: ME.into(),
                        types: vec![latest(DELIVERED), latest(FAILED)],
                    },
                ],
            ),
            (
                "everything there: nothing",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![subscription(
                        "DF1",
                        "DG1",
                        ME,
                        &[(DELIVERED, 8), (FAILED, 8)],
                    )],
                ),
                wanted(&both, false),
                vec![],
            ),
            (
                "a sink for another URL is not ours",
                state(
                    vec![sink("DG9", "webhook", "active", "https://other/x")],
                    vec![],
                ),
                wanted(&both, false),
                vec![
                    Change::CreateSink {
                        description: ME.into(),
                        destination: URL.into(),
                    },
                    Change::ValidateSink {
                        sink: SinkRef::New,
                        validation: Validation::SendTestEvent,
                    },
                    Change::CreateSubscription {
                        sink: SinkRef::New,
                        description: ME.into(),
                        types: vec![latest(DELIVERED), latest(FAILED)],
                    },
                ],
            ),
            (
                "an active sink without a subscription: a subscription",
                state(vec![sink("DG1", "webhook", "active", URL)], vec![]),
                wanted(&both, false),
                vec![Change::CreateSubscription {
                    sink: active_sink(),
                    description: ME.into(),
                    types: vec![latest(DELIVERED), latest(FAILED)],
                }],
            ),
            (
                "a sink not active yet: validated, then subscribed",
                state(vec![sink("DG1", "webhook", "initialized", URL)], vec![]),
                wanted(&both, false),
                vec![
                    Change::ValidateSink {
                        sink: SinkRef::Existing {
                            sid: "DG1".into(),
                            status: "initialized".into(),
                        },
                        validation: Validation::SendTestEvent,
                    },
                    Change::CreateSubscription {
                        sink: SinkRef::Existing {
                            sid: "DG1".into(),
                            status: "initialized".into(),
                        },
                        description: ME.into(),
                        types: vec![latest(DELIVERED), latest(FAILED)],
                    },
                ],
            ),
            (
                "a type missing: added to setup's subscription",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![subscription("DF1", "DG1", ME, &[(DELIVERED, 8)])],
                ),
                wanted(&both, false),
                vec![Change::AddType {
                    subscription: "DF1".into(),
                    type_at: latest(FAILED),
                }],
            ),
            (
                "an explicit version: added at it, and a subscribed type moved to it",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![subscription("DF1", "DG1", ME, &[(DELIVERED, 3)])],
                ),
                wanted(&[(DELIVERED, Some(8)), (FAILED, Some(5))], false),
                vec![
                    Change::MoveType {
                        subscription: "DF1".into(),
                        event_type: DELIVERED.into(),
                        from: 3,
                        to: 8,
                    },
                    Change::AddType {
                        subscription: "DF1".into(),
                        type_at: TypeAt {
                            event_type: FAILED.into(),
                            version: VersionRef::Exact(5),
                        },
                    },
                ],
            ),
            (
                "a type not wanted: kept without --prune",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![subscription(
                        "DF1",
                        "DG1",
                        ME,
                        &[(DELIVERED, 8), (INBOUND, 1)],
                    )],
                ),
                wanted(&[(DELIVERED, None)], false),
                vec![],
            ),
            (
                "a type not wanted: removed with --prune",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![subscription(
                        "DF1",
                        "DG1",
                        ME,
                        &[(DELIVERED, 8), (INBOUND, 1)],
                    )],
                ),
                wanted(&[(DELIVERED, None)], true),
                vec![Change::RemoveType {
                    subscription: "DF1".into(),
                    event_type: INBOUND.into(),
                    version: 1,
                }],
            ),
            (
                "--prune touches only setup's subscriptions, not another one of the sink",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![
                        subscription("DF1", "DG1", ME, &[(DELIVERED, 8), (INBOUND, 1)]),
                        subscription("DF2", "DG1", "hand-made", &[(FAILED, 8), (INBOUND, 1)]),
                    ],
                ),
                wanted(&[(DELIVERED, None)], true),
                vec![Change::RemoveType {
                    subscription: "DF1".into(),
                    event_type: INBOUND.into(),
                    version: 1,
                }],
            ),
            (
                "another subscription's types count as sent; a version move there is left alone",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![
                        subscription("DF1", "DG1", ME, &[(DELIVERED, 8)]),
                        subscription("DF2", "DG1", "hand-made", &[(FAILED, 3)]),
                    ],
                ),
                wanted(&[(DELIVERED, None), (FAILED, Some(8))], false),
                vec![],
            ),
            (
                "no subscription of setup's: a new one for the types the others lack",
                state(
                    vec![sink("DG1", "webhook", "active", URL)],
                    vec![subscription("DF2", "DG1", "hand-made", &[(DELIVERED, 8)])],
                ),
                wanted(&both, true),
                vec![Change::CreateSubscription {
                    sink: active_sink(),
                    description: ME.into(),
                    types: vec![latest(FAILED)],
                }],
            ),
            (
                "an active sink is preferred to an earlier one that is not",
                state(
                    vec![
                        sink("DG0", "webhook", "failed", URL),
                        sink("DG1", "webhook", "active", URL),
                    ],
                    vec![subscription(
                        "DF1",
                        "DG1",
                        ME,
                        &[(DELIVERED, 8), (FAILED, 8)],
                    )],
                ),
                wanted(&both, false),
                vec![],
            ),
            (
                "a sink naming the URL that is not a webhook is not used",
                state(vec![sink("DG7", "segment", "active", URL)], vec![]),
                wanted(&[(DELIVERED, Some(8))], false),
                vec![
                    Change::CreateSink {
                        description: ME.into(),
                        destination: URL.into(),
                    },
                    Change::ValidateSink {
                        sink: SinkRef::New,
                        validation: Validation::SendTestEvent,
                    },
                    Change::CreateSubscription {
                        sink: SinkRef::New,
                        description: ME.into(),
                        types: vec![TypeAt {
                            event_type: DELIVERED.into(),
                            version: VersionRef::Exact(8),
                        }],
                    },
                ],
            ),
        ];
        for (name, current, wanted, expected) in cases {
            let plan = plan(&current, &wanted).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(changes(&plan), expected, "{name}");
        }
    }

    #[test]
    fn what_prune_leaves_alone_is_said() {
        // GIVEN setup's subscription and a hand-made one, both holding a type not wanted
        let current = state(
            vec![sink("DG1", "webhook", "active", URL)],
            vec![
                subscription("DF1", "DG1", ME, &[(DELIVERED, 8), (INBOUND, 1)]),
                subscription("DF2", "DG1", "hand-made", &[(INBOUND, 1)]),
            ],
        );
        // WHEN setup plans with --prune
        let plan = plan(&current, &wanted(&[(DELIVERED, None)], true)).unwrap();
        // THEN the hand-made one is named as left alone, with the type it keeps
        let notes = notes(&plan);
        assert!(notes.contains(&Note::OtherSubscription {
            sid: "DF2".into(),
            sink: "DG1".into(),
            description: Some("hand-made".into()),
            managed: false,
        }));
        let left = Note::LeftAlone {
            subscription: "DF2".into(),
            event_type: INBOUND.into(),
            version: 1,
            wanted: None,
            description: Some("hand-made".into()),
        };
        assert!(notes.contains(&left), "{notes:?}");
        let text = describe_note(&left, ME);
        assert!(
            text.starts_with("left alone: com.twilio.messaging.inbound-message.received@1 in DF2"),
            "{text}"
        );
        assert!(
            text.contains("\"hand-made\"") && text.contains("\"twilio-events\""),
            "{text}"
        );
        assert_eq!(plan.counted_changes(), 1);
    }

    #[test]
    fn without_prune_an_unwanted_type_is_kept_and_said_so() {
        let current = state(
            vec![sink("DG1", "webhook", "active", URL)],
            vec![subscription(
                "DF1",
                "DG1",
                ME,
                &[(DELIVERED, 8), (INBOUND, 1)],
            )],
        );
        let plan = plan(&current, &wanted(&[(DELIVERED, None)], false)).unwrap();
        assert_eq!(
            notes(&plan)[3..],
            [
                Note::Kept {
                    subscription: "DF1".into(),
                    event_type: INBOUND.into(),
                    version: 1,
                },
                Note::SubscriptionsThere {
                    subscriptions: vec!["DF1".into()],
                    count: 1,
                },
            ]
        );
    }

    #[test]
    fn the_sink_found_is_shown_with_the_type_twilio_gives() {
        // GIVEN a segment sink and a webhook sink naming the URL
        let current = state(
            vec![
                sink("DG7", "segment", "active", URL),
                sink("DG1", "webhook", "active", URL),
            ],
            vec![subscription("DF1", "DG1", ME, &[(DELIVERED, 8)])],
        );
        let plan = plan(&current, &wanted(&[(DELIVERED, None)], false)).unwrap();
        let notes = notes(&plan);
        // THEN each is described with its own type
        let shown: Vec<String> = notes.iter().map(|n| describe_note(n, ME)).collect();
        assert!(
            shown.contains(&format!("already there: DG1 (webhook, active) -> {URL}")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("note: DG7 (segment) also names")),
            "{shown:?}"
        );
    }

    #[test]
    fn several_webhook_sinks_for_the_url_are_noted() {
        let current = state(
            vec![
                sink("DG0", "webhook", "initialized", URL),
                sink("DG1", "webhook", "active", URL),
            ],
            vec![],
        );
        let plan = plan(&current, &wanted(&[(DELIVERED, None)], false)).unwrap();
        assert!(notes(&plan).contains(&Note::SeveralSinks {
            count: 2,
            destination: URL.into(),
            using: "DG1".into(),
        }));
    }

    #[test]
    fn a_type_twilio_does_not_know_or_without_a_schema_is_a_usage_error() {
        let current = state(vec![], vec![]);
        assert_eq!(
            plan(
                &current,
                &wanted(&[(DELIVERED, None), ("com.example.nope", None)], false)
            ),
            Err(PlanError::UnknownTypes(vec!["com.example.nope".into()]))
        );
        assert_eq!(
            plan(&current, &wanted(&[("com.twilio.old.thing", None)], false)),
            Err(PlanError::NoSchema("com.twilio.old.thing".into()))
        );
        // An explicit version needs no schema; the deprecated status is a warning.
        let plan = plan(
            &current,
            &wanted(&[("com.twilio.old.thing", Some(2))], false),
        )
        .unwrap();
        assert_eq!(
            notes(&plan)[0],
            Note::TypeStatus {
                event_type: "com.twilio.old.thing".into(),
                status: "deprecated".into(),
            }
        );
    }

    #[test]
    fn a_dry_run_counts_the_validation_of_a_new_sink_only_if_it_happens() {
        let plan = plan(&state(vec![], vec![]), &wanted(&[(DELIVERED, None)], false)).unwrap();
        assert_eq!(plan.changes().count(), 3);
        assert_eq!(plan.counted_changes(), 2);
    }

    const STATUS_URL: &str =
        "https://abc.execute-api.eu-west-1.amazonaws.com/twilio/message-status";

    fn service(sid: &str, status_callback: Option<&str>) -> MessagingService {
        MessagingService {
            sid: sid.into(),
            friendly_name: Some(format!("service {sid}")),
            status_callback: status_callback.map(str::to_owned),
        }
    }

    /// Setup's subscription complete, and the services read.
    fn with_services(services: Vec<MessagingService>, named: &[&str]) -> (TwilioState, Wanted) {
        let mut current = state(
            vec![sink("DG1", "webhook", "active", URL)],
            vec![subscription("DF1", "DG1", ME, &[(DELIVERED, 8)])],
        );
        current.services = services;
        let mut wanted = wanted(&[(DELIVERED, None)], false);
        wanted.status_callbacks = Some(StatusCallbacks {
            url: STATUS_URL.into(),
            services: named.iter().map(|s| (*s).to_owned()).collect(),
        });
        (current, wanted)
    }

    #[test]
    fn each_named_service_gets_the_stacks_status_callback_unless_it_has_it() {
        // GIVEN one service without a status callback, one pointing elsewhere, one at the stack
        let (current, wanted) = with_services(
            vec![
                service("MG1", None),
                service("MG2", Some("https://old.example.com/sms/status")),
                service("MG3", Some(STATUS_URL)),
                service("MG4", Some("https://not.named.example.com")),
            ],
            &["MG1", "MG2", "MG3"],
        );
        // WHEN setup plans
        let plan = plan(&current, &wanted).unwrap();
        // THEN the first two are set (the old URL kept in the change), the third is left alone,
        // and the service not named is not in the plan at all
        assert_eq!(
            changes(&plan),
            [
                Change::SetStatusCallback {
                    service: "MG1".into(),
                    friendly_name: Some("service MG1".into()),
                    from: None,
                    to: STATUS_URL.into(),
                },
                Change::SetStatusCallback {
                    service: "MG2".into(),
                    friendly_name: Some("service MG2".into()),
                    from: Some("https://old.example.com/sms/status".into()),
                    to: STATUS_URL.into(),
                },
            ]
        );
        assert!(notes(&plan).contains(&Note::StatusCallbackThere {
            service: "MG3".into(),
            friendly_name: Some("service MG3".into()),
            url: STATUS_URL.into(),
        }));
        assert!(!format!("{plan:?}").contains("MG4"));
        // AND the dry run's words name the old URL and the new one
        let text = describe_planned(&changes(&plan)[1], &|_| String::new());
        assert!(
            text.contains("from https://old.example.com/sms/status to https://abc.execute-api"),
            "{text}"
        );
        assert!(text.contains("MG2 (\"service MG2\")"), "{text}");
    }

    #[test]
    fn a_service_already_pointing_at_the_stack_needs_no_change() {
        let (current, wanted) = with_services(vec![service("MG3", Some(STATUS_URL))], &["MG3"]);
        let plan = plan(&current, &wanted).unwrap();
        assert_eq!(plan.counted_changes(), 0);
        assert_eq!(label(plan.steps.last().unwrap()), "messaging");
    }

    #[test]
    fn a_password_in_a_callback_url_is_not_printed() {
        let shown = shown_url("https://user:s3cret@old.example.com/status?x=1");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.starts_with("https://user:****@old.example.com/status?x=1"),
            "{shown}"
        );
        assert_eq!(
            shown_url("https://old.example.com/status"),
            "https://old.example.com/status"
        );
    }

    #[test]
    fn a_named_service_setup_did_not_read_is_a_bug_not_a_silent_skip() {
        let (current, wanted) = with_services(vec![], &["MG9"]);
        assert_eq!(
            plan(&current, &wanted),
            Err(PlanError::ServiceNotRead("MG9".into()))
        );
    }
}
