//! A plain-text progress bar on stderr: redrawn in place on a terminal, one line every few
//! seconds otherwise (a log file stays readable).

use super::deliver::Counters;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub async fn run(counters: Arc<Counters>, total: u64) {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let every = if terminal {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    let started = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let done = counters.finished.load(Ordering::Relaxed);
        let line = render(&counters, total, started.elapsed());
        let mut err = std::io::stderr().lock();
        if terminal {
            let _ = write!(err, "\r{line}\x1b[K");
            if done {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        if done {
            break;
        }
    }
}

fn render(c: &Counters, total: u64, elapsed: Duration) -> String {
    let accepted = c.accepted.load(Ordering::Relaxed);
    let dropped = c.dropped.load(Ordering::Relaxed);
    let finished = accepted + dropped;
    let width = 30u64;
    let filled = (finished * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    let rate = accepted as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "[{}{}] {finished}/{total} deliveries  accepted {accepted}  retried {}  waiting to retry {}  dropped {dropped}  {rate:.0}/s",
        "#".repeat(filled as usize),
        ".".repeat((width - filled) as usize),
        c.retried.load(Ordering::Relaxed),
        c.in_retry.load(Ordering::Relaxed),
    )
}
