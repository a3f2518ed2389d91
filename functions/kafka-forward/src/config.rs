//! Everything the function reads from its environment, read once at start into [`Config`]
//! (functions/kafka-forward/README.md lists the variables), and the connection it resolves to
//! ([`KafkaConnection`], with the SASL login read from Secrets Manager by [`crate::startup`]).
//! The AWS SDK reads its own variables (`AWS_REGION`…) and the logger `RUST_LOG`.

use std::fmt;

/// How the client talks to the brokers (Kafka's `security.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `KAFKA_SASL_MECHANISM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanismName {
    Plain,
    ScramSha256,
    ScramSha512,
    /// SASL/OAUTHBEARER with a token signed by the function's role (MSK, MSK Serverless).
    AwsMskIam,
}

impl SaslMechanismName {
    const ALL: [(&'static str, Self); 4] = [
        ("PLAIN", Self::Plain),
        ("SCRAM-SHA-256", Self::ScramSha256),
        ("SCRAM-SHA-512", Self::ScramSha512),
        ("AWS_MSK_IAM", Self::AwsMskIam),
    ];

    pub fn needs_login(self) -> bool {
        !matches!(self, Self::AwsMskIam)
    }
}

/// The function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `KAFKA_BOOTSTRAP_SERVERS`: `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// `KAFKA_TOPIC`.
    pub topic: String,
    /// `KAFKA_SECURITY_PROTOCOL` (default `SSL`).
    pub security_protocol: SecurityProtocol,
    /// `KAFKA_SASL_MECHANISM`: required with a SASL protocol, refused without one.
    pub sasl_mechanism: Option<SaslMechanismName>,
    /// `KAFKA_CREDENTIALS_SECRET_ARN`: `{"username": …, "password": …}` for PLAIN and SCRAM.
    pub credentials_secret_arn: Option<String>,
    /// `QUARANTINE_QUEUE_URL`: the SQS queue for records that are not CloudEvents.
    pub quarantine_queue_url: String,
    /// `QUARANTINE_BUCKET` (optional): where items too large for an SQS message go.
    pub quarantine_bucket: Option<String>,
}

/// A variable is missing, malformed or contradicts another; the message names it and the fix.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable} is not set: {fix} (see functions/kafka-forward/README.md)")]
    Missing {
        variable: &'static str,
        fix: &'static str,
    },
    #[error("{variable} is {value:?}: {fix}")]
    Invalid {
        variable: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error(
        "KAFKA_SECURITY_PROTOCOL is {protocol} but KAFKA_SASL_MECHANISM is set: use SASL_SSL \
         (or SASL_PLAINTEXT) with a SASL mechanism, or unset KAFKA_SASL_MECHANISM"
    )]
    MechanismWithoutSasl { protocol: &'static str },
    #[error(
        "AWS_MSK_IAM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL: MSK accepts IAM authentication \
         only over TLS (port 9098)"
    )]
    MskIamWithoutTls,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable lookup (tests pass a list). Blank values count as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |variable: &'static str, fix: &'static str| {
            var(variable).ok_or(ConfigError::Missing { variable, fix })
        };
        let bootstrap_servers = required(
            "KAFKA_BOOTSTRAP_SERVERS",
            "set it to the brokers' host:port list (MSK: the cluster's bootstrap brokers string)",
        )?;
        if !bootstrap_servers.split(',').all(is_host_port) {
            return Err(ConfigError::Invalid {
                variable: "KAFKA_BOOTSTRAP_SERVERS",
                value: bootstrap_servers,
                fix: "give host:port pairs separated by commas, e.g. b-1.example:9098,b-2.example:9098",
            });
        }
        let topic = required("KAFKA_TOPIC", "set it to the topic the events go to")?;
        let security_protocol = match var("KAFKA_SECURITY_PROTOCOL").as_deref() {
            None => SecurityProtocol::Ssl,
            Some(value) => parse_protocol(value)?,
        };
        let sasl_mechanism = var("KAFKA_SASL_MECHANISM")
            .map(|value| {
                SaslMechanismName::ALL
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&value))
                    .map(|(_, m)| *m)
                    .ok_or(ConfigError::Invalid {
                        variable: "KAFKA_SASL_MECHANISM",
                        value,
                        fix: "use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM",
                    })
            })
            .transpose()?;
        match (security_protocol.uses_sasl(), sasl_mechanism) {
            (true, None) => {
                return Err(ConfigError::Missing {
                    variable: "KAFKA_SASL_MECHANISM",
                    fix: "a SASL protocol needs a mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM",
                });
            }
            (false, Some(_)) => {
                return Err(ConfigError::MechanismWithoutSasl {
                    protocol: security_protocol.as_str(),
                });
            }
            (_, Some(SaslMechanismName::AwsMskIam))
                if security_protocol != SecurityProtocol::SaslSsl =>
            {
                return Err(ConfigError::MskIamWithoutTls);
            }
            _ => {}
        }
        let credentials_secret_arn = var("KAFKA_CREDENTIALS_SECRET_ARN");
        if sasl_mechanism.is_some_and(SaslMechanismName::needs_login)
            && credentials_secret_arn.is_none()
        {
            return Err(ConfigError::Missing {
                variable: "KAFKA_CREDENTIALS_SECRET_ARN",
                fix: "PLAIN and SCRAM need a Secrets Manager secret {\"username\": …, \"password\": …}",
            });
        }
        Ok(Self {
            bootstrap_servers,
            topic,
            security_protocol,
            sasl_mechanism,
            credentials_secret_arn,
            quarantine_queue_url: required(
                "QUARANTINE_QUEUE_URL",
                "set it to the URL of the SQS queue for malformed records",
            )?,
            quarantine_bucket: var("QUARANTINE_BUCKET"),
        })
    }
}

