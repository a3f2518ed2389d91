//! Timelines: one message or call, its statuses in the order they reached the stream, which of
//! them crm-sync's rules (`crm_sync::ports::decide`) push and which they skip as duplicate or
//! stale, the deliveries ingest answered as duplicates (from the console's recent deliveries:
//! Event Streams' JSON ones, whose events read without their URL), and what reached the CRM.

use super::{View, table, time};
use crate::commands::serve::console::html::{esc, url_value};
use crate::commands::serve::console::{Console, ConsoleError, mask};
use crm_sync::ports::{LedgerDecision, LedgerRow, decide};
use crm_sync::update::StatusUpdate;
use std::collections::HashSet;
use twilio_events::CloudEvent;
use twilio_events::event::parse_delivery;

/// How many resources the index lists.
const RECENT: usize = 50;

pub fn page(console: &Console, view: &View) -> Result<String, ConsoleError> {
    let form = format!(
        "<form class=\"filters\" method=\"get\"><label>Message or call SID \
         <input name=\"sid\" value=\"{}\" placeholder=\"SM… or CA…\"></label><button>Show</button></form>",
        esc(view.param("sid").unwrap_or(""))
    );
    match view.param("sid") {
        Some(sid) => one(console, view, sid, &form),
        None => index(console, view, &form),
    }
}

fn index(console: &Console, view: &View, form: &str) -> Result<String, ConsoleError> {
    let mut seen: Vec<String> = Vec::new();
    for record in console.stream()?.iter().rev() {
        let text = String::from_utf8_lossy(&record.data);
        let Ok(event) = CloudEvent::parse(&text) else {
            continue;
        };
        if let Ok(Some(update)) = StatusUpdate::from_event(&event) {
            if !seen.contains(&update.sid) {
                seen.push(update.sid);
            }
        }
        if seen.len() == RECENT {
            break;
        }
    }
    let rows: Vec<String> = seen
        .iter()
        .map(|sid| {
            format!(
                "<tr><td><a href=\"/console/timelines?sid={}\">{}</a></td></tr>",
                url_value(sid),
                esc(&mask::value(sid, view.reveal))
            )
        })
        .collect();
    let body = table(
        &["Recent messages and calls"],
        &rows,
        "No message or call status in the stream yet.",
    );
    Ok(view.render("Timelines", form, Some("data"), &body))
}

fn one(console: &Console, view: &View, sid: &str, form: &str) -> Result<String, ConsoleError> {
    // The ledger as crm-sync builds it, replayed over this resource's statuses in stream order.
    let mut ledger: Option<LedgerRow> = None;
    // (arrival, row): the stream's records and the duplicate deliveries, merged by time.
    let mut rows: Vec<(Option<time::OffsetDateTime>, String)> = Vec::new();
    let mut stored: HashSet<(String, String)> = HashSet::new();
    for record in console.stream()?.iter() {
        let text = String::from_utf8_lossy(&record.data);
        let Ok(event) = CloudEvent::parse(&text) else {
            continue;
        };
        let Ok(Some(update)) = StatusUpdate::from_event(&event) else {
            continue;
        };
        if update.sid != sid {
            continue;
        }
        stored.insert((event.id.to_string(), update.status.clone()));
        let decision = decide(ledger.as_ref(), &update);
        let (class, label) = match decision {
            LedgerDecision::Push => {
                ledger = Some(LedgerRow {
                    state: "pushed".into(),
                    ..LedgerRow::pending(&update)
                });
                ("pushed", "moves it forward: pushed")
            }
            LedgerDecision::Stale => ("stale", "stale: a later status came first"),
            LedgerDecision::Duplicate => ("dup", "duplicate"),
        };
        rows.push((record.arrived_at, format!(
            "<tr class=\"{class}\"><td class=\"num\">{seq}</td><td>{arrived}</td><td><strong>{status}</strong></td>\
             <td>{event_time}</td><td><code>{event_type}</code></td><td>{label}</td><td>{error}</td></tr>",
            seq = esc(&record.sequence_number),
            arrived = record.arrived_at.map(time).unwrap_or_default(),
            status = esc(&update.status),
            event_time = esc(update.event_time.as_deref().unwrap_or("")),
            event_type = esc(&event.event_type),
            error = update.error_code.map(|c| c.to_string()).unwrap_or_default(),
        )));
    }
    rows.extend(duplicates(console, sid, &stored));
    rows.sort_by_key(|(at, _)| *at);
    let rows: Vec<String> = rows.into_iter().map(|(_, row)| row).collect();
    let body = table(
        &[
            "Seq",
            "Arrived (UTC)",
            "Status",
            "Event time",
            "Type",
            "crm-sync",
            "Error code",
        ],
        &rows,
        "No status of this SID in the stream.",
    );
    let pushed = crm_pushes(console, view, sid)?;
    let title = format!("Timeline of {}", mask::value(sid, view.reveal));
    let intro = format!(
        "{form}<p><a href=\"/console/events?sid={}\">Its events</a></p>",
        url_value(sid)
    );
    Ok(view.render(
        &title,
        &intro,
        Some("data"),
        &format!("{body}<h2>Pushed to the CRM</h2>{pushed}"),
    ))
}

