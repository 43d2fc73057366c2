//! Inline SVG line charts for the HTML report, generated in Rust so the report needs no script,
//! no CDN and no network: time on x (seconds since the start), one or more series on y.
//!
//! Invariants: output is deterministic text for given inputs; missing values (`None`) break a
//! line instead of drawing it to zero; axes start at zero and end on a "nice" number (1, 2, 5 ×
//! 10ⁿ steps); labels are escaped, and the markup carries no namespace URL (inline SVG in HTML5
//! does not need one), so the report contains no URL at all.

/// One line of a chart.
pub struct Series<'a> {
    pub label: &'a str,
    /// A CSS colour, e.g. `#2b6cb0`.
    pub color: &'a str,
    /// `(seconds since start, value)`; `None` leaves a gap.
    pub points: Vec<(f64, Option<f64>)>,
}

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 34.0;
/// How a baseline series is drawn (see [`line_chart_with`]).
const BASELINE_STYLE: &str = " class=\"baseline\" stroke-dasharray=\"5 4\" opacity=\"0.6\"";
const BASELINE_LABEL: &str = "baseline (dashed)";

/// A chart titled `title`, y values in `unit` (shown on the axis labels).
pub fn line_chart(title: &str, unit: &str, series: &[Series<'_>]) -> String {
    line_chart_with(title, unit, series, &[])
}

/// [`line_chart`] with a baseline run's series drawn under the current ones: dashed, fainter,
/// in their own colours, as `<path class="baseline">`, with one `baseline (dashed)` legend
/// entry; both runs share the axes (time since each run's start).
pub fn line_chart_with(
    title: &str,
    unit: &str,
    series: &[Series<'_>],
    baseline: &[Series<'_>],
) -> String {
    let all = || series.iter().chain(baseline);
    let xmax = all()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let ymax_data = all()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let ystep = nice_step(if ymax_data > 0.0 { ymax_data } else { 1.0 } / 4.0);
    let ymax = (ymax_data / ystep).ceil().max(1.0) * ystep;
    let xstep = nice_step(xmax / 6.0);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |t: f64| LEFT + t / xmax * plot_w;
    let y = |v: f64| TOP + plot_h - v / ymax * plot_h;

    let mut out = String::new();
    out.push_str(&format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    ));
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"18\" class=\"title\">{}</text>",
        esc(title)
    ));
    // Grid and y labels.
    let mut v = 0.0;
    while v <= ymax + ystep / 2.0 {
        let yy = y(v);
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"ylabel\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(&format!("{}{unit}", fmt_value(v)))
        ));
        v += ystep;
    }
    // X labels.
    let mut t = 0.0;
    while t <= xmax + 1e-9 {
        let xx = x(t);
        out.push_str(&format!(
            "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" class=\"tick\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" class=\"xlabel\">{}</text>",
            TOP + plot_h,
            TOP + plot_h + 4.0,
            H - BOTTOM + 18.0,
            fmt_clock(t, xmax)
        ));
        t += xstep;
    }
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h
    ));
    // Lines, broken at gaps: the baseline's first (underneath), then the last series first,
    // so that equal values (p50 = p95 = p99 at low traffic) leave the first one visible on top.
    let layers = baseline
        .iter()
        .rev()
        .map(|s| (s, true))
        .chain(series.iter().rev().map(|s| (s, false)));
    for (s, dashed) in layers {
        let mut d = String::new();
        let mut pen_down = false;
        // A point with no neighbour draws no line: it gets a dot.
        let mut dots = Vec::new();
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64)>| {
            if let [only] = run.as_slice() {
                dots.push(*only);
            }
            run.clear();
        };
        for &(t, v) in &s.points {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    d.push_str(&format!(
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(t),
                        y(v)
                    ));
                    pen_down = true;
                    run.push((x(t), y(v)));
                }
                None => {
                    pen_down = false;
                    flush(&mut run);
                }
            }
        }
        flush(&mut run);
        for (cx, cy) in dots {
            out.push_str(&format!(
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"2.5\" fill=\"{}\"{}/>",
                esc(s.color),
                if dashed { BASELINE_STYLE } else { "" }
            ));
        }
        if !d.is_empty() {
            out.push_str(&format!(
                "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"{}/>",
                d.trim_end(),
                esc(s.color),
                if dashed { BASELINE_STYLE } else { "" }
            ));
        }
    }
    // Legend, right-aligned in the title row.
    let mut lx = W - RIGHT;
    if !baseline.is_empty() {
        lx -= 22.0 + 7.0 * BASELINE_LABEL.len() as f64;
        out.push_str(&format!(
            "<line x1=\"{lx:.1}\" y1=\"15\" x2=\"{:.1}\" y2=\"15\" stroke=\"#4a5568\" stroke-width=\"1.6\"{BASELINE_STYLE}/>\
             <text x=\"{:.1}\" y=\"19\" class=\"legend\">{BASELINE_LABEL}</text>",
            lx + 14.0,
            lx + 18.0
        ));
        lx -= 8.0;
    }
    for s in series.iter().rev() {
        let width = 18.0 + 7.0 * s.label.chars().count() as f64;
        lx -= width;
        out.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"10\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"19\" class=\"legend\">{}</text>",
            esc(s.color),
            lx + 14.0,
            esc(s.label)
        ));
        lx -= 8.0;
    }
    out.push_str("</svg>");
    out
}

