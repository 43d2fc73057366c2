//! A `receive`'s JSON path matched without building the frame's `serde_json::Value`.
//!
//! Most matchers are a plain path (`$.samples`, `$.data[0]`, `$['type']`) that selects
//! at most one node. For those, [`path_matches`] walks the frame once with serde_json's
//! own deserializer: it descends only into the member or element the path names and
//! skips everything else without allocating, and builds a `Value` only for the selected
//! node when an `equals` needs it. The answer is the one the full parse gives:
//! - the frame must be one valid JSON document exactly as `serde_json::from_slice` wants
//!   it (the same deserializer checks syntax, UTF-8, number range and nesting depth, and
//!   trailing characters), else nothing matches;
//! - of duplicate keys the last one counts (as `serde_json::Map` keeps it).
//!
//! Anything else (wildcards, filters, slices, negative indexes, descendant segments,
//! escapes in quoted names, blank space) answers `None`: the caller queries the full
//! `Value` instead. So does a frame with serde_json's private raw-value marker key,
//! which a `Value` parse treats specially.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// serde_json's marker key (feature `raw_value`): an object whose first key is this is
/// parsed differently into a `Value`, so such frames take the full parse.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
/// Our own error for "take the full parse": serde_json reports it as a data error, which
/// a `Value` parse never produces.
const FALL_BACK: &str = "loadplan: lazy path match falls back to the full parse";
/// Longest index accepted (digits): far below `usize::MAX`, above any real array.
const MAX_INDEX_DIGITS: usize = 15;

/// One segment of a simple path: a member name or a non-negative array index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg<'p> {
    Name(&'p str),
    Index(usize),
}

/// The first segment of `rest` (a path after its `$`) and what follows it; `Ok(None)`
/// at the end, `Err` when the segment is not one this module handles.
fn split(rest: &str) -> Result<Option<(Seg<'_>, &str)>, ()> {
    let bytes = rest.as_bytes();
    match bytes.first() {
        None => Ok(None),
        Some(b'.') => {
            let name = &rest[1..];
            let end = name
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
                .unwrap_or(name.len());
            let first = name.as_bytes().first().copied().ok_or(())?;
            if end == 0 || first.is_ascii_digit() {
                return Err(());
            }
            Ok(Some((Seg::Name(&name[..end]), &name[end..])))
        }
        Some(b'[') => {
            let inner = &rest[1..];
            match inner.as_bytes().first().copied().ok_or(())? {
                quote @ (b'\'' | b'"') => {
                    let body = &inner[1..];
                    let end = body.bytes().position(|b| b == quote).ok_or(())?;
                    let name = &body[..end];
                    if name.bytes().any(|b| b == b'\\' || b < 0x20) {
                        return Err(());
                    }
                    let after = body[end + 1..].strip_prefix(']').ok_or(())?;
                    Ok(Some((Seg::Name(name), after)))
                }
                b'0'..=b'9' => {
                    let end = inner.bytes().position(|b| !b.is_ascii_digit()).ok_or(())?;
                    let digits = &inner[..end];
                    if (digits.len() > 1 && digits.starts_with('0')) || end > MAX_INDEX_DIGITS {
                        return Err(());
                    }
                    let index = digits.parse::<usize>().map_err(|_| ())?;
                    let after = inner[end..].strip_prefix(']').ok_or(())?;
                    Ok(Some((Seg::Index(index), after)))
                }
                _ => Err(()),
            }
        }
        Some(_) => Err(()),
    }
}

/// The segments after `$` when the whole path is simple.
fn simple(source: &str) -> Option<&str> {
    let segments = source.strip_prefix('$')?;
    let mut rest = segments;
    loop {
        match split(rest) {
            Ok(None) => return Some(segments),
            Ok(Some((_, next))) => rest = next,
            Err(()) => return None,
        }
    }
}

