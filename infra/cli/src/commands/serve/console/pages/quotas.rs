//! Quotas: each quota's use in its current window against its thresholds, the forecast of when
//! its limit is hit, and the alerts sent — all with quota-alert's own window and forecast code
//! (`quota_alert::window`) and counters (`<data-dir>/quota-alert.sqlite`).

use super::{View, table};
use crate::commands::serve::console::html::esc;
use crate::commands::serve::console::{Console, ConsoleError};
use quota_alert::Alert;
use quota_alert::adapters::sqlite::SqliteUsageCounter;
use quota_alert::ports::UsageCounter;
use quota_alert::processor::counter_key;
use quota_alert::window::{WindowSpan, forecast_exhausted_at, rfc3339};
use quota_alert::{Quota, Quotas};

pub async fn page(console: &Console, view: &View) -> Result<String, ConsoleError> {
    let Some(file) = &console.quotas else {
        let body = "<p class=\"empty\">No quotas: start serve with <code>--quotas FILE</code> \
                    (docs/operations.md) to watch them.</p>";
        return Ok(view.render("Quotas", "", None, body));
    };
    let quotas = Quotas::from_file(file).map_err(ConsoleError::Quotas)?;
    let counter =
        SqliteUsageCounter::open(&quota_alert::startup::local_counter_path(&console.data_dir))
            .map_err(|e| ConsoleError::Counter(Box::new(e)))?;
    let alerts: Vec<Alert> = console.alerts();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut rows = Vec::new();
    for quota in quotas.iter() {
        rows.push(row(quota, &counter, &alerts, now).await?);
    }
    let body = table(
        &[
            "Quota",
            "Counts",
            "Window (UTC)",
            "Used",
            "Limit",
            "Thresholds",
            "Forecast: limit hit at",
            "Alerts sent",
        ],
        &rows,
        "The quotas file lists no quota.",
    );
    let intro = format!(
        "<p>Quotas from <code>{}</code>; use counted by quota-alert from the stream.</p>",
        esc(&file.display().to_string())
    );
    let sent: Vec<String> = alerts
        .iter()
        .rev()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}%</td><td>{}</td></tr>",
                esc(&a.event_time),
                esc(&a.quota),
                a.utilization_percent.round(),
                esc(&a.summary)
            )
        })
        .collect();
    let history = table(
        &["Event time", "Quota", "Use", "Alert"],
        &sent,
        "No alert sent.",
    );
    Ok(view.render(
        "Quotas",
        &intro,
        Some("data"),
        &format!("{body}<h2>Alerts sent</h2>{history}"),
    ))
}

async fn row(
    quota: &Quota,
    counter: &SqliteUsageCounter,
    alerts: &[Alert],
    now: i64,
) -> Result<String, ConsoleError> {
    let span = WindowSpan::at(quota.window, now);
    let window = format!(
        "{} ({} → {})",
        quota.window,
        rfc3339(span.start),
        span.end.map_or_else(|| "rolling".to_owned(), rfc3339)
    );
    let sent: Vec<&Alert> = alerts.iter().filter(|a| a.quota == quota.name).collect();
    let thresholds: Vec<String> = quota
        .thresholds
        .iter()
        .map(|t| format!("{}%", (t * 100.0).round()))
        .collect();
    let (used, forecast, bar) = if quota.counts.is_gauge() {
        // A gauge's level comes with each event; the last alert says where it stood.
        let last = sent.last().map(|a| a.used);
        (
            last.map_or_else(|| "—".to_owned(), |u| format!("{u} (last alert)")),
            "—".to_owned(),
            String::new(),
        )
    } else {
        let used = counter
            .usage(&counter_key(quota), span.first_bucket, span.last_bucket)
            .await
            .map_err(|e| ConsoleError::Counter(Box::new(e)))?;
        let (forecast, bar) = match quota.limit {
            Some(limit) if limit > 0.0 => {
                let forecast = forecast_exhausted_at(used, limit, &span, now)
                    .map_or_else(|| "not in this window".to_owned(), rfc3339);
                let percent = used / limit * 100.0;
                (
                    forecast,
                    format!(
                        " <meter min=\"0\" max=\"{limit}\" value=\"{used}\" title=\"{percent:.0}%\"></meter> {percent:.0}%"
                    ),
                )
            }
            _ => ("—".to_owned(), String::new()),
        };
        (used.to_string(), forecast, bar)
    };
    Ok(format!(
        "<tr data-quota=\"{name}\" data-alerts=\"{alerts}\"><td><strong>{name}</strong>{account}</td><td>{counts}</td><td>{window}</td>\
         <td class=\"num\">{used}{bar}</td><td class=\"num\">{limit}</td><td>{thresholds}</td><td>{forecast}</td>\
         <td class=\"num\">{alerts}</td></tr>",
        name = esc(&quota.name),
        account = quota
            .account
            .as_deref()
            .map(|a| format!(" <span class=\"badge\">{}</span>", esc(a)))
            .unwrap_or_default(),
        counts = esc(quota.counts.as_str()),
        window = esc(&window),
        used = esc(&used),
        limit = quota
            .limit
            .map(|l| l.to_string())
            .unwrap_or_else(|| "the event's".into()),
        thresholds = esc(&thresholds.join(", ")),
        forecast = esc(&forecast),
        alerts = sent.len(),
    ))
}
