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
//! a fresh connection, as pooled clients do.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
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

/// A complete response.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
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
    jar: Option<reqwest::cookie::Jar>,
}

impl FastClient {
    pub fn new(cookies: bool) -> Self {
        Self {
            conns: Vec::new(),
            jar: cookies.then(reqwest::cookie::Jar::default),
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

fn io_failure(e: &std::io::Error, what: &str) -> Failure {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => ErrorKind::Connect,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut => ErrorKind::Timeout,
        _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            ErrorKind::Dns
        }
        _ => ErrorKind::Connect,
    };
    let msg = match kind {
        ErrorKind::Connect if e.kind() == K::ConnectionRefused => "connection refused".into(),
        ErrorKind::Dns => format!("DNS: {e}"),
        _ => format!("{what}: {e}"),
    };
    (kind, msg, None)
}

fn hyper_failure(e: &hyper::Error) -> Failure {
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        (
            ErrorKind::Reset,
            "connection closed before the response was complete".into(),
            None,
        )
    } else if e.is_parse() || e.is_parse_status() {
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
        if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            req.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        match sender.send_request(req).await {
            Ok(resp) => {
                fc.conns[i].sender = Some(sender);
                return Ok(resp);
            }
            // A kept-alive connection the server closed meanwhile: retry once, fresh.
            Err(e) if reused && attempt == 0 && (e.is_canceled() || e.is_incomplete_message()) => {
                continue;
            }
            Err(e) => return Err(hyper_failure(&e)),
        }
    }
    Err((ErrorKind::Reset, "connection closed".into(), None))
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Send a prepared request, following redirects, and read the whole body.
pub async fn send(
    fc: &mut FastClient,
    p: Prepared,
    connect_timeout: Duration,
    max_redirects: u32,
) -> Result<Answer, Failure> {
    let Prepared {
        mut method,
        mut url,
        mut headers,
        mut body,
    } = p;
    let mut hops = 0u32;
    loop {
        if let Some(jar) = &fc.jar {
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
                // Drain the redirect's body so the connection can be reused.
                let _ = resp.into_body().collect().await;
                hops += 1;
                if status == StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
                {
                    method = Method::GET;
                    body = Bytes::new();
                    headers.remove(CONTENT_TYPE);
                }
                url = next;
                continue;
            }
        }
        let (parts, incoming) = resp.into_parts();
        let body = match incoming.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                let (kind, msg, _) = hyper_failure(&e);
                let kind = if kind == ErrorKind::Other {
                    ErrorKind::Body
                } else {
                    kind
                };
                return Err((kind, msg, Some(status.as_u16())));
            }
        };
        return Ok(Answer {
            status: status.as_u16(),
            headers: parts.headers,
            body,
        });
    }
}
