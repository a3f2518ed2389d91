//! Deliveries: every request `serve` answered (the last thousand), newest first, live; and one
//! delivery, with the diagnosis of a refused signature.

use super::{View, table, time};
use crate::commands::serve::console::Console;
use crate::commands::serve::console::deliveries::Delivery;
use crate::commands::serve::console::diagnose::{self, Diagnosis};
use crate::commands::serve::console::html::esc;
use crate::commands::serve::console::mask;

fn row(delivery: &Delivery) -> String {
    let outcome = delivery.outcome();
    format!(
        "<tr data-delivery=\"{id}\"><td><a href=\"/console/deliveries/{id}\">#{id}</a></td><td>{at}</td>\
         <td><code>{method} {path}</code></td><td class=\"num\">{status}</td>\
         <td class=\"num\">{ms:.1} ms</td><td class=\"{class}\">{label}</td></tr>",
        id = delivery.id,
        at = time(delivery.at),
        method = esc(&delivery.method),
        path = esc(&delivery.path),
        status = delivery.status,
        ms = delivery.duration.as_secs_f64() * 1000.0,
        class = outcome.class(),
        label = outcome.label(),
    )
}

pub fn list(console: &Console, view: &View) -> String {
    let rows: Vec<String> = console.recorder.recent().iter().map(|d| row(d)).collect();
    let intro = format!(
        "<p>The last {} requests <code>serve</code> answered, newest first. Open a refused \
         signature to read why.</p>",
        super::super::deliveries::CAPACITY
    );
    let body = table(
        &["#", "Time (UTC)", "Request", "Answer", "Took", "Outcome"],
        &rows,
        "No request yet: point Twilio (or `twilio-events simulate`) at this serve.",
    );
    view.render("Deliveries", &intro, Some("deliveries"), &body)
}

fn diagnosis_html(diagnosis: &Diagnosis) -> String {
    let mut out = format!(
        "<h2>Why the signature was refused</h2><div class=\"reason\" id=\"reason\" data-class=\"{}\"><p><strong>{}</strong></p>",
        esc(diagnosis.class),
        esc(&diagnosis.reason)
    );
    if let Some(url) = &diagnosis.verified_against {
        out.push_str(&format!(
            "<p>serve verified against <code id=\"verified-url\">{}</code></p>",
            esc(url)
        ));
    }
    if let Some(candidate) = &diagnosis.matches {
        out.push_str(&format!(
            "<p>The signature matches <code id=\"matching-url\">{}</code>: {}</p>",
            esc(&candidate.url),
            esc(&candidate.differs_by)
        ));
    }
    if let Some(hash) = &diagnosis.body_hash {
        out.push_str(&format!(
            "<p>Body hash: the URL says <code>{}</code>, the body's SHA-256 is <code>{}</code> ({})</p>",
            esc(&hash.in_url),
            esc(&hash.of_body),
            if hash.matches() { "they match" } else { "they differ" }
        ));
    }
    out.push_str("<h3>What to check</h3><ol>");
    for advice in &diagnosis.advice {
        out.push_str(&format!("<li>{}</li>", esc(advice)));
    }
    out.push_str("</ol></div>");
    out
}

/// One delivery; `None` when it is not (or no longer) kept.
pub fn one(console: &Console, view: &View, id: u64) -> Option<String> {
    let delivery = console.recorder.get(id)?;
    let outcome = delivery.outcome();
    let mut content = format!(
        "<table><tr><th>Time (UTC)</th><td>{}</td></tr><tr><th>Request</th><td><code>{} {}</code></td></tr>\
         <tr><th>Query</th><td><code>{}</code></td></tr>\
         <tr><th>Answer</th><td>{} <code>{}</code></td></tr><tr><th>Took</th><td>{:.1} ms</td></tr>\
         <tr><th>Outcome</th><td class=\"{}\">{}</td></tr></table>",
        time(delivery.at),
        esc(&delivery.method),
        esc(&delivery.path),
        esc(delivery.query.as_deref().unwrap_or("")),
        delivery.status,
        esc(&mask::payload(&delivery.answer, view.reveal)),
        delivery.duration.as_secs_f64() * 1000.0,
        outcome.class(),
        outcome.label()
    );
    if let Some(refused) = &delivery.refused {
        let context = diagnose::Context {
            verifier: &console.verifier,
            settings: &console.settings,
            local: console.local,
        };
        if let Some(diagnosis) = diagnose::diagnose(&delivery, &context) {
            content.push_str(&diagnosis_html(&diagnosis));
        }
        content.push_str(&format!(
            "<p>Content-Type: <code>{}</code></p>",
            esc(refused.content_type.as_deref().unwrap_or("none"))
        ));
    }
    match &delivery.body {
        Some(body) => content.push_str(&format!(
            "<h2>Body as received</h2><pre>{}</pre>",
            esc(&mask::payload(&String::from_utf8_lossy(body), view.reveal))
        )),
        None => content.push_str("<p class=\"empty\">Body not kept (over 64 KiB).</p>"),
    }
    content.push_str("<p><a href=\"/console/deliveries\">All deliveries</a></p>");
    Some(view.render(&format!("Delivery #{id}"), &content, None, ""))
}
