//! Quarantine: each item and why it is there; replay it into the pipeline once the cause is
//! fixed, or discard it. Both are recorded in `<data-dir>/console-actions.jsonl`, shown below
//! the items.

use super::{View, table};
use crate::commands::serve::console::html::{esc, url_value};
use crate::commands::serve::console::{Console, ConsoleError, mask};

pub fn page(console: &Console, view: &View) -> Result<String, ConsoleError> {
    let contents = console
        .quarantine
        .contents()
        .map_err(ConsoleError::Quarantine)?;
    let rows: Vec<String> = contents
        .values
        .iter()
        .rev()
        .map(|item| {
            let actions = if item.id.is_empty() {
                "<span class=\"empty\">no id (an old line)</span>".to_owned()
            } else {
                let id = url_value(&item.id);
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/console/quarantine/{id}/replay\">\
                     <button name=\"do\" value=\"replay\" data-replay=\"{id}\">Replay</button></form> \
                     <form class=\"inline\" method=\"post\" action=\"/console/quarantine/{id}/discard\">\
                     <button name=\"do\" value=\"discard\" data-discard=\"{id}\">Discard</button></form>"
                )
            };
            format!(
                "<tr data-item=\"{id}\"><td>{at}</td><td>{source}</td><td><strong>{reason}</strong><br>{detail}</td>\
                 <td><details><summary><code>{short}</code></summary><pre>{payload}</pre></details></td><td>{actions}</td></tr>",
                id = esc(&item.id),
                at = esc(&item.quarantined_at),
                source = esc(&item.source),
                reason = esc(&item.reason),
                detail = esc(&mask::value(&item.detail, view.reveal)),
                short = esc(item.id.get(..12).unwrap_or(&item.id)),
                payload = esc(&mask::payload(&item.payload, view.reveal)),
            )
        })
        .collect();
    let mut items = table(
        &["Quarantined at", "Source", "Reason", "Payload", ""],
        &rows,
        "The quarantine is empty.",
    );
    if contents.skipped > 0 {
        items.push_str(&format!(
            "<p class=\"warn\">{} line(s) of the file could not be read (torn by a crash).</p>",
            contents.skipped
        ));
    }
    let log: Vec<String> = console
        .actions()
        .iter()
        .rev()
        .map(|a| {
            format!(
                "<tr data-action=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&a.action),
                esc(&a.at),
                esc(&a.action),
                esc(a.item.get(..12).unwrap_or(&a.item)),
                esc(&a.outcome)
            )
        })
        .collect();
    let log = table(
        &["When (UTC)", "Action", "Item", "Outcome"],
        &log,
        "Nothing replayed or discarded yet.",
    );
    let intro = format!(
        "<p>What could not be processed, kept whole in <code>{}</code>. Replay sends an item's \
         payload through ingest's storing path (deduplicated, then the stream) and removes it \
         once stored; discard removes it.</p>",
        esc(&console.quarantine.path().display().to_string())
    );
    Ok(view.render(
        "Quarantine",
        &intro,
        Some("data"),
        &format!("{items}<h2>Replayed and discarded</h2>{log}"),
    ))
}
