//! `--html FILE`: a self-contained report of one run — summary, thresholds, charts over time
//! (request and failure rate, users, p50/p95/p99), the per-step table and the failures — in one
//! HTML file with inline CSS and inline SVG ([`super::svg`]). It opens offline, from an archive
//! or a CI artifact store. With a baseline ([`render_with`]: `run --baseline`, `compare
//! --html`) it also shows the comparison: totals and a per-step table of baseline, run and
//! change judged by [`super::compare`]'s rules, and the baseline's series dashed in the charts.
//!
//! Invariants: no script, no external stylesheet, font or image, and no URL anywhere: every
//! text taken from the plan or the run goes through [`escape`], which also writes `:` as a
//! character reference, so even a step named after an absolute URL cannot put `http://` in the
//! file.

use super::compare::{self, Beside, Judged};
use super::model::{Percentiles, PhaseReport, RunReport, StepReport};
use super::svg::{self, Series};
use crate::metrics::format_ms as ms;

/// HTML text/attribute escaping; `:` becomes `&#58;` (see the module docs).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            ':' => out.push_str("&#58;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1a202c;background:#f7fafc}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{overflow-wrap:anywhere}.meta{overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
.reasons{background:#fff5f5;border:1px solid #feb2b2;border-radius:6px;padding:8px 14px;margin-top:14px}
.reasons.ok{background:#f0fff4;border-color:#9ae6b4}.reasons ul{margin:4px 0;padding-left:20px}
.step-chart h3{font-size:13px;margin:0 0 4px;overflow-wrap:anywhere}
td.worse{background:#fed7d7;color:#9b2c2c;font-weight:600}td.better{background:#c6f6d5;color:#22543d;font-weight:600}
.card.worse{background:#fff5f5;border-color:#feb2b2}.card.better{background:#f0fff4;border-color:#9ae6b4}
#baseline-totals{margin:0 0 12px}td.few{color:#a0aec0}td.base{color:#718096}th.grp{text-align:center}
@media (max-width:600px){main{padding:10px}.card{min-width:0;flex:1 1 40%}}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.meta{color:#4a5568;font-size:13px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;font-size:13px;vertical-align:middle}
.pass{background:#2f855a}.fail{background:#c53030}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:16px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:19px}.card span{color:#4a5568;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#edf2f7}td.l,th.l{text-align:left}td.msg{white-space:normal;text-align:left}
tr.total td{font-weight:600;background:#f7fafc}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(520px,100%),1fr));gap:12px}
svg.chart{background:#fff;border:1px solid #e2e8f0;border-radius:6px;width:100%;height:auto;font-size:11px}
svg .title{font-size:13px;font-weight:600;fill:#1a202c}svg .legend{fill:#2d3748}
svg .grid{stroke:#edf2f7}svg .axis,svg .tick{stroke:#a0aec0}
svg .ylabel{text-anchor:end;fill:#4a5568}svg .xlabel{text-anchor:middle;fill:#4a5568}
footer{color:#718096;font-size:12px;margin-top:30px}
";

/// The report document.
pub fn render(r: &RunReport) -> String {
    render_with(r, None)
}

/// The report document, with a baseline drawn beside the run when one is given
/// (`run --baseline FILE`, `compare --html`): the comparison table after the verdict and the
/// baseline's series dashed under the charts.
pub fn render_with(r: &RunReport, beside: Option<&Beside<'_>>) -> String {
    let base = beside.map(|b| &b.baseline.report);
    let mut out = String::with_capacity(32 * 1024);
    let title = format!("loadplan report: {}", r.plan.name);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(&title)));
    out.push_str(&format!(
        "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    ));
    header(&mut out, r);
    reasons(&mut out, r);
    if let Some(b) = beside {
        comparison(&mut out, r, b);
    }
    thresholds(&mut out, r);
    charts(&mut out, r, base);
    step_charts(&mut out, r, base);
    steps(&mut out, r);
    phases(&mut out, r);
    breakdown(&mut out, r);
    failures(&mut out, r);
    out.push_str(&format!(
        "<footer>{} · {} · seed {}</footer>\n</main>\n</body>\n</html>\n",
        escape(&r.tool),
        escape(&r.plan.file),
        r.seed
    ));
    out
}

fn header(out: &mut String, r: &RunReport) {
    let badge = if r.passed {
        "<span class=\"badge pass\">PASSED</span>"
    } else {
        "<span class=\"badge fail\">FAILED</span>"
    };
    out.push_str(&format!(
        "<h1>{} {badge}</h1>\n",
        escape(&format!("loadplan report: {}", r.plan.name))
    ));
    let started = std::time::UNIX_EPOCH
        + std::time::Duration::try_from_secs_f64(r.started_at).unwrap_or_default();
    let mut meta = format!(
        "plan {} · target {} · profile {} ({}) · started {} · ran {} · seed {}",
        r.plan.file,
        r.host.as_deref().unwrap_or("-"),
        r.profile.name,
        r.profile.model,
        humantime::format_rfc3339_seconds(started),
        clock(r.elapsed_secs),
        r.seed
    );
    if let Some(at) = r.stats_reset_at_secs {
        meta.push_str(&format!(
            " · statistics reset at {}: counts and rates cover the {} after it",
            clock(at),
            clock(r.stats_secs)
        ));
    } else if let Some(load) = r.load_secs.filter(|l| r.elapsed_secs - l >= 0.05) {
        meta.push_str(&format!(
            " · {} of load + {} of drain",
            clock(load),
            clock(r.elapsed_secs - load)
        ));
    }
    if let Some(rule) = &r.aborted_by {
        meta.push_str(&format!(" · aborted by threshold {rule}"));
    } else if r.interrupted {
        meta.push_str(" · interrupted");
    }
    out.push_str(&format!("<p class=\"meta\">{}</p>\n", escape(&meta)));
    // The headline figures are HTTP requests' (what a plain threshold measures); WebSocket
    // messages get their own cards when the run had any (docs/metrics.md).
    let a = &r.totals.http;
    let lat = |s: &StepReport, f: fn(&Percentiles) -> f64| {
        s.latency_ms.as_ref().map_or("-".into(), |p| ms(f(p)))
    };
    let mut cards = vec![
        (a.count.to_string(), "HTTP requests".to_owned()),
        (
            format!("{} ({})", a.failures, pct(a.error_rate)),
            "HTTP failures".into(),
        ),
        (format!("{:.1}", a.rate), "HTTP requests/s".into()),
        (lat(a, |p| p.p50), "HTTP p50 ms".into()),
        (lat(a, |p| p.p95), "HTTP p95 ms".into()),
        (lat(a, |p| p.p99), "HTTP p99 ms".into()),
        (lat(a, |p| p.mean), "HTTP avg ms".into()),
    ];
    let w = &r.totals.ws;
    if w.count > 0 {
        cards.extend([
            (w.count.to_string(), "WebSocket messages".to_owned()),
            (
                format!("{} ({})", w.failures, pct(w.error_rate)),
                "WebSocket failures".into(),
            ),
            (lat(w, |p| p.p95), "WebSocket p95 ms".into()),
        ]);
    }
    cards.push((r.users.peak.to_string(), "peak users".into()));
    if r.checks.passed + r.checks.failed > 0 {
        cards.push((
            format!(
                "{} / {}",
                r.checks.passed,
                r.checks.passed + r.checks.failed
            ),
            "checks passed".into(),
        ));
    }
    if r.iterations.started > 0 {
        cards.push((r.iterations.completed.to_string(), "iterations".into()));
    }
    out.push_str("<div class=\"cards\">");
    for (value, label) in cards {
        out.push_str(&format!(
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(&label)
        ));
    }
    out.push_str("</div>\n");
}

/// Why the run passed or failed, as `loadplan run`'s verdict line says it.
fn reasons(out: &mut String, r: &RunReport) {
    if r.passed {
        out.push_str("<div class=\"reasons ok\" id=\"verdict\"><b>Passed</b>: every threshold held, no check failed and at least one request completed.</div>\n");
        return;
    }
    out.push_str("<div class=\"reasons\" id=\"verdict\"><b>Failed because</b><ul>");
    if r.reasons.is_empty() {
        out.push_str("<li>the run did not pass (see the thresholds and failures below)</li>");
    }
    for reason in &r.reasons {
        out.push_str(&format!("<li>{}</li>", escape(reason)));
    }
    out.push_str("</ul></div>\n");
}

/// The baseline beside the run: who it was, the verdict of the comparison, and a table of
/// every step and total with the baseline's figure, the run's and the change, coloured when
/// the change is beyond the rules of `loadplan compare` (worse: a regression; better: the
/// same rules the other way round).
fn comparison(out: &mut String, r: &RunReport, b: &Beside<'_>) {
    let base = &b.baseline.report;
    let started = std::time::UNIX_EPOCH
        + std::time::Duration::try_from_secs_f64(base.started_at).unwrap_or_default();
    let regressions = b.worse.regressions().count();
    let verdict = match regressions {
        0 => "<span class=\"badge pass\">no regression</span>".to_owned(),
        1 => "<span class=\"badge fail\">1 regression</span>".to_owned(),
        n => format!("<span class=\"badge fail\">{n} regressions</span>"),
    };
    out.push_str(&format!(
        "<h2 id=\"baseline\">Compared with the baseline {verdict}</h2>\n<p class=\"meta\">{}</p>\n",
        escape(&format!(
            "baseline {}: plan {} · target {} · profile {} · started {} · ran {} · seed {}. \
             Δ is the change from the baseline (error rate in percentage points). Red: worse, \
             green: better, each only beyond the rules of loadplan compare ({}); grey: too few \
             events to judge.",
            b.baseline.source,
            base.plan.name,
            base.host.as_deref().unwrap_or("-"),
            base.profile.name,
            humantime::format_rfc3339_seconds(started),
            clock(base.elapsed_secs),
            base.seed,
            b.rules()
        ))
    ));
    if !b.worse.notes.is_empty() {
        out.push_str("<ul class=\"meta\">");
        for n in &b.worse.notes {
            out.push_str(&format!("<li>{}</li>", escape(n)));
        }
        out.push_str("</ul>\n");
    }
    const METRICS: [(&str, &str); 5] = [
        ("req/s", "req/s"),
        ("errors", "error rate"),
        ("p50", "p50 ms"),
        ("p95", "p95 ms"),
        ("p99", "p99 ms"),
    ];
    // The totals first, as cards: the run's figure, the baseline's and the change.
    out.push_str("<div class=\"cards\" id=\"baseline-totals\">");
    for (then, now) in b.totals(r) {
        let label = compare::label(now);
        let who = match now.kind.as_str() {
            "http" => "HTTP",
            "ws" => "WebSocket",
            _ => "all",
        };
        for (metric, unit) in METRICS {
            let Some((d, judged)) = b.delta(&label, metric) else {
                continue;
            };
            out.push_str(&format!(
                "<div class=\"card {j}\" data-metric=\"{metric}\"><b>{}</b><span>{}</span></div>",
                escape(&metric_value(now, metric)),
                escape(&format!(
                    "{who} {unit} · baseline {} · Δ {}",
                    metric_value(then, metric),
                    compare::change(d)
                )),
                j = judged.as_str()
            ));
        }
    }
    out.push_str("</div>\n");
    out.push_str("<div class=\"scroll\"><table class=\"compare\"><tr><th class=\"l\" rowspan=\"2\">Step</th><th class=\"grp\" colspan=\"2\"># reqs</th>");
    for (_, title) in METRICS {
        out.push_str(&format!("<th class=\"grp\" colspan=\"3\">{title}</th>"));
    }
    out.push_str("</tr>\n<tr><th>base</th><th>now</th>");
    for _ in METRICS {
        out.push_str("<th>base</th><th>now</th><th>Δ</th>");
    }
    out.push_str("</tr>\n");
    let mut rows: Vec<(Option<&StepReport>, Option<&StepReport>, &str)> = r
        .steps
        .iter()
        .map(|c| (base.step(&c.kind, &c.name), Some(c), ""))
        .collect();
    rows.extend(
        base.steps
            .iter()
            .filter(|s| r.step(&s.kind, &s.name).is_none())
            .map(|s| (Some(s), None, "")),
    );
    rows.extend(
        b.totals(r)
            .into_iter()
            .map(|(x, y)| (Some(x), Some(y), " class=\"total\"")),
    );
    for (then, now, class) in rows {
        let Some(row) = now.or(then) else { continue };
        let label = compare::label(row);
        out.push_str(&format!(
            "<tr{class} data-step=\"{0}\"><td class=\"l\">{0}</td>",
            escape(&label)
        ));
        let count = |s: Option<&StepReport>| s.map_or("-".into(), |s| s.count.to_string());
        out.push_str(&format!(
            "<td class=\"base\">{}</td><td>{}</td>",
            count(then),
            count(now)
        ));
        for (metric, _) in METRICS {
            let value =
                |s: Option<&StepReport>| s.map_or("-".to_owned(), |s| metric_value(s, metric));
            let (delta, judged) = match (then, now) {
                (Some(_), Some(_)) => b
                    .delta(&label, metric)
                    .map_or(("-".to_owned(), Judged::Same), |(d, j)| {
                        (compare::change(d), j)
                    }),
                (None, _) => ("new".to_owned(), Judged::Same),
                (_, None) => ("gone".to_owned(), Judged::Same),
            };
            out.push_str(&format!(
                "<td class=\"base\">{}</td><td>{}</td><td class=\"d {j}\" data-metric=\"{metric}\" data-judged=\"{j}\">{}</td>",
                escape(&value(then)),
                escape(&value(now)),
                escape(&delta),
                j = judged.as_str(),
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

/// One compared figure of a row, as the comparison table shows it.
fn metric_value(s: &StepReport, metric: &str) -> String {
    let lat = |f: fn(&Percentiles) -> f64| s.latency_ms.as_ref().map_or("-".into(), |p| ms(f(p)));
    match metric {
        "req/s" => format!("{:.2}", s.rate),
        "errors" => pct(s.error_rate),
        "p50" => lat(|p| p.p50),
        "p95" => lat(|p| p.p95),
        _ => lat(|p| p.p99),
    }
}

fn thresholds(out: &mut String, r: &RunReport) {
    if r.thresholds.is_empty() {
        return;
    }
    out.push_str("<h2>Thresholds</h2>\n<div class=\"scroll\"><table><tr><th class=\"l\">Result</th><th class=\"l\">Rule</th><th>Actual</th><th>Limit</th></tr>\n");
    for t in &r.thresholds {
        let verdict = if t.passed {
            "<span class=\"badge pass\">PASS</span>"
        } else {
            "<span class=\"badge fail\">FAIL</span>"
        };
        out.push_str(&format!(
            "<tr><td class=\"l\">{verdict}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&t.rule),
            escape(&t.shown),
            escape(&t.limit)
        ));
    }
    out.push_str("</table></div>\n");
}

/// The overall charts; with a baseline, its request rate and latency percentiles dashed
/// under the run's.
fn charts(out: &mut String, r: &RunReport, base: Option<&RunReport>) {
    if r.history.is_empty() {
        return;
    }
    let rate_series = |r: &RunReport| {
        let h = &r.history;
        [
            Series {
                label: "requests/s",
                color: "#2b6cb0",
                points: h.iter().map(|p| (p.t_secs, Some(p.rate))).collect(),
            },
            Series {
                label: "failures/s",
                color: "#c53030",
                points: h.iter().map(|p| (p.t_secs, Some(p.failure_rate))).collect(),
            },
        ]
    };
    let latency_series = |r: &RunReport| {
        let h = &r.history;
        [
            Series {
                label: "p50",
                color: "#2b6cb0",
                points: h.iter().map(|p| (p.t_secs, p.p50_ms)).collect(),
            },
            Series {
                label: "p95",
                color: "#dd6b20",
                points: h.iter().map(|p| (p.t_secs, p.p95_ms)).collect(),
            },
            Series {
                label: "p99",
                color: "#c53030",
                points: h.iter().map(|p| (p.t_secs, p.p99_ms)).collect(),
            },
        ]
    };
    let base = base.filter(|b| !b.history.is_empty());
    let rate = svg::line_chart_with(
        "Requests per second",
        "/s",
        &rate_series(r),
        base.map(rate_series).as_ref().map_or(&[][..], |s| &s[..]),
    );
    let users = svg::line_chart(
        "Users",
        "",
        &[Series {
            label: "users",
            color: "#2f855a",
            points: users_steps(r),
        }],
    );
    let latency = svg::line_chart_with(
        "Response time (ms)",
        "",
        &latency_series(r),
        base.map(latency_series)
            .as_ref()
            .map_or(&[][..], |s| &s[..]),
    );
    out.push_str("<h2>Over time</h2>\n<div class=\"charts\">\n");
    for chart in [rate, users, latency] {
        out.push_str(&chart);
        out.push('\n');
    }
    out.push_str("</div>\n");
}

/// Most points a per-step series keeps: beyond, ticks merge into buckets keeping each
/// bucket's highest value (a spike stays visible; the file stays small on long runs).
const MAX_POINTS: usize = 480;

fn thin(points: Vec<(f64, Option<f64>)>) -> Vec<(f64, Option<f64>)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(per)
        .map(|c| {
            let t = c.last().map_or(0.0, |p| p.0);
            let v = c.iter().filter_map(|p| p.1).reduce(f64::max);
            (t, v)
        })
        .collect()
}

/// A p50/p95/p99-over-time chart for every statistics row (and its request rate), drawn
/// inline: no script, so it works offline.
fn step_charts(out: &mut String, r: &RunReport, base: Option<&RunReport>) {
    if r.step_history.is_empty() {
        return;
    }
    out.push_str("<h2>Response time per step</h2>\n<p class=\"meta\">Per tick (about one a second): latency percentiles of that step alone, in milliseconds; ticks in which the step recorded nothing leave a gap.");
    if base.is_some() {
        out.push_str(" Dashed: the same step in the baseline run, by time since its start.");
    }
    out.push_str("</p>\n<div class=\"charts\">\n");
    type Pick = fn(&super::model::StepHistoryRow) -> Option<f64>;
    // Ending at the run's end: every step's chart spans the same time.
    let percentiles = |s: &super::model::StepHistory, end: f64| {
        let line = |label, color, f: Pick| Series {
            label,
            color,
            points: thin(
                s.points
                    .iter()
                    .map(|p| (p.t_secs, f(p)))
                    .chain([(end, None)])
                    .collect(),
            ),
        };
        [
            line("p50", "#2b6cb0", |p| p.p50_ms),
            line("p95", "#dd6b20", |p| p.p95_ms),
            line("p99", "#c53030", |p| p.p99_ms),
        ]
    };
    for s in &r.step_history {
        let title = format!("{} {}", s.kind, s.name);
        let baseline = base.and_then(|b| {
            b.step_history
                .iter()
                .find(|h| h.kind == s.kind && h.name == s.name)
                .map(|h| percentiles(h, b.elapsed_secs))
        });
        let chart = svg::line_chart_with(
            &title,
            "",
            &percentiles(s, r.elapsed_secs),
            baseline.as_ref().map_or(&[][..], |l| &l[..]),
        );
        out.push_str(&format!(
            "<div class=\"step-chart\" data-step=\"{}\">{chart}</div>\n",
            escape(&title)
        ));
    }
    out.push_str("</div>\n");
}

/// The users timeline as a step line (horizontal until each change), to the end of the run.
fn users_steps(r: &RunReport) -> Vec<(f64, Option<f64>)> {
    let mut points = Vec::new();
    let mut last = None;
    for &(t, n) in &r.users.timeline {
        if let Some(prev) = last {
            points.push((t, Some(prev)));
        }
        points.push((t, Some(n as f64)));
        last = Some(n as f64);
    }
    if let Some(prev) = last {
        points.push((r.elapsed_secs, Some(prev)));
    }
    points
}

fn steps(out: &mut String, r: &RunReport) {
    out.push_str("<h2>Requests</h2>\n<div class=\"scroll\"><table><tr><th class=\"l\">Scenario</th><th class=\"l\">Type</th><th class=\"l\">Name</th><th># reqs</th><th># fails</th><th>req/s</th><th>min</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>avg</th><th>avg size</th><th>checks</th></tr>\n");
    for s in &r.steps {
        step_row(out, s, "");
    }
    for total in [&r.totals.http, &r.totals.ws] {
        if total.count > 0 {
            step_row(out, total, " class=\"total\"");
        }
    }
    out.push_str("</table></div>\n<p class=\"meta\">Latency in milliseconds (service time, from the actual send); sizes in bytes.</p>\n");
}

/// By scenario, group and tag: one row per declared scenario, group and `key=value` tag
/// (left out for a plan with one scenario and no group or tag: its one row is the total).
fn breakdown(out: &mut String, r: &RunReport) {
    if r.breakdown.len() <= 1 {
        return;
    }
    out.push_str("<h2 id=\"breakdown\">By scenario, group and tag</h2>\n<div class=\"scroll\"><table><tr><th class=\"l\">By</th><th class=\"l\">Key</th><th class=\"l\">Value</th><th># reqs</th><th># fails</th><th>req/s</th><th>min</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>avg</th><th>avg size</th><th>checks</th></tr>\n");
    for b in &r.breakdown {
        let row = StepReport {
            scenario: b.by.clone(),
            kind: b.key.clone(),
            name: b.value.clone(),
            ..b.stats.clone()
        };
        step_row(out, &row, "");
    }
    out.push_str("</table></div>\n<p class=\"meta\">Each row merges the HTTP and WebSocket rows of its scenario, group or tag (groups' own transaction rows are not counted).</p>\n");
}

fn step_row(out: &mut String, s: &StepReport, class: &str) {
    let lat = |f: fn(&Percentiles) -> f64| s.latency_ms.as_ref().map_or("-".into(), |p| ms(f(p)));
    let checks = if s.checks_passed + s.checks_failed > 0 {
        format!(
            "{} / {}",
            s.checks_passed,
            s.checks_passed + s.checks_failed
        )
    } else {
        "-".into()
    };
    let size = match s.count {
        0 => "-".into(),
        n => (s.bytes_in / n).to_string(),
    };
    let cells = [
        s.count.to_string(),
        format!("{} ({})", s.failures, pct(s.error_rate)),
        format!("{:.2}", s.rate),
        lat(|p| p.min),
        lat(|p| p.p50),
        lat(|p| p.p90),
        lat(|p| p.p95),
        lat(|p| p.p99),
        lat(|p| p.p99_9),
        lat(|p| p.max),
        lat(|p| p.mean),
        size,
        checks,
    ];
    out.push_str(&format!(
        "<tr{class}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
        escape(&s.scenario),
        escape(&s.kind),
        escape(&s.name)
    ));
    for c in cells {
        out.push_str(&format!("<td>{}</td>", escape(&c)));
    }
    out.push_str("</tr>\n");
}

/// Where HTTP requests' time went, and their bytes on the wire and decoded.
fn phases(out: &mut String, r: &RunReport) {
    let rows: Vec<(&StepReport, &PhaseReport)> = r
        .steps
        .iter()
        .chain([&r.totals.http])
        .filter_map(|s| Some((s, s.phases.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("<h2>Where the time went</h2>\n<div class=\"scroll\"><table><tr><th class=\"l\">Type</th><th class=\"l\">Name</th><th>new conns</th><th>DNS avg</th><th>connect avg</th><th>wait avg</th><th>wait p95</th><th>receive avg</th><th>receive p95</th><th>bytes in</th><th>decoded</th></tr>\n");
    for (s, p) in rows {
        let avg = |p: &Option<Percentiles>| p.as_ref().map_or("-".into(), |p| ms(p.mean));
        let p95 = |p: &Option<Percentiles>| p.as_ref().map_or("-".into(), |p| ms(p.p95));
        let total = std::ptr::eq(s, &r.totals.http);
        out.push_str(&format!(
            "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            if total { " class=\"total\"" } else { "" },
            escape(&s.kind),
            escape(&s.name)
        ));
        let cells = [
            p.connections.to_string(),
            avg(&p.dns_ms),
            avg(&p.connect_ms),
            avg(&p.wait_ms),
            p95(&p.wait_ms),
            avg(&p.receive_ms),
            p95(&p.receive_ms),
            s.bytes_in.to_string(),
            s.bytes_decoded.to_string(),
        ];
        for c in cells {
            out.push_str(&format!("<td>{}</td>", escape(&c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n<p class=\"meta\">HTTP requests with a whole response, in milliseconds: DNS and connect (TCP, with the TLS handshake on https) only for requests that opened a connection (reused keep-alive connections have none), wait from the send to the response head (time to first byte), receive the body. Bytes in as they came over the wire, decoded after gzip/br/zstd/deflate.</p>\n");
}

fn failures(out: &mut String, r: &RunReport) {
    if r.errors.is_empty() {
        return;
    }
    out.push_str("<h2>Failures</h2>\n<div class=\"scroll\"><table><tr><th># occurrences</th><th class=\"l\">Step</th><th class=\"l\">Kind</th><th class=\"l\">Message</th></tr>\n");
    for e in &r.errors {
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"msg\">{}</td></tr>\n",
            e.count,
            escape(&format!("{} {}", e.kind, e.name)),
            escape(&e.error_kind),
            escape(&e.message)
        ));
    }
    out.push_str("</table></div>\n");
}

fn pct(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s < 60 {
        format!("{secs:.1} s")
    } else {
        format!("{}h {:02}m {:02}s", s / 3_600, s / 60 % 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_urls() {
        assert_eq!(
            escape("<a href='x'>https://e.com & co</a>"),
            "&lt;a href=&#39;x&#39;&gt;https&#58;//e.com &amp; co&lt;/a&gt;"
        );
    }
}
