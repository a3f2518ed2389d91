//! `serve`'s HTTP server. `axum::serve` sets no timeouts and no connection cap, so a few hundred
//! half-open or trickling connections would stay open for ever: here hyper's HTTP/1 connections
//! run under a cap on open connections, a time limit for each request head and one for an idle
//! keep-alive connection; axum's Router still does the routing. The body's own limits (size
//! and time) are applied while it is read, in `body.rs`.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};

/// What bounds the connections, from `serve`'s flags.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// From accepting a connection (or from the first byte of a later request on it) to the end
    /// of the request head.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once; past it, new ones wait in the listen backlog.
    pub max_connections: u32,
}

/// How long a shutdown waits for requests in progress: Twilio's answer window
/// (docs/twilio.md §3), after which nobody waits for their answers.
const DRAIN_FOR: Duration = Duration::from_secs(5);
/// How long to wait after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in progress
/// finish, for at most [`DRAIN_FOR`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let app = TowerToHyperService::new(app);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then accept: past the cap a connection waits in the kernel's backlog,
        // and is served in turn as soon as another closes.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let (app, stopping) = (app.clone(), stopping.clone());
                tokio::spawn(async move {
                    serve_connection(stream, app, limits, stopping).await;
                    drop(permit);
                });
            }
            Err(error) => {
                // Not fatal: out of descriptors, or a connection reset while it waited.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back: every connection has closed.
    let _ = tokio::time::timeout(DRAIN_FOR, slots.acquire_many(limits.max_connections)).await;
}

/// Serves one connection until it closes, or until a timeout of its current phase passes.
async fn serve_connection(
    stream: TcpStream,
    app: TowerToHyperService<Router>,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedStream {
        stream,
        activity: Arc::clone(&activity),
    });
    let tracked = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request| {
        tracked.set(Phase::Handling);
        let answer = hyper::service::Service::call(&app, request);
        let activity = Arc::clone(&tracked);
        async move {
            let response = answer.await;
            activity.set(Phase::after_answer());
            response
        }
    });
    // hyper's own header_read_timeout also runs while a keep-alive connection waits for its
    // next request, so it cannot give the idle timeout its own length: the timeouts are kept
    // here instead, from what the connection reads and what the service sees.
    let connection = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&limits);
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = expired => {
                if let Some((at, why)) = activity.deadline(&limits) {
                    if at <= Instant::now() {
                        // Dropping the connection closes the socket.
                        tracing::info!(why, "closing a connection");
                        return;
                    }
                }
            }
            () = activity.changed.notified() => {}
            _ = stopping.changed(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Where a connection is in its request cycle: what the timeouts count from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Just accepted: its first request head must be in within the header timeout.
    Opened { at: Instant },
    /// Answered a request; idle until the next one's first byte, then reading its head.
    KeptAlive {
        since: Instant,
        head_started: Option<Instant>,
    },
    /// In the service: its body's reading is bounded there, its answer by ingest's deadline.
    Handling,
}

impl Phase {
    fn after_answer() -> Self {
        Self::KeptAlive {
            since: Instant::now(),
            head_started: None,
        }
    }

    /// When a connection still in this phase is closed, and why.
    fn deadline(self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        const HEAD: &str = "no complete request head within --header-read-timeout";
        match self {
            Self::Opened { at } => Some((at + limits.header_read_timeout, HEAD)),
            Self::KeptAlive {
                head_started: Some(at),
                ..
            } => Some((at + limits.header_read_timeout, HEAD)),
            Self::KeptAlive { since, .. } => Some((
                since + limits.idle_timeout,
                "no new request within --idle-timeout",
            )),
            Self::Handling => None,
        }
    }
}

/// A connection's phase, shared by its stream (bytes read), its service (requests and
/// answers) and its watchdog in [`serve_connection`], which each change wakes.
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Opened { at: Instant::now() }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.changed.notify_one();
    }

    /// Bytes came in: on an idle keep-alive connection, a new request head has started.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::KeptAlive {
            head_started: started @ None,
            ..
        } = &mut *phase
        {
            *started = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        self.phase().deadline(limits)
    }
}

/// The TCP stream, telling the connection's [`Activity`] when bytes arrive.
struct WatchedStream {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ConnectionLimits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        max_connections: 1,
    };

    #[test]
    fn each_phase_counts_its_own_timeout() {
        let t = Instant::now();
        // A new connection has the header timeout from its opening, whenever its bytes come.
        let opened = Phase::Opened { at: t };
        assert_eq!(
            opened.deadline(&LIMITS).unwrap().0,
            t + Duration::from_secs(5)
        );
        // An answered one may stay idle for the idle timeout...
        let idle = Phase::KeptAlive {
            since: t,
            head_started: None,
        };
        assert_eq!(
            idle.deadline(&LIMITS).unwrap().0,
            t + Duration::from_secs(30)
        );
        // ...and once its next request starts, that head has the header timeout.
        let later = t + Duration::from_secs(20);
        let reading = Phase::KeptAlive {
            since: t,
            head_started: Some(later),
        };
        assert_eq!(
            reading.deadline(&LIMITS).unwrap().0,
            later + Duration::from_secs(5)
        );
        assert_eq!(Phase::Handling.deadline(&LIMITS), None);
    }

    #[test]
    fn the_first_byte_after_an_answer_starts_the_head_clock_once() {
        let activity = Activity::new();
        activity.bytes_read();
        assert!(
            matches!(activity.phase(), Phase::Opened { .. }),
            "a new connection's clock runs from its opening"
        );
        activity.set(Phase::after_answer());
        activity.bytes_read();
        let Phase::KeptAlive {
            head_started: Some(first),
            ..
        } = activity.phase()
        else {
            panic!("{:?}", activity.phase());
        };
        activity.bytes_read();
        assert!(matches!(
            activity.phase(),
            Phase::KeptAlive { head_started: Some(t), .. } if t == first
        ));
    }
}
