//! What `serve` prints instead of EMF: running totals, every few seconds while traffic flows.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use twilio_events::metrics::{Metrics, MetricsSink};

/// The counts worth a glance, in this order.
const SHOWN: [&str; 7] = [
    "Received",
    "Accepted",
    "Duplicates",
    "Quarantined",
    "SignatureFailures",
    "PublishFailures",
    "Status5xx",
];

#[derive(Debug, Default)]
pub struct SummarySink {
    totals: Mutex<BTreeMap<String, f64>>,
    last_printed: Mutex<String>,
}

impl MetricsSink for SummarySink {
    fn publish(&self, metrics: &Metrics) {
        let Ok(mut totals) = self.totals.lock() else {
            return;
        };
        for name in SHOWN {
            if let Some(values) = metrics.get(name) {
                *totals.entry(name.to_owned()).or_default() += values.iter().sum::<f64>();
            }
        }
    }
}

impl SummarySink {
    pub fn line(&self) -> String {
        let totals = self.totals.lock().map(|t| t.clone()).unwrap_or_default();
        SHOWN
            .iter()
            .map(|name| format!("{} {}", name, totals.get(*name).copied().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Prints the totals when they changed since the last print.
    pub fn print(&self) {
        let line = self.line();
        if let Ok(mut last) = self.last_printed.lock() {
            if *last != line {
                eprintln!("twilio-events serve: {line}");
                *last = line;
            }
        }
    }

    pub async fn report_every(self: std::sync::Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.print();
        }
    }
}
