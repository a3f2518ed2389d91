//! Phone numbers and message bodies, hidden by default in every page and every JSON the console
//! answers: a number keeps its `+` and last two digits (enough to tell two apart), a body
//! becomes its length. The console shows them only when a page is asked with `reveal=1`.

use serde_json::Value;
use std::borrow::Cow;

/// Keys whose values are message text (Event Streams' `body`, a callback's `Body`).
const BODY_KEYS: [&str; 3] = ["body", "messagebody", "message_body"];

fn is_body_key(key: &str) -> bool {
    BODY_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
}

fn hidden_body(text: &str) -> String {
    format!("[body hidden: {} characters]", text.chars().count())
}

/// `text` with every E.164 number (`+` and 7 to 15 digits, also `%2B`-encoded, as in
/// `whatsapp:+15551234567`) masked.
pub fn phone_numbers(text: &str) -> Cow<'_, str> {
    if !text.contains('+') && !text.contains("%2B") && !text.contains("%2b") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let prefix = if bytes[i] == b'+' {
            1
        } else if bytes[i] == b'%'
            && bytes.get(i + 1) == Some(&b'2')
            && matches!(bytes.get(i + 2), Some(b'B' | b'b'))
        {
            3
        } else {
            0
        };
        if prefix > 0 {
            let digits = bytes[i + prefix..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if (7..=15).contains(&digits) {
                let end = i + prefix + digits;
                out.push_str(&text[copied..i]);
                out.push('+');
                out.extend(std::iter::repeat_n('•', digits - 2));
                out.push_str(&text[end - 2..end]);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A JSON value with bodies hidden and numbers masked, in place.
pub fn json_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(masked) = phone_numbers(s) {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(json_value),
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    Value::String(s) if is_body_key(key) => *s = hidden_body(s),
                    other => json_value(other),
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A payload as the console shows it: JSON pretty-printed, a form one parameter a line, and,
/// unless `reveal`, bodies hidden and numbers masked. Revealed, JSON is shown as received.
pub fn payload(text: &str, reveal: bool) -> String {
    if let Ok(mut value) = serde_json::from_str::<Value>(text) {
        if reveal {
            return text.to_owned();
        }
        json_value(&mut value);
        return serde_json::to_string_pretty(&value).unwrap_or_default();
    }
    let looks_like_form = !text.is_empty()
        && !text.contains(char::is_whitespace)
        && text.split('&').all(|pair| pair.contains('='));
    if looks_like_form {
        return form_urlencoded::parse(text.as_bytes())
            .map(|(name, value)| {
                let value = if reveal {
                    value.into_owned()
                } else if is_body_key(&name) {
                    hidden_body(&value)
                } else {
                    phone_numbers(&value).into_owned()
                };
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    if reveal {
        text.to_owned()
    } else {
        phone_numbers(text).into_owned()
    }
}

/// A single value (a SID, a status, a `from`): numbers masked unless `reveal`.
pub fn value(text: &str, reveal: bool) -> Cow<'_, str> {
    if reveal {
        Cow::Borrowed(text)
    } else {
        phone_numbers(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_last_two_digits_only() {
        assert_eq!(phone_numbers("to +15551234567."), "to +•••••••••67.");
        assert_eq!(
            phone_numbers("whatsapp:+447700900123"),
            "whatsapp:+••••••••••23"
        );
        assert_eq!(phone_numbers("From=%2B15551234567"), "From=+•••••••••67");
        // Not numbers: too short, or no plus.
        assert_eq!(
            phone_numbers("+123 and 15551234567"),
            "+123 and 15551234567"
        );
    }

    #[test]
    fn json_bodies_are_hidden_and_numbers_masked_at_any_depth() {
        let shown = payload(
            r#"[{"data":{"to":"+15551234567","body":"hello there","messageSid":"SM1"}}]"#,
            false,
        );
        assert!(!shown.contains("hello"), "{shown}");
        assert!(!shown.contains("5551234567"), "{shown}");
        assert!(shown.contains("[body hidden: 11 characters]"), "{shown}");
        assert!(shown.contains("SM1"));
    }

    #[test]
    fn form_bodies_are_hidden_and_reveal_shows_everything() {
        let form = "Body=secret+words&From=%2B15551234567&MessageSid=SM1";
        let shown = payload(form, false);
        assert!(
            !shown.contains("secret") && !shown.contains("5551234567"),
            "{shown}"
        );
        assert!(shown.contains("MessageSid=SM1"));
        let revealed = payload(form, true);
        assert!(revealed.contains("Body=secret words") && revealed.contains("+15551234567"));
    }
}
