//! A request body read under `serve`'s limits, whatever --max-body-bytes is: refused as soon as
//! it is known to be over the limit (from its Content-Length before a byte is read, or when the
//! bytes read cross it), without buffering the rest; and cut off when it has not all arrived
//! within --body-read-timeout.

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use std::time::Duration;

/// What a request body may be.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyRefused {
    #[error("body larger than --max-body-bytes ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error("the body did not arrive within --body-read-timeout ({after:?})")]
    TimedOut { after: Duration },
    #[error("the body could not be read")]
    Unreadable(#[source] axum::Error),
}

impl IntoResponse for BodyRefused {
    fn into_response(self) -> Response {
        let status = match self {
            // The same bytes will never fit: a retry cannot help.
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // Perhaps only a slow link: Twilio retries a 5xx, but drops an event answered 4xx
            // (docs/twilio.md §3).
            Self::TimedOut { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unreadable(_) => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // The rest of the body is still on the way: this connection cannot carry another request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Reads `body` whole, within `limits`.
pub async fn read(body: Body, limits: BodyLimits) -> Result<Bytes, BodyRefused> {
    // With a Content-Length the size hint is exact: over the limit, refused before reading.
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if declared > limits.max_bytes {
        return Err(BodyRefused::TooLarge {
            limit: limits.max_bytes,
        });
    }
    tokio::time::timeout(
        limits.read_timeout,
        collect(body, declared, limits.max_bytes),
    )
    .await
    .map_err(|_| BodyRefused::TimedOut {
        after: limits.read_timeout,
    })?
}

/// Room reserved up front: a Content-Length is only a claim, and many connections could each
/// claim the whole limit and send nothing.
const FIRST_RESERVE: usize = 64 * 1024;

async fn collect(mut body: Body, declared: usize, max_bytes: usize) -> Result<Bytes, BodyRefused> {
    let mut buf = BytesMut::with_capacity(declared.min(FIRST_RESERVE));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyRefused::Unreadable)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max_bytes - buf.len() {
                return Err(BodyRefused::TooLarge { limit: max_bytes });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Frame;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    const LIMITS: BodyLimits = BodyLimits {
        max_bytes: 10,
        read_timeout: Duration::from_millis(200),
    };

    /// A chunked body (no size hint): `chunks`, then the end, or with `stall` nothing for ever.
    struct Chunks {
        chunks: VecDeque<&'static [u8]>,
        stall: bool,
    }

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            let this = self.get_mut();
            match this.chunks.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk))))),
                None if this.stall => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn chunked(chunks: &[&'static [u8]], stall: bool) -> Body {
        Body::new(Chunks {
            chunks: chunks.iter().copied().collect(),
            stall,
        })
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = read(chunked(&[b"0123", b"456789"], false), LIMITS).await;
        assert_eq!(body.unwrap(), Bytes::from_static(b"0123456789"));
        let body = read(Body::from("short"), LIMITS).await;
        assert_eq!(body.unwrap(), Bytes::from_static(b"short"));
    }

    #[tokio::test]
    async fn a_body_is_refused_when_it_crosses_the_limit_even_if_the_rest_never_comes() {
        let refused = read(chunked(&[b"0123", b"4567890"], true), LIMITS).await;
        assert!(matches!(refused, Err(BodyRefused::TooLarge { limit: 10 })));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let refused = read(Body::from("01234567890"), LIMITS).await;
        assert!(matches!(refused, Err(BodyRefused::TooLarge { .. })));
    }

    #[tokio::test]
    async fn a_body_that_stalls_times_out_and_the_connection_is_closed() {
        let refused = read(chunked(&[b"01"], true), LIMITS).await;
        assert!(matches!(refused, Err(BodyRefused::TimedOut { .. })));
        let response = refused.unwrap_err().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }
}
