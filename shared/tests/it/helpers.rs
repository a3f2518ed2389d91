//! What the tests share: scratch files, unique names, clients for the emulators.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test (in this run or another helper's) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path to a file that does not exist yet, in a fresh directory.
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("twilio-events-shared-it"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Clients for moto_server (`TWILIO_EVENTS_TEST_MOTO`). Tests fail, never skip, when it is
/// not running.
#[cfg(feature = "aws")]
pub async fn moto_clients() -> (aws_sdk_sqs::Client, aws_sdk_s3::Client) {
    let sdk = moto_sdk().await;
    // moto serves every bucket at one endpoint: path-style addressing, not virtual hosts.
    let s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    (
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_s3::Client::from_conf(s3),
    )
}

/// The SDK configuration of a function whose endpoint is moto_server's (`AWS_ENDPOINT_URL`).
pub async fn moto_sdk() -> aws_config::SdkConfig {
    let endpoint = std::env::var("TWILIO_EVENTS_TEST_MOTO").unwrap_or_else(|_| {
        panic!("TWILIO_EVENTS_TEST_MOTO is not set: start the emulators with infra/scripts/test.sh (or `eval \"$(infra/scripts/services.sh start)\"`)")
    });
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "shared-it",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}
