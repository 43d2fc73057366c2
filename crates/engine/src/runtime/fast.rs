//! Plain-HTTP/1.1 requests written and read by the user's own task.
//!
//! reqwest is the client for everything (TLS, HTTP/2, proxies of the future), but its
//! per-request machinery (client and connector clones, a shared pool checkout, tower
//! layers, re-parsing the URL of every response) was measured to be the ceiling for
//! plain `http://` load, and so was hyper's connection API (a task per connection and
//! a channel between it and the user: two task switches per request). So a user that
//! talks HTTP/1.1 without TLS owns one keep-alive `TcpStream` per host, like wrk's
//! connections, writes each request itself and parses the response with `httparse`
//! from one reusable read buffer: `Content-Length`, chunked (extensions and trailers)
//! and close-delimited bodies, interim 1xx heads, no body after HEAD, 204 and 304,
//! `Connection: close` either way.
//!
//! Behaviour matches the reqwest path: per-user cookie jar (reqwest's own `Jar`),
//! redirects up to the plan's limit (303, and 301/302 after a POST, become GET),
//! connect timeout, the caller's total timeout, bounded error kinds. A request that
//! fails because a reused idle connection was closed by the server is retried once on
//! a fresh connection, as hyper's pool does: when the request was never written, or
//! when its method is idempotent (a POST the server may have received is not sent
//! twice). A redirect across origins drops `Authorization`, `Cookie` and the other
//! credentials exactly as reqwest does; a redirect to a URL this path cannot speak
//! (`https://`) hands the rest of the exchange to reqwest ([`Sent::Detour`]).
//!
//! Response bodies are read into a [`Received`]: every byte counted, at most its
//! `keep` bytes kept (none when nothing reads the body), so a body of any size costs
//! one read buffer of memory at a time.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION,
    PROXY_AUTHORIZATION, SET_COOKIE, USER_AGENT, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method};
use reqwest::cookie::CookieStore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::metrics::ErrorKind;

/// A request ready to send, whichever client sends it.
pub struct Prepared {
    pub method: Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A complete response; its body went to the caller's [`Received`].
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub timing: Timing,
}

/// Where the time of one exchange went, in µs (docs/metrics.md, "phases").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// Name resolution, when this exchange opened a new connection (None: reused).
    pub dns_us: Option<u64>,
    /// TCP connect, when this exchange opened a new connection (None: reused).
    pub connect_us: Option<u64>,
    /// From the start of writing the request to the response head received (TTFB, "waiting").
    pub wait_us: u64,
}

/// What [`send`] did.
pub enum Sent {
    /// The exchange is complete.
    Done(Answer),
    /// A redirect led to a URL this path does not speak (`https://`): the caller sends
    /// this request (method, headers and body already rewritten for the hop) the general way.
    Detour(Prepared),
}

/// A response body as it is read: every byte counted in `total`, the first `keep`
/// bytes kept for checks and captures, the rest dropped as it arrives.
#[derive(Debug, Default)]
pub struct Received {
    keep: usize,
    /// The kept bytes while they came in one chunk (no copy).
    first: Bytes,
    /// The kept bytes once a second chunk arrived.
    joined: Vec<u8>,
    /// Every body byte read, kept or not.
    pub total: u64,
    /// The announced body length (`Content-Length`), when known.
    announced: Option<u64>,
    /// Nothing reads the response's headers: the fast path keeps only those it needs.
    no_headers: bool,
}

impl Received {
    /// Keep at most `keep` bytes (0: count only).
    pub fn new(keep: u64) -> Self {
        Self {
            keep: usize::try_from(keep).unwrap_or(usize::MAX),
            ..Self::default()
        }
    }

    /// Nothing will read the response's headers ([`Answer::headers`] may then hold only
    /// `Location` and `Set-Cookie`): saves building a map per response.
    pub fn without_headers(mut self) -> Self {
        self.no_headers = true;
        self
    }

    /// The body's announced length, so the kept bytes are allocated once.
    pub fn announce(&mut self, len: Option<u64>) {
        self.announced = len;
    }

    /// Count a chunk and keep what fits.
    pub fn push(&mut self, chunk: Bytes) {
        self.total += chunk.len() as u64;
        let kept = self.first.len() + self.joined.len();
        let room = self.keep.saturating_sub(kept);
        if room == 0 || chunk.is_empty() {
            return;
        }
        if kept == 0 && chunk.len() <= room {
            self.first = chunk;
            return;
        }
        if self.joined.is_empty() {
            if let Some(len) = self.announced {
                let want = usize::try_from(len).unwrap_or(usize::MAX).min(self.keep);
                self.joined.reserve_exact(want);
            }
        }
        if !self.first.is_empty() {
            self.joined.extend_from_slice(&self.first);
            self.first = Bytes::new();
        }
        let take = chunk.len().min(room);
        self.joined.extend_from_slice(&chunk[..take]);
    }