/// Does the JSON path `source` select a node of `body` (equal to `want` per `equals`,
/// when given)? `None` when the path or the frame needs the full parse.
pub(crate) fn path_matches(
    source: &str,
    body: &[u8],
    want: Option<&Value>,
    equals: fn(&Value, &Value) -> bool,
) -> Option<bool> {
    let rest = simple(source)?;
    let Some(skim) = skimmable(body) else {
        // Not UTF-8, so not JSON: the full parse fails too.
        return Some(false);
    };
    if skim {
        return match (Scan { b: body, i: 0 }).document(rest, want, equals) {
            Ok(found) => Some(found == Some(true)),
            Err(Bad::Json) => Some(false),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Find { rest, want, equals }
        .deserialize(&mut de)
        .and_then(|found| de.end().map(|()| found));
    match found {
        Ok(found) => Some(found == Some(true)),
        Err(e) if e.classify() == serde_json::error::Category::Data => None,
        // Not JSON (syntax, EOF, I/O): the full parse fails as well, nothing matches.
        Err(_) => Some(false),
    }
}

/// The frame is not one JSON document (serde_json would reject it too).
#[derive(Debug, PartialEq, Eq)]
enum Bad {
    Json,
}

/// A JSON scanner for frames that passed [`skimmable`]: RFC 8259 syntax exactly as
/// serde_json accepts it, where strings have no escapes, nesting is shallow and no
/// number can overflow, so checking the grammar is all a `Value` parse would do.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// The path followed through the whole body, which must be one value and blank
    /// space around it.
    fn document(
        &mut self,
        rest: &str,
        want: Option<&Value>,
        equals: fn(&Value, &Value) -> bool,
    ) -> Result<Option<bool>, Bad> {
        let found = self.find(rest, want, equals)?;
        self.ws();
        if self.i == self.b.len() {
            Ok(found)
        } else {
            Err(Bad::Json)
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Result<u8, Bad> {
        self.b.get(self.i).copied().ok_or(Bad::Json)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&byte);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, byte: u8) -> Result<(), Bad> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(Bad::Json)
        }
    }

    /// One value along the path: what [`Find`] does, on bytes.
    fn find(
        &mut self,
        rest: &str,
        want: Option<&Value>,
        equals: fn(&Value, &Value) -> bool,
    ) -> Result<Option<bool>, Bad> {
        self.ws();
        let Ok(Some((seg, after))) = split(rest) else {
            // The selected node.
            let start = self.i;
            self.value()?;
            return Ok(Some(match want {
                None => true,
                Some(want) => {
                    let v = serde_json::from_slice::<Value>(&self.b[start..self.i])
                        .map_err(|_| Bad::Json)?;
                    equals(&v, want)
                }
            }));
        };
        let mut found = None;
        match (seg, self.peek()?) {
            (Seg::Name(name), b'{') => {
                self.i += 1;
                self.ws();
                if self.eat(b'}') {
                    return Ok(None);
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    if key == name.as_bytes() {
                        // A later duplicate replaces an earlier one, as in `serde_json::Map`.
                        found = self.find(after, want, equals)?;
                    } else {
                        self.value()?;
                    }
                    if !self.next_item(b'}')? {
                        return Ok(found);
                    }
                }
            }
            (Seg::Index(index), b'[') => {
                self.i += 1;
                self.ws();
                if self.eat(b']') {
                    return Ok(None);
                }
                let mut at = 0usize;
                loop {
                    if at == index {
                        found = self.find(after, want, equals)?;
                    } else {
                        self.value()?;
                    }
                    at = at.saturating_add(1);
                    if !self.next_item(b']')? {
                        return Ok(found);
                    }
                }
            }
            _ => self.value().map(|()| None),
        }
    }

    /// After an item: true at a comma (another item follows), false at `close`.
    fn next_item(&mut self, close: u8) -> Result<bool, Bad> {
        self.ws();
        if self.eat(b',') {
            Ok(true)
        } else {
            self.expect(close).map(|()| false)
        }
    }

    /// Skips one value.
    fn value(&mut self) -> Result<(), Bad> {
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.value()?;
                    if !self.next_item(b'}')? {
                        return Ok(());
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.eat(b']') {
                    return Ok(());
                }
                loop {
                    self.value()?;
                    if !self.next_item(b']')? {
                        return Ok(());
                    }
                }
            }
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Bad> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Bad::Json)
        }
    }

    /// A string without escapes (there are none): its raw contents.
    fn string(&mut self) -> Result<&'a [u8], Bad> {
        self.expect(b'"')?;
        let start = self.i;
        let len = memchr::memchr(b'"', &self.b[start..]).ok_or(Bad::Json)?;
        let b = self.b;
        let text = &b[start..start + len];
        if text.iter().any(|&c| c < 0x20) {
            return Err(Bad::Json);
        }
        self.i = start + len + 1;
        Ok(text)
    }

    fn digits(&mut self) -> usize {
        let n = self.b[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.i += n;
        n
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), Bad> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return Err(Bad::Json),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(Bad::Json);
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(Bad::Json);
            }
        }
        Ok(())
    }
}

