//! The HTTP server: accepts TCP connections up to a cap and serves each with hyper (HTTP/1.1
//! with keep-alive, or HTTP/2 with prior knowledge), calling the poem endpoint for every
//! request, and closes connections that hold a slot without using it.
//!
//! poem's own `Server` sets no timer, so a client that never finishes its request head keeps
//! its connection (and a file descriptor) forever. Here a watchdog per connection closes it:
//!
//! - no request in progress and a request head begun (or the connection new): the head must be
//!   complete within the header-read timeout, counted from its first byte (from the accept for
//!   a new connection), however slowly its bytes trickle in;
//! - otherwise (an idle keep-alive connection, a request body that stopped coming, a response
//!   the client stopped reading): closed after the idle timeout without a byte either way.
//!
//! hyper's own `header_read_timeout` is not used: its clock starts when the connection begins
//! waiting for a request, so it cannot tell an idle keep-alive connection from a slow head,
//! and it does not cover the bytes hyper-util reads to tell HTTP/1 from HTTP/2.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hyper::body::{Body, Frame, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{
    Endpoint,
    http::uri::Scheme,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
};

use crate::settings::Settings;

/// How long connections may wait, and how many may be open at once on one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// The API listener's limits.
    ///
    /// # Errors
    /// A timeout or the cap is zero.
    pub fn from_settings(settings: &Settings) -> io::Result<Self> {
        let positive = |value: u64, name: &str| {
            if value == 0 {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name} must be at least 1"),
                ))
            } else {
                Ok(Duration::from_secs(value))
            }
        };
        if settings.http_max_connections == 0 || settings.http_max_connections > MAX_CAP {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("HTTP_MAX_CONNECTIONS must be 1 to {MAX_CAP}"),
            ));
        }
        Ok(Self {
            header_read_timeout: positive(
                settings.http_header_read_timeout_seconds,
                "HTTP_HEADER_READ_TIMEOUT_SECONDS",
            )?,
            idle_timeout: positive(
                settings.http_idle_timeout_seconds,
                "HTTP_IDLE_TIMEOUT_SECONDS",
            )?,
            max_connections: settings.http_max_connections,
        })
    }
}