    /// Count bytes and keep what fits (copied: `chunk` is a read buffer's).
    pub fn push_slice(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let kept = self.first.len() + self.joined.len();
        let room = self.keep.saturating_sub(kept);
        if room == 0 || chunk.is_empty() {
            return;
        }
        if self.joined.is_empty() {
            let want = self
                .announced
                .map_or(0, |l| usize::try_from(l).unwrap_or(usize::MAX));
            self.joined
                .reserve_exact(want.min(self.keep).max(kept + chunk.len().min(room)));
            if !self.first.is_empty() {
                self.joined.extend_from_slice(&self.first);
                self.first = Bytes::new();
            }
        }
        self.joined
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// Whether more bytes arrived than were kept.
    pub fn over(&self) -> bool {
        self.total > self.keep as u64
    }

    /// The kept bytes.
    pub fn take(&mut self) -> Bytes {
        if self.joined.is_empty() {
            std::mem::take(&mut self.first)
        } else {
            Bytes::from(std::mem::take(&mut self.joined))
        }
    }
}

/// One timer for every total timeout of a user's requests, in place of a fresh
/// `tokio::time::timeout` per request (a timer registered and removed each time).
/// The timer is moved only when it would fire late: once it fires early (an earlier
/// request's deadline), it is set to the current request's deadline and waited again,
/// so a closed loop of short requests moves it about once per timeout, not per request.
#[derive(Default)]
pub struct Deadline {
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    /// Run `fut` to completion unless `deadline` passes first (`None`). The caller pins
    /// the future where it lives, so a large exchange future is not moved again here.
    pub async fn run<F: std::future::Future + ?Sized>(
        &mut self,
        deadline: tokio::time::Instant,
        mut fut: std::pin::Pin<&mut F>,
    ) -> Option<F::Output> {
        use std::future::Future as _;
        use std::task::Poll;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            loop {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Poll::Ready(None);
                }
                // An earlier request's deadline: wait for this one's.
                sleep.as_mut().reset(deadline);
            }
        })
        .await
    }
}

/// Why an exchange failed, on either sender.
#[derive(Debug)]
pub struct Failure {
    /// The bounded kind it counts under.
    pub kind: ErrorKind,
    /// What happened, for the error table.
    pub message: String,
    /// The status, when a response head had arrived before the failure.
    pub status: Option<u16>,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>, status: Option<u16>) -> Self {
        Self {
            kind,
            message: message.into(),
            status,
        }
    }
}

/// A kept-alive connection to one host:port, with its ready-made `Host` value.
struct Conn {
    host: String,
    port: u16,
    authority: String,
    /// The idle connection; taken out while an exchange uses it, so an exchange
    /// abandoned half-way (a timeout) never leaves a connection in an unknown state.
    stream: Option<TcpStream>,
}

/// One user's connections (one per host:port), cookie jar and buffers. Users talk to
/// one or a few hosts, so a short list searched without allocating beats a map keyed
/// by string. One read buffer and one write buffer serve every exchange in turn.
#[derive(Default)]
pub struct FastClient {
    conns: Vec<Conn>,
    jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
    /// Response bytes read and not yet consumed (empty between exchanges).
    buf: BytesMut,
    /// The request being written.
    out: Vec<u8>,
    /// Where the kept headers of the response being parsed lie.
    spans: Vec<Span>,
}

/// A kept-alive connection may be retried on a fresh one after it failed only when
/// the request was never written, or when the method is idempotent (RFC 9110 9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Whether a redirect leaves the origin (reqwest's `remove_sensitive_headers` test).
fn cross_origin(next: &reqwest::Url, previous: &reqwest::Url) -> bool {
    next.host_str() != previous.host_str()
        || next.port_or_known_default() != previous.port_or_known_default()
        || next.scheme() != previous.scheme()
}

/// The credentials reqwest drops on a cross-origin redirect.
fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    headers.remove(COOKIE);
    headers.remove("cookie2");
    headers.remove(PROXY_AUTHORIZATION);
    headers.remove(WWW_AUTHENTICATE);
}

impl FastClient {
    pub fn new(cookies: bool) -> Self {
        Self::with_jar(cookies.then(Default::default))
    }

    /// With a cookie jar shared with the user's reqwest client (one jar per user
    /// whichever path a request takes).
    pub fn with_jar(jar: Option<std::sync::Arc<reqwest::cookie::Jar>>) -> Self {
        Self {
            jar,
            ..Self::default()
        }
    }

    fn slot(&mut self, url: &reqwest::Url) -> usize {
        let host = url.host_str().unwrap_or("localhost");
        let port = url.port_or_known_default().unwrap_or(80);
        if let Some(i) = self
            .conns
            .iter()
            .position(|c| c.port == port && c.host == host)
        {
            return i;
        }
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        self.conns.push(Conn {
            host: host.to_string(),
            port,
            authority,
            stream: None,
        });
        self.conns.len() - 1
    }
}

