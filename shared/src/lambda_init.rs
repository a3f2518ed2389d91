//! What a function does when it cannot start: one JSON log line with the error (which names the
//! setting to fix), and the error reported to the Lambda Runtime API's `/runtime/init/error`,
//! so that Lambda marks the init as failed (`Runtime.InitError` in the invocation's answer and
//! in the function's metrics) instead of seeing a process that exited without a word.
//!
//! `lambda_runtime` reports init errors only for SnapStart hooks; our init (configuration,
//! secrets, clients) runs before the runtime starts, so it is reported here.

use serde::Serialize;
use std::fmt::Display;

/// The JSON body the Runtime API takes (`errorType`, `errorMessage`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitError<'a> {
    error_type: &'a str,
    error_message: String,
}

/// Runs `init`; on failure logs it and reports it to the Runtime API, then hands the error
/// back so that `main` exits with it.
pub async fn or_report_init_error<T, E: Display>(
    error_type: &str,
    init: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let result = init.await;
    if let Err(error) = &result {
        tracing::error!(error = %error, error_type, "the function cannot start");
        report(error_type, error.to_string()).await;
    }
    result
}

async fn report(error_type: &str, error_message: String) {
    // Outside Lambda (a unit test, a plain run) there is no Runtime API to tell.
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = InitError {
        error_type,
        error_message,
    };
    // Lambda gives `host:port`; emulators may give a URL with a base path, as the runtime accepts.
    let endpoint = if api.starts_with("http://") || api.starts_with("https://") {
        api
    } else {
        format!("http://{api}")
    };
    let sent = async {
        let client = lambda_runtime_api_client::Client::builder()
            .with_endpoint(endpoint.parse()?)
            .build()?;
        let request = lambda_runtime_api_client::build_request()
            .method(http::Method::POST)
            .uri("/2018-06-01/runtime/init/error")
            .header("lambda-runtime-function-error-type", "Runtime.InitError")
            .body(serde_json::to_vec(&body)?.into())?;
        let response = client.call(request).await?;
        Ok::<_, lambda_runtime_api_client::BoxError>(response.status())
    }
    .await;
    match sent {
        Ok(status) if status.is_success() => {}
        Ok(status) => tracing::error!(%status, "the Runtime API refused the init error report"),
        Err(error) => tracing::error!(%error, "could not report the init error to the Runtime API"),
    }
}
