//! Who may use the console. It must not widen what `serve` exposes:
//! - on a loopback `--host` without a token, it answers only requests addressed to a loopback
//!   name (`Host: 127.0.0.1:…`, `localhost:…`, `[::1]:…`) that no proxy forwarded: a tunnel
//!   to `serve` (ngrok, cloudflared) carries its public host name or `X-Forwarded-For`, and a
//!   DNS-rebinding page its own host name, so neither reaches it;
//! - with `--console-token`, every console route wants the token: `Authorization: Bearer`, or
//!   the cookie a visit with `?token=` sets (HttpOnly, SameSite=Strict, holding the token's
//!   SHA-256, never the token);
//! - off-loopback without a token there is no console at all (no route is added);
//! - a POST (replay, discard) must come from the console's own pages: its `Origin` must be
//!   the console's, so another site cannot make a browser post one.

use http::{HeaderMap, HeaderValue, Method, header};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "twilio_events_console";

/// The console's access rule, from `serve`'s flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// No console: `--no-console`, or a `--host` that is not loopback without a token.
    Off(&'static str),
    /// Loopback, no token: requests to a loopback name only.
    LocalOnly,
    /// Every request carries the token (its SHA-256 kept, to compare with).
    Token(Box<[u8; 32]>),
}

/// The token is too short to resist guessing.
#[derive(Debug, thiserror::Error)]
#[error(
    "--console-token must be at least {MIN_TOKEN_CHARS} characters (openssl rand -hex 16 makes one)"
)]
pub struct WeakToken;

pub const MIN_TOKEN_CHARS: usize = 16;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Access {
    pub fn decide(host: IpAddr, no_console: bool, token: Option<&str>) -> Result<Self, WeakToken> {
        if no_console {
            return Ok(Self::Off("--no-console"));
        }
        match token.filter(|t| !t.is_empty()) {
            Some(token) if token.chars().count() < MIN_TOKEN_CHARS => Err(WeakToken),
            Some(token) => Ok(Self::Token(Box::new(digest(token)))),
            None if host.is_loopback() => Ok(Self::LocalOnly),
            None => Ok(Self::Off(
                "--host is not a loopback address: pass --console-token to enable it",
            )),
        }
    }
}

/// What a request may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The token came in the query: set the cookie and send the browser to the same page
    /// without it (so it stays out of history and logs).
    Login {
        cookie: HeaderValue,
    },
    /// 401: no token, or a wrong one.
    NeedsToken,
    /// 403, and why.
    Forbidden(&'static str),
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `host` (a Host header) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The cookie's value: the token's SHA-256 in hex.
fn cookie_value(headers: &HeaderMap) -> Option<[u8; 32]> {
    header(headers, header::COOKIE)?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(value, &mut bytes).ok()?;
            Some(bytes)
        })
}

