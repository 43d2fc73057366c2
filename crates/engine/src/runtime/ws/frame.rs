//! Does a received frame count for a `receive`? The [`Matcher`] of the compiled
//! program applied to one frame, plus the short preview of a frame that error
//! messages quote.
//!
//! Pure functions over bytes: no I/O, no clock. A plain JSON path is matched by a
//! single scan of the frame that builds no `Value` (see `lazy`); other paths parse the
//! frame once, through the [`Subject`] that checks and captures reuse.

use super::lazy;
use crate::lang::ir::{FrameType, JsonPath, Matcher};
use crate::runtime::http::Subject;

/// Longest frame excerpt quoted in an error message, in characters.
const PREVIEW_CHARS: usize = 80;

/// True when the frame (`text` or binary, seen through `subject`) satisfies every
/// part of the matcher: frame type, JSON path present (and equal to `equals` when
/// given), regex on the text.
pub(crate) fn matches(m: &Matcher, text: bool, subject: &Subject) -> bool {
    let type_ok = match m.frame_type {
        FrameType::Any => true,
        FrameType::Text => text,
        FrameType::Binary => !text,
    };
    if !type_ok {
        return false;
    }
    if let Some(path) = &m.json {
        let ok =
            match lazy::path_matches(&path.source, subject.body, m.equals.as_ref(), json_equals) {
                Some(ok) => ok,
                None => full_path_matches(m, path, subject),
            };
        if !ok {
            return false;
        }
    }
    if let Some(re) = &m.regex {
        if !re.0.is_match(&String::from_utf8_lossy(subject.body)) {
            return false;
        }
    }
    true
}

/// The JSON part of the matcher on the frame's full `Value` (parsed once, kept in the
/// subject for checks and captures).
pub(super) fn full_path_matches(m: &Matcher, path: &JsonPath, subject: &Subject) -> bool {
    let Some(value) = subject.json() else {
        return false;
    };
    let found = path.path.query(value).all();
    if found.is_empty() {
        return false;
    }
    match &m.equals {
        Some(want) => found.iter().any(|v| json_equals(v, want)),
        None => true,
    }
}

/// Like checks do: numbers compare by value (`10` equals `10.0`), a number equals a
/// string spelling it, everything else structurally.
pub(super) fn json_equals(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => {
            got == want
                || got
                    .as_str()
                    .zip(want.as_f64())
                    .is_some_and(|(s, f)| s.trim().parse::<f64>().ok() == Some(f))
        }
    }
}

/// What a frame looked like, for an error message: the start of a text frame, the
/// size of a binary one.
pub(crate) fn preview(data: &[u8], text: bool) -> String {
    if !text {
        return format!("binary frame of {} bytes", data.len());
    }
    let s = String::from_utf8_lossy(data);
    let mut out: String = s.chars().take(PREVIEW_CHARS).collect();
    if s.chars().nth(PREVIEW_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// How the matcher reads in a message: `$.samples`, `$.type = "data"`, `/re/`.
pub(crate) fn describe(m: &Matcher) -> String {
    let mut parts = Vec::new();
    match m.frame_type {
        FrameType::Any => {}
        FrameType::Text => parts.push("text".to_string()),
        FrameType::Binary => parts.push("binary".to_string()),
    }
    if let Some(p) = &m.json {
        match &m.equals {
            Some(v) => parts.push(format!("{} = {v}", p.source)),
            None => parts.push(p.source.clone()),
        }
    }
    if let Some(r) = &m.regex {
        parts.push(format!("/{}/", r.0.as_str()));
    }
    if parts.is_empty() {
        "any frame".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lang::ir::Pattern;

    fn matcher(json: Option<&str>, equals: Option<serde_json::Value>) -> Matcher {
        Matcher {
            frame_type: FrameType::Any,
            json: json.map(|p| JsonPath {
                source: p.to_string(),
                path: serde_json_path::JsonPath::parse(p).expect("valid path"),
            }),
            equals,
            regex: None,
        }
    }

    fn check(m: &Matcher, body: &str, text: bool) -> bool {
        let subject = Subject::new(None, None, body.as_bytes(), Duration::ZERO);
        matches(m, text, &subject)
    }

    #[test]
    fn data_frames_match_a_path_and_error_objects_do_not() {
        let m = matcher(Some("$.samples"), None);
        assert!(check(
            &m,
            r#"{"samples": [0.0, 1.0], "sample_rate": 1000}"#,
            true
        ));
        assert!(!check(&m, r#"{"error": "frequency out of range"}"#, true));
        assert!(!check(&m, "not json", true));
    }

    #[test]
    fn equals_compares_numbers_by_value() {
        let m = matcher(Some("$.sample_rate"), Some(serde_json::json!(1000)));
        assert!(check(&m, r#"{"sample_rate": 1000.0}"#, true));
        assert!(!check(&m, r#"{"sample_rate": 500}"#, true));
        let s = matcher(Some("$.wave_type"), Some(serde_json::json!("sine")));
        assert!(check(&s, r#"{"wave_type": "sine"}"#, true));
    }

    #[test]
    fn frame_type_and_regex_both_apply() {
        let mut m = matcher(None, None);
        m.frame_type = FrameType::Binary;
        assert!(!check(&m, "abc", true));
        assert!(check(&m, "abc", false));
        m.frame_type = FrameType::Text;
        m.regex = Some(Pattern(regex::Regex::new("^a.c$").expect("valid regex")));
        assert!(check(&m, "abc", true));
        assert!(!check(&m, "abd", true));
    }

    #[test]
    fn previews_are_short_and_binary_frames_show_their_size() {
        let long = "x".repeat(200);
        let p = preview(long.as_bytes(), true);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert_eq!(preview(&[0, 1, 2], false), "binary frame of 3 bytes");
    }

    #[test]
    fn matchers_describe_themselves() {
        assert_eq!(describe(&matcher(Some("$.samples"), None)), "$.samples");
        assert_eq!(
            describe(&matcher(Some("$.type"), Some(serde_json::json!("data")))),
            "$.type = \"data\""
        );
        assert_eq!(describe(&matcher(None, None)), "any frame");
    }
}
