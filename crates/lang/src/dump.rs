//! Dumps of a compiled program: JSON (complete; twins compare equal), an indented
//! text tree and Graphviz dot (`loadplan graph`).

use std::fmt::Write;

use super::ir::{Body, Pause, Program, Step, Think, WsStep};

/// The whole program as pretty JSON, spans and template ids excluded.
pub fn json(program: &Program) -> String {
    serde_json::to_string_pretty(program).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn stat_label(p: &Program, id: u32) -> String {
    p.stats
        .get(id as usize)
        .map_or_else(|| format!("#{id}"), |s| format!("{} {}", s.kind, s.name))
}

fn pause(p: &Pause) -> String {
    match p {
        Pause::Constant(d) => format!("{}", humantime::format_duration(*d)),
        Pause::Uniform(a, b) => format!(
            "{}..{}",
            humantime::format_duration(*a),
            humantime::format_duration(*b)
        ),
    }
}

/// An indented text tree of scenarios and steps.
pub fn text(p: &Program) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan {:?} host={}",
        p.name,
        p.host.as_deref().unwrap_or("(none)")
    );
    for s in &p.scenarios {
        let think = match s.think {
            Think::None => "none".to_string(),
            Think::Constant(d) => humantime::format_duration(d).to_string(),
            Think::Uniform(a, b) => format!(
                "{}..{}",
                humantime::format_duration(a),
                humantime::format_duration(b)
            ),
            Think::Pacing(d) => format!("pacing {}", humantime::format_duration(d)),
        };
        let _ = writeln!(
            out,
            "scenario {:?} weight={} think={think}",
            s.name, s.weight
        );
        for (label, steps) in [
            ("on-start", &s.on_start),
            ("steps", &s.steps),
            ("on-stop", &s.on_stop),
        ] {
            if steps.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {label}:");
            for st in steps {
                step_text(p, st, 2, &mut out);
            }
        }
    }
    out
}

fn step_text(p: &Program, st: &Step, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match st {
        Step::Http(h) => {
            let body = match &h.body {
                Body::None => String::new(),
                Body::Json(_) => " body=json".into(),
                Body::Form(_) => " body=form".into(),
                Body::Text { .. } => " body=text".into(),
                Body::File { file, .. } => format!(" body=file:{file}"),
                Body::Multipart { .. } => " body=multipart".into(),
            };
            let _ = writeln!(
                out,
                "{pad}- [{}] {} {}{body} checks={} captures={}",
                stat_label(p, h.stat),
                h.method,
                h.url.source,
                h.checks.len(),
                h.captures.len()
            );
        }
        Step::Ws(w) => {
            let _ = writeln!(
                out,
                "{pad}- [{}] ws {}",
                stat_label(p, w.stat),
                w.url.source
            );
            for s in &w.steps {
                let line = match s {
                    WsStep::Send { stat, .. } => format!("[{}]", stat_label(p, *stat)),
                    WsStep::Receive {
                        stat,
                        count,
                        timeout,
                        ..
                    } => format!(
                        "[{}] count={count} timeout={}",
                        stat_label(p, *stat),
                        humantime::format_duration(*timeout)
                    ),
                    WsStep::ExpectSilence { stat, duration } => format!(
                        "[{}] for {}",
                        stat_label(p, *stat),
                        humantime::format_duration(*duration)
                    ),
                    WsStep::Sleep(ps) => format!("sleep {}", pause(ps)),
                    WsStep::Set { var, value, .. } => format!("set {var} = {}", value.source),
                    WsStep::Close { stat, code, .. } => {
                        format!("[{}] code={code}", stat_label(p, *stat))
                    }
                };
                let _ = writeln!(out, "{pad}    - {line}");
            }
        }
        Step::Sleep(ps) => {
            let _ = writeln!(out, "{pad}- sleep {}", pause(ps));
        }
        Step::Group { stat, steps } => {
            let _ = writeln!(out, "{pad}- group [{}]", stat_label(p, *stat));
            for s in steps {
                step_text(p, s, depth + 1, out);
            }
        }
        Step::Repeat {
            count,
            duration,
            steps,
        } => {
            let what = match (count, duration) {
                (Some(c), _) => format!("{c} times"),
                (_, Some(d)) => format!("for {}", humantime::format_duration(*d)),
                _ => String::new(),
            };
            let _ = writeln!(out, "{pad}- repeat {what}");
            for s in steps {
                step_text(p, s, depth + 1, out);
            }
        }
        Step::Pick { weights, steps } => {
            let _ = writeln!(out, "{pad}- pick one of {}", steps.len());
            for (w, s) in weights.iter().zip(steps) {
                let _ = writeln!(out, "{pad}  weight {w}:");
                step_text(p, s, depth + 2, out);
            }
        }
        Step::Set { var, value, .. } => {
            let _ = writeln!(out, "{pad}- set {var} = {}", value.source);
        }
        Step::Log(t) => {
            let _ = writeln!(out, "{pad}- log {}", t.source);
        }
        Step::If {
            condition,
            then,
            otherwise,
            ..
        } => {
            let _ = writeln!(out, "{pad}- if {}", condition.source);
            for s in then {
                step_text(p, s, depth + 1, out);
            }
            if !otherwise.is_empty() {
                let _ = writeln!(out, "{pad}  else:");
                for s in otherwise {
                    step_text(p, s, depth + 1, out);
                }
            }
        }
    }
}