/// Whether a POST comes from a page of this console: its `Origin` is `http(s)://<Host>`, or
/// the browser says so with `Sec-Fetch-Site: same-origin` (which no page can set).
fn same_origin(headers: &HeaderMap) -> bool {
    if header(headers, "sec-fetch-site") == Some("same-origin") {
        return true;
    }
    let (Some(origin), Some(host)) = (
        header(headers, header::ORIGIN),
        header(headers, header::HOST),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

impl Access {
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Verdict {
        let verdict = match self {
            Self::Off(_) => return Verdict::Forbidden("the console is off"),
            Self::LocalOnly => {
                let forwarded = ["forwarded", "x-forwarded-for", "x-forwarded-host"]
                    .iter()
                    .any(|name| headers.contains_key(*name));
                if forwarded || !header(headers, header::HOST).is_some_and(is_loopback_host) {
                    return Verdict::Forbidden(
                        "the console answers requests to 127.0.0.1 or localhost only; to open it \
                         through a tunnel or proxy, start serve with --console-token",
                    );
                }
                Verdict::Allowed
            }
            Self::Token(expected) => {
                let bearer = header(headers, header::AUTHORIZATION)
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(|t| digest(t.trim()));
                if bearer.is_some_and(|t| same(&t, expected))
                    || cookie_value(headers).is_some_and(|t| same(&t, expected))
                {
                    Verdict::Allowed
                } else if let Some(token) = query_token.map(digest).filter(|t| same(t, expected)) {
                    let cookie = format!(
                        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict",
                        hex::encode(token)
                    );
                    match HeaderValue::from_str(&cookie) {
                        Ok(cookie) => return Verdict::Login { cookie },
                        Err(_) => Verdict::NeedsToken,
                    }
                } else {
                    Verdict::NeedsToken
                }
            }
        };
        if verdict == Verdict::Allowed && *method == Method::POST && !same_origin(headers) {
            return Verdict::Forbidden(
                "a console action must come from the console's own page (its Origin header)",
            );
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const TOKEN: &str = "0123456789abcdef-console";

    #[test]
    fn the_console_is_on_by_default_on_loopback_only() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(
            Access::decide(local, false, None).unwrap(),
            Access::LocalOnly
        );
        assert!(matches!(
            Access::decide(any, false, None),
            Ok(Access::Off(_))
        ));
        assert!(matches!(
            Access::decide(local, true, Some(TOKEN)),
            Ok(Access::Off(_))
        ));
        assert!(matches!(
            Access::decide(any, false, Some(TOKEN)),
            Ok(Access::Token(_))
        ));
        assert!(Access::decide(any, false, Some("short")).is_err());
    }

    #[test]
    fn without_a_token_only_loopback_hosts_that_no_proxy_forwarded_get_in() {
        let access = Access::LocalOnly;
        let get = |pairs| access.check(&Method::GET, &headers(pairs), None);
        assert_eq!(get(&[("host", "127.0.0.1:3000")]), Verdict::Allowed);
        assert_eq!(get(&[("host", "localhost:3000")]), Verdict::Allowed);
        assert_eq!(get(&[("host", "[::1]:3000")]), Verdict::Allowed);
        assert!(matches!(
            get(&[("host", "abc.ngrok.app")]),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            get(&[("host", "evil.example:3000")]),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            get(&[("host", "127.0.0.1:3000"), ("x-forwarded-for", "1.2.3.4")]),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(get(&[]), Verdict::Forbidden(_)));
    }

    #[test]
    fn with_a_token_every_request_needs_it_and_a_login_sets_a_strict_cookie() {
        let access = Access::decide("0.0.0.0".parse().unwrap(), false, Some(TOKEN)).unwrap();
        let host = ("host", "10.0.0.5:3000");
        assert_eq!(
            access.check(&Method::GET, &headers(&[host]), None),
            Verdict::NeedsToken
        );
        assert_eq!(
            access.check(
                &Method::GET,
                &headers(&[host]),
                Some("wrong-wrong-wrong-wrong")
            ),
            Verdict::NeedsToken
        );
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            access.check(
                &Method::GET,
                &headers(&[host, ("authorization", &bearer)]),
                None
            ),
            Verdict::Allowed
        );
        let Verdict::Login { cookie } = access.check(&Method::GET, &headers(&[host]), Some(TOKEN))
        else {
            panic!("no login");
        };
        let cookie = cookie.to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(
            !cookie.contains(TOKEN),
            "the cookie holds a hash, not the token"
        );
        let value = cookie.split(';').next().unwrap().to_owned();
        assert_eq!(
            access.check(&Method::GET, &headers(&[host, ("cookie", &value)]), None),
            Verdict::Allowed
        );
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let access = Access::LocalOnly;
        let host = ("host", "127.0.0.1:3000");
        fn post(access: &Access, pairs: &[(&'static str, &str)]) -> Verdict {
            access.check(&Method::POST, &headers(pairs), None)
        }
        assert_eq!(
            post(&access, &[host, ("origin", "http://127.0.0.1:3000")]),
            Verdict::Allowed
        );
        assert!(matches!(
            post(&access, &[host, ("origin", "https://evil.example")]),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(post(&access, &[host]), Verdict::Forbidden(_)));
        assert!(matches!(
            post(&access, &[host, ("sec-fetch-site", "cross-site")]),
            Verdict::Forbidden(_)
        ));
        assert_eq!(
            post(&access, &[host, ("sec-fetch-site", "same-origin")]),
            Verdict::Allowed
        );
    }
}
