//! The console's HTML: one layout (`assets/layout.html`, compiled into the binary with
//! `include_str!`) around each page's content, written with `format!` and [`esc`]. Plain
//! templates rather than a template crate: nothing to learn, no proc-macro to build, and the
//! markup is a file a newcomer can open; every value from a request or the data directory goes
//! through [`esc`] (and numbers and bodies through `mask` first).

use std::fmt::Write as _;

const LAYOUT: &str = include_str!("assets/layout.html");
pub const SCRIPT: &str = include_str!("assets/console.js");
pub const STYLE: &str = include_str!("assets/console.css");

/// The pages, in the navigation's order: path below `/console` and title.
pub const PAGES: [(&str, &str); 5] = [
    ("/console/deliveries", "Deliveries"),
    ("/console/events", "Events"),
    ("/console/timelines", "Timelines"),
    ("/console/quotas", "Quotas"),
    ("/console/quarantine", "Quarantine"),
];

/// `text` safe in HTML text and in a double-quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string value, percent-encoded.
pub fn url_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A whole page: `path` is the current page's (for the navigation), `reveal_link` the same
/// view with `reveal=1`, or `None` when it is revealed.
pub fn page(title: &str, path: &str, reveal_link: Option<&str>, content: &str) -> String {
    let mut nav = String::new();
    for (href, name) in PAGES {
        let current = if path.starts_with(href) {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{current}>{name}</a>");
    }
    let mask = match reveal_link {
        Some(link) => format!(
            "Numbers and bodies masked · <a href=\"{}\" id=\"reveal\">reveal for this view</a>",
            esc(link)
        ),
        None => format!(
            "<strong>Revealed for this view</strong> · <a href=\"{}\">mask again</a>",
            esc(path)
        ),
    };
    LAYOUT
        .replace("{{title}}", &esc(title))
        .replace("{{nav}}", &nav)
        .replace("{{mask}}", &mask)
        .replace("{{content}}", content)
}

/// A live region: its content is fetched again when the server signals one of `kinds`.
pub fn live(kinds: &str, content: &str) -> String {
    format!("<div id=\"live\" data-live=\"{kinds}\">{content}</div>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_outside_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_page_loads_no_asset_from_elsewhere() {
        let html = page("Deliveries", "/console/deliveries", Some("?reveal=1"), "");
        for attribute in ["src=\"", "href=\""] {
            for value in html.split(attribute).skip(1) {
                assert!(
                    // This console's paths, or the empty favicon (so no browser asks serve
                    // for /favicon.ico, which would show as a delivery).
                    value.starts_with('/')
                        || value.starts_with('?')
                        || value.starts_with("data:,\""),
                    "{attribute}{value}"
                );
            }
        }
    }
}
