//! The little URL handling signatures need, on the URL string exactly as given: reading one
//! query parameter, and spelling the port out or leaving it off. Nothing is re-encoded, because
//! the signature covers the URL byte for byte.

use std::borrow::Cow;

/// The decoded value of the first query parameter called `name`.
pub fn query_param<'a>(url: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Where the authority's host and port sit: `(host_end, authority_end)`; the port, if any, is
/// `url[host_end + 1..authority_end]`.
fn authority_bounds(url: &str) -> Option<(usize, usize, &str)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    // Skip userinfo; an IPv6 host is bracketed, so look for the port after the ']'.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let after_host = authority[host_start..]
        .rfind(']')
        .map_or(host_start, |i| host_start + i);
    let host_end = authority[after_host..]
        .find(':')
        .map_or(authority.len(), |i| after_host + i);
    Some((start + host_end, end, scheme))
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        s if s.eq_ignore_ascii_case("https") => Some("443"),
        s if s.eq_ignore_ascii_case("http") => Some("80"),
        _ => None,
    }
}

/// The URL with its port spelled out (the default one added when absent) and the URL with no
/// port, as Twilio's helpers try both.
pub fn port_variants(url: &str) -> (Cow<'_, str>, Cow<'_, str>) {
    let Some((host_end, authority_end, scheme)) = authority_bounds(url) else {
        return (Cow::Borrowed(url), Cow::Borrowed(url));
    };
    if host_end < authority_end {
        let without = format!("{}{}", &url[..host_end], &url[authority_end..]);
        (Cow::Borrowed(url), Cow::Owned(without))
    } else {
        let with = match default_port(scheme) {
            Some(port) => Cow::Owned(format!("{}:{port}{}", &url[..host_end], &url[host_end..])),
            None => Cow::Borrowed(url),
        };
        (with, Cow::Borrowed(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_query_parameter() {
        assert_eq!(
            query_param("https://e.com/p?a=1&bodySHA256=ab%63", "bodySHA256").as_deref(),
            Some("abc")
        );
        assert_eq!(query_param("https://e.com/p?a=1", "bodySHA256"), None);
        assert_eq!(query_param("https://e.com/p", "a"), None);
    }

    #[test]
    fn port_variants_add_or_remove_the_port() {
        let v = |u| {
            let (a, b) = port_variants(u);
            (a.into_owned(), b.into_owned())
        };
        assert_eq!(
            v("https://e.com/x?y=1"),
            (
                "https://e.com:443/x?y=1".into(),
                "https://e.com/x?y=1".into()
            )
        );
        assert_eq!(
            v("http://e.com"),
            ("http://e.com:80".into(), "http://e.com".into())
        );
        assert_eq!(
            v("https://e.com:8443/x"),
            ("https://e.com:8443/x".into(), "https://e.com/x".into())
        );
        assert_eq!(
            v("https://u:p@e.com/x"),
            (
                "https://u:p@e.com:443/x".into(),
                "https://u:p@e.com/x".into()
            )
        );
        assert_eq!(
            v("http://[::1]:3000/x"),
            ("http://[::1]:3000/x".into(), "http://[::1]/x".into())
        );
        assert_eq!(v("not a url"), ("not a url".into(), "not a url".into()));
    }
}
