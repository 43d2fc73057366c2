//! A scripted bad server for fault-injection tests: one [`Fault`] per server, on
//! `127.0.0.1:0`, served from its own thread and runtime so that both async tests and
//! tests that spawn the `loadplan` binary can use it. Every accepted connection and
//! every request head read is counted, so a test can say what reached the server.
//!
//! Bodies are written from one static buffer: a 200 MB or endless body costs the
//! server no memory. A reset is a close with `SO_LINGER` 0 (the kernel sends RST).
//!
//! [`FaultServer::start_tls`] serves the same faults over TLS with the self-signed
//! certificate in `tests/common/tls/` (for `localhost` and `127.0.0.1`, valid until
//! 2126; clients use `--insecure`), so the general (reqwest) path meets them too. A
//! plain server counts a TLS ClientHello it receives in [`FaultServer::tls_hellos`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A small `200 OK` keep-alive answer to every request (the baseline).
    Ok,
    /// Accept, read the request, never answer (the socket stays open).
    Silent,
    /// A valid `200 OK` with a 5-byte body, written one byte per interval.
    SlowDrip(Duration),
    /// Read the request, wait this long, then answer like [`Fault::Ok`] (keep-alive): a
    /// known time to first byte.
    DelayedHead(Duration),
    /// Bytes that are not HTTP, then close.
    Garbage,
    /// Read the request, then reset before any response byte.
    ResetBeforeResponse,
    /// Reset in the middle of the response head.
    ResetMidHeaders,
    /// A head announcing 1 MB, 1000 body bytes, then a reset.
    ResetMidBody,
    /// A `200 OK` with a body of this many bytes (`Content-Length`), keep-alive.
    Body(u64),
    /// A chunked `200 OK` whose body never ends (until the client goes away).
    Endless,
    /// On every connection: answer the first request, then read the second one in
    /// full and close without answering (a keep-alive connection that dies after the
    /// request was written).
    CloseAfterFirst,
    /// Redirect every request whose path is not `/final` to `/final` on another origin
    /// (see [`FaultServer::set_redirect_target`]); answer `/final` with 200 and echo
    /// the request's `authorization` and `cookie` headers in the body.
    Redirect,
    /// Answer `/CODING` (`gzip`, `deflate`, `raw-deflate`, `br`, `zstd`, or a list like
    /// `gzip,br` applied in that order) with the JSON `{"coding":"…","ok":true,…}`
    /// encoded so, `Content-Encoding` set (`raw-deflate` says `deflate`); `/bomb` with
    /// 64 MiB of spaces gzipped (~64 KiB on the wire) — whatever `Accept-Encoding` says.
    Compressed,
    /// `/events`: a `text/event-stream` (no length: it ends when the client leaves) of a
    /// comment, then `event: tick` / `data: {"n":N}` for N = 1, 2, … every
    /// [`SSE_EVERY`], at most 200. `/plain`: a JSON answer that is not a stream. Any other
    /// path: a small 200 (`ok`).
    Sse,
    /// WebSocket: complete the upgrade, then drop the TCP connection without a close
    /// frame (the client sees 1006).
    WsDrop,
    /// WebSocket: complete the upgrade, then send a text frame that is not UTF-8.
    WsInvalidUtf8,
    /// WebSocket: complete the upgrade, then announce a 20 MB binary frame.
    WsOversize,
    /// A real HTTP server (hyper), HTTP/2 or HTTP/1.1 as TLS ALPN chose (see
    /// [`FaultServer::start_h2`]); each request head is recorded with its version first
    /// (`HTTP/2.0 GET /me`). `/login` sets the cookie `sid=s3cret` and answers
    /// `{"token":"t-42"}`; `/me` answers `{"cookie":…,"auth":…,"version":…}` from the
    /// request; anything else `ok`.
    Hyper,
}

/// Counters shared with the serving thread.
#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    requests: AtomicU64,
    posts: AtomicU64,
    body_bytes: AtomicU64,
    /// The first 4 KiB of each request body.
    bodies: std::sync::Mutex<Vec<Vec<u8>>>,
    tls_hellos: AtomicU64,
    heads: std::sync::Mutex<Vec<String>>,
    redirect_to: std::sync::Mutex<String>,
}

