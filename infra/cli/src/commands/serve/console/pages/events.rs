//! Events: the local stream, newest first, filterable by type, SID and arrival time; each
//! event's JSON as it was stored.

use super::{View, table, time};
use crate::commands::serve::console::html::{esc, url_value};
use crate::commands::serve::console::{Console, ConsoleError, mask};
use twilio_events::CloudEvent;

/// The most events a page lists.
const SHOWN: usize = 200;

pub fn list(console: &Console, view: &View) -> Result<String, ConsoleError> {
    let kind = view.param("type");
    let sid = view.param("sid");
    // `datetime-local` inputs give `2026-11-30T11:20`; arrival times compare as text.
    let from = view.param("from").map(|t| t.replace('T', " "));
    let to = view.param("to").map(|t| t.replace('T', " "));
    let mut rows = Vec::new();
    let records = console.stream()?;
    for record in records.iter().rev() {
        let arrived = record.arrived_at.map(time).unwrap_or_default();
        if from.as_deref().is_some_and(|f| arrived.as_str() < f)
            || to.as_deref().is_some_and(|t| arrived.as_str() > t)
        {
            continue;
        }
        let text = String::from_utf8_lossy(&record.data);
        let parsed = CloudEvent::parse(&text).ok();
        let summary = parsed.as_ref().map(CloudEvent::summary);
        let event_type = summary.as_ref().map_or("", |s| s.event_type);
        let resource = summary
            .as_ref()
            .map_or(record.partition_key.as_str(), |s| s.resource);
        if kind.is_some_and(|k| !event_type.contains(k))
            || sid.is_some_and(|s| resource != s && !text.contains(s))
        {
            continue;
        }
        rows.push(format!(
            "<tr data-event=\"{id}\"><td class=\"num\">{seq}</td><td>{arrived}</td><td><code>{event_type}</code></td>\
             <td><a href=\"/console/timelines?sid={sid_link}\">{resource}</a></td><td>{status}</td>\
             <td><details><summary>{id}</summary><pre>{json}</pre></details></td></tr>",
            seq = esc(&record.sequence_number),
            event_type = esc(event_type),
            sid_link = url_value(resource),
            resource = esc(&mask::value(resource, view.reveal)),
            status = esc(summary.as_ref().and_then(|s| s.status).unwrap_or("")),
            id = esc(summary.as_ref().map_or("", |s| s.id)),
            json = esc(&mask::payload(&text, view.reveal)),
        ));
        if rows.len() == SHOWN {
            break;
        }
    }
    let value = |name: &str| esc(view.param(name).unwrap_or(""));
    let intro = format!(
        "<form class=\"filters\" method=\"get\">\
         <label>Type contains <input name=\"type\" value=\"{}\" placeholder=\"message.delivered\"></label>\
         <label>SID <input name=\"sid\" value=\"{}\" placeholder=\"SM…\"></label>\
         <label>From <input type=\"datetime-local\" name=\"from\" value=\"{}\"></label>\
         <label>To <input type=\"datetime-local\" name=\"to\" value=\"{}\"></label>\
         <button>Filter</button></form><p>The stream in <code>{}</code>, newest first (at most {SHOWN}).</p>",
        value("type"),
        value("sid"),
        value("from"),
        value("to"),
        esc(&console.data_dir.display().to_string()),
    );
    let body = table(
        &[
            "Seq",
            "Arrived (UTC)",
            "Type",
            "Resource",
            "Status",
            "Event (JSON as stored)",
        ],
        &rows,
        "No event matches.",
    );
    Ok(view.render("Events", &intro, Some("data"), &body))
}
