//! JSON logs for the Lambda functions, one object a line, which CloudWatch Logs indexes.
//!
//! The level comes from `RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`; default `info`).
//! A level, not a filter expression: the regex engine a full filter needs would add a
//! megabyte to every function package.

/// Installs the JSON subscriber; call once at the top of `main`.
pub fn init_json_logs() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    // Lambda stamps every line itself; a second timestamp is noise.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(false)
        .without_time()
        .try_init();
}