/// A running fault server; stops when dropped.
pub struct FaultServer {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The interval between the events of [`Fault::Sse`].
pub const SSE_EVERY: Duration = Duration::from_millis(40);

static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl FaultServer {
    /// Bind `127.0.0.1:0` and serve `fault` until dropped.
    pub fn start(fault: Fault) -> FaultServer {
        Self::spawn(fault, None)
    }

    /// Like [`start`](Self::start), over TLS (HTTP/1.1).
    pub fn start_tls(fault: Fault) -> FaultServer {
        Self::spawn(fault, Some(acceptor(&[b"http/1.1"])))
    }

    /// [`Fault::Hyper`] over TLS, offering `h2` and `http/1.1` by ALPN.
    pub fn start_h2() -> FaultServer {
        Self::spawn(Fault::Hyper, Some(acceptor(&[b"h2", b"http/1.1"])))
    }

    fn spawn(fault: Fault, tls: Option<tokio_rustls::TlsAcceptor>) -> FaultServer {
        let counts = Arc::new(Counts::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let c = counts.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("fault server runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        c.connections.fetch_add(1, Ordering::SeqCst);
                        let c = c.clone();
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            let _ = match tls {
                                None => serve(stream, fault, &c).await,
                                Some(acceptor) => match acceptor.accept(stream).await {
                                    Ok(s) if fault == Fault::Hyper => hyper_serve(s, c).await,
                                    Ok(s) => serve(s, fault, &c).await,
                                    Err(e) => Err(e),
                                },
                            };
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime ends every connection task.
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fault server did not start");
        FaultServer {
            addr,
            counts,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT` (for [`start_tls`](Self::start_tls)).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// TLS ClientHellos received by a plain server (a client that wanted TLS).
    pub fn tls_hellos(&self) -> u64 {
        self.counts.tls_hellos.load(Ordering::SeqCst)
    }

    /// `ws://127.0.0.1:PORT`
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// Request heads read so far.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// POST requests read so far.
    pub fn posts(&self) -> u64 {
        self.counts.posts.load(Ordering::SeqCst)
    }

    /// Request body bytes read so far (`Content-Length` bodies).
    pub fn body_bytes(&self) -> u64 {
        self.counts.body_bytes.load(Ordering::SeqCst)
    }

    /// The first 4 KiB of every request body read, in order.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.counts.bodies.lock().expect("bodies").clone()
    }

    /// Every request head read, in order.
    pub fn heads(&self) -> Vec<String> {
        self.counts.heads.lock().expect("heads").clone()
    }

    /// For [`Fault::Redirect`]: the absolute URL redirects point to.
    pub fn set_redirect_target(&self, url: &str) {
        *self.counts.redirect_to.lock().expect("redirect") = url.to_string();
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TLS acceptor with the test certificate, offering `alpn`.
fn acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let cert = rustls::pki_types::CertificateDer::from(include_bytes!("tls/cert.der").to_vec());
    let key =
        rustls::pki_types::PrivateKeyDer::Pkcs8(include_bytes!("tls/key.der").to_vec().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("test certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A connection the server talks on: plain TCP or TLS over TCP.
pub trait Wire: AsyncRead + AsyncWrite + Unpin + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Wire for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// [`Fault::Hyper`] on one TLS connection, in the protocol ALPN chose.
async fn hyper_serve(
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    c: Arc<Counts>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let c = c.clone();
        async move {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let head = format!(
                "{:?} {} {}\r\ncookie: {}\r\nauthorization: {}\r\n",
                req.version(),
                req.method(),
                req.uri().path(),
                header("cookie"),
                header("authorization")
            );
            c.requests.fetch_add(1, Ordering::SeqCst);
            c.heads.lock().expect("heads").push(head);
            let mut resp = hyper::Response::builder().header("content-type", "application/json");
            let body = match req.uri().path() {
                "/login" => {
                    resp = resp.header("set-cookie", "sid=s3cret; Path=/");
                    r#"{"token":"t-42"}"#.to_string()
                }
                "/me" => serde_json::json!({
                    "cookie": header("cookie"),
                    "auth": header("authorization"),
                    "version": format!("{:?}", req.version()),
                })
                .to_string(),
                _ => "ok".to_string(),
            };
            resp.body(http_body_util::Full::new(bytes::Bytes::from(body)))
        }
    });
    let io = TokioIo::new(stream);
    let served = if h2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await
    };
    served.map_err(std::io::Error::other)
}

/// Reads one request (head and `Content-Length` body); `None` at EOF.
async fn read_request<S: Wire>(stream: &mut S, c: &Counts) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        if head.is_empty() && byte[0] == 0x16 {
            // A TLS handshake record: this client wanted https.
            c.tls_hellos.fetch_add(1, Ordering::SeqCst);
            return Ok(None);
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let len: u64 = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut left = len;
    let mut start = Vec::new();
    let mut buf = [0u8; 8192];
    while left > 0 {
        let n = stream
            .read(&mut buf[..usize::try_from(left.min(8192)).expect("small")])
            .await?;
        if n == 0 {
            return Ok(None);
        }
        left -= n as u64;
        c.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
        let room = 4096usize.saturating_sub(start.len()).min(n);
        start.extend_from_slice(&buf[..room]);
    }
    c.bodies.lock().expect("bodies").push(start);
    c.requests.fetch_add(1, Ordering::SeqCst);
    if text.starts_with("POST ") {
        c.posts.fetch_add(1, Ordering::SeqCst);
    }
    c.heads.lock().expect("heads").push(text.clone());
    Ok(Some(text))
}

fn reset<S: Wire>(stream: S) {
    let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn write_body<S: Wire>(stream: &mut S, mut len: u64) -> std::io::Result<()> {
    while len > 0 {
        let n = usize::try_from(len.min(CHUNK.len() as u64)).expect("small");
        stream.write_all(&CHUNK[..n]).await?;
        len -= n as u64;
    }
    Ok(())
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";

async fn serve<S: Wire>(mut stream: S, fault: Fault, c: &Counts) -> std::io::Result<()> {
    match fault {
        Fault::WsDrop | Fault::WsInvalidUtf8 | Fault::WsOversize => {
            return ws(stream, fault, c).await;
        }
        _ => {}
    }
    let mut on_this_connection = 0u64;
    while let Some(head) = read_request(&mut stream, c).await? {
        on_this_connection += 1;
        match fault {
            // Hyper's requests over plain TCP (only `start_h2` serves them with hyper).
            Fault::Ok | Fault::Hyper => stream.write_all(OK).await?,
            Fault::DelayedHead(wait) => {
                tokio::time::sleep(wait).await;
                stream.write_all(OK).await?;
            }
            Fault::Silent => {
                // Hold the socket open and unanswered until the client leaves.
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            Fault::SlowDrip(every) => {
                for b in b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello" {
                    stream.write_all(&[*b]).await?;
                    tokio::time::sleep(every).await;
                }
            }
            Fault::Garbage => {
                stream
                    .write_all(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n")
                    .await?;
                return Ok(());
            }
            Fault::ResetBeforeResponse => {
                reset(stream);
                return Ok(());
            }
            Fault::ResetMidHeaders => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/pl")
                    .await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                reset(stream);
                return Ok(());
            }
            Fault::ResetMidBody => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n")
                    .await?;
                write_body(&mut stream, 1000).await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                reset(stream);
                return Ok(());
            }
            Fault::Body(len) => {
                stream
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").as_bytes(),
                    )
                    .await?;
                write_body(&mut stream, len).await?;
            }
            Fault::Endless => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await?;
                let size = format!("{:x}\r\n", CHUNK.len());
                loop {
                    stream.write_all(size.as_bytes()).await?;
                    stream.write_all(&CHUNK).await?;
                    stream.write_all(b"\r\n").await?;
                }
            }
            Fault::CloseAfterFirst => {
                if on_this_connection > 1 {
                    // The request was read in full: the client wrote it.
                    return Ok(());
                }
                stream.write_all(OK).await?;
            }
            Fault::Redirect => {
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                if path == "/final" {
                    let echo: String = head
                        .lines()
                        .filter(|l| {
                            let l = l.to_ascii_lowercase();
                            l.starts_with("authorization:") || l.starts_with("cookie:")
                        })
                        .map(|l| format!("{l}\n"))
                        .collect();
                    let body = format!("final\n{echo}");
                    stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await?;
                } else {
                    let to = c.redirect_to.lock().expect("redirect").clone();
                    stream
                        .write_all(
                            format!(
                                "HTTP/1.1 302 Found\r\nlocation: {to}/final\r\nset-cookie: session=s3cret; Path=/\r\ncontent-length: 0\r\n\r\n"
                            )
                            .as_bytes(),
                        )
                        .await?;
                }
            }
            Fault::Compressed => {
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (encoding, body) = compressed(path.trim_start_matches('/'));
                stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: {encoding}\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await?;
                stream.write_all(&body).await?;
            }
            Fault::Sse => {
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                if path == "/plain" {
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                        .await?;
                } else if path != "/events" {
                    stream.write_all(OK).await?;
                } else {
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n: stream starts\n\n")
                        .await?;
                    stream.flush().await?;
                    for n in 1..=200 {
                        tokio::time::sleep(SSE_EVERY).await;
                        stream
                            .write_all(format!("event: tick\ndata: {{\"n\":{n}}}\n\n").as_bytes())
                            .await?;
                        stream.flush().await?;
                    }
                    return Ok(());
                }
            }
            Fault::WsDrop | Fault::WsInvalidUtf8 | Fault::WsOversize => unreachable!(),
        }
        // TLS keeps the tail of a response in its buffer until flushed.
        stream.flush().await?;
    }
    Ok(())
}

/// The body [`Fault::Compressed`] serves for `name`, and its `Content-Encoding`.
fn compressed(name: &str) -> (String, Vec<u8>) {
    use std::io::Write;
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    if name == "bomb" {
        let bomb = BOMB.get_or_init(|| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let spaces = [b' '; 64 * 1024];
            for _ in 0..1024 {
                e.write_all(&spaces).expect("in memory");
            }
            e.finish().expect("in memory")
        });
        return ("gzip".into(), bomb.clone());
    }
    let mut body = format!("{{\"coding\":\"{name}\",\"ok\":true,\"pad\":\"").into_bytes();
    body.extend_from_slice(&[b'z'; 4000]);
    body.extend_from_slice(b"\"}");
    let mut names = Vec::new();
    for c in name.split(',') {
        body = match c {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&body).expect("in memory");
                e.finish().expect("in memory")
            }
            "deflate" => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&body).expect("in memory");
                e.finish().expect("in memory")
            }
            "raw-deflate" => {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&body).expect("in memory");
                e.finish().expect("in memory")
            }
            "br" => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    w.write_all(&body).expect("in memory");
                }
                out
            }
            "zstd" => ruzstd::encoding::compress_to_vec(
                &body[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
            _ => body,
        };
        names.push(if c == "raw-deflate" { "deflate" } else { c });
    }
    (names.join(", "), body)
}

