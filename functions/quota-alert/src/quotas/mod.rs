//! The quota document: what to watch ([`model`]), where it comes from ([`source`]) and how it is
//! validated ([`parse`]). It is checked once at start; the function refuses to start with a bad
//! one.

pub mod model;
pub mod parse;
pub mod source;

pub use model::{Counts, Quota, Quotas, WindowKind};
pub use source::QuotasSource;

use aws_sdk_ssm::error::{DisplayErrorContext, SdkError};
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use std::path::PathBuf;

/// Why the quota document cannot be used, and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum QuotasError {
    #[error("invalid quota configuration: {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "the quota configuration is not JSON ({source}); it must be an object like {{\"quotas\": [ … ]}}"
    )]
    NotJson {
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read the quota configuration file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read SSM parameter {name}: {} (check the name, the region and the function's ssm:GetParameter permission)",
        DisplayErrorContext(.source)
    )]
    Ssm {
        name: String,
        /// Boxed: an SDK error is large, and every parse result would carry its size.
        #[source]
        source: Box<SdkError<GetParameterError>>,
    },
    #[error("SSM parameter {name} has no value: put the quota document in it")]
    SsmEmpty { name: String },
}

impl QuotasError {
    fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The field a validation error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}