/// Can [`Scan`] read the frame, checking its syntax but neither decoding strings nor
/// evaluating numbers? Only when that cannot accept what a `Value` parse rejects: no escapes (a lone surrogate `\ud800` is an
/// error only when decoded), valid UTF-8 (only decoded strings are checked), fewer
/// opening brackets than the nesting limit (128), no number that might overflow an
/// `f64` (a positive exponent, or 309 integer digits), and no raw-value marker.
/// `None` when the body is not even UTF-8: then it is not JSON at all.
fn skimmable(body: &[u8]) -> Option<bool> {
    if std::str::from_utf8(body).is_err() {
        return None;
    }
    let brackets = memchr::memchr2_iter(b'[', b'{', body).take(100).count();
    Some(
        brackets < 100
            && memchr::memchr(b'\\', body).is_none()
            && !positive_exponent(body)
            && !long_digit_run(body)
            && memchr::memmem::find(body, &RAW_VALUE_TOKEN.as_bytes()[1..]).is_none(),
    )
}

/// Somewhere a digit, `e` or `E`, then `+` or a digit (perhaps inside a string: that
/// only costs the exact skip).
fn positive_exponent(body: &[u8]) -> bool {
    memchr::memchr2_iter(b'e', b'E', body).any(|i| {
        i > 0
            && body[i - 1].is_ascii_digit()
            && body
                .get(i + 1)
                .is_some_and(|&b| b == b'+' || b.is_ascii_digit())
    })
}

/// Integer digits that might exceed `f64::MAX` (about 1.8e308) without an exponent.
const LONG_RUN: usize = 309;

/// A run of at least [`LONG_RUN`] ASCII digits. Such a run covers two consecutive
/// multiples of `LONG_RUN / 2`, so only runs through sampled digit pairs are measured.
fn long_digit_run(body: &[u8]) -> bool {
    let step = LONG_RUN / 2;
    let digit = |i: usize| body.get(i).is_some_and(u8::is_ascii_digit);
    (0..body.len()).step_by(step).any(|p| {
        if !(digit(p) && digit(p + step)) {
            return false;
        }
        let start = body[..p]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let end = body[p..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(body.len(), |i| p + i);
        end - start >= LONG_RUN
    })
}

/// Follows the remaining path into one value: `None` when the path selects nothing,
/// `Some(eq)` when it selects a node (`eq`: it equals `want`, true without `want`).
#[derive(Clone, Copy)]
struct Find<'p> {
    rest: &'p str,
    want: Option<&'p Value>,
    equals: fn(&Value, &Value) -> bool,
}

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = Option<bool>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<bool>, D::Error> {
        match split(self.rest) {
            Ok(None) => match self.want {
                None => Skip::deserialize(d).map(|_| Some(true)),
                Some(want) => Value::deserialize(d).map(|v| Some((self.equals)(&v, want))),
            },
            Ok(Some((seg, rest))) => d.deserialize_any(Step {
                seg,
                next: Find { rest, ..self },
            }),
            Err(()) => Err(de::Error::custom(FALL_BACK)),
        }
    }
}

/// One segment applied to whatever value comes.
struct Step<'p> {
    seg: Seg<'p>,
    next: Find<'p>,
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<bool>, A::Error> {
        let name = match self.seg {
            Seg::Name(n) => Some(n),
            Seg::Index(_) => None,
        };
        let mut found = None;
        let mut first = true;
        while let Some(key) = map.next_key_seed(Key(name))? {
            if std::mem::take(&mut first) && key == KeyIs::RawToken {
                return Err(de::Error::custom(FALL_BACK));
            }
            if key == KeyIs::Wanted {
                // A later duplicate replaces an earlier one, as in `serde_json::Map`.
                found = map.next_value_seed(self.next)?;
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<bool>, A::Error> {
        let wanted = match self.seg {
            Seg::Index(i) => Some(i),
            Seg::Name(_) => None,
        };
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == wanted {
                match seq.next_element_seed(self.next)? {
                    Some(f) => found = f,
                    None => break,
                }
            } else if seq.next_element::<Skip>()?.is_none() {
                break;
            }
            i = i.saturating_add(1);
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<bool>, E> {
        Ok(None)
    }
}

/// A key compared with the wanted member name (without allocating), and the raw-value
/// marker recognised.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyIs {
    Wanted,
    Other,
    RawToken,
}

struct Key<'p>(Option<&'p str>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = KeyIs;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KeyIs, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = KeyIs;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, s: &str) -> Result<KeyIs, E> {
        Ok(if Some(s) == self.0 {
            KeyIs::Wanted
        } else if s == RAW_VALUE_TOKEN {
            KeyIs::RawToken
        } else {
            KeyIs::Other
        })
    }
}

