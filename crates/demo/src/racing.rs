//! Race-track generation for `/api/racing/track/*`: the 32-point oval of `track/simple` and the
//! parametrised tracks of `track/generate` (procedural, figure-8 and four fixed circuits) from a
//! validated `track_request::TrackParams`.
//!
//! Pure and deterministic: a track depends only on its parameters and the RNG it is given, so a
//! request with a `seed` always gets the same track. Generated tracks are 11–30 KB of JSON like
//! the real server's; the number of centreline points grows with `num_points` and
//! `smoothing_passes`. The shapes are this demo's own, not copies of the real geometry.

use std::f64::consts::TAU;

use rand::RngExt;
use serde::Serialize;

use super::track_request::TrackParams;
use super::validate::Range;

pub(crate) const WIDTH: Range = Range {
    ge: 400.0,
    le: 1920.0,
};
pub(crate) const HEIGHT: Range = Range {
    ge: 300.0,
    le: 1080.0,
};
pub(crate) const DEFAULT_WIDTH: i64 = 800;
pub(crate) const DEFAULT_HEIGHT: i64 = 600;
const PADDING: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Boundaries {
    pub inner: Vec<Point>,
    pub outer: Vec<Point>,
}

/// The response body of both track endpoints, fields in the real server's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Track {
    pub width: i64,
    pub height: i64,
    pub boundaries: Boundaries,
    pub start_position: Point,
    pub track_width: f64,
}

/// `track/simple`: an oval 60 px inside the canvas, 100 px wide, 32 points per boundary.
pub(crate) fn simple_track(width: i64, height: i64) -> Track {
    let (w, h) = (width as f64, height as f64);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (rx, ry) = ((w - 2.0 * PADDING) / 2.0, (h - 2.0 * PADDING) / 2.0);
    let track_width = 100.0;
    let ring = |dx: f64, dy: f64| -> Vec<Point> {
        (0..32)
            .map(|i| {
                let a = TAU * f64::from(i) / 32.0;
                Point {
                    x: cx + dx * a.cos(),
                    y: cy + dy * a.sin(),
                }
            })
            .collect()
    };
    Track {
        width,
        height,
        boundaries: Boundaries {
            inner: ring(rx - track_width, ry - track_width),
            outer: ring(rx, ry),
        },
        start_position: Point {
            x: cx,
            y: h - 100.0,
        },
        track_width,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Procedural,
    Figure8,
    Spa,
    Monaco,
    Laguna,
    Suzuka,
}

/// Catmull-Rom point between `p1` and `p2` at `t` in `[0, 1)`.
fn catmull_rom(p0: Point, p1: Point, p2: Point, p3: Point, t: f64) -> Point {
    let (t2, t3) = (t * t, t * t * t);
    let axis = |a: f64, b: f64, c: f64, d: f64| {
        0.5 * (2.0 * b
            + (c - a) * t
            + (2.0 * a - 5.0 * b + 4.0 * c - d) * t2
            + (3.0 * b - a - 3.0 * c + d) * t3)
    };
    Point {
        x: axis(p0.x, p1.x, p2.x, p3.x),
        y: axis(p0.y, p1.y, p2.y, p3.y),
    }
}

/// A closed spline through `control`, `per_segment` points per control point.
fn interpolate(control: &[Point], per_segment: usize) -> Vec<Point> {
    let n = control.len();
    let at = |i: usize| control[i % n];
    (0..n)
        .flat_map(|i| {
            (0..per_segment).map(move |k| {
                let t = k as f64 / per_segment as f64;
                catmull_rom(at(i + n - 1), at(i), at(i + 1), at(i + 2), t)
            })
        })
        .collect()
}

/// Three-point moving average over a closed polygon, `passes` times.
fn smooth(mut points: Vec<Point>, passes: usize) -> Vec<Point> {
    let n = points.len();
    for _ in 0..passes {
        points = (0..n)
            .map(|i| {
                let (a, b, c) = (points[(i + n - 1) % n], points[i], points[(i + 1) % n]);
                Point {
                    x: (a.x + b.x + c.x) / 3.0,
                    y: (a.y + b.y + c.y) / 3.0,
                }
            })
            .collect();
    }
    points
}

/// Offsets a closed centreline by half the width on each side.
fn boundaries(centre: &[Point], track_width: f64, middle: Point) -> Boundaries {
    let n = centre.len();
    let half = track_width / 2.0;
    let mut inner = Vec::with_capacity(n);
    let mut outer = Vec::with_capacity(n);
    for (i, &c) in centre.iter().enumerate() {
        let next = centre[(i + 1) % n];
        let (dx, dy) = (next.x - c.x, next.y - c.y);
        let len = dx.hypot(dy);
        let (mut nx, mut ny) = if len > 0.0 {
            (-dy / len, dx / len)
        } else {
            (1.0, 0.0)
        };
        // Point the normal away from the canvas centre, so `outer` is the outside edge.
        if nx * (c.x - middle.x) + ny * (c.y - middle.y) < 0.0 {
            (nx, ny) = (-nx, -ny);
        }
        outer.push(Point {
            x: c.x + nx * half,
            y: c.y + ny * half,
        });
        inner.push(Point {
            x: c.x - nx * half,
            y: c.y - ny * half,
        });
    }
    Boundaries { inner, outer }
}

/// Fixed circuits as control polygons in the unit square (x right, y down).
#[rustfmt::skip]
fn circuit(layout: Layout) -> &'static [(f64, f64)] {
    match layout {
        Layout::Spa => &[
            (0.15, 0.20), (0.25, 0.10), (0.35, 0.25), (0.60, 0.10), (0.90, 0.15), (0.85, 0.45),
            (0.70, 0.55), (0.80, 0.80), (0.55, 0.90), (0.40, 0.70), (0.25, 0.85), (0.10, 0.60),
        ],
        Layout::Monaco => &[
            (0.20, 0.80), (0.10, 0.55), (0.25, 0.40), (0.20, 0.20), (0.45, 0.12), (0.55, 0.30),
            (0.75, 0.15), (0.90, 0.35), (0.70, 0.50), (0.85, 0.75), (0.60, 0.85), (0.45, 0.65),
            (0.35, 0.88),
        ],
        Layout::Laguna => &[
            (0.15, 0.75), (0.12, 0.40), (0.30, 0.15), (0.55, 0.20), (0.70, 0.10), (0.88, 0.30),
            (0.75, 0.50), (0.85, 0.70), (0.60, 0.88), (0.40, 0.70),
        ],
        Layout::Suzuka | Layout::Procedural | Layout::Figure8 => &[
            (0.10, 0.70), (0.20, 0.45), (0.40, 0.40), (0.60, 0.65), (0.80, 0.80), (0.92, 0.60),
            (0.80, 0.35), (0.60, 0.35), (0.40, 0.65), (0.25, 0.85),
        ],
    }
}

