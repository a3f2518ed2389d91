//! Where the quota document comes from: a file, the document itself in an environment variable,
//! or an SSM parameter. [`crate::config::Config`] says which; loading validates it.

use super::{Quotas, QuotasError};
use std::path::{Path, PathBuf};

/// Where the quota document comes from (`QUOTAS_FILE`, `QUOTAS_JSON` or `QUOTAS_SSM_PARAMETER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuotasSource {
    File(PathBuf),
    Json(String),
    SsmParameter(String),
}

impl QuotasSource {
    /// The setting the document comes from, as an operator would look for it.
    pub fn origin(&self) -> String {
        match self {
            Self::File(path) => format!("QUOTAS_FILE ({})", path.display()),
            Self::Json(_) => "QUOTAS_JSON".to_owned(),
            Self::SsmParameter(name) => format!("QUOTAS_SSM_PARAMETER ({name})"),
        }
    }

    /// Reads and validates the document; `ssm` is only called for an SSM source.
    pub async fn load(&self, ssm: &aws_sdk_ssm::Client) -> Result<Quotas, QuotasError> {
        match self {
            Self::File(path) => Quotas::from_file(path),
            Self::Json(text) => Quotas::parse(text),
            Self::SsmParameter(name) => Quotas::from_ssm(ssm, name).await,
        }
    }
}

impl Quotas {
    pub fn from_file(path: &Path) -> Result<Self, QuotasError> {
        let text = std::fs::read_to_string(path).map_err(|source| QuotasError::File {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// From SSM Parameter Store, decrypted (a SecureString works too).
    pub async fn from_ssm(client: &aws_sdk_ssm::Client, name: &str) -> Result<Self, QuotasError> {
        let output = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|source| QuotasError::Ssm {
                name: name.to_owned(),
                source: Box::new(source),
            })?;
        let text =
            output
                .parameter()
                .and_then(|p| p.value())
                .ok_or_else(|| QuotasError::SsmEmpty {
                    name: name.to_owned(),
                })?;
        Self::parse(text)
    }
}
