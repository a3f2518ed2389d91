//! The Salesforce adapter against a local server that behaves as Salesforce's REST API does:
//! a client-credentials token endpoint, upsert by external id, 401 when the session expired.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use crm_sync::{
    Crm, CrmError, ResourceKind, SalesforceCrm, SalesforceSettings, Secret, StatusUpdate,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Org {
    url: Mutex<String>,
    tokens_issued: Mutex<usize>,
    /// The token currently valid; earlier ones get 401.
    valid: Mutex<String>,
    records: Mutex<HashMap<String, serde_json::Value>>,
    paths: Mutex<Vec<String>>,
    limit_exceeded: Mutex<bool>,
}

async fn token(State(org): State<Arc<Org>>, body: String) -> Response {
    // The values used here need no percent-decoding.
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_id").map(String::as_str) != Some("app")
        || form.get("client_secret").map(String::as_str) != Some("shh")
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut issued = org.tokens_issued.lock().unwrap();
    *issued += 1;
    let token = format!("00D!token{issued}");
    *org.valid.lock().unwrap() = token.clone();
    let url = org.url.lock().unwrap().clone();
    axum::Json(serde_json::json!({"access_token": token, "instance_url": url, "token_type": "Bearer",
        "id": "https://login.salesforce.com/id/00D/005", "issued_at": "1714557600000", "signature": "x"}))
    .into_response()
}

async fn upsert(
    State(org): State<Arc<Org>>,
    Path((version, object, field, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let bearer = format!("Bearer {}", org.valid.lock().unwrap());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]))).into_response();
    }
    if *org.limit_exceeded.lock().unwrap() {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(
                serde_json::json!([{"message": "limit", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
            ),
        )
            .into_response();
    }
    if body.get("Bogus__c").is_some() || version != "v60.0" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                serde_json::json!([{"message": "No such column", "errorCode": "INVALID_FIELD"}]),
            ),
        )
            .into_response();
    }
    org.paths
        .lock()
        .unwrap()
        .push(format!("{object}/{field}/{id}"));
    match org.records.lock().unwrap().insert(id.clone(), body) {
        None => (
            StatusCode::CREATED,
            axum::Json(
                serde_json::json!({"id": "a00", "success": true, "errors": [], "created": true}),
            ),
        )
            .into_response(),
        Some(_) => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn org() -> (Arc<Org>, String) {
    let org = Arc::new(Org::default());
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{id}",
            patch(upsert),
        )
        .with_state(org.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    *org.url.lock().unwrap() = url.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (org, url)
}

fn update(kind: ResourceKind, sid: &str, status: &str) -> StatusUpdate {
    StatusUpdate {
        sid: sid.into(),
        kind,
        status: status.into(),
        rank: 6,
        error_code: Some(30003),
        from: None,
        to: None,
        account_sid: None,
        event_id: format!("EZ{sid}{status}"),
        event_time: Some("2024-05-01T10:00:00.000Z".into()),
    }
}

#[tokio::test]
async fn upserts_by_external_id_with_a_cached_token_refreshed_on_401() {
    // GIVEN an org and an adapter with a custom message object
    let (org, url) = org().await;
    let mut settings = SalesforceSettings::with_defaults(&url, "app", Secret::new("shh"));
    settings.message_object = "SMS__c".into();
    let crm = SalesforceCrm::new(settings).unwrap();
    // WHEN two messages and a call are upserted
    crm.push(&update(ResourceKind::Message, "SM0123456789abcdef", "sent"))
        .await
        .unwrap();
    crm.push(&update(
        ResourceKind::Message,
        "SM0123456789abcdef",
        "undelivered",
    ))
    .await
    .unwrap();
    crm.push(&update(
        ResourceKind::Call,
        "CA0123456789abcdef",
        "completed",
    ))
    .await
    .unwrap();
    // THEN one token served them all, and each went to its object's external id
    assert_eq!(*org.tokens_issued.lock().unwrap(), 1);
    assert_eq!(
        *org.paths.lock().unwrap(),
        [
            "SMS__c/Message_Sid__c/SM0123456789abcdef",
            "SMS__c/Message_Sid__c/SM0123456789abcdef",
            "Twilio_Call__c/Call_Sid__c/CA0123456789abcdef"
        ]
    );
    let record = org.records.lock().unwrap()["SM0123456789abcdef"].clone();
    assert_eq!(
        record,
        serde_json::json!({"Status__c": "undelivered", "Status_Rank__c": 6, "Error_Code__c": 30003,
        "Status_Time__c": "2024-05-01T10:00:00.000Z", "Last_Event_Id__c": "EZSM0123456789abcdefundelivered"})
    );

    // GIVEN the session expires (another token was issued elsewhere)
    *org.valid.lock().unwrap() = "revoked-elsewhere".into();
    // WHEN the next upsert gets 401
    crm.push(&update(ResourceKind::Call, "CA0123456789abcdef", "busy"))
        .await
        .unwrap();
    // THEN a new token was fetched and the upsert retried once, successfully
    assert_eq!(*org.tokens_issued.lock().unwrap(), 2);
    assert_eq!(
        org.records.lock().unwrap()["CA0123456789abcdef"]["Status__c"],
        "busy"
    );
}

#[tokio::test]
async fn limits_are_retried_and_bad_fields_are_refused() {
    let (org, url) = org().await;
    // GIVEN the org's API limit is exhausted WHEN upserting THEN it is throttling, retried
    *org.limit_exceeded.lock().unwrap() = true;
    let crm = SalesforceCrm::new(SalesforceSettings::with_defaults(
        &url,
        "app",
        Secret::new("shh"),
    ))
    .unwrap();
    let e = crm
        .push(&update(ResourceKind::Message, "SM0123456789abcdef", "sent"))
        .await
        .unwrap_err();
    assert_eq!(e.class(), "throttled");
    // GIVEN a field the org does not have WHEN upserting THEN the update is refused for good
    *org.limit_exceeded.lock().unwrap() = false;
    let mut settings = SalesforceSettings::with_defaults(&url, "app", Secret::new("shh"));
    settings.event_id_field = Some("Bogus__c".into());
    let e = SalesforceCrm::new(settings)
        .unwrap()
        .push(&update(ResourceKind::Message, "SM0123456789abcdef", "sent"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CrmError::Rejected { status: 400, detail } if detail.contains("INVALID_FIELD")),
        "{e:?}"
    );
    // GIVEN a wrong client secret WHEN upserting THEN it is an auth error, retried, not quarantined
    let e = SalesforceCrm::new(SalesforceSettings::with_defaults(
        &url,
        "app",
        Secret::new("wrong"),
    ))
    .unwrap()
    .push(&update(ResourceKind::Message, "SM0123456789abcdef", "sent"))
    .await
    .unwrap_err();
    assert!(e.is_retryable() && e.class() == "auth", "{e:?}");
    assert!(!format!("{e}").contains("wrong"));
}
