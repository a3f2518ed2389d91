//! Carrying out a [`Plan`]: each change is one call (validation a few), made in the plan's
//! order, and printed once done. A schema's latest version is read just before the first change
//! that needs it.

use super::SetupError;
use super::events_api::{EventsApi, Sink};
use super::messaging_api::MessagingApi;
use super::plan::{
    Change, Plan, SinkRef, Step, TypeAt, VersionRef, describe_note, describe_planned, label,
    service_named, shown_url,
};
use super::validation;
use std::collections::HashMap;
use std::fmt;

/// Prints one line of setup's report: the step, then what happened.
pub fn print_step(step: &str, text: impl fmt::Display) {
    println!("{step:<13} {text}");
}

/// Latest schema versions, asked of `GET /Schemas/{Id}` once per schema.
#[derive(Debug, Default)]
pub struct SchemaVersions(HashMap<String, u32>);

impl SchemaVersions {
    pub async fn resolve(
        &mut self,
        api: &EventsApi,
        version: &VersionRef,
        event_type: &str,
    ) -> Result<u32, SetupError> {
        let schema_id = match version {
            VersionRef::Exact(version) => return Ok(*version),
            VersionRef::LatestOf { schema_id } => schema_id,
        };
        if let Some(version) = self.0.get(schema_id) {
            return Ok(*version);
        }
        let version = api.fetch_schema(schema_id).await?.latest_version;
        if version == 0 {
            return Err(SetupError::NoLatestVersion {
                schema_id: schema_id.clone(),
                event_type: event_type.to_owned(),
            });
        }
        self.0.insert(schema_id.clone(), version);
        Ok(version)
    }

    /// Every version the plan's changes name (a dry run shows them).
    pub async fn resolve_all(&mut self, api: &EventsApi, plan: &Plan) -> Result<(), SetupError> {
        for change in plan.changes() {
            let types: &[TypeAt] = match change {
                Change::CreateSubscription { types, .. } => types,
                Change::AddType { type_at, .. } => std::slice::from_ref(type_at),
                _ => &[],
            };
            for t in types {
                self.resolve(api, &t.version, &t.event_type).await?;
            }
        }
        Ok(())
    }

    /// A version as shown: the number once resolved.
    pub fn show(&self, version: &VersionRef) -> String {
        match version {
            VersionRef::Exact(v) => v.to_string(),
            VersionRef::LatestOf { schema_id } => self
                .0
                .get(schema_id)
                .map_or_else(|| format!("latest of {schema_id}"), u32::to_string),
        }
    }
}

/// Prints the plan as a dry run shows it (versions resolved beforehand).
pub fn print_plan(plan: &Plan, versions: &SchemaVersions) {
    for step in &plan.steps {
        let text = match step {
            Step::Note(note) => describe_note(note, &plan.description),
            Step::Change(change) => describe_planned(change, &|v| versions.show(v)),
        };
        print_step(label(step), text);
    }
}

/// Makes the plan's changes, in order; the number of calls that changed something.
pub async fn apply(
    plan: &Plan,
    api: &EventsApi,
    messaging: &MessagingApi,
    versions: &mut SchemaVersions,
    destination: &str,
) -> Result<usize, SetupError> {
    let mut changes = 0;
    // The sink the plan creates, once created.
    let mut created: Option<Sink> = None;
    let sink_sid = |sink: &SinkRef, created: &Option<Sink>| match (sink, created) {
        (SinkRef::Existing { sid, .. }, _) => Ok(sid.clone()),
        (SinkRef::New, Some(sink)) => Ok(sink.sid.clone()),
        (SinkRef::New, None) => Err(SetupError::PlanOrder),
    };
    for step in &plan.steps {
        let change = match step {
            Step::Note(note) => {
                print_step(label(step), describe_note(note, &plan.description));
                continue;
            }
            Step::Change(change) => change,
        };
        let step_label = label(step);
        match change {
            Change::CreateSink {
                description,
                destination,
            } => {
                let sink = api.create_webhook_sink(description, destination).await?;
                changes += 1;
                print_step(
                    step_label,
                    format_args!(
                        "created {} ({}, {}) -> {destination}",
                        sink.sid,
                        sink.sink_type(),
                        sink.status()
                    ),
                );
                created = Some(sink);
            }
            Change::ValidateSink { sink, validation } => {
                let (sid, status) = match (sink, &created) {
                    (SinkRef::Existing { sid, status }, _) => (sid.clone(), status.clone()),
                    (SinkRef::New, Some(new)) if new.is_active() => {
                        print_step(
                            step_label,
                            format_args!("{} is active: nothing to do", new.sid),
                        );
                        continue;
                    }
                    (SinkRef::New, Some(new)) => (new.sid.clone(), new.status().to_owned()),
                    (SinkRef::New, None) => return Err(SetupError::PlanOrder),
                };
                changes +=
                    validation::validate(api, &sid, &status, validation, destination).await?;
            }
            Change::CreateSubscription {
                sink,
                description,
                types,
            } => {
                let sink = sink_sid(sink, &created)?;
                let mut resolved = Vec::with_capacity(types.len());
                for t in types {
                    let version = versions.resolve(api, &t.version, &t.event_type).await?;
                    resolved.push((t.event_type.clone(), version));
                }
                let subscription = api
                    .create_subscription(description, &sink, &resolved)
                    .await?;
                changes += 1;
                let listed = resolved
                    .iter()
                    .map(|(t, v)| format!("{t}@{v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                print_step(
                    step_label,
                    format_args!(
                        "created {} for {sink} with {} types: {listed}",
                        subscription.sid,
                        resolved.len()
                    ),
                );
            }
            Change::AddType {
                subscription,
                type_at,
            } => {
                let version = versions
                    .resolve(api, &type_at.version, &type_at.event_type)
                    .await?;
                api.add_subscribed_event(subscription, &type_at.event_type, version)
                    .await?;
                changes += 1;
                print_step(
                    step_label,
                    format_args!("added {}@{version} to {subscription}", type_at.event_type),
                );
            }
            Change::MoveType {
                subscription,
                event_type,
                from,
                to,
            } => {
                api.update_subscribed_event(subscription, event_type, *to)
                    .await?;
                changes += 1;
                print_step(
                    step_label,
                    format_args!("{event_type} in {subscription}: schema version {from} -> {to}"),
                );
            }
            Change::RemoveType {
                subscription,
                event_type,
                version,
            } => {
                api.delete_subscribed_event(subscription, event_type)
                    .await?;
                changes += 1;
                print_step(
                    step_label,
                    format_args!("removed {event_type}@{version} from {subscription} (--prune)"),
                );
            }
            Change::SetStatusCallback {
                service,
                friendly_name,
                from,
                to,
            } => {
                messaging.set_status_callback(service, to).await?;
                changes += 1;
                let named = service_named(service, friendly_name.as_deref());
                let to = shown_url(to);
                // The old URL is what the team used until now: printed so it can go back.
                let text = match from {
                    Some(from) => format!(
                        "status callback of {named} changed from {} to {to} (to go back, set it to the old URL again)",
                        shown_url(from)
                    ),
                    None => format!("status callback of {named} set to {to} (it had none)"),
                };
                print_step(step_label, text);
            }
        }
    }
    Ok(changes)
}