/// Graphviz dot: one cluster per scenario; every step is a node (the steps of `ws`
/// sessions, `group`s, `repeat`s and each branch of `pick` and `if` too), and edges
/// follow the order steps run in: a `pick` or `if` fans out to its branches (labelled
/// with the weight or `then`/`else`) and they join again at the next step; a
/// `repeat` has an edge back from its last step.
pub fn dot(p: &Program) -> String {
    let mut g = Dot {
        out: String::from(
            "digraph plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
        ),
        n: 0,
    };
    for (si, s) in p.scenarios.iter().enumerate() {
        let _ = writeln!(
            g.out,
            "  subgraph cluster_{si} {{\n    label={:?};",
            format!("{} (weight {})", s.name, s.weight)
        );
        let start = g.node(&format!("start {}", s.name), "oval");
        let mut ends = vec![(start, String::new())];
        for (label, steps) in [
            ("on-start", &s.on_start),
            ("iteration", &s.steps),
            ("on-stop", &s.on_stop),
        ] {
            if steps.is_empty() {
                continue;
            }
            let mark = g.node(label, "plaintext");
            g.join(&ends, mark);
            ends = g.steps(p, steps, vec![(mark, String::new())]);
        }
        let end = g.node("end", "oval");
        g.join(&ends, end);
        g.out.push_str("  }\n");
    }
    g.out.push_str("}\n");
    g.out
}

struct Dot {
    out: String,
    n: usize,
}

impl Dot {
    fn node(&mut self, label: &str, shape: &str) -> usize {
        let id = self.n;
        self.n += 1;
        let _ = writeln!(self.out, "    n{id} [label={label:?}, shape={shape}];");
        id
    }

    fn edge(&mut self, from: usize, to: usize, label: &str) {
        if label.is_empty() {
            let _ = writeln!(self.out, "    n{from} -> n{to};");
        } else {
            let _ = writeln!(self.out, "    n{from} -> n{to} [label={label:?}];");
        }
    }

    /// Edges from every open end to `to`.
    fn join(&mut self, ends: &[(usize, String)], to: usize) {
        for (from, label) in ends {
            self.edge(*from, to, label);
        }
    }

    /// Chain steps after `ends`; returns the new open ends (node, edge label).
    fn steps(
        &mut self,
        p: &Program,
        steps: &[Step],
        mut ends: Vec<(usize, String)>,
    ) -> Vec<(usize, String)> {
        for st in steps {
            ends = self.step(p, st, ends);
        }
        ends
    }

    fn step(&mut self, p: &Program, st: &Step, ends: Vec<(usize, String)>) -> Vec<(usize, String)> {
        match st {
            Step::Pick { weights, steps } => {
                let d = self.node(&format!("pick one of {}", steps.len()), "diamond");
                self.join(&ends, d);
                let mut out = Vec::new();
                for (w, s) in weights.iter().zip(steps) {
                    out.extend(self.step(p, s, vec![(d, format!("weight {w}"))]));
                }
                out
            }
            Step::If {
                condition,
                then,
                otherwise,
                ..
            } => {
                let d = self.node(&format!("if {}", condition.source), "diamond");
                self.join(&ends, d);
                let mut out = self.steps(p, then, vec![(d, "then".into())]);
                if otherwise.is_empty() {
                    out.push((d, "else".into()));
                } else {
                    out.extend(self.steps(p, otherwise, vec![(d, "else".into())]));
                }
                out
            }
            Step::Repeat {
                count,
                duration,
                steps,
            } => {
                let what = match (count, duration) {
                    (Some(c), _) => format!("repeat {c} times"),
                    (_, Some(d)) => format!("repeat for {}", humantime::format_duration(*d)),
                    _ => "repeat".into(),
                };
                let r = self.node(&what, "hexagon");
                self.join(&ends, r);
                let inner = self.steps(p, steps, vec![(r, String::new())]);
                for (from, _) in &inner {
                    self.edge(*from, r, "again");
                }
                vec![(r, "done".into())]
            }
            Step::Group { stat, steps } => {
                let g = self.node(&format!("group [{}]", stat_label(p, *stat)), "folder");
                self.join(&ends, g);
                self.steps(p, steps, vec![(g, String::new())])
            }
            Step::Ws(w) => {
                let c = self.node(
                    &format!("[{}] ws {}", stat_label(p, w.stat), w.url.source),
                    "box",
                );
                self.join(&ends, c);
                let mut last = c;
                for s in &w.steps {
                    let label = match s {
                        WsStep::Send { stat, .. } => format!("send [{}]", stat_label(p, *stat)),
                        WsStep::Receive { stat, count, .. } => {
                            format!("receive [{}] count={count}", stat_label(p, *stat))
                        }
                        WsStep::ExpectSilence { stat, duration } => format!(
                            "expect-silence [{}] {}",
                            stat_label(p, *stat),
                            humantime::format_duration(*duration)
                        ),
                        WsStep::Sleep(ps) => format!("sleep {}", pause(ps)),
                        WsStep::Set { var, value, .. } => format!("set {var} = {}", value.source),
                        WsStep::Close { stat, code, .. } => {
                            format!("close [{}] code={code}", stat_label(p, *stat))
                        }
                    };
                    let id = self.node(&label, "box");
                    self.edge(last, id, "");
                    last = id;
                }
                vec![(last, String::new())]
            }
            other => {
                let mut t = String::new();
                step_text(p, other, 0, &mut t);
                let label = t
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("- ")
                    .to_string();
                let id = self.node(&label, "box");
                self.join(&ends, id);
                vec![(id, String::new())]
            }
        }
    }
}