/// Centreline points of fixed layouts.
const FIXED_POINTS: usize = 200;

/// `track/generate`: the track for `params`, drawing randomness from `rng`.
pub(crate) fn generate(params: &TrackParams, rng: &mut impl RngExt) -> Track {
    let (w, h) = (params.width as f64, params.height as f64);
    let middle = Point {
        x: w / 2.0,
        y: h / 2.0,
    };
    let (difficulty_width, difficulty_points, difficulty_variation) = params.difficulty;
    let track_width = params.track_width_override.unwrap_or(difficulty_width);
    let centre = match params.layout {
        Layout::Procedural => {
            let n = params.num_points.unwrap_or(difficulty_points);
            let passes = params.smoothing_passes.unwrap_or(2);
            let variation = params.variation_amount.unwrap_or(difficulty_variation);
            let hairpin_chance = params.hairpin_chance.unwrap_or(0.2);
            let hairpin_intensity = params.hairpin_intensity.unwrap_or(2.5);
            let (base_x, base_y) = (w / 2.0 - PADDING, h / 2.0 - PADDING);
            let control: Vec<Point> = (0..n)
                .map(|i| {
                    let angle = TAU * i as f64 / n as f64;
                    let mut v = rng.random_range(-variation..=variation);
                    if rng.random::<f64>() < hairpin_chance {
                        v *= hairpin_intensity;
                    }
                    // Stay between a third of the base radius and half the padding from the edge.
                    let radius =
                        |base: f64| (base * (1.0 + v)).min(base + PADDING / 2.0).max(base * 0.3);
                    Point {
                        x: middle.x + radius(base_x) * angle.cos(),
                        y: middle.y + radius(base_y) * angle.sin(),
                    }
                })
                .collect();
            // More control points and more smoothing ask for a finer centreline.
            let target = 130 + 5 * n + 6 * passes;
            interpolate(&smooth(control, passes), target.div_ceil(n))
        }
        Layout::Figure8 => {
            let (rx, ry) = (
                w / 2.0 - PADDING - track_width / 2.0,
                h / 2.0 - PADDING - track_width / 2.0,
            );
            (0..FIXED_POINTS)
                .map(|i| {
                    let t = TAU * i as f64 / FIXED_POINTS as f64;
                    Point {
                        x: middle.x + rx * (2.0 * t).sin(),
                        y: middle.y + ry * t.sin(),
                    }
                })
                .collect()
        }
        fixed => {
            let control: Vec<Point> = circuit(fixed)
                .iter()
                .map(|&(u, v)| Point {
                    x: PADDING + u * (w - 2.0 * PADDING),
                    y: PADDING + v * (h - 2.0 * PADDING),
                })
                .collect();
            interpolate(&control, FIXED_POINTS.div_ceil(control.len()))
        }
    };
    // Start on the centreline in the bottom 30% of the canvas, nearest the vertical axis.
    let start_position = centre
        .iter()
        .filter(|p| p.y > 0.7 * h)
        .min_by(|a, b| (a.x - middle.x).abs().total_cmp(&(b.x - middle.x).abs()))
        .copied()
        .unwrap_or(Point {
            x: middle.x,
            y: h - 150.0,
        });
    Track {
        width: params.width,
        height: params.height,
        boundaries: boundaries(&centre, track_width, middle),
        start_position,
        // The real server reports the difficulty's width here even when overridden.
        track_width: difficulty_width,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};

    use super::*;

    fn params(body: Value) -> TrackParams {
        let Value::Object(map) = body else {
            panic!("test bodies are objects")
        };
        TrackParams::from_json(&map).expect("valid parameters")
    }

    fn size(track: &Track) -> usize {
        serde_json::to_string(track)
            .expect("tracks serialise")
            .len()
    }

    #[test]
    fn simple_track_has_32_points_per_boundary_and_about_3_kb() {
        let t = simple_track(800, 600);
        assert_eq!(
            (t.boundaries.inner.len(), t.boundaries.outer.len()),
            (32, 32)
        );
        assert_eq!(t.start_position, Point { x: 400.0, y: 500.0 });
        assert_eq!(t.boundaries.outer[0], Point { x: 740.0, y: 300.0 });
        assert!((2_000..4_500).contains(&size(&t)), "{}", size(&t));
    }

    #[test]
    fn generated_tracks_are_11_to_30_kb_across_parameter_extremes() {
        let mut rng = StdRng::seed_from_u64(3);
        let bodies = [
            json!({}),
            json!({"num_points": 6, "smoothing_passes": 0, "width": 400, "height": 300}),
            json!({"num_points": 24, "smoothing_passes": 5, "width": 1920, "height": 1080}),
            json!({"difficulty": "hard", "variation_amount": 0.5, "hairpin_chance": 0.6, "hairpin_intensity": 5}),
            json!({"layout": "figure8"}),
            json!({"layout": "spa"}),
            json!({"layout": "monaco"}),
            json!({"layout": "laguna"}),
            json!({"layout": "suzuka", "track_width_override": 140}),
        ];
        for body in bodies {
            let track = generate(&params(body.clone()), &mut rng);
            let bytes = size(&track);
            assert!((11_000..=30_000).contains(&bytes), "{body}: {bytes} bytes");
            assert_eq!(track.boundaries.inner.len(), track.boundaries.outer.len());
        }
    }

    #[test]
    fn more_points_and_smoothing_give_a_finer_centreline() {
        let count = |body| {
            generate(&params(body), &mut StdRng::seed_from_u64(1))
                .boundaries
                .inner
                .len()
        };
        assert!(count(json!({"num_points": 6})) < count(json!({"num_points": 24})));
        assert!(
            count(json!({"num_points": 12, "smoothing_passes": 0}))
                < count(json!({"num_points": 12, "smoothing_passes": 5}))
        );
    }

    #[test]
    fn same_seed_same_track() {
        let p = params(json!({"seed": 42, "difficulty": "hard"}));
        let a = generate(&p, &mut StdRng::seed_from_u64(p.seed.unwrap_or_default()));
        let b = generate(&p, &mut StdRng::seed_from_u64(p.seed.unwrap_or_default()));
        let c = generate(&p, &mut StdRng::seed_from_u64(43));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn generated_points_stay_near_the_canvas() {
        let p = params(
            json!({"width": 400, "height": 300, "hairpin_chance": 0.6, "hairpin_intensity": 5}),
        );
        let t = generate(&p, &mut StdRng::seed_from_u64(5));
        let margin = 120.0;
        for q in t.boundaries.outer.iter().chain(&t.boundaries.inner) {
            assert!(
                (-margin..400.0 + margin).contains(&q.x)
                    && (-margin..300.0 + margin).contains(&q.y),
                "{q:?}"
            );
        }
    }
}