/// How many connections the kernel may hold, completed but not yet accepted, while the
/// service is at its cap or busy (the kernel's `net.core.somaxconn` may lower it). tokio's
/// own `bind` asks for 128, which a burst of clients overflows: the kernel then drops
/// handshakes, and clients retry a second or more later.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener on `address` (`host:port`; port 0 picks a free one).
///
/// # Errors
/// The address does not resolve, or cannot be bound.
pub async fn listen(address: &str) -> io::Result<TcpAcceptor> {
    let mut last_error = None;
    for address in tokio::net::lookup_host(address).await? {
        let socket = match address {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As tokio's `bind` does: a restarted service can bind while old connections linger.
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return TcpAcceptor::from_tokio(socket.listen(LISTEN_BACKLOG)?),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// The metrics listener's cap: it serves a scraper or two.
pub const METRICS_MAX_CONNECTIONS: usize = 16;

/// The largest connection cap accepted (the semaphore counts waits for all slots in `u32`).
const MAX_CAP: usize = 1 << 20;

/// Serves `endpoint` on the connections `acceptor` accepts, at most
/// [`Limits::max_connections`] at once: at the cap it stops accepting, and new connections wait
/// in the kernel's backlog until one closes. When `shutdown` completes, the listener is closed,
/// idle connections are closed, requests in progress finish, and this returns once every
/// connection is closed or `grace` is over.
///
/// # Errors
/// None so far: failures to accept are logged and retried.
pub async fn serve<A, E>(
    mut acceptor: A,
    endpoint: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Option<Duration>,
) -> io::Result<()>
where
    A: Acceptor,
    E: Endpoint + 'static,
{
    let endpoint = Arc::new(endpoint);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        match accepted {
            Ok((io, local, remote, scheme)) => {
                let connection = Connection {
                    local,
                    remote,
                    scheme,
                    endpoint: Arc::clone(&endpoint),
                    limits,
                    stopping: stopping.clone(),
                    _slot: permit,
                };
                tokio::spawn(connection.serve(io));
            }
            Err(err) if is_per_connection(&err) => {}
            Err(err) => {
                // Out of file descriptors or memory: wait rather than spin.
                tracing::error!(%err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(acceptor);
    stop.send_replace(true);
    let all_closed = slots.acquire_many(limits.max_connections as u32);
    match grace {
        Some(grace) => {
            let _ = tokio::time::timeout(grace, all_closed).await;
        }
        None => {
            let _ = all_closed.await;
        }
    }
    Ok(())
}

fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection, holding its slot until it is closed.
struct Connection<E> {
    local: LocalAddr,
    remote: RemoteAddr,
    scheme: Scheme,
    endpoint: Arc<E>,
    limits: Limits,
    stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl<E: Endpoint + 'static> Connection<E> {
    async fn serve<Io>(self, io: Io)
    where
        Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let clock = Arc::new(Clock::new(&self.limits));
        let service = {
            let (clock, endpoint) = (Arc::clone(&clock), Arc::clone(&self.endpoint));
            let (local, remote, scheme) = (self.local, self.remote.clone(), self.scheme);
            hyper::service::service_fn(move |req: poem::http::Request<hyper::body::Incoming>| {
                let in_flight = InFlight::start(Arc::clone(&clock));
                let endpoint = Arc::clone(&endpoint);
                let request = (req, local.clone(), remote.clone(), scheme.clone()).into();
                async move {
                    let response: hyper::Response<_> = endpoint.get_response(request).await.into();
                    Ok::<_, Infallible>(response.map(|body| Tracked {
                        body,
                        _in_flight: in_flight,
                    }))
                }
            })
        };
        let builder = auto::Builder::new(TokioExecutor::new());
        let io = TokioIo::new(Watched {
            io,
            clock: Arc::clone(&clock),
        });
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut stopping = self.stopping;
        let mut shutting_down = false;
        let sleep = tokio::time::sleep_until(clock.at(clock.deadline()).into());
        tokio::pin!(sleep);
        loop {
            let deadline = clock.deadline();
            clock.wake_at.store(deadline, Ordering::SeqCst);
            if clock.deadline() < deadline {
                // A head began meanwhile, and may not have seen `wake_at`.
                continue;
            }
            let wake = clock.at(deadline).into();
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
            tokio::select! {
                _ = connection.as_mut() => return,
                () = &mut sleep => {
                    if clock.at(clock.deadline()) <= Instant::now() {
                        tracing::debug!(remote = %self.remote, "closing an inactive connection");
                        return;
                    }
                }
                // A head has begun whose deadline comes before the one slept until.
                () = clock.head_begun_now.notified() => {}
                () = stopped(&mut stopping), if !shutting_down => {
                    // Idle connections close now; a request in progress finishes first.
                    connection.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
            }
        }
    }
}

/// Completes once the server stops (or is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    while !*stopping.borrow_and_update() {
        if stopping.changed().await.is_err() {
            return;
        }
    }
}

/// When a connection last moved a byte, whether a request head has begun, and how many
/// requests are in progress on it. Times are milliseconds since the connection was accepted.
struct Clock {
    accepted: Instant,
    header_read_timeout: u64,
    idle_timeout: u64,
    /// The deadline the watchdog sleeps until: a head whose deadline comes earlier wakes it.
    wake_at: AtomicU64,
    last_io: AtomicU64,
    /// When the first byte of a request head arrived, plus one; 0: no head begun.
    head_begun: AtomicU64,
    in_flight: AtomicUsize,
    head_begun_now: Notify,
}

impl Clock {
    fn new(limits: &Limits) -> Self {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4);
        Self {
            accepted: Instant::now(),
            header_read_timeout: millis(limits.header_read_timeout),
            idle_timeout: millis(limits.idle_timeout),
            wake_at: AtomicU64::new(0),
            last_io: AtomicU64::new(0),
            // A new connection's first head is timed from the accept: a client that connects
            // and sends nothing gets no more time than one that sends a little.
            head_begun: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            head_begun_now: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.accepted + Duration::from_millis(millis)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        // Waking the watchdog on every request would cost a poll and a timer reset each: only
        // when this head's deadline comes before the one it sleeps until.
        if self.in_flight.load(Ordering::SeqCst) == 0
            && self
                .head_begun
                .compare_exchange(0, now + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            && now + self.header_read_timeout < self.wake_at.load(Ordering::SeqCst)
        {
            self.head_begun_now.notify_one();
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection is to be closed unless something happens first.
    fn deadline(&self) -> u64 {
        let idle = self.last_io.load(Ordering::SeqCst) + self.idle_timeout;
        let head_begun = self.head_begun.load(Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) == 0 && head_begun > 0 {
            idle.min(head_begun - 1 + self.header_read_timeout)
        } else {
            idle
        }
    }
}

/// A request in progress: from its complete head until its response's body is sent (or
/// dropped).
struct InFlight(Arc<Clock>);

impl InFlight {
    fn start(clock: Arc<Clock>) -> Self {
        clock.in_flight.fetch_add(1, Ordering::SeqCst);
        clock.head_begun.store(0, Ordering::SeqCst);
        Self(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request in progress until it is sent.
struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, noting on its clock every byte that moves.
struct Watched<Io> {
    io: Io,
    clock: Arc<Clock>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Watched<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.read();
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Watched<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1,
        }
    }

    #[test]
    fn a_new_connection_has_the_header_read_timeout_from_its_accept() {
        let clock = Clock::new(&limits());
        assert_eq!(clock.deadline(), 10_000);
    }

    #[test]
    fn a_request_in_progress_has_the_idle_timeout_and_then_so_has_the_idle_connection() {
        let clock = Arc::new(Clock::new(&limits()));
        let in_flight = InFlight::start(Arc::clone(&clock));
        clock.read();
        assert_eq!(
            clock.deadline(),
            clock.last_io.load(Ordering::Relaxed) + 30_000
        );
        drop(in_flight);
        assert_eq!(
            clock.deadline(),
            clock.last_io.load(Ordering::Relaxed) + 30_000,
            "an idle keep-alive connection"
        );
        clock.read();
        let begun = clock.head_begun.load(Ordering::Relaxed);
        assert!(
            begun > 0,
            "a byte with no request in progress begins a head"
        );
        assert_eq!(clock.deadline(), begun - 1 + 10_000);
        clock.read();
        assert_eq!(
            clock.head_begun.load(Ordering::Relaxed),
            begun,
            "later bytes of the head do not move its start"
        );
    }
}
