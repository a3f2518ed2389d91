//! Parse errors that say what is wrong and where: which event of the delivery, which field.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("the body is empty")]
    Empty,
    #[error("the body is not UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("JSON nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("the array holds no event")]
    EmptyArray,
    #[error("an event must be a JSON object")]
    NotAnObject,
    #[error("missing")]
    Missing,
    #[error("expected {expected}")]
    WrongType { expected: &'static str },
    #[error("form body: {0}")]
    Form(String),
    /// A parameter that must be given once was given more than once.
    #[error("given more than once")]
    Repeated,
}

/// A parse error, located: `index` is the event's position in the delivery (None for errors of
/// the whole body), `field` the offending field (`data.messageSid`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub index: Option<usize>,
    pub field: Option<&'static str>,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn delivery(kind: ParseErrorKind) -> Self {
        Self {
            index: None,
            field: None,
            kind,
        }
    }

    pub(crate) fn not_json(e: serde_json::Error) -> Self {
        Self::delivery(ParseErrorKind::NotJson(e.to_string()))
    }

    pub(crate) fn field(field: &'static str, kind: ParseErrorKind) -> Self {
        Self {
            index: None,
            field: Some(field),
            kind,
        }
    }

    /// Places the error at event `index` of the delivery.
    pub(crate) fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.field) {
            (Some(i), Some(field)) => write!(f, "event #{i}, field `{field}`: {}", self.kind),
            (Some(i), None) => write!(f, "event #{i}: {}", self.kind),
            (None, Some(field)) => write!(f, "field `{field}`: {}", self.kind),
            (None, None) => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for ParseError {}
