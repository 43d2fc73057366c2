//! Plain-HTTP requests straight over hyper's connection API.
//!
//! reqwest is the client for everything (TLS, HTTP/2, proxies of the future), but its
//! per-request machinery (client and connector clones, a shared pool checkout, tower
//! layers, re-parsing the URL of every response) was measured to be the ceiling for
//! plain `http://` load (see the issue notes). So a user that talks HTTP/1.1 without
//! TLS owns one keep-alive connection per host, like wrk's connections, and sends on it
//! directly. Behaviour matches the reqwest path: per-user cookie jar (reqwest's own
//! `Jar`), redirects up to the plan's limit (303, and 301/302 after a POST, become GET),
//! connect timeout, the caller's total timeout, bounded error kinds. A request that
//! fails because a reused idle connection was closed by the server is retried once on
//! a fresh connection, as hyper's pool does: when the request was never written, or
//! when its method is idempotent (a POST the server may have received is not sent
//! twice). A redirect across origins drops `Authorization`, `Cookie` and the other
//! credentials exactly as reqwest does; a redirect to a URL this path cannot speak
//! (`https://`) hands the rest of the exchange to reqwest ([`Sent::Detour`]).
//!
//! Response bodies are read chunk by chunk into a [`Received`]: every byte counted, at
//! most its `keep` bytes kept (none when nothing reads the body), so a body of any size
//! costs one chunk of memory at a time.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION,
    SET_COOKIE, USER_AGENT, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::cookie::CookieStore;

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
}

impl Received {
    /// Keep at most `keep` bytes (0: count only).
    pub fn new(keep: u64) -> Self {
        Self {
            keep: usize::try_from(keep).unwrap_or(usize::MAX),
            ..Self::default()
        }
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

/// A failed exchange: kind, message, and the status if one arrived.
pub type Failure = (ErrorKind, String, Option<u16>);

/// A kept-alive connection to one host:port, with its ready-made `Host` header.
struct Conn {
    host: String,
    port: u16,
    host_header: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// One user's connections (one per host:port) and cookie jar. Users talk to one or a
/// few hosts, so a short list searched without allocating beats a map keyed by string.
#[derive(Default)]
pub struct FastClient {
    conns: Vec<Conn>,
    jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
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
            conns: Vec::new(),
            jar,
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
            host_header: HeaderValue::from_str(&authority)
                .unwrap_or(HeaderValue::from_static("localhost")),
            sender: None,
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
    (kind, msg, None)
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
        return (kind, io_message(kind, io, "reading the response"), None);
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        (
            ErrorKind::Reset,
            "connection closed before the response was complete".into(),
            None,
        )
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        (ErrorKind::Body, format!("invalid HTTP response: {e}"), None)
    } else {
        let mut msg = e.to_string();
        if let Some(src) = std::error::Error::source(e) {
            msg = format!("{msg}: {src}");
        }
        (ErrorKind::Other, msg, None)
    }
}

async fn connect(
    host: &str,
    port: u16,
    connect_timeout: Duration,
) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let addr = format!("{host}:{port}");
    let stream =
        match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(io_failure(&e, "connect")),
            Err(_) => return Err((ErrorKind::Timeout, "connect timed out".into(), None)),
        };
    // Small requests must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e))?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One exchange on this user's connection to the URL's host (no redirects).
async fn exchange(
    fc: &mut FastClient,
    method: &Method,
    url: &reqwest::Url,
    headers: &HeaderMap,
    body: &Bytes,
    connect_timeout: Duration,
) -> Result<http::Response<hyper::body::Incoming>, Failure> {
    let i = fc.slot(url);
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let path = if path.is_empty() { "/" } else { path };
    for attempt in 0..2 {
        let conn = &mut fc.conns[i];
        let reused = conn.sender.is_some();
        let mut sender = match conn.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => connect(&conn.host, conn.port, connect_timeout).await?,
        };
        if sender.ready().await.is_err() {
            // Nothing was written: a fresh connection is safe for any method.
            if attempt == 0 {
                continue;
            }
            return Err((ErrorKind::Reset, "connection closed".into(), None));
        }
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .body(Full::new(body.clone()))
            .map_err(|e| (ErrorKind::Template, format!("bad request: {e}"), None))?;
        *req.headers_mut() = headers.clone();
        req.headers_mut()
            .insert(HOST, fc.conns[i].host_header.clone());
        // The default User-Agent (reqwest's client sets the same one).
        if !headers.contains_key(USER_AGENT) {
            req.headers_mut().insert(
                USER_AGENT,
                HeaderValue::from_static(crate::runtime::http::USER_AGENT),
            );
        }
        if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            req.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        match sender.try_send_request(req).await {
            Ok(resp) => {
                fc.conns[i].sender = Some(sender);
                return Ok(resp);
            }
            Err(mut e) => {
                // hyper hands the request back when it never wrote it.
                let unsent = e.take_message().is_some();
                let err = e.into_error();
                let failure = hyper_failure(&err);
                // A kept-alive connection the server closed meanwhile: retry once, fresh,
                // unless the server may have received a non-idempotent request.
                let retry = attempt == 0
                    && (unsent || (reused && idempotent(method) && failure.0 == ErrorKind::Reset));
                if retry {
                    continue;
                }
                return Err(failure);
            }
        }
    }
    Err((ErrorKind::Reset, "connection closed".into(), None))
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Read a body to its end into `rx`; a failure carries the response's status.
pub async fn read_body(
    mut incoming: hyper::body::Incoming,
    status: u16,
    rx: &mut Received,
) -> Result<(), Failure> {
    rx.announce(hyper::body::Body::size_hint(&incoming).exact());
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    rx.push(data);
                }
            }
            Err(e) => {
                let (kind, msg, _) = hyper_failure(&e);
                let kind = if kind == ErrorKind::Other {
                    ErrorKind::Body
                } else {
                    kind
                };
                return Err((kind, msg, Some(status)));
            }
        }
    }
    Ok(())
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
    // Like reqwest: the jar fills `Cookie` only when the request has none of its own.
    let mut own_cookie = headers.contains_key(COOKIE);
    let mut hops = 0u32;
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
        let resp = exchange(fc, &method, &url, &headers, &body, connect_timeout).await?;
        let status = resp.status();
        if let Some(jar) = &fc.jar {
            let mut set = resp.headers().get_all(SET_COOKIE).iter();
            jar.set_cookies(&mut set, &url);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        if is_redirect(status) && hops < max_redirects {
            if let Some(next) = location {
                // Drain the redirect's body (counted nowhere, kept nowhere) so the
                // connection can be reused.
                let mut drained = Received::new(0);
                read_body(resp.into_body(), status.as_u16(), &mut drained).await?;
                hops += 1;
                if status == StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
                {
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
        }
        let (parts, incoming) = resp.into_parts();
        read_body(incoming, status.as_u16(), rx).await?;
        return Ok(Sent::Done(Answer {
            status: status.as_u16(),
            headers: parts.headers,
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
        assert!(io_failure(&emfile, "connect").1.contains("ulimit -n"));
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
        assert_eq!(io_failure(&refused, "connect").0, ErrorKind::Connect);
    }

    #[test]
    fn only_idempotent_methods_are_retried_after_being_written() {
        assert!(idempotent(&Method::GET) && idempotent(&Method::PUT));
        assert!(!idempotent(&Method::POST) && !idempotent(&Method::PATCH));
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
