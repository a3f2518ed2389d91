//! The console's pages. Each answers a whole page, or with `fragment=1` only its live region
//! (what the page's script fetches again when the server says something changed).

pub mod deliveries;
pub mod events;
pub mod quarantine;
pub mod quotas;
pub mod timelines;

use super::html;
use std::collections::HashMap;

/// A page request's query parameters and what they ask of the page.
#[derive(Debug, Default)]
pub struct View {
    pub path: String,
    params: HashMap<String, String>,
    /// Numbers and bodies shown as they are, for this page view only.
    pub reveal: bool,
    fragment: bool,
}

impl View {
    pub fn new(path: &str, query: Option<&str>) -> Self {
        let params: HashMap<String, String> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            reveal: params.get("reveal").is_some_and(|v| v == "1"),
            fragment: params.get("fragment").is_some_and(|v| v == "1"),
            params,
        }
    }

    /// A parameter's value, trimmed; `None` when absent or empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// This view with `reveal=1`, or `None` when already revealed.
    fn reveal_link(&self) -> Option<String> {
        if self.reveal {
            return None;
        }
        let mut query: Vec<(&str, &str)> = self
            .params
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "reveal" | "fragment"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        query.sort();
        query.push(("reveal", "1"));
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        Some(format!("{}?{encoded}", self.path))
    }

    /// The page: `intro` (filters, explanations) above `body`, which is live for `kinds`
    /// (`deliveries`, `data`) when given.
    pub fn render(&self, title: &str, intro: &str, kinds: Option<&str>, body: &str) -> String {
        if self.fragment {
            return body.to_owned();
        }
        let content = match kinds {
            Some(kinds) => format!("{intro}{}", html::live(kinds, body)),
            None => format!("{intro}{body}"),
        };
        html::page(title, &self.path, self.reveal_link().as_deref(), &content)
    }
}

/// A table with `headers` and `rows` (already HTML), or a line saying it is empty.
pub fn table(headers: &[&str], rows: &[String], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", html::esc(empty));
    }
    let head: String = headers
        .iter()
        .map(|h| format!("<th>{}</th>", html::esc(h)))
        .collect();
    format!(
        "<table><thead><tr>{head}</tr></thead><tbody>{}</tbody></table>",
        rows.concat()
    )
}

/// RFC 3339 UTC to the millisecond, as every page prints times.
pub fn time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}