/// Can this request go the direct way?
pub fn eligible(url: &reqwest::Url, http2: bool) -> bool {
    !http2 && url.scheme() == "http" && url.host_str().is_some()
}

/// Errors of the generator's own machine: out of file descriptors, local ports,
/// socket buffers or memory. Not the target's fault, so not `connect`.
pub fn is_local(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::AddrNotAvailable | K::OutOfMemory)
        || matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
        )
}

/// The bounded kind of an I/O error, when it says something definite: a local
/// shortage, a refusal, a reset at any point, a timeout.
pub fn io_kind(e: &std::io::Error) -> Option<ErrorKind> {
    use std::io::ErrorKind as K;
    if is_local(e) {
        return Some(ErrorKind::Local);
    }
    match e.kind() {
        K::ConnectionRefused => Some(ErrorKind::Connect),
        K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::NotConnected => Some(ErrorKind::Reset),
        K::TimedOut => Some(ErrorKind::Timeout),
        _ => None,
    }
}

/// The message of an I/O error of kind `kind`.
pub fn io_message(kind: ErrorKind, e: &std::io::Error, what: &str) -> String {
    match kind {
        ErrorKind::Connect if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ErrorKind::Local if e.raw_os_error() == Some(libc::EMFILE) => {
            format!("local: {what}: {e} (raise `ulimit -n`)")
        }
        ErrorKind::Local => format!("local: {what}: {e}"),
        ErrorKind::Reset => format!("connection reset ({what}): {e}"),
        _ => format!("{what}: {e}"),
    }
}

fn io_failure(e: &std::io::Error, what: &str) -> Failure {
    let kind = match io_kind(e) {
        Some(k) => k,
        None if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            ErrorKind::Dns
        }
        None => ErrorKind::Connect,
    };
    let msg = match kind {
        ErrorKind::Dns => format!("DNS: {e}"),
        _ => io_message(kind, e, what),
    };
    Failure::new(kind, msg, None)
}

/// The first I/O error in an error's chain of causes.
pub fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut src = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        src = s.source();
    }
    None
}

/// A hyper error as a bounded kind: resets (before the response, in its head or in
/// its body) are `reset`, a response that is not HTTP is `body`.
pub fn hyper_failure(e: &hyper::Error) -> Failure {
    if let Some((kind, io)) = io_source(e).and_then(|io| Some((io_kind(io)?, io))) {
        return Failure::new(kind, io_message(kind, io, "reading the response"), None);
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        Failure::new(
            ErrorKind::Reset,
            "connection closed before the response was complete",
            None,
        )
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        Failure::new(ErrorKind::Body, format!("invalid HTTP response: {e}"), None)
    } else {
        let mut msg = e.to_string();
        if let Some(src) = std::error::Error::source(e) {
            msg = format!("{msg}: {src}");
        }
        Failure::new(ErrorKind::Other, msg, None)
    }
}

/// Open a connection: resolve, then connect to each address in turn, all within
/// `connect_timeout`; the phases go to `timing`.
async fn connect(
    host: &str,
    port: u16,
    connect_timeout: Duration,
    timing: &mut Timing,
) -> Result<TcpStream, Failure> {
    let open = async {
        let t0 = Instant::now();
        let addrs = tokio::net::lookup_host(format!("{host}:{port}"))
            .await
            .map_err(|e| io_failure(&e, "connect"))?;
        let t1 = Instant::now();
        // An IP literal resolves to itself: no name resolution to report (docs/metrics.md).
        if host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_err()
        {
            add(&mut timing.dns_us, t1 - t0);
        }
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    add(&mut timing.connect_us, t1.elapsed());
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("failed to lookup address information: no address for {host}"),
            )
        });
        Err(io_failure(&e, "connect"))
    };
    let stream = match tokio::time::timeout(connect_timeout, open).await {
        Ok(r) => r?,
        Err(_) => return Err(Failure::new(ErrorKind::Timeout, "connect timed out", None)),
    };
    // Small requests must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn add(slot: &mut Option<u64>, d: Duration) {
    *slot = Some(slot.unwrap_or(0) + d.as_micros() as u64);
}

