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
                    WsStep::Set { var, value } => format!("set {var} = {}", value.source),
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
        Step::Set { var, value } => {
            let _ = writeln!(out, "{pad}- set {var} = {}", value.source);
        }
        Step::Log(t) => {
            let _ = writeln!(out, "{pad}- log {}", t.source);
        }
        Step::If {
            condition,
            then,
            otherwise,
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

/// Graphviz dot: one cluster per scenario, steps chained in order.
pub fn dot(p: &Program) -> String {
    let mut out = String::from(
        "digraph plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    let mut n = 0usize;
    for (si, s) in p.scenarios.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{si} {{\n    label={:?};",
            format!("{} (weight {})", s.name, s.weight)
        );
        let mut prev: Option<usize> = None;
        for st in s.on_start.iter().chain(&s.steps).chain(&s.on_stop) {
            let mut t = String::new();
            step_text(p, st, 0, &mut t);
            let label = t
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("- ")
                .to_string();
            let _ = writeln!(out, "    n{n} [label={label:?}];");
            if let Some(pr) = prev {
                let _ = writeln!(out, "    n{pr} -> n{n};");
            }
            prev = Some(n);
            n += 1;
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
