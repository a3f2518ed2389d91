//! The SASL login read from Secrets Manager (moto_server), as the Lambda's start reads it.

use kafka_forward::config::{Config, SaslMechanism};
use kafka_forward::startup::{StartupError, connection};
use twilio_events_testkit::aws::{moto_endpoint, sdk_config, unique};

async fn secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    client
        .create_secret()
        .name(unique("kafka-login"))
        .secret_string(value)
        .send()
        .await
        .expect("create the secret in moto")
        .arn()
        .unwrap_or_default()
        .to_owned()
}

fn config(mechanism: &str, secret_arn: &str) -> Config {
    let vars = [
        ("KAFKA_BOOTSTRAP_SERVERS", "b-1.example:9096"),
        ("KAFKA_TOPIC", "twilio-events"),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", mechanism),
        ("KAFKA_CREDENTIALS_SECRET_ARN", secret_arn),
        ("QUARANTINE_QUEUE_URL", "https://sqs/q"),
    ];
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("a valid configuration")
}

#[tokio::test]
async fn scram_and_plain_logins_come_from_the_secret_and_a_bad_secret_is_named_never_shown() {
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config(&moto_endpoint()).await);
    // GIVEN MSK's SCRAM secret format
    let arn = secret(
        &client,
        r#"{"username": "forwarder", "password": "pa55-word"}"#,
    )
    .await;
    // WHEN the connection is resolved for SCRAM-SHA-512 and for PLAIN
    let scram = connection(&config("SCRAM-SHA-512", &arn), &client)
        .await
        .unwrap();
    let plain = connection(&config("PLAIN", &arn), &client).await.unwrap();
    // THEN the login is the secret's, under the mechanism's Kafka name
    let Some(SaslMechanism::Scram {
        sha512: true,
        login,
    }) = &scram.sasl
    else {
        panic!("{scram:?}")
    };
    assert_eq!(
        (login.username.as_str(), login.password.expose()),
        ("forwarder", "pa55-word")
    );
    assert_eq!(
        scram.sasl.as_ref().map(SaslMechanism::kafka_name),
        Some("SCRAM-SHA-512")
    );
    assert_eq!(
        plain.sasl.as_ref().map(SaslMechanism::kafka_name),
        Some("PLAIN")
    );
    // AND neither the connection's Debug nor anything else prints the password
    assert!(!format!("{scram:?}").contains("pa55-word"));

    // GIVEN a secret that is not a login, and one that does not exist
    let wrong = secret(&client, r#"{"user": "forwarder", "password": "pa55-word"}"#).await;
    // WHEN the connection is resolved
    let error = connection(&config("SCRAM-SHA-512", &wrong), &client)
        .await
        .unwrap_err();
    // THEN the start fails naming the secret and the missing field, never the value
    assert!(matches!(error, StartupError::NotALogin { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&wrong) && message.contains("username"),
        "{message}"
    );
    assert!(!message.contains("pa55-word"), "{message}");
    let missing = format!("{arn}-gone");
    let error = connection(&config("PLAIN", &missing), &client)
        .await
        .unwrap_err();
    assert!(matches!(error, StartupError::Secret(_)), "{error}");
    // AND MSK IAM reads no secret at all
    let iam = Config {
        sasl_mechanism: Some(kafka_forward::config::SaslMechanismName::AwsMskIam),
        credentials_secret_arn: Some(missing),
        ..config("PLAIN", &arn)
    };
    assert_eq!(
        connection(&iam, &client).await.unwrap().sasl,
        Some(SaslMechanism::MskIam)
    );
}
