//! HTTP steps, and the checks and captures shared with WebSocket frames.

use super::{Compiler, METHODS, OneOf};
use crate::ast::{Node, Value};
use crate::diag::{Code, did_you_mean};
use crate::ir::*;
use crate::source::Source;
use crate::template::{Tpl, is_template};

impl Compiler<'_> {
    /// `compression`: `#true` (every coding), `#false` (none), or codings named in a
    /// string (`"gzip br"`, `"gzip, zstd"`).
    pub(super) fn compression(&mut self, v: &Value) -> Option<Vec<Coding>> {
        if let Some(b) = v.as_bool() {
            return Some(if b { Coding::ALL.to_vec() } else { Vec::new() });
        }
        let Some(s) = v.as_str() else {
            self.err(
                Code::BadValue,
                v.span,
                "compression is #true, #false or a list of codings",
                "not a coding list",
                "e.g. compression \"gzip br\" or compression #false",
            );
            return None;
        };
        let mut out = Vec::new();
        for t in s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            match Coding::parse(t) {
                Some(c) if !out.contains(&c) => out.push(c),
                Some(_) => {}
                None => {
                    self.err(
                        Code::BadValue,
                        v.span,
                        format!("unknown content coding `{t}`"),
                        "unknown coding",
                        "loadplan decodes gzip, deflate, br and zstd; #false turns compression off",
                    );
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.err(
                Code::BadValue,
                v.span,
                "compression names no coding",
                "empty",
                "name codings (\"gzip br\") or write compression #false",
            );
            return None;
        }
        Some(out)
    }

    pub(super) fn url(&mut self, v: &Value, ws: bool) -> Option<Tpl> {
        let s = v.as_str()?;
        let schemes: &[&str] = if ws {
            &["ws", "wss"]
        } else {
            &["http", "https"]
        };
        if !crate::template::is_template(s) {
            if s.contains("://") {
                match url::Url::parse(s) {
                    Ok(u) if schemes.contains(&u.scheme()) => {}
                    Ok(u) => {
                        self.err(
                            Code::BadUrl,
                            v.span,
                            format!("unsupported scheme `{}`", u.scheme()),
                            "wrong scheme",
                            format!(
                                "use {}:// or a path starting with `/`",
                                schemes.join("://, ")
                            ),
                        );
                        return None;
                    }
                    Err(e) => {
                        self.err(
                            Code::BadUrl,
                            v.span,
                            format!("bad URL: {e}"),
                            "not a URL",
                            "write an absolute URL or a path starting with `/`",
                        );
                        return None;
                    }
                }
            } else if !s.starts_with('/') {
                self.err(
                    Code::BadUrl,
                    v.span,
                    format!("relative URL `{s}` must start with `/`"),
                    "missing leading slash",
                    format!("write `/{s}`"),
                );
                return None;
            }
        }
        self.tpl(v)
    }

    pub(super) fn http(&mut self, n: &Node) -> Option<HttpStep> {
        let mv = n.arg(0)?;
        if n.arg(1).is_none() && mv.as_str().is_some_and(looks_like_url) {
            // `http "/health"`: the schema check reported the missing method.
            return None;
        }
        let method = mv.as_str()?.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            let help = did_you_mean(&method, METHODS.iter().copied())
                .unwrap_or_else(|| format!("one of: {}", METHODS.join(", ")));
            self.err(
                Code::BadValue,
                mv.span,
                format!("unknown HTTP method `{}`", mv.as_str().unwrap_or_default()),
                "unknown method",
                help,
            );
        }
        let uv = n.arg(1)?;
        let mut url = self.url(uv, false);
        // `http://user:pass@host/…`: the credentials become basic auth.
        let mut userinfo = None;
        if let Some(u) = url.as_ref().filter(|u| u.is_static()) {
            if let Ok(mut parsed) = url::Url::parse(&u.source) {
                if !parsed.username().is_empty() {
                    let decode = |s: &str| percent_decode(s);
                    let creds = format!(
                        "{}:{}",
                        decode(parsed.username()),
                        decode(parsed.password().unwrap_or(""))
                    );
                    userinfo = Some(Tpl::fixed(format!(
                        "Basic {}",
                        crate::template::base64(creds.as_bytes())
                    )));
                    let _ = parsed.set_username("");
                    let _ = parsed.set_password(None);
                    url = Some(Tpl::fixed(parsed.to_string()));
                }
            }
        }
        let name = match n.str_prop("name") {
            Some(s) => s.to_string(),
            None => {
                let raw = uv.as_str().unwrap_or_default();
                raw.split('?').next().unwrap_or(raw).to_string()
            }
        };
        let stat = self.stat(&method, &name);
        for t in n.children_named("threshold") {
            self.threshold(t, Some(format!("{method} {name}")));
        }
        let query = n.child("query").map(|q| self.map(q)).unwrap_or_default();
        let mut headers = n
            .child("headers")
            .map(|h| self.headers(h))
            .unwrap_or_default();
        if let Some(h) = n
            .child("auth")
            .and_then(|a| a.prop("basic"))
            .and_then(|v| self.basic_auth(v))
            .or(userinfo)
        {
            headers.push(("Authorization".into(), h));
        }
        let bodies: Vec<&Node> = n
            .children
            .iter()
            .filter(|c| {
                matches!(
                    c.name.as_str(),
                    "json" | "form" | "text" | "body" | "multipart"
                )
            })
            .collect();
        if bodies.len() > 1 {
            self.err(
                Code::Conflict,
                bodies[1].name_span,
                "a request has one body",
                "second body",
                "keep one of `json`, `form`, `text`, `body` or `multipart`",
            );
        }
        let body = match bodies.first() {
            None => Body::None,
            Some(b) if b.name == "json" => {
                let v = b.arg(0)?;
                self.json_text(v, "body");
                Body::Json(self.tpl(v)?)
            }
            Some(b) if b.name == "form" => Body::Form(self.map(b)),
            Some(b) if b.name == "body" => self.body_file(b)?,
            Some(b) if b.name == "multipart" => self.multipart(b)?,
            Some(b) => Body::Text {
                body: self.tpl(b.arg(0)?)?,
                content_type: b
                    .str_prop("content-type")
                    .unwrap_or("text/plain")
                    .to_string(),
            },
        };
        let timeout = self.duration(n.prop("timeout"));
        // Malformed sizes were reported by the schema check.
        let max_body = n
            .prop("max-body")
            .and_then(|v| crate::check::parse_size(v).ok());
        let events = match n.child("events") {
            Some(e) => Some(Box::new(self.events(e)?)),
            None => None,
        };
        if let (Some(_), Body::Multipart { .. }, Some(e)) = (&events, &body, n.child("events")) {
            self.err(
                Code::Conflict,
                e.name_span,
                "an event stream cannot send a multipart body",
                "events with multipart",
                "send the upload in its own `http` step, or use `body file=`",
            );
            return None;
        }
        let compression = n.prop("compression").and_then(|v| self.compression(v));
        let redirects = match n.prop("redirects") {
            None => None,
            Some(v) => match v.as_int().map(u32::try_from) {
                Some(Ok(r)) => Some(r),
                Some(Err(_)) => {
                    self.err(
                        Code::BadValue,
                        v.span,
                        "redirects must be 0 or more",
                        "out of range",
                        "0 disables redirects for this request",
                    );
                    None
                }
                None => None,
            },
        };
        let checks = n
            .children_named("check")
            .filter_map(|c| self.check(c, true))
            .collect();
        let captures = self.captures(n);
        Some(HttpStep {
            stat,
            method,
            url: url?,
            query,
            headers,
            body,
            timeout,
            max_body,
            events,
            compression,
            redirects,
            checks,
            captures,
        })
    }

    /// `multipart { field "k" "v"; file "f" path="…" content-type="…" filename="…" }`.
    fn multipart(&mut self, n: &Node) -> Option<Body> {
        let mut fields = Vec::new();
        let mut files = Vec::new();
        for c in &n.children {
            match c.name.as_str() {
                "field" => {
                    let name = c.str_arg(0)?.to_string();
                    fields.push((name, self.tpl(c.arg(1)?)?));
                }
                "file" => {
                    let name = c.str_arg(0)?.to_string();
                    let v = c.prop("path")?;
                    let file = v.as_str()?.to_string();
                    let data = self.read_body_file(&file, v.span)?;
                    let filename = c.str_prop("filename").map_or_else(
                        || {
                            std::path::Path::new(&file)
                                .file_name()
                                .map_or(file.clone(), |f| f.to_string_lossy().into_owned())
                        },
                        str::to_string,
                    );
                    files.push(MultipartFile {
                        name,
                        file,
                        filename,
                        content_type: c
                            .str_prop("content-type")
                            .unwrap_or("application/octet-stream")
                            .to_string(),
                        data,
                    });
                }
                _ => {}
            }
        }
        Some(Body::Multipart { fields, files })
    }

    /// A body file's bytes (relative to the plan's folder), or a `missing-file` error.
    fn read_body_file(&mut self, file: &str, span: crate::source::Span) -> Option<bytes::Bytes> {
        let path = self.base.join(file);
        // Only regular files: a device or pipe (`/dev/zero`) would never finish.
        let read = match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err("not a regular file".to_string()),
            Ok(_) => std::fs::read(&path).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok(data) => Some(bytes::Bytes::from(data)),
            Err(e) => {
                self.err(
                    Code::MissingFile,
                    span,
                    format!("cannot read body file `{}`: {e}", path.display()),
                    "file not readable",
                    "body files are relative to the plan file's folder",
                );
                None
            }
        }
    }

    /// `body file="…" content-type="…"`: the file is read here, once (a missing or
    /// unreadable file is a plan error, reported by `check`).
    fn body_file(&mut self, n: &Node) -> Option<Body> {
        let v = n.prop("file")?;
        let file = v.as_str()?.to_string();
        let data = self.read_body_file(&file, v.span)?;
        Some(Body::File {
            file,
            content_type: n
                .str_prop("content-type")
                .unwrap_or("application/octet-stream")
                .to_string(),
            data,
        })
    }

    /// `events "name" count= timeout= type= match= equals= regex= { check; capture }`.
    fn events(&mut self, n: &Node) -> Option<EventStream> {
        let name = n.str_arg(0)?.to_string();
        let (count, timeout) = self.awaited(n, "event")?;
        let matcher = self.matcher(n, FrameType::Any)?;
        let checks = n
            .children_named("check")
            .filter_map(|c| self.check(c, false))
            .collect();
        let captures = self.captures(n);
        Some(EventStream {
            stat: self.stat("event", &name),
            first_stat: self.stat("first-event", &name),
            count,
            timeout,
            event_type: n.str_prop("type").map(str::to_string),
            matcher,
            checks,
            captures,
        })
    }

    /// A frame's or event's `match`/`equals`/`regex` (shared by `events` and `ws`).
    pub(super) fn matcher(&mut self, n: &Node, frame_type: FrameType) -> Option<Matcher> {
        let json = match n.prop("match") {
            Some(v) => Some(self.json_path(v)?),
            None => None,
        };
        if let (Some(v), None) = (n.prop("equals"), &json) {
            self.err(
                Code::Conflict,
                v.span,
                "`equals` needs `match`",
                "nothing to compare",
                "write `match=\"$.type\" equals=\"data\"`",
            );
            return None;
        }
        let regex = match n.prop("regex") {
            Some(v) => Some(self.regex(v)?),
            None => None,
        };
        Some(Matcher {
            frame_type,
            json,
            equals: n.prop("equals").map(|v| v.scalar.to_json()),
            regex,
        })
    }

    pub(super) fn captures(&mut self, n: &Node) -> Vec<Capture> {
        let mut out = Vec::new();
        for c in n.children_named("capture") {
            if let Some(cap) = self.capture(c) {
                out.push(cap);
            } else if let Some(var) = c.str_arg(0) {
                // A capture with a mistake (reported) still binds its name: later uses
                // are not "used before it is captured" as well.
                self.known.insert(var.to_string());
            }
        }
        for cap in &out {
            self.known.insert(cap.var.clone());
            let text = match cap.from {
                CaptureFrom::Regex(_) | CaptureFrom::RegexTpl(_) => Some("captured by `regex`"),
                CaptureFrom::Header(_) => Some("captured from a header"),
                CaptureFrom::Body => Some("the whole body"),
                CaptureFrom::Json(_) | CaptureFrom::JsonTpl(_) => None,
            };
            match text {
                Some(why) => self.text_vars.insert(cap.var.clone(), why),
                None => self.text_vars.remove(&cap.var),
            };
        }
        out
    }

    pub(super) fn regex(&mut self, v: &Value) -> Option<Pattern> {
        let text = v.as_str()?;
        match regex::Regex::new(text) {
            Ok(r) => Some(Pattern(r)),
            Err(e) => {
                let msg = e.to_string();
                let last = msg.lines().last().unwrap_or("invalid regex");
                let last = last.strip_prefix("error: ").unwrap_or(last).to_string();
                // The message draws the pattern with `^` under the culprit: use it.
                let span =
                    regex_caret(&msg, text).map_or(v.span, |(at, len)| self.sub_span(v, at, len));
                let help = if self.yaml {
                    "regexes use Rust `regex` syntax; in YAML, single quotes keep `\\` as it is: '\\d+'"
                } else {
                    "regexes use Rust `regex` syntax; KDL raw strings keep `\\` as it is: #\"\\d+\"#"
                };
                self.err(
                    Code::BadRegex,
                    span,
                    format!("bad regex: {last}"),
                    "here",
                    help,
                );
                None
            }
        }
    }

    pub(super) fn json_path(&mut self, v: &Value) -> Option<JsonPath> {
        let s = v.as_str()?;
        match serde_json_path::JsonPath::parse(s) {
            Ok(path) => Some(JsonPath {
                source: s.to_string(),
                path,
            }),
            Err(e) => {
                let (message, span, help) = if !s.trim_start().starts_with('$') {
                    (
                        format!("a JSON path starts with `$`, found `{s}`"),
                        v.span,
                        format!("write `$.{}`", s.trim_start_matches('.')),
                    )
                } else {
                    let text = e.to_string();
                    let at = text
                        .strip_prefix("at position ")
                        .and_then(|r| r.split(',').next())
                        .and_then(|n| n.trim().parse::<usize>().ok());
                    let detail = match text.split(", ").nth(1) {
                        None | Some("parser error") => "it cannot be read from this point",
                        Some(d) => d,
                    };
                    let help = bracket_hint(s).unwrap_or_else(|| {
                        "JSON paths look like `$.track_width`, `$.samples[0]`, `$.boundaries.inner[*].x`".to_string()
                    });
                    (
                        format!("bad JSON path: {detail}"),
                        at.filter(|a| *a < s.len())
                            .map_or(v.span, |a| self.sub_span(v, a, 1)),
                        help,
                    )
                };
                self.err(Code::BadJsonPath, span, message, "here", help);
                None
            }
        }
    }

    /// Report a JSON text (a body or frame) that is not valid JSON, pointing at the
    /// character where the parser stopped. Templates are checked when rendered.
    pub(super) fn json_text(&mut self, v: &Value, what: &str) {
        let Some(s) = v.as_str() else { return };
        if crate::template::is_template(s) {
            return;
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(s) {
            let at = Source::new("", s).offset_of(e.line(), e.column());
            // The last character, when the parser stopped at the end of the text.
            let mut at = if at >= s.len() {
                s.char_indices().next_back().map_or(0, |(i, _)| i)
            } else {
                at
            };
            if e.to_string().starts_with("trailing comma") {
                // The parser stops at the bracket; the comma before it is the mistake.
                at = s[..at].rfind(',').unwrap_or(at);
            }
            let len = s[at..].chars().next().map_or(0, char::len_utf8);
            let span = self.sub_span(v, at, len);
            let help = if self.yaml {
                "JSON keys and strings take double quotes; in YAML wrap the JSON in single quotes: '{\"command\": \"start\"}'"
            } else {
                "JSON keys and strings take double quotes; a KDL raw string keeps them as they are: #\"{\"command\": \"start\"}\"#"
            };
            let detail = e.to_string();
            let detail = detail
                .split(" at line ")
                .next()
                .unwrap_or(&detail)
                .to_string();
            self.err(
                Code::BadJson,
                span,
                format!("the JSON {what} is not valid JSON: {detail}"),
                "here",
                help,
            );
        }
    }

    pub(super) fn check(&mut self, n: &Node, http: bool) -> Option<Check> {
        const SUBJECTS: &[&str] = &[
            "status",
            "header",
            "json",
            "body-contains",
            "body-regex",
            "max-duration",
        ];
        const PREDICATES: &[&str] = &["equals", "contains", "regex", "length", "exists"];
        let subjects: Vec<&str> = SUBJECTS
            .iter()
            .copied()
            .filter(|s| n.prop(s).is_some())
            .collect();
        let preds: Vec<&str> = PREDICATES
            .iter()
            .copied()
            .filter(|s| n.prop(s).is_some())
            .collect();
        if subjects.len() != 1 {
            let msg = if subjects.is_empty() {
                "a check needs a subject".to_string()
            } else {
                format!("a check has one subject, found {}", subjects.join(" and "))
            };
            self.err(if subjects.is_empty() { Code::MissingField } else { Code::Conflict }, n.name_span, msg, if subjects.is_empty() { "nothing to check" } else { "one subject per check" }, "write e.g. `check status=200` or `check json=\"$.status\" equals=\"healthy\"`; one check per line");
            return None;
        }
        if preds.len() > 1 {
            self.err(
                Code::Conflict,
                n.name_span,
                format!("a check has one predicate, found {}", preds.join(" and ")),
                "several predicates",
                "split it into several checks",
            );
            return None;
        }
        let subject = subjects[0];
        let sv = n.prop(subject)?;
        if !preds.is_empty() && !matches!(subject, "header" | "json") {
            self.err(
                Code::Conflict,
                sv.span,
                format!("`{}` takes no predicate", subject),
                "no predicate here",
                "predicates (`equals`, `contains`, …) go with `header` or `json`",
            );
            return None;
        }
        if !http && matches!(subject, "status" | "header") {
            self.err(
                Code::Conflict,
                sv.span,
                format!("`{subject}` cannot be checked on a WebSocket frame"),
                "not available on frames",
                "check frames with `json`, `body-contains` or `body-regex`",
            );
            return None;
        }
        let predicate = match preds.first().copied() {
            None | Some("exists") => {
                if n.prop("exists").and_then(Value::as_bool) == Some(false) {
                    self.err(
                        Code::BadValue,
                        n.prop("exists").map_or(sv.span, |v| v.span),
                        "`exists=false` is not supported",
                        "unsupported",
                        "check for presence only",
                    );
                    return None;
                }
                Predicate::Exists
            }
            Some("equals") => {
                let v = n.prop("equals")?;
                if v.as_str().is_some_and(is_template) {
                    Predicate::EqualsTpl(self.tpl(v)?)
                } else {
                    Predicate::Equals(v.scalar.to_json())
                }
            }
            Some("contains") => {
                let v = n.prop("contains")?;
                if v.as_str().is_some_and(is_template) {
                    Predicate::ContainsTpl(self.tpl(v)?)
                } else {
                    Predicate::Contains(v.as_str()?.to_string())
                }
            }
            Some("regex") => {
                let v = n.prop("regex")?;
                if v.as_str().is_some_and(is_template) {
                    Predicate::RegexTpl(self.tpl(v)?)
                } else {
                    Predicate::Regex(self.regex(v)?)
                }
            }
            Some("length") => {
                let v = n.prop("length")?;
                match v.as_int() {
                    Some(l) if l >= 0 => Predicate::Length(l as u64),
                    _ => {
                        self.err(
                            Code::BadValue,
                            v.span,
                            "length must be 0 or more",
                            "negative",
                            "use a non-negative length",
                        );
                        return None;
                    }
                }
            }
            Some(_) => return None,
        };
        Some(match subject {
            "status" if sv.as_str().is_some() => {
                let text = sv.as_str()?;
                if text.trim().parse::<i64>().is_ok() {
                    // One quoted status: the number, written as text.
                    self.err(
                        Code::WrongType,
                        sv.span,
                        "`status` of `check` must be an integer, found a string",
                        "wrong type",
                        format!("remove the quotes: {}", text.trim()),
                    );
                    return None;
                }
                match status_ranges(text) {
                    Ok(ranges) => Check::StatusIn(ranges),
                    Err(e) => {
                        self.err(
                            Code::BadValue,
                            sv.span,
                            e,
                            "not a status list",
                            "write one status (`status=200`), a list (`status=\"200,201\"`), a range (`\"200-299\"`) or a class (`\"2xx\"`)",
                        );
                        return None;
                    }
                }
            }
            "status" => {
                let s = sv.as_int()?;
                if !(100..=599).contains(&s) {
                    self.err(
                        Code::BadValue,
                        sv.span,
                        format!("{s} is not an HTTP status"),
                        "out of range",
                        "statuses are 100 to 599",
                    );
                    return None;
                }
                Check::Status(s as u16)
            }
            "max-duration" => Check::MaxDuration(self.duration(Some(sv))?),
            "body-contains" if sv.as_str().is_some_and(is_template) => {
                Check::BodyContainsTpl(self.tpl(sv)?)
            }
            "body-contains" => Check::BodyContains(sv.as_str()?.to_string()),
            "body-regex" if sv.as_str().is_some_and(is_template) => {
                Check::BodyRegexTpl(self.tpl(sv)?)
            }
            "body-regex" => Check::BodyRegex(self.regex(sv)?),
            "header" => Check::Header {
                name: sv.as_str()?.to_ascii_lowercase(),
                predicate,
            },
            _ if sv.as_str().is_some_and(is_template) => Check::JsonTpl {
                path: self.tpl(sv)?,
                predicate,
            },
            _ => Check::Json {
                path: self.json_path(sv)?,
                predicate,
            },
        })
    }

    pub(super) fn capture(&mut self, n: &Node) -> Option<Capture> {
        let var = n.str_arg(0)?.to_string();
        let source = self.one_of(
            n,
            OneOf {
                names: &["json", "regex", "header", "body"],
                missing: (format!("capture `{var}` needs a source"), "no source"),
                several: (
                    format!("capture `{var}` has one source"),
                    "one source per capture",
                ),
                help: "use one of `json=`, `regex=`, `header=` or `body=#true`",
            },
        )?;
        let from = match source {
            "json" if n.str_prop("json").is_some_and(is_template) => {
                CaptureFrom::JsonTpl(self.tpl(n.prop("json")?)?)
            }
            "regex" if n.str_prop("regex").is_some_and(is_template) => {
                CaptureFrom::RegexTpl(self.tpl(n.prop("regex")?)?)
            }
            "json" => CaptureFrom::Json(self.json_path(n.prop("json")?)?),
            "regex" => CaptureFrom::Regex(self.regex(n.prop("regex")?)?),
            "header" => CaptureFrom::Header(n.str_prop("header")?.to_ascii_lowercase()),
            _ => CaptureFrom::Body,
        };
        let (default, default_tpl) = match n.prop("default") {
            Some(v) if v.as_str().is_some_and(is_template) => (None, Some(self.tpl(v)?)),
            Some(v) => (Some(v.scalar.to_json()), None),
            None => (None, None),
        };
        Some(Capture {
            var,
            from,
            default,
            default_tpl,
        })
    }
}