async fn ws<S: Wire>(stream: S, fault: Fault, c: &Counts) -> std::io::Result<()> {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    // The callback's error type is tungstenite's (a whole HTTP response).
    #[allow(clippy::result_large_err)]
    let record = |req: &Request, resp: Response| {
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri());
        for (k, v) in req.headers() {
            head.push_str(&format!(
                "{k}: {}\r\n",
                String::from_utf8_lossy(v.as_bytes())
            ));
        }
        c.requests.fetch_add(1, Ordering::SeqCst);
        c.heads.lock().expect("heads").push(head);
        Ok(resp)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(stream, record)
        .await
        .map_err(std::io::Error::other)?;
    let raw = ws.get_mut();
    match fault {
        Fault::WsDrop => {
            // Let the client reach its first `receive`, then vanish without a close frame.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(());
        }
        Fault::WsInvalidUtf8 => {
            // FIN + text, unmasked, 2 bytes that are not UTF-8.
            raw.write_all(&[0x81, 0x02, 0xff, 0xfe]).await?;
        }
        Fault::WsOversize => {
            // FIN + binary, 64-bit length: 20 MB (over the client's 16 MiB limit).
            let mut frame = vec![0x82, 127];
            frame.extend_from_slice(&20_000_000u64.to_be_bytes());
            raw.write_all(&frame).await?;
            raw.write_all(&CHUNK).await?;
        }
        _ => unreachable!(),
    }
    raw.flush().await?;
    // Keep the socket until the client closes it.
    let mut sink = [0u8; 1024];
    while raw.read(&mut sink).await? > 0 {}
    Ok(())
}