fn parse_protocol(value: &str) -> Result<SecurityProtocol, ConfigError> {
    [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .find(|p| p.as_str().eq_ignore_ascii_case(value))
    .ok_or_else(|| ConfigError::Invalid {
        variable: "KAFKA_SECURITY_PROTOCOL",
        value: value.to_owned(),
        fix: "use SSL, SASL_SSL, PLAINTEXT or SASL_PLAINTEXT",
    })
}

fn is_host_port(server: &str) -> bool {
    server
        .trim()
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// A SASL password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: String) -> Self {
        Self(password)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A SASL username and password (`KAFKA_CREDENTIALS_SECRET_ARN`'s document).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Login {
    pub username: String,
    #[serde(deserialize_with = "password")]
    pub password: Password,
}

fn password<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(Password)
}

/// The SASL mechanism with what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain(Login),
    Scram { sha512: bool, login: Login },
    MskIam,
}

impl SaslMechanism {
    /// Kafka's name for it (`sasl.mechanism`).
    pub fn kafka_name(&self) -> &'static str {
        match self {
            Self::Plain(_) => "PLAIN",
            Self::Scram { sha512: false, .. } => "SCRAM-SHA-256",
            Self::Scram { sha512: true, .. } => "SCRAM-SHA-512",
            Self::MskIam => "OAUTHBEARER",
        }
    }
}

/// Where the events go and how to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConnection {
    pub bootstrap_servers: String,
    pub topic: String,
    pub security_protocol: SecurityProtocol,
    pub sasl: Option<SaslMechanism>,
}

impl KafkaConnection {
    /// A broker without TLS or SASL (a local Kafka, `twilio-events serve --kafka-brokers`).
    pub fn plaintext(bootstrap_servers: &str, topic: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.to_owned(),
            topic: topic.to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut all = vec![
            (
                "KAFKA_BOOTSTRAP_SERVERS",
                "b-1.example:9098,b-2.example:9098",
            ),
            ("KAFKA_TOPIC", "twilio-events"),
            ("QUARANTINE_QUEUE_URL", "https://sqs/q"),
        ];
        all.extend_from_slice(vars);
        Config::from_lookup(|name| {
            all.iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn tls_is_the_default_and_msk_iam_needs_no_secret() {
        let c = config(&[]).unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::Ssl);
        assert_eq!(c.sasl_mechanism, None);
        let c = config(&[
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM"),
        ])
        .unwrap();
        assert_eq!(c.sasl_mechanism, Some(SaslMechanismName::AwsMskIam));
    }

    #[test]
    fn contradictions_and_gaps_name_the_variable_to_fix() {
        assert!(matches!(
            config(&[("KAFKA_TOPIC", " ")]),
            Err(ConfigError::Missing {
                variable: "KAFKA_TOPIC",
                ..
            })
        ));
        assert!(matches!(
            config(&[("KAFKA_BOOTSTRAP_SERVERS", "b-1.example")]),
            Err(ConfigError::Invalid {
                variable: "KAFKA_BOOTSTRAP_SERVERS",
                ..
            })
        ));
        assert!(matches!(
            config(&[("KAFKA_SECURITY_PROTOCOL", "TLS")]),
            Err(ConfigError::Invalid {
                variable: "KAFKA_SECURITY_PROTOCOL",
                ..
            })
        ));
        assert!(matches!(
            config(&[("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")]),
            Err(ConfigError::Missing {
                variable: "KAFKA_SASL_MECHANISM",
                ..
            })
        ));
        assert_eq!(
            config(&[("KAFKA_SASL_MECHANISM", "PLAIN")]),
            Err(ConfigError::MechanismWithoutSasl { protocol: "SSL" })
        );
        assert_eq!(
            config(&[
                ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
                ("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM")
            ]),
            Err(ConfigError::MskIamWithoutTls)
        );
        assert!(matches!(
            config(&[
                ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
                ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
            ]),
            Err(ConfigError::Missing {
                variable: "KAFKA_CREDENTIALS_SECRET_ARN",
                ..
            })
        ));
        assert!(matches!(
            config(&[
                ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
                ("KAFKA_SASL_MECHANISM", "GSSAPI")
            ]),
            Err(ConfigError::Invalid {
                variable: "KAFKA_SASL_MECHANISM",
                ..
            })
        ));
    }

    #[test]
    fn a_login_reads_the_secret_document_and_never_prints_the_password() {
        let login: Login =
            serde_json::from_str(r#"{"username": "forwarder", "password": "s3cr3t-value"}"#)
                .unwrap();
        assert_eq!(login.password.expose(), "s3cr3t-value");
        let printed = format!(
            "{:?}",
            SaslMechanism::Scram {
                sha512: true,
                login
            }
        );
        assert!(
            printed.contains("forwarder") && !printed.contains("s3cr3t"),
            "{printed}"
        );
    }
}
