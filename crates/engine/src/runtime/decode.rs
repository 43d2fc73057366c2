//! Response compression: the `Accept-Encoding` a step offers and how a received body's
//! `Content-Encoding` is undone before checks and captures.
//!
//! Decoding is bounded like the body itself: at most `keep` decoded bytes are kept (one
//! more is read to tell "over"), so a small body that inflates to gigabytes (a
//! decompression bomb) costs at most `max-body` of memory and the time to inflate that.

use crate::lang::ir::Coding;
use bytes::Bytes;
use std::io::Read;

/// The `Accept-Encoding` value offering every coding (the default).
pub const ACCEPT_ALL: &str = "gzip, deflate, br, zstd";

/// The `Accept-Encoding` value offering `codings` (`gzip, deflate, br, zstd`).
pub fn accept(codings: &[Coding]) -> String {
    codings
        .iter()
        .map(|c| c.token())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A body after decoding.
#[derive(Debug)]
pub struct Decoded {
    /// What checks and captures see: the decoded bytes (at most `keep`), or the body
    /// as received when it was not encoded or could not be decoded.
    pub body: Bytes,
    /// The codings undone, as named by `Content-Encoding` (empty: none).
    pub codings: Vec<Coding>,
    /// More than `keep` decoded bytes: checks saw only the start.
    pub over: bool,
    /// The encoded body could not be decoded (the message says why).
    pub failed: Option<String>,
    /// Why checks may see an encoded body: a hint for check failures.
    pub hint: Option<String>,
}

/// The codings a `Content-Encoding` header lists, in the order they were applied;
/// `identity` is dropped. `Err` holds a token that is unknown.
fn codings(header: &str) -> Result<Vec<Coding>, String> {
    let mut out = Vec::new();
    for t in header.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t.eq_ignore_ascii_case("identity") {
            continue;
        }
        out.push(Coding::parse(t).ok_or_else(|| t.to_string())?);
    }
    Ok(out)
}

/// A reader undoing one coding over `inner`.
fn undo<'a>(c: Coding, inner: Box<dyn Read + 'a>) -> Result<Box<dyn Read + 'a>, String> {
    Ok(match c {
        Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(inner)),
        Coding::Deflate => Box::new(Deflate::new(inner)),
        Coding::Br => Box::new(brotli::Decompressor::new(inner, 8192)),
        Coding::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(inner)
                .map_err(|e| format!("zstd body could not be decoded: {e}"))?,
        ),
    })
}

/// HTTP's `deflate` is zlib-wrapped (RFC 9110), but some servers send raw deflate: the
/// first two bytes tell which.
enum Deflate<'a> {
    Pending(Option<Box<dyn Read + 'a>>),
    Zlib(flate2::read::ZlibDecoder<Peeked<'a>>),
    Raw(flate2::read::DeflateDecoder<Peeked<'a>>),
}

/// The first bytes read to tell zlib from raw deflate, then the rest.
type Peeked<'a> = std::io::Chain<std::io::Cursor<Vec<u8>>, Box<dyn Read + 'a>>;

impl<'a> Deflate<'a> {
    fn new(inner: Box<dyn Read + 'a>) -> Self {
        Deflate::Pending(Some(inner))
    }
}

impl Read for Deflate<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Deflate::Pending(inner) = self {
            let Some(mut inner) = inner.take() else {
                return Ok(0);
            };
            let mut head = Vec::with_capacity(2);
            (&mut inner).take(2).read_to_end(&mut head)?;
            let zlib = head.len() == 2
                && head[0] & 0x0f == 8
                && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            let rest = std::io::Cursor::new(head).chain(inner);
            *self = if zlib {
                Deflate::Zlib(flate2::read::ZlibDecoder::new(rest))
            } else {
                Deflate::Raw(flate2::read::DeflateDecoder::new(rest))
            };
        }
        match self {
            Deflate::Zlib(d) => d.read(buf),
            Deflate::Raw(d) => d.read(buf),
            Deflate::Pending(_) => Ok(0),
        }
    }
}