/// 1, 2 or 5 × 10ⁿ, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_value(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        // Steps of 0.005 need three places (0.005, 0.010, …), not a row of "0.01".
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn fmt_clock(t: f64, span: f64) -> String {
    let s = t.round() as u64;
    if span < 120.0 {
        format!("{s}s")
    } else if span < 7_200.0 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{}h{:02}", s / 3_600, s / 60 % 60)
    }
}

fn esc(s: &str) -> String {
    super::html::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tick_labels_stay_distinct() {
        let labels: Vec<String> = (0..=4).map(|i| fmt_value(i as f64 * 0.005)).collect();
        assert_eq!(labels, ["0", "0.005", "0.01", "0.015", "0.02"]);
    }

    #[test]
    fn nice_steps_are_1_2_5_times_a_power_of_ten() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(230.0), 500.0);
    }

    #[test]
    fn gaps_break_the_line_and_the_markup_has_no_url() {
        let svg = line_chart(
            "p95 <latency>",
            " ms",
            &[Series {
                label: "p95",
                color: "#c05621",
                points: vec![
                    (1.0, Some(2.0)),
                    (2.0, None),
                    (3.0, Some(4.0)),
                    (4.0, Some(1.0)),
                ],
            }],
        );
        assert_eq!(svg.matches(" M").count() + svg.matches("\"M").count(), 2);
        assert!(svg.contains("p95 &lt;latency&gt;"));
        assert!(!svg.contains("://"));
    }

    #[test]
    fn baseline_series_are_dashed_underneath_and_share_the_axes() {
        let line = |points| Series {
            label: "p95",
            color: "#dd6b20",
            points,
        };
        let plain = line_chart("t", "", &[line(vec![(1.0, Some(2.0)), (2.0, Some(3.0))])]);
        assert!(!plain.contains("baseline"));
        let svg = line_chart_with(
            "t",
            "",
            &[line(vec![(1.0, Some(2.0)), (2.0, Some(3.0))])],
            &[line(vec![(1.0, Some(40.0)), (30.0, Some(50.0))])],
        );
        let dashed = svg.find("class=\"baseline\"").expect("a baseline path");
        let solid = svg.rfind("<path").expect("the run's path");
        assert!(dashed < solid, "the baseline is drawn first, underneath");
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains(">baseline (dashed)<"));
        // The y axis covers the baseline's 50 (ticks of 20 up to 60), the x axis its 30 s.
        assert!(svg.contains(">60<") && svg.contains(">30s<"), "{svg}");
    }
}