/// Whether an idle kept-alive connection can still carry a request: nothing to read
/// (a peer that closed it shows as readable with an end of stream). Costs no system
/// call while the runtime saw no event on the socket.
fn idle_alive(s: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// The request head and (small) body, written as hyper wrote them: `host` first, the
/// plan's headers, the default `user-agent`, and `content-length` when there is a
/// body or the method expects one. Returns whether the request asks to close the
/// connection (`Connection: close`), seen in the same pass over the headers.
fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    authority: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> bool {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    let length = !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    let (mut agent, mut close) = (false, false);
    for (name, value) in headers {
        if name == HOST || (length && name == CONTENT_LENGTH) {
            continue;
        }
        agent |= name == USER_AGENT;
        close |= name == CONNECTION && list_has(value.as_bytes(), "close");
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !agent {
        out.extend_from_slice(b"user-agent: ");
        out.extend_from_slice(crate::runtime::http::USER_AGENT.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if length {
        use std::io::Write as _;
        let _ = write!(out, "content-length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    if body.len() <= SMALL_BODY {
        out.extend_from_slice(body);
    }
    close
}

/// Bodies up to this size are copied behind the head and go out in one write.
const SMALL_BODY: usize = 16 * 1024;
/// The largest response head accepted (hyper's default read buffer limit).
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// The most response headers accepted (hyper's default).
const MAX_HEADERS: usize = 100;
/// Bytes read at a time.
const READ_CHUNK: usize = 8192;

/// Write all of `bytes`; on failure, whether nothing at all was written.
async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    mut written: bool,
) -> Result<(), (std::io::Error, bool)> {
    let mut at = 0;
    while at < bytes.len() {
        match w.write(&bytes[at..]).await {
            Ok(0) => return Err((std::io::ErrorKind::WriteZero.into(), !written)),
            Ok(n) => {
                at += n;
                written = true;
            }
            Err(e) => return Err((e, !written)),
        }
    }
    Ok(())
}

/// Read more bytes into `buf`; the end of the stream is an error (a response cut short).
async fn fill<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    status: Option<u16>,
) -> Result<(), Failure> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    match r.read_buf(buf).await {
        Ok(0) => Err(Failure::new(
            ErrorKind::Reset,
            "connection closed before the response was complete",
            status,
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(read_failure(&e, status)),
    }
}

fn read_failure(e: &std::io::Error, status: Option<u16>) -> Failure {
    let kind = match io_kind(e) {
        Some(k) => k,
        None if status.is_some() => ErrorKind::Body,
        None => ErrorKind::Other,
    };
    Failure::new(kind, io_message(kind, e, "reading the response"), status)
}

fn invalid(what: impl std::fmt::Display, status: Option<u16>) -> Failure {
    Failure::new(
        ErrorKind::Body,
        format!("invalid HTTP response: {what}"),
        status,
    )
}

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    Close,
}

/// A response head.
#[derive(Debug)]
struct Head {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    /// Whether the connection can carry another request after this body.
    keep_alive: bool,
}

/// Where a kept header's name and value lie in a response head (offset, length, offset,
/// length), so the values share the head's bytes instead of being copied one by one.
type Span = (u32, u32, u32, u32);

/// Whether a comma-separated list holds `token` (case-insensitive).
fn list_has(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A non-empty run of ASCII digits as a number (`None` on anything else or overflow).
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Read and parse a response head (skipping interim 1xx heads) from `buf` and `r`.
/// The head's bytes leave `buf`; whatever follows them stays. With `all` false only
/// the headers this module itself reads (`Location`, `Set-Cookie`) are kept.
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    head_request: bool,
    all: bool,
) -> Result<Head, Failure> {
    loop {
        // Between exchanges the buffer is empty: read before parsing nothing.
        if !buf.is_empty() {
            if let Some(head) = parse_head(buf, spans, head_request, all)? {
                return Ok(head);
            }
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("message head is too large", None));
        }
        fill(r, buf, None).await?;
    }
}

/// Parse the complete heads at the front of `buf`: interim 1xx heads are dropped, the
/// final one is returned; `None` while it is incomplete. Synchronous, so its header
/// arrays live on the stack rather than in the exchange's future.
fn parse_head(
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    head_request: bool,
    all: bool,
) -> Result<Option<Head>, Failure> {
    loop {
        spans.clear();
        let mut close = false;
        let mut keep_alive = false;
        let mut chunked = None;
        let mut length: Option<u64> = None;
        let mut bad_length = None;
        let (len, status, version) = {
            let mut raw = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let len = match httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut resp, buf, &mut raw)
            {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(invalid(e, None)),
            };
            let base = buf.as_ptr() as usize;
            for h in resp.headers.iter() {
                let name = h.name.as_bytes();
                // By length first: most headers are none of these.
                let is = |n: &[u8]| name.len() == n.len() && name.eq_ignore_ascii_case(n);
                let wanted = match name.len() {
                    10 if is(b"connection") => {
                        close |= list_has(h.value, "close");
                        keep_alive |= list_has(h.value, "keep-alive");
                        all
                    }
                    17 if is(b"transfer-encoding") => {
                        let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                        chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                        all
                    }
                    14 if is(b"content-length") => {
                        for part in h.value.split(|&b| b == b',') {
                            let n = decimal(part.trim_ascii());
                            match n {
                                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                                Some(_) => bad_length = Some("conflicting content-length"),
                                None => bad_length = Some("bad content-length"),
                            }
                        }
                        all
                    }
                    8 | 10 => all || is(b"location") || is(b"set-cookie"),
                    _ => all,
                };
                if wanted {
                    let n = h.name.as_ptr() as usize - base;
                    let v = h.value.as_ptr() as usize - base;
                    spans.push((n as u32, name.len() as u32, v as u32, h.value.len() as u32));
                }
            }
            (len, resp.code.unwrap_or(0), resp.version.unwrap_or(1))
        };
        if (100..200).contains(&status) && status != 101 {
            buf.advance(len);
            continue;
        }
        // No header kept (the usual case without checks): no map, no shared head bytes.
        let head = if spans.is_empty() {
            buf.advance(len);
            Bytes::new()
        } else {
            buf.split_to(len).freeze()
        };
        let mut headers = HeaderMap::new();
        for &(name, name_len, value, value_len) in spans.iter() {
            let name = &head[name as usize..(name + name_len) as usize];
            let name =
                http::header::HeaderName::from_bytes(name).map_err(|e| invalid(e, Some(status)))?;
            let value = head.slice(value as usize..(value + value_len) as usize);
            let value =
                HeaderValue::from_maybe_shared(value).map_err(|e| invalid(e, Some(status)))?;
            headers.append(name, value);
        }
        let framing = if head_request || status == 101 || status == 204 || status == 304 {
            Framing::Empty
        } else if let Some(chunked) = chunked {
            if chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else if let Some(m) = bad_length {
            return Err(invalid(m, Some(status)));
        } else {
            length.map_or(Framing::Close, Framing::Length)
        };
        let keep_alive = if version == 0 { keep_alive } else { !close }
            && status != 101
            && framing != Framing::Close;
        return Ok(Some(Head {
            status,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// Take up to `n` bytes from the front of `buf` into `rx`.
fn take(buf: &mut BytesMut, n: u64, rx: &mut Received) -> u64 {
    let k = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    rx.push_slice(&buf[..k]);
    buf.advance(k);
    k as u64
}

/// The most bytes of one chunk-size line or trailer line.
const MAX_LINE: usize = 64 * 1024;

/// Read a body framed as `framing` into `rx`. Bytes after the body stay in `buf`.
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    framing: Framing,
    status: u16,
    rx: &mut Received,
) -> Result<(), Failure> {
    let st = Some(status);
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            rx.announce(Some(n));
            let mut left = n - take(buf, n, rx);
            while left > 0 {
                fill(r, buf, st).await?;
                left -= take(buf, left, rx);
            }
        }
        Framing::Close => loop {
            take(buf, u64::MAX, rx);
            if buf.capacity() < READ_CHUNK {
                buf.reserve(READ_CHUNK);
            }
            match r.read_buf(buf).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(read_failure(&e, st)),
            }
        },
        Framing::Chunked => loop {
            let size = loop {
                match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_LINE => {
                        fill(r, buf, st).await?
                    }
                    _ => return Err(invalid("bad chunk size", st)),
                }
            };
            if size == 0 {
                // Trailer fields (ignored) up to an empty line.
                loop {
                    match buf.iter().position(|&b| b == b'\n') {
                        Some(end) => {
                            let empty = end == 0 || (end == 1 && buf[0] == b'\r');
                            buf.advance(end + 1);
                            if empty {
                                return Ok(());
                            }
                        }
                        None if buf.len() <= MAX_LINE => fill(r, buf, st).await?,
                        None => return Err(invalid("trailer too large", st)),
                    }
                }
            }
            let mut left = size - take(buf, size, rx);
            while left > 0 {
                fill(r, buf, st).await?;
                left -= take(buf, left, rx);
            }
            while buf.len() < 2 {
                if buf.first() == Some(&b'\n') {
                    break;
                }
                fill(r, buf, st).await?;
            }
            if buf.starts_with(b"\r\n") {
                buf.advance(2);
            } else if buf.starts_with(b"\n") {
                buf.advance(1);
            } else {
                return Err(invalid("chunk not followed by CRLF", st));
            }
        },
    }
    Ok(())
}

/// A response whose head arrived; its body is still on the connection.
struct Pending {
    slot: usize,
    stream: TcpStream,
    head: Head,
}

/// One exchange on this user's connection to the URL's host (no redirects), up to the
/// response head.
/// The request of one hop: method, URL, headers, body.
type Hop<'a> = (&'a Method, &'a reqwest::Url, &'a HeaderMap, &'a Bytes);

async fn exchange(
    fc: &mut FastClient,
    (method, url, headers, body): Hop<'_>,
    connect_timeout: Duration,
    timing: &mut Timing,
    all: bool,
) -> Result<Pending, Failure> {
    let i = fc.slot(url);
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let path = if path.is_empty() { "/" } else { path };
    let close = write_request(
        &mut fc.out,
        method,
        path,
        &fc.conns[i].authority,
        headers,
        body,
    );
    for attempt in 0..2 {
        let conn = &mut fc.conns[i];
        let (mut stream, reused) = match conn.stream.take() {
            Some(s) if idle_alive(&s) => (s, true),
            _ => (
                connect(&conn.host, conn.port, connect_timeout, timing).await?,
                false,
            ),
        };
        fc.buf.clear();
        let start = Instant::now();
        let mut sent = write_all(&mut stream, &fc.out, false).await;
        if sent.is_ok() && body.len() > SMALL_BODY {
            sent = write_all(&mut stream, body, true).await;
        }
        let result = match sent {
            Ok(()) => read_head(
                &mut stream,
                &mut fc.buf,
                &mut fc.spans,
                *method == Method::HEAD,
                all,
            )
            .await
            .map_err(|f| (f, false)),
            Err((e, unsent)) => {
                let kind = io_kind(&e).unwrap_or(ErrorKind::Reset);
                Err((
                    Failure::new(kind, io_message(kind, &e, "writing the request"), None),
                    unsent,
                ))
            }
        };
        match result {
            Ok(mut head) => {
                timing.wait_us += start.elapsed().as_micros() as u64;
                head.keep_alive &= !close;
                return Ok(Pending {
                    slot: i,
                    stream,
                    head,
                });
            }
            Err((failure, unsent)) => {
                // A kept-alive connection the server closed meanwhile: retry once, fresh,
                // unless the server may have received a non-idempotent request.
                let retry = attempt == 0
                    && reused
                    && (unsent || (idempotent(method) && failure.kind == ErrorKind::Reset));
                if !retry {
                    return Err(failure);
                }
            }
        }
    }
    Err(Failure::new(ErrorKind::Reset, "connection closed", None))
}

impl Pending {
    /// Read the body into `rx`, then keep the connection for the next request if it
    /// can carry one.
    async fn finish(mut self, fc: &mut FastClient, rx: &mut Received) -> Result<(), Failure> {
        read_body(
            &mut self.stream,
            &mut fc.buf,
            self.head.framing,
            self.head.status,
            rx,
        )
        .await?;
        // Bytes past the response on an idle connection: the server is not speaking
        // HTTP/1.1 request by request, so start afresh next time.
        if self.head.keep_alive && fc.buf.is_empty() {
            fc.conns[self.slot].stream = Some(self.stream);
        }
        fc.buf.clear();
        Ok(())
    }
}

fn is_redirect(s: u16) -> bool {
    matches!(s, 301 | 302 | 303 | 307 | 308)
}

/// Send a prepared request, following redirects, and read the final body into `rx`.
pub async fn send(
    fc: &mut FastClient,
    p: Prepared,
    connect_timeout: Duration,
    max_redirects: u32,
    rx: &mut Received,
) -> Result<Sent, Failure> {
    let Prepared {
        mut method,
        mut url,
        mut headers,
        mut body,
    } = p;
    // Like reqwest: the jar fills `Cookie` only when the request has none of its own
    // (only asked with a jar: without one nothing reads it).
    let mut own_cookie = fc.jar.is_some() && headers.contains_key(COOKIE);
    let mut hops = 0u32;
    let mut timing = Timing::default();
    loop {
        if let (Some(jar), false) = (&fc.jar, own_cookie) {
            match jar.cookies(&url) {
                Some(c) => {
                    headers.insert(COOKIE, c);
                }
                None => {
                    headers.remove(COOKIE);
                }
            }
        }
        let pending = exchange(
            fc,
            (&method, &url, &headers, &body),
            connect_timeout,
            &mut timing,
            !rx.no_headers,
        )
        .await?;
        let status = pending.head.status;
        if let Some(jar) = &fc.jar {
            let mut set = pending.head.headers.get_all(SET_COOKIE).iter();
            jar.set_cookies(&mut set, &url);
        }
        let location = is_redirect(status)
            .then(|| pending.head.headers.get(LOCATION))
            .flatten()
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        if let (Some(next), true) = (location, hops < max_redirects) {
            // Drain the redirect's body (counted nowhere, kept nowhere) so the
            // connection can be reused.
            pending.finish(fc, &mut Received::new(0)).await?;
            hops += 1;
            if status == 303 || (matches!(status, 301 | 302) && method == Method::POST) {
                method = Method::GET;
                body = Bytes::new();
                headers.remove(CONTENT_TYPE);
            }
            if cross_origin(&next, &url) {
                strip_credentials(&mut headers);
                own_cookie = false;
            }
            if !eligible(&next, false) {
                // reqwest shares the jar and fills `Cookie` itself.
                if fc.jar.is_some() && !own_cookie {
                    headers.remove(COOKIE);
                }
                return Ok(Sent::Detour(Prepared {
                    method,
                    url: next,
                    headers,
                    body,
                }));
            }
            url = next;
            continue;
        }
        let mut pending = pending;
        let headers = std::mem::take(&mut pending.head.headers);
        pending.finish(fc, rx).await?;
        return Ok(Sent::Done(Answer {
            status,
            headers,
            timing,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_keeps_at_most_its_limit_and_counts_everything() {
        let mut rx = Received::new(5);
        rx.push(Bytes::from_static(b"abc"));
        rx.push(Bytes::from_static(b"defgh"));
        rx.push(Bytes::from_static(b"ijk"));
        assert_eq!(rx.total, 11);
        assert!(rx.over());
        assert_eq!(&rx.take()[..], b"abcde");
    }

    #[test]
    fn received_keeps_a_single_chunk_without_copying_and_nothing_at_zero() {
        let chunk = Bytes::from_static(b"hello");
        let mut rx = Received::new(16);
        rx.push(chunk.clone());
        assert!(!rx.over());
        let kept = rx.take();
        assert_eq!(kept.as_ptr(), chunk.as_ptr());
        let mut none = Received::new(0);
        none.push(chunk);
        assert_eq!(none.total, 5);
        assert!(none.take().is_empty());
    }

    #[test]
    fn local_shortages_are_local_and_resets_are_reset() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ] {
            let e = std::io::Error::from_raw_os_error(errno);
            assert_eq!(io_kind(&e), Some(ErrorKind::Local), "{e}");
        }
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(io_failure(&emfile, "connect").message.contains("ulimit -n"));
        for k in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert_eq!(
                io_kind(&std::io::Error::from(k)),
                Some(ErrorKind::Reset),
                "{k}"
            );
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_failure(&refused, "connect").kind, ErrorKind::Connect);
    }

    #[test]
    fn one_deadline_serves_requests_in_turn_and_fires_only_when_due() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut d = Deadline::default();
            let now = tokio::time::Instant::now;
            // A long deadline first, then a short one: the timer moves earlier.
            let long = now() + Duration::from_secs(60);
            assert_eq!(d.run(long, std::pin::pin!(async { 1 })).await, Some(1));
            let t0 = std::time::Instant::now();
            let short = now() + Duration::from_millis(30);
            let never = std::pin::pin!(std::future::pending::<()>());
            assert_eq!(d.run(short, never).await, None);
            assert!(t0.elapsed() >= Duration::from_millis(30));
            // The timer now lies in the past: a later request is not cut short by it.
            let later = now() + Duration::from_millis(80);
            let t1 = std::time::Instant::now();
            let work = std::pin::pin!(tokio::time::sleep(Duration::from_millis(40)));
            assert_eq!(d.run(later, work).await, Some(()));
            let t2 = std::time::Instant::now();
            let never = std::pin::pin!(std::future::pending::<()>());
            assert_eq!(d.run(later, never).await, None);
            assert!(t2.elapsed() > Duration::ZERO && t1.elapsed() >= Duration::from_millis(80));
        });
    }

    #[test]
    fn decimal_reads_only_plain_digits() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"+1",
            b"1 2",
            b"x",
            b"-0",
        ] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_idempotent_methods_are_retried_after_being_written() {
        assert!(idempotent(&Method::GET) && idempotent(&Method::PUT));
        assert!(!idempotent(&Method::POST) && !idempotent(&Method::PATCH));
    }

    /// A reader that hands out at most `step` bytes per read, then the end of stream.
    struct Drip<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Drip<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            out: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.step.min(self.data.len()).min(out.remaining());
            out.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Parse one response (head and body) read `step` bytes at a time: the head, the
    /// kept body, and how many bytes were left after it.
    fn parse(
        data: &[u8],
        step: usize,
        head_request: bool,
    ) -> Result<(Head, Vec<u8>, usize), Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut r = Drip { data, step };
            let mut buf = BytesMut::new();
            let head = read_head(&mut r, &mut buf, &mut Vec::new(), head_request, true).await?;
            let mut rx = Received::new(1 << 20);
            read_body(&mut r, &mut buf, head.framing, head.status, &mut rx).await?;
            assert_eq!(rx.total as usize, rx.first.len() + rx.joined.len());
            Ok((head, rx.take().to_vec(), buf.len() + r.data.len()))
        })
    }

    #[test]
    fn a_response_read_a_byte_at_a_time_parses_like_one_read() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Many: a\r\nX-Many: b\r\nContent-Length: 5\r\n\r\nhello";
        for step in [1, 3, 7, 1000] {
            let (head, body, left) = parse(resp, step, false).expect("parses");
            assert_eq!(head.status, 200);
            assert_eq!(head.framing, Framing::Length(5));
            assert!(head.keep_alive);
            assert_eq!(head.headers.get_all("x-many").iter().count(), 2);
            assert_eq!(head.headers[CONTENT_TYPE], "text/plain");
            assert_eq!(body, b"hello", "step {step}");
            assert_eq!(left, 0);
        }
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers_are_joined() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: yes\r\n\r\n";
        for step in [1, 2, 5, 1000] {
            let (head, body, left) = parse(resp, step, false).expect("parses");
            assert_eq!(head.framing, Framing::Chunked);
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "step {step}");
            assert_eq!(left, 0, "the trailer is consumed");
        }
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n";
        let Failure {
            kind,
            message: msg,
            status,
        } = parse(bad, 4, false).expect_err("bad chunk size");
        assert_eq!((kind, status), (ErrorKind::Body, Some(200)), "{msg}");
    }

    #[test]
    fn interim_heads_are_skipped_and_head_204_304_have_no_body() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        let (head, body, _) = parse(resp, 3, false).expect("parses");
        assert_eq!((head.status, body.as_slice()), (201, &b"ok"[..]));
        assert!(!head.headers.contains_key("link"));
        let head_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
        let (head, body, left) = parse(head_resp, 1000, true).expect("HEAD");
        assert_eq!((head.framing, body.len(), left), (Framing::Empty, 0, 0));
        assert!(head.keep_alive);
        for code in [204, 304] {
            let r = format!("HTTP/1.1 {code} X\r\nContent-Length: 10\r\n\r\n");
            let (head, body, _) = parse(r.as_bytes(), 1000, false).expect("no body");
            assert_eq!((head.framing, body.len()), (Framing::Empty, 0), "{code}");
        }
    }

    #[test]
    fn connection_close_http_1_0_and_close_delimited_bodies_end_the_connection() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        assert!(!parse(close, 1000, false).expect("parses").0.keep_alive);
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert!(!parse(old, 1000, false).expect("parses").0.keep_alive);
        let old_kept = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok";
        assert!(parse(old_kept, 1000, false).expect("parses").0.keep_alive);
        let until_eof = b"HTTP/1.1 200 OK\r\n\r\nall of this, until the end";
        let (head, body, _) = parse(until_eof, 4, false).expect("parses");
        assert_eq!(head.framing, Framing::Close);
        assert!(!head.keep_alive);
        assert_eq!(body, b"all of this, until the end");
    }

    #[test]
    fn garbage_and_cut_responses_get_their_error_kinds() {
        let Failure { kind, status, .. } =
            parse(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", 1000, false).expect_err("garbage");
        assert_eq!((kind, status), (ErrorKind::Body, None));
        let Failure { kind, status, .. } =
            parse(b"HTTP/1.1 200 OK\r\nContent-Le", 1000, false).expect_err("cut head");
        assert_eq!((kind, status), (ErrorKind::Reset, None));
        let cut_body = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf";
        let Failure { kind, status, .. } = parse(cut_body, 2, false).expect_err("cut body");
        assert_eq!((kind, status), (ErrorKind::Reset, Some(200)));
        let cut_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert_eq!(
            parse(cut_chunk, 1000, false).expect_err("cut chunk").kind,
            ErrorKind::Reset
        );
        let bad_len = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok";
        assert_eq!(
            parse(bad_len, 1000, false).expect_err("conflict").kind,
            ErrorKind::Body
        );
    }

    #[test]
    fn without_headers_only_location_and_set_cookie_are_kept_and_framing_still_read() {
        let resp = b"HTTP/1.1 302 Found\r\nServer: x\r\nLocation: /next\r\nSet-Cookie: a=1\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc";
        let mut buf = BytesMut::from(&resp[..]);
        let head = parse_head(&mut buf, &mut Vec::new(), false, false)
            .expect("parses")
            .expect("complete");
        assert_eq!(head.headers.len(), 2, "{:?}", head.headers);
        assert_eq!(head.headers[LOCATION], "/next");
        assert_eq!((head.framing, head.keep_alive), (Framing::Length(3), false));
        assert_eq!(&buf[..], b"abc");
        let mut partial = BytesMut::from(&resp[..20]);
        assert!(
            parse_head(&mut partial, &mut Vec::new(), false, false)
                .expect("so far so good")
                .is_none()
        );
    }

    #[test]
    fn requests_carry_host_first_the_plan_headers_and_a_length_when_due() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert(HOST, HeaderValue::from_static("ignored"));
        let mut out = Vec::new();
        write_request(&mut out, &Method::POST, "/p?q=1", "h:8080", &headers, b"{}");
        let text = String::from_utf8(out.clone()).expect("utf-8");
        assert!(
            text.starts_with("POST /p?q=1 HTTP/1.1\r\nhost: h:8080\r\n"),
            "{text}"
        );
        assert!(!text.contains("ignored"), "{text}");
        assert!(
            text.contains("x-a: 1\r\n") && text.contains("user-agent: "),
            "{text}"
        );
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"), "{text}");
        write_request(&mut out, &Method::GET, "/", "h", &HeaderMap::new(), b"");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(!text.contains("content-length"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }

    #[test]
    fn cross_origin_is_host_port_or_scheme() {
        let u = |s: &str| reqwest::Url::parse(s).expect("url");
        assert!(!cross_origin(&u("http://a/x"), &u("http://a:80/y")));
        assert!(cross_origin(&u("http://a:81/"), &u("http://a/")));
        assert!(cross_origin(&u("https://a/"), &u("http://a/")));
        assert!(cross_origin(&u("http://b/"), &u("http://a/")));
    }
}