/// Undo `content_encoding` on `wire` when every coding in it is `offered`, keeping at
/// most `keep` decoded bytes.
pub fn decode(
    content_encoding: Option<&str>,
    offered: &[Coding],
    wire: Bytes,
    keep: u64,
) -> Decoded {
    let plain = |wire: Bytes, hint: Option<String>| Decoded {
        body: wire,
        codings: Vec::new(),
        over: false,
        failed: None,
        hint,
    };
    let Some(header) = content_encoding else {
        return plain(wire, None);
    };
    let list = match codings(header) {
        Ok(l) => l,
        Err(t) => {
            return plain(
                wire,
                Some(format!(
                    "the body is `{t}`-encoded (Content-Encoding: {header}), which loadplan does not decode"
                )),
            );
        }
    };
    if list.is_empty() || wire.is_empty() {
        return plain(wire, None);
    }
    if let Some(c) = list.iter().find(|c| !offered.contains(c)) {
        return plain(
            wire,
            Some(format!(
                "the body is {}-encoded (Content-Encoding: {header}) and `compression` does not decode {}",
                c.token(),
                c.token()
            )),
        );
    }
    let mut reader: Box<dyn Read + '_> = Box::new(&wire[..]);
    // Codings are listed in the order applied: undo the last first.
    for c in list.iter().rev() {
        reader = match undo(*c, reader) {
            Ok(r) => r,
            Err(m) => {
                return Decoded {
                    hint: Some(format!("the body is {header}-encoded and was not decoded")),
                    failed: Some(m),
                    ..plain(wire.clone(), None)
                };
            }
        };
    }
    let mut out = Vec::new();
    if let Err(e) = reader.take(keep.saturating_add(1)).read_to_end(&mut out) {
        return Decoded {
            failed: Some(format!("{header} body could not be decoded: {e}")),
            ..plain(
                wire.clone(),
                Some(format!(
                    "the body is {header}-encoded and could not be decoded"
                )),
            )
        };
    }
    let over = out.len() as u64 > keep;
    out.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    Decoded {
        body: Bytes::from(out),
        codings: list,
        over,
        failed: None,
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("in memory");
        Bytes::from(e.finish().expect("in memory"))
    }

    #[test]
    fn every_coding_decodes_and_deflate_may_be_raw() {
        let text = b"{\"ok\":true}".repeat(100);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&text).expect("in memory");
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&text).expect("in memory");
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&text).expect("in memory");
        }
        let zstd = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (ce, wire) in [
            ("gzip", gzip(&text)),
            ("deflate", Bytes::from(z.finish().expect("in memory"))),
            ("deflate", Bytes::from(raw.finish().expect("in memory"))),
            ("br", Bytes::from(br)),
            ("zstd", Bytes::from(zstd)),
        ] {
            let d = decode(Some(ce), &Coding::ALL, wire, 1 << 20);
            assert_eq!(d.failed, None, "{ce}");
            assert_eq!(&d.body[..], &text[..], "{ce}");
            assert!(!d.over);
        }
    }

    #[test]
    fn a_bomb_keeps_at_most_keep_bytes() {
        let wire = gzip(&vec![0u8; 8 << 20]);
        assert!(wire.len() < 64 << 10);
        let d = decode(Some("gzip"), &Coding::ALL, wire, 1000);
        assert!(d.over);
        assert_eq!(d.body.len(), 1000);
    }

    #[test]
    fn undecoded_bodies_carry_a_hint() {
        let wire = gzip(b"hello");
        let d = decode(Some("gzip"), &[], wire.clone(), 100);
        assert_eq!(d.body, wire);
        assert!(d.hint.as_deref().is_some_and(|h| h.contains("gzip")));
        let d = decode(Some("compress"), &Coding::ALL, wire, 100);
        assert!(d.hint.as_deref().is_some_and(|h| h.contains("compress")));
        let d = decode(
            Some("gzip"),
            &Coding::ALL,
            Bytes::from_static(b"not gzip"),
            100,
        );
        assert!(d.failed.is_some() && d.hint.is_some());
        assert_eq!(accept(&Coding::ALL), ACCEPT_ALL);
    }
}
