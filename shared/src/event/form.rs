//! Classic callbacks (form-encoded POSTs: Usage Triggers today, the status callbacks that will
//! follow): the rules every form route applies to a callback's parameters before believing
//! them. One place, so that every form route refuses the same things.
//!
//! Why the rules are strict: a form signature covers the URL then each `name` and `value`,
//! sorted, with nothing between them (docs/twilio.md §2). It does not fix where one parameter
//! ends and the next begins, so a captured callback can be re-split into other parameters
//! under the same signature (`DateFired=Fri, 27 Nov…` becomes `DateFiredFri=, 27 Nov…`). What
//! stops that is checking each value against what Twilio sends: every parameter that
//! identifies something must be there exactly once, in its exact format, so that any re-split
//! that moves a boundary next to it breaks it, and the callback is refused.

use super::{ParseError, ParseErrorKind};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// Whether `value` is a Twilio SID with `prefix`: the two letters then 32 hex digits
/// (Twilio's API description: `^AC[0-9a-fA-F]{32}$` for an account).
pub fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

/// A plain decimal number as Twilio writes one (`1000`, `60.52`, `-3`): no exponent, no sign
/// but `-`, no `inf` or `NaN`, which `f64`'s parser would take.
pub fn is_decimal(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A callback's decoded parameters, read by the rules above.
#[derive(Clone, Debug)]
pub struct CallbackForm {
    params: Vec<(String, String)>,
}

impl CallbackForm {
    /// Decodes `body`. Refuses an empty body, and any parameter of `known` given more than
    /// once (which of two values would be the callback's is anyone's guess).
    pub fn parse(body: &[u8], known: &[&'static str]) -> Result<Self, ParseError> {
        let params: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if params.is_empty() {
            return Err(ParseError::delivery(ParseErrorKind::Form(
                "no parameters: a Twilio callback is a form-encoded POST".into(),
            )));
        }
        for name in known {
            if params.iter().filter(|(k, _)| k == name).count() > 1 {
                return Err(ParseError::field(name, ParseErrorKind::Repeated));
            }
        }
        Ok(Self { params })
    }

    /// Every parameter, in the order sent.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of `name`, when given and not empty, exactly as sent (never trimmed: a
    /// genuine value has no padding, and a value is checked as it was signed).
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`; missing or empty is an error naming it.
    pub fn required(&self, name: &'static str) -> Result<&str, ParseError> {
        self.optional(name)
            .ok_or_else(|| ParseError::field(name, ParseErrorKind::Missing))
    }

    /// A required value that `rule` accepts; otherwise an error saying what was `expected`.
    pub fn required_matching(
        &self,
        name: &'static str,
        rule: impl Fn(&str) -> bool,
        expected: &'static str,
    ) -> Result<&str, ParseError> {
        let value = self.required(name)?;
        if rule(value) {
            Ok(value)
        } else {
            Err(ParseError::field(
                name,
                ParseErrorKind::WrongType { expected },
            ))
        }
    }

    /// An optional value that, when given, `rule` accepts.
    pub fn optional_matching(
        &self,
        name: &'static str,
        rule: impl Fn(&str) -> bool,
        expected: &'static str,
    ) -> Result<Option<&str>, ParseError> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) if rule(value) => Ok(Some(value)),
            Some(_) => Err(ParseError::field(
                name,
                ParseErrorKind::WrongType { expected },
            )),
        }
    }

    /// A required SID with `prefix` ([`is_sid`]).
    pub fn sid(
        &self,
        name: &'static str,
        prefix: &'static str,
        expected: &'static str,
    ) -> Result<&str, ParseError> {
        self.required_matching(name, |v| is_sid(v, prefix), expected)
    }

    /// A required plain decimal number ([`is_decimal`]).
    pub fn number(&self, name: &'static str) -> Result<f64, ParseError> {
        let wrong = || {
            ParseError::field(
                name,
                ParseErrorKind::WrongType {
                    expected: "a decimal number",
                },
            )
        };
        let value = self.required(name)?;
        if !is_decimal(value) {
            return Err(wrong());
        }
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(wrong)
    }

    /// An optional value that, when given, is one of `allowed`.
    pub fn one_of(
        &self,
        name: &'static str,
        allowed: &'static [&'static str],
        expected: &'static str,
    ) -> Result<Option<&str>, ParseError> {
        self.optional_matching(name, |v| allowed.contains(&v), expected)
    }

    /// A required date as Twilio's classic API writes them (RFC 2822:
    /// `Fri, 27 Nov 2026 09:12:44 +0000`).
    pub fn rfc2822_time(&self, name: &'static str) -> Result<OffsetDateTime, ParseError> {
        let value = self.required(name)?;
        OffsetDateTime::parse(value, &Rfc2822).map_err(|_| {
            ParseError::field(
                name,
                ParseErrorKind::WrongType {
                    expected: "an RFC 2822 date, e.g. Fri, 27 Nov 2026 09:12:44 +0000",
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_two_letters_and_32_hex_digits() {
        assert!(is_sid("AC6efc9b5850127eaea3c1e8dea35cdf4a", "AC"));
        assert!(is_sid("AC6EFC9B5850127EAEA3C1E8DEA35CDF4A", "AC"));
        assert!(
            !is_sid("AC6efc9b5850127eaea3c1e8dea35cdf4", "AC"),
            "31 digits"
        );
        assert!(!is_sid("AC6efc9b5850127eaea3c1e8dea35cdf4aa", "AC"), "33");
        assert!(!is_sid("UT6efc9b5850127eaea3c1e8dea35cdf4a", "AC"));
        assert!(!is_sid("AC6efc9b5850127eaea3c1e8dea35cdfzz", "AC"));
        assert!(!is_sid("AC1", "AC"));
        // Non-ASCII of the right byte length is not a SID (and must not panic).
        assert!(!is_sid("ACé6efc9b5850127eaea3c1e8dea35cdf", "AC"));
    }

    #[test]
    fn numbers_are_plain_decimals() {
        for ok in ["0", "1000", "60.52", "-3", "-0.5"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for wrong in [
            "", "-", ".5", "5.", "1e3", "inf", "NaN", "+5", "1,000", " 1",
        ] {
            assert!(!is_decimal(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn a_known_parameter_given_twice_is_refused() {
        let err = CallbackForm::parse(b"A=1&B=2&A=3", &["A", "B"]).unwrap_err();
        assert_eq!((err.field, err.kind), (Some("A"), ParseErrorKind::Repeated));
        // Unknown parameters may repeat: nothing reads them.
        assert!(CallbackForm::parse(b"X=1&X=2&A=1", &["A"]).is_ok());
    }

    #[test]
    fn values_are_read_exactly_as_sent() {
        let form = CallbackForm::parse(b"A=+x+&B=&C=daily", &["A", "B", "C"]).unwrap();
        assert_eq!(form.optional("A"), Some(" x "));
        assert_eq!(form.optional("B"), None, "empty is absent");
        assert_eq!(
            form.required("B").unwrap_err().kind,
            ParseErrorKind::Missing
        );
        assert_eq!(
            form.one_of("C", &["daily"], "daily").unwrap(),
            Some("daily")
        );
        assert!(form.one_of("C", &["monthly"], "monthly").is_err());
    }
}