/// What crm-sync sent for `sid`: the lines of `crm.jsonl` (without --crm-url), and the ledger's
/// row (what it last settled).
fn crm_pushes(console: &Console, view: &View, sid: &str) -> Result<String, ConsoleError> {
    let rows: Vec<String> = console
        .crm_updates()
        .into_iter()
        .filter(|u| u.sid == sid)
        .map(|u| {
            let to = u.to.as_ref().map(|t| t.0.as_str()).unwrap_or("");
            format!(
                "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&u.status),
                esc(u.event_time.as_deref().unwrap_or("")),
                esc(&mask::value(to, view.reveal)),
                esc(&u.event_id)
            )
        })
        .collect();
    let mut out = table(
        &["Status", "Event time", "To", "Event id"],
        &rows,
        "Nothing in crm.jsonl for it (with --crm-url the updates went to the CRM: see the ledger below).",
    );
    if let Some(row) = console.ledger_row(sid)? {
        out.push_str(&format!(
            "<p>crm-sync's ledger: <strong>{}</strong> ({}), event <code>{}</code></p>",
            esc(&row.status),
            esc(&row.state),
            esc(&row.event_id)
        ));
    }
    Ok(out)
}

/// Rows for the recent deliveries ingest answered with duplicates that carried a status of
/// `sid` already in the stream (by event id, or by status: the dedup identity is the fact).
fn duplicates(
    console: &Console,
    sid: &str,
    stored: &HashSet<(String, String)>,
) -> Vec<(Option<time::OffsetDateTime>, String)> {
    let mut rows = Vec::new();
    for delivery in console.recorder.recent() {
        if !delivery.had_duplicates() || !delivery.path.ends_with(ingest::Route::Events.path()) {
            continue;
        }
        let Some(body) = &delivery.body else { continue };
        let Ok(parsed) = parse_delivery(body) else {
            continue;
        };
        for event in &parsed.events {
            let Ok(Some(update)) = StatusUpdate::from_event(event) else {
                continue;
            };
            let seen = stored
                .iter()
                .any(|(id, status)| *id == *event.id || *status == update.status);
            if update.sid != sid || !seen {
                continue;
            }
            rows.push((
                Some(delivery.at),
                format!(
                    "<tr class=\"dup\"><td><a href=\"/console/deliveries/{id}\">delivery #{id}</a></td><td>{at}</td>\
                     <td><strong>{status}</strong></td><td>{event_time}</td><td><code>{event_type}</code></td>\
                     <td>duplicate: already in the stream, not stored again</td><td></td></tr>",
                    id = delivery.id,
                    at = time(delivery.at),
                    status = esc(&update.status),
                    event_time = esc(update.event_time.as_deref().unwrap_or("")),
                    event_type = esc(&event.event_type),
                ),
            ));
        }
    }
    rows
}