/// Any JSON value, checked by the same deserializer calls a `Value` parse makes, and
/// dropped as it is read.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        let mut first = true;
        while let Some(key) = map.next_key_seed(Key(None))? {
            if std::mem::take(&mut first) && key == KeyIs::RawToken {
                return Err(de::Error::custom(FALL_BACK));
            }
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::lang::ir::{FrameType, JsonPath, Matcher};
    use crate::runtime::http::Subject;
    use crate::runtime::ws::frame::{full_path_matches, json_equals};

    /// What the full parse says: `serde_json::Value` plus `serde_json_path`.
    fn full(path: &str, body: &[u8], want: Option<&Value>) -> bool {
        let path = JsonPath {
            source: path.to_string(),
            path: serde_json_path::JsonPath::parse(path).expect("valid path"),
        };
        let m = Matcher {
            frame_type: FrameType::Any,
            json: Some(path.clone()),
            equals: want.cloned(),
            regex: None,
        };
        full_path_matches(&m, &path, &Subject::new(None, None, body, Duration::ZERO))
    }

    fn lazy(path: &str, body: &[u8], want: Option<&Value>) -> Option<bool> {
        path_matches(path, body, want, json_equals)
    }

    const FRAME: &str = r#"{"timestamp": 1795766341.52, "samples": [0.0, 0.5, -1.0e-3],
        "sample_rate": 1000, "wave_type": "sine",
        "parameters": {"frequency": 10.0, "amplitude": 1.0, "offset": 0.0}}"#;

    #[test]
    fn plain_paths_are_matched_without_the_full_parse() {
        let frame = FRAME.as_bytes();
        assert_eq!(lazy("$.samples", frame, None), Some(true));
        assert_eq!(lazy("$.error", frame, None), Some(false));
        assert_eq!(lazy("$.samples[2]", frame, None), Some(true));
        assert_eq!(lazy("$.samples[3]", frame, None), Some(false));
        assert_eq!(
            lazy("$['parameters'][\"frequency\"]", frame, None),
            Some(true)
        );
        let ten = serde_json::json!(10);
        assert_eq!(
            lazy("$.parameters.frequency", frame, Some(&ten)),
            Some(true)
        );
        let sine = serde_json::json!("sine");
        assert_eq!(lazy("$.wave_type", frame, Some(&sine)), Some(true));
        assert_eq!(lazy("$.sample_rate", frame, Some(&sine)), Some(false));
        assert_eq!(lazy("$", frame, None), Some(true));
        assert_eq!(lazy("$.samples", b"not json", None), Some(false));
        assert_eq!(lazy("$.samples", b"{\"samples\": 1} x", None), Some(false));
        assert_eq!(
            lazy("$.a", br#"{"a": 1, "a": 2}"#, Some(&serde_json::json!(2))),
            Some(true)
        );
        assert_eq!(
            lazy("$.a", br#"{"a": 1, "a": 2}"#, Some(&serde_json::json!(1))),
            Some(false)
        );
    }

    #[test]
    fn other_paths_and_the_raw_value_marker_take_the_full_parse() {
        for path in [
            "$..samples",
            "$.*",
            "$[-1]",
            "$[0:2]",
            "$[?@.a]",
            "$['a\\'b']",
            "$ .a",
            "$[01]",
        ] {
            assert_eq!(lazy(path, b"{}", None), None, "{path}");
        }
        let raw = br#"{"$serde_json::private::RawValue": "{\"a\": 1}"}"#;
        assert_eq!(lazy("$.a", raw, None), None);
    }

    #[test]
    fn only_frames_ignored_any_reads_like_a_value_parse_are_skimmed() {
        assert_eq!(skimmable(FRAME.as_bytes()), Some(true));
        assert_eq!(skimmable(b"[1.2246467991473532e-16, 0.5]"), Some(true));
        assert_eq!(skimmable(b"\xff"), None);
        for body in [
            "[1e400]".to_string(),
            "[1E+5]".to_string(),
            r#"["\ud800"]"#.to_string(),
            format!("[{}]", "9".repeat(LONG_RUN)),
            format!("{}{}", "[".repeat(100), "]".repeat(100)),
            r#"{"a": {"$serde_json::private::RawValue": "1"}}"#.to_string(),
        ] {
            assert_eq!(skimmable(body.as_bytes()), Some(false), "{body}");
        }
        // Not skimmed, yet exact: these fail to parse as a `Value`.
        assert_eq!(lazy("$.b", br#"{"a": [1e400], "b": 1}"#, None), Some(false));
        assert_eq!(
            lazy("$.b", br#"{"a": "\ud800", "b": 1}"#, None),
            Some(false)
        );
        let deep = format!(
            "{{\"b\": 1, \"a\": {}{}}}",
            "[".repeat(130),
            "]".repeat(130)
        );
        assert_eq!(lazy("$.b", deep.as_bytes(), None), Some(false));
        assert!(!long_digit_run(
            format!("[{}]", "9".repeat(LONG_RUN - 1)).as_bytes()
        ));
        assert!(long_digit_run(
            format!("[0.5, {}]", "9".repeat(LONG_RUN + 7)).as_bytes()
        ));
    }

    fn leaf() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "10",
            "10.0",
            "-3",
            "1e400",
            "18446744073709551616",
            "\"sine\"",
            "\"10\"",
            "\"a\\u0062\"",
            "\"\\ud800\"",
            "[]",
            "{}",
            "-0",
            "0.5",
            "1.5e-3",
            "2E-1",
            "1E5",
            "01",
            "1.",
            "-",
            ".5",
            "tru",
            "nul",
            "\"\"",
            "\"tab\there\"",
            "\"é\"",
        ])
        .prop_map(str::to_string)
    }

    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "\"a\"",
            "\"b\"",
            "\"samples\"",
            "\"x y\"",
            "\"\\u0061\"",
            "\"$serde_json::private::RawValue\"",
        ])
        .prop_map(str::to_string)
    }

    fn value() -> impl Strategy<Value = String> {
        leaf().prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key(), inner), 0..4).prop_map(|kv| {
                    let members: Vec<String> =
                        kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", members.join(", "))
                }),
            ]
        })
    }

    /// A document, nested under `depth` objects `{"a": …}` (serde_json stops at 128
    /// levels), then damaged or not.
    fn document() -> impl Strategy<Value = Vec<u8>> {
        (
            value(),
            prop::sample::select(vec![0usize, 1, 2, 126, 127, 128, 130]),
            0u8..8,
            any::<prop::sample::Index>(),
        )
            .prop_map(|(v, depth, damage, at)| {
                let mut doc =
                    format!("{}{v}{}", "{\"a\": ".repeat(depth), "}".repeat(depth)).into_bytes();
                match damage {
                    0 => doc.truncate(at.index(doc.len() + 1)),
                    1 => doc.extend_from_slice(b" x"),
                    2 => doc.insert(at.index(doc.len() + 1), 0xff),
                    3 => doc.extend_from_slice(b" \n"),
                    4 => doc.insert(at.index(doc.len() + 1), *at.get(b",:]}[{\" -.e0\x01")),
                    5 => {
                        doc.remove(at.index(doc.len().max(1)).min(doc.len().saturating_sub(1)));
                    }
                    _ => {}
                }
                doc
            })
    }

    fn path() -> impl Strategy<Value = String> {
        let seg = prop::sample::select(vec![
            ".a", ".b", ".samples", "['x y']", "[\"a\"]", "[0]", "[1]", "[3]", "..a", ".*", "[-1]",
        ]);
        prop::collection::vec(seg, 0..4).prop_map(|s| format!("${}", s.concat()))
    }

    fn want() -> impl Strategy<Value = Option<Value>> {
        prop::sample::select(vec![
            None,
            Some(serde_json::json!(10)),
            Some(serde_json::json!("sine")),
            Some(serde_json::json!("10")),
            Some(serde_json::json!(null)),
            Some(serde_json::json!([])),
            Some(serde_json::json!({})),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn lazy_matching_agrees_with_the_full_parse(doc in document(), path in path(), want in want()) {
            let full = full(&path, &doc, want.as_ref());
            if let Some(lazy) = lazy(&path, &doc, want.as_ref()) {
                prop_assert_eq!(lazy, full, "path {} on {:?}", path, String::from_utf8_lossy(&doc));
            }
        }
    }
}