/// A status list: `200,201`, ranges `200-299`, classes `2xx`, each 100–599.
fn status_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    let code = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(format!("`{}` is not an HTTP status (100 to 599)", s.trim())),
        }
    };
    for part in text.split(',').map(str::trim) {
        let lower = part.to_ascii_lowercase();
        if let Some(d) = lower.strip_suffix("xx").filter(|d| d.len() == 1) {
            let c = code(&format!("{d}00"))?;
            out.push((c, c + 99));
        } else if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (code(a)?, code(b)?);
            if a > b {
                return Err(format!("`{part}`: the range goes from low to high"));
            }
            out.push((a, b));
        } else {
            let c = code(part)?;
            out.push((c, c));
        }
    }
    Ok(out)
}

/// `%XX` escapes of a URL part decoded (userinfo of a URL).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// For a path with a dotted key that holds `-` or a space (`$.headers.Content-Type`),
/// the same path with that key in brackets: "write `$.headers['Content-Type']`".
fn bracket_hint(path: &str) -> Option<String> {
    let mut out = String::from("$");
    let mut changed = false;
    let rest = path.trim().strip_prefix('$')?;
    // Split on dots outside brackets and quotes.
    let mut segs: Vec<String> = Vec::new();
    let (mut cur, mut depth, mut quote) = (String::new(), 0, None::<char>);
    for c in rest.chars() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[', None) => depth += 1,
            (']', None) => depth -= 1,
            ('.', None) if depth == 0 => {
                segs.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    segs.push(cur);
    for (i, seg) in segs.iter().enumerate() {
        if i == 0 && seg.is_empty() {
            continue;
        }
        let (key, tail) = match seg.find('[') {
            Some(b) => (&seg[..b], &seg[b..]),
            None => (seg.as_str(), ""),
        };
        if !key.is_empty() && key.chars().any(|c| c == '-' || c == ' ') {
            out.push_str(&format!("['{}']{tail}", key.replace('\'', "\\'")));
            changed = true;
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    changed.then(|| format!("a key with `-` or a space goes in brackets: write `{out}`"))
}

/// A method-less `http "/health"`: the one argument is a URL, not a method.
pub(super) fn looks_like_url(s: &str) -> bool {
    s.starts_with('/') || s.contains("://")
}

/// Where the `regex` crate's message puts its caret under the pattern, as a byte
/// offset and length in the pattern (single-line patterns only).
fn regex_caret(message: &str, pattern: &str) -> Option<(usize, usize)> {
    if pattern.contains('\n') {
        return None;
    }
    let lines: Vec<&str> = message.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_end() == format!("    {pattern}").trim_end())?;
    let carets = lines.get(i + 1)?;
    let start = carets.find('^')?.checked_sub(4)?;
    let len = carets.trim().chars().filter(|c| *c == '^').count().max(1);
    let at = pattern.char_indices().nth(start).map(|(b, _)| b)?;
    let end = pattern
        .char_indices()
        .nth(start + len)
        .map_or(pattern.len(), |(b, _)| b);
    Some((at, end - at))
}
