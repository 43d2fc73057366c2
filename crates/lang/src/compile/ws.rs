//! WebSocket sessions and their steps.

use super::{Compiler, OneOf};
use crate::ast::Node;
use crate::diag::Code;
use crate::ir::*;

impl Compiler<'_> {
    pub(super) fn ws(&mut self, n: &Node) -> Option<WsSession> {
        let uv = n.arg(0)?;
        let url = self.url(uv, true);
        let name = n.str_prop("name").map_or_else(
            || {
                let raw = uv.as_str().unwrap_or_default();
                raw.split('?').next().unwrap_or(raw).to_string()
            },
            str::to_string,
        );
        let stat = self.stat("WS", &name);
        for t in n.children_named("threshold") {
            self.threshold(t, Some(format!("WS {name}")));
        }
        let headers = n
            .child("headers")
            .map(|h| self.headers(h))
            .unwrap_or_default();
        let mut steps = Vec::new();
        for c in &n.children {
            if let Some(s) = self.ws_step(c) {
                steps.push(s);
            }
        }
        Some(WsSession {
            stat,
            url: url?,
            headers,
            subprotocol: n.str_prop("subprotocol").map(str::to_string),
            timeout: self.duration(n.prop("timeout")),
            connection: n.str_prop("connection").map(str::to_string),
            steps,
        })
    }

    pub(super) fn ws_step(&mut self, n: &Node) -> Option<WsStep> {
        match n.name.as_str() {
            "send" => {
                let name = n.str_arg(0)?.to_string();
                let kind = self.one_of(
                    n,
                    OneOf {
                        names: &["text", "json", "binary"],
                        missing: ("`send` needs a frame".into(), "no frame"),
                        several: ("`send` sends one frame".into(), "one frame per send"),
                        help: "use one of `text=`, `json=` or `binary=` (hex)",
                    },
                )?;
                let v = n.prop(kind)?;
                let frame = match kind {
                    "text" => Frame::Text(self.tpl(v)?),
                    "json" => {
                        self.json_text(v, "frame");
                        Frame::Json(self.tpl(v)?)
                    }
                    _ => match decode_hex(v.as_str()?) {
                        Some(bytes) => Frame::Binary(bytes),
                        None => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                "binary frames are written in hex",
                                "not hex",
                                "write bytes as hex digits, e.g. \"00ff10\"",
                            );
                            return None;
                        }
                    },
                };
                let stat = self.stat("send", &name);
                Some(WsStep::Send { stat, frame })
            }
            "receive" => {
                let name = n.str_arg(0)?.to_string();
                let (count, timeout) = self.awaited(n, "frame")?;
                let frame_type = match n.prop("type") {
                    None => FrameType::Any,
                    Some(v) => match v.as_str() {
                        Some("text") => FrameType::Text,
                        Some("binary") => FrameType::Binary,
                        Some("any") => FrameType::Any,
                        Some(other) => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                format!("unknown frame type `{other}`"),
                                "unknown type",
                                "one of: text, binary, any",
                            );
                            return None;
                        }
                        None => return None,
                    },
                };
                let matcher = self.matcher(n, frame_type)?;
                let checks = n
                    .children_named("check")
                    .filter_map(|c| self.check(c, false))
                    .collect();
                let captures = self.captures(n);
                let stat = self.stat("receive", &name);
                Some(WsStep::Receive {
                    stat,
                    count,
                    timeout,
                    matcher,
                    checks,
                    captures,
                })
            }
            "expect-silence" => {
                let name = n.str_arg(0)?.to_string();
                let duration = self.duration(n.prop("for"))?;
                let stat = self.stat("silence", &name);
                Some(WsStep::ExpectSilence { stat, duration })
            }
            "sleep" => self.pause(n).map(WsStep::Sleep),
            "set" => {
                let (stat, var, value) = self.set(n)?;
                Some(WsStep::Set { stat, var, value })
            }
            "close" => {
                let name = n.str_prop("name").unwrap_or("close").to_string();
                let code = match n.prop("code") {
                    None => 1000,
                    Some(v) => match v.as_int() {
                        Some(c) if (1000..=4999).contains(&c) => c as u16,
                        _ => {
                            self.err(
                                Code::BadValue,
                                v.span,
                                "close codes are 1000 to 4999",
                                "out of range",
                                "1000 is a normal closure",
                            );
                            return None;
                        }
                    },
                };
                let stat = self.stat("close", &name);
                Some(WsStep::Close {
                    stat,
                    code,
                    reason: n.str_prop("reason").unwrap_or_default().to_string(),
                })
            }
            _ => None,
        }
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
