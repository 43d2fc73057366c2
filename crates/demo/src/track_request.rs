//! The request body of `POST /api/racing/track/generate`, validated like the real server's
//! pydantic model: every field optional with a default or "use the difficulty's value", unknown
//! fields ignored, and every bad field reported in one 422 (in the model's field order).

use serde_json::{Map, Value};

use super::racing::{DEFAULT_HEIGHT, DEFAULT_WIDTH, HEIGHT, Layout, WIDTH};
use super::validate::{FieldError, Range, float_in, int_in, one_of};

const LAYOUTS: [&str; 6] = ["procedural", "figure8", "spa", "monaco", "laguna", "suzuka"];
const DIFFICULTIES: [&str; 3] = ["easy", "medium", "hard"];

/// The validated body of `POST /api/racing/track/generate`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrackParams {
    /// (track width, control points, radius variation) of the difficulty.
    pub difficulty: (f64, usize, f64),
    pub seed: Option<u64>,
    pub width: i64,
    pub height: i64,
    pub layout: Layout,
    pub num_points: Option<usize>,
    pub variation_amount: Option<f64>,
    pub hairpin_chance: Option<f64>,
    pub hairpin_intensity: Option<f64>,
    pub smoothing_passes: Option<usize>,
    pub track_width_override: Option<f64>,
}

fn range(ge: f64, le: f64) -> Range {
    Range { ge, le }
}

impl TrackParams {
    /// Validates every field (unknown fields are ignored), collecting all errors.
    pub(crate) fn from_json(body: &Map<String, Value>) -> Result<TrackParams, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let difficulty = required(body, "difficulty", "medium", e, |at, v| {
            one_of(at, v, &DIFFICULTIES)
        });
        let seed = optional(body, "seed", e, |at, v| {
            int_in(at, v, range(0.0, 999_999.0))
        });
        let width = required(body, "width", DEFAULT_WIDTH, e, |at, v| {
            int_in(at, v, WIDTH)
        });
        let height = required(body, "height", DEFAULT_HEIGHT, e, |at, v| {
            int_in(at, v, HEIGHT)
        });
        let layout = required(body, "layout", "procedural", e, |at, v| {
            one_of(at, v, &LAYOUTS)
        });
        let num_points = optional(body, "num_points", e, |at, v| {
            int_in(at, v, range(6.0, 24.0))
        });
        let variation_amount = optional(body, "variation_amount", e, |at, v| {
            float_in(at, v, range(0.05, 0.5))
        });
        let hairpin_chance = optional(body, "hairpin_chance", e, |at, v| {
            float_in(at, v, range(0.0, 0.6))
        });
        let hairpin_intensity = optional(body, "hairpin_intensity", e, |at, v| {
            float_in(at, v, range(1.0, 5.0))
        });
        let smoothing_passes = optional(body, "smoothing_passes", e, |at, v| {
            int_in(at, v, range(0.0, 5.0))
        });
        let track_width_override = optional(body, "track_width_override", e, |at, v| {
            float_in(at, v, range(60.0, 140.0))
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(TrackParams {
            difficulty: match difficulty {
                "easy" => (120.0, 12, 0.15),
                "hard" => (80.0, 20, 0.28),
                _ => (100.0, 16, 0.22),
            },
            // The integers were validated to be non-negative and small: the casts are lossless.
            seed: seed.map(i64::unsigned_abs),
            width,
            height,
            layout: match layout {
                "figure8" => Layout::Figure8,
                "spa" => Layout::Spa,
                "monaco" => Layout::Monaco,
                "laguna" => Layout::Laguna,
                "suzuka" => Layout::Suzuka,
                _ => Layout::Procedural,
            },
            num_points: num_points.map(|n| n.unsigned_abs() as usize),
            variation_amount,
            hairpin_chance,
            hairpin_intensity,
            smoothing_passes: smoothing_passes.map(|n| n.unsigned_abs() as usize),
            track_width_override,
        })
    }
}

type At = (&'static str, &'static str);

/// A field with a default: absent takes `default`, `null` is a type error like any bad value.
fn required<T>(
    body: &Map<String, Value>,
    name: &'static str,
    default: T,
    errors: &mut Vec<FieldError>,
    parse: impl Fn(At, &Value) -> Result<T, FieldError>,
) -> T {
    match body.get(name) {
        None => default,
        Some(v) => parse(("body", name), v).unwrap_or_else(|e| {
            errors.push(e);
            default
        }),
    }
}

/// An optional field: absent and `null` both mean "not given".
fn optional<T>(
    body: &Map<String, Value>,
    name: &'static str,
    errors: &mut Vec<FieldError>,
    parse: impl Fn(At, &Value) -> Result<T, FieldError>,
) -> Option<T> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => parse(("body", name), v).map_err(|e| errors.push(e)).ok(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn validation_collects_every_bad_field() {
        let Value::Object(body) = json!({
            "difficulty": "extreme", "seed": -1, "width": 100, "height": "tall", "layout": "oval",
            "num_points": 30, "variation_amount": 0.01, "hairpin_chance": 0.9,
            "hairpin_intensity": 0, "smoothing_passes": 6, "track_width_override": 200,
            "unknown": true,
        }) else {
            panic!("object literal")
        };
        let errors = TrackParams::from_json(&body).expect_err("all invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "difficulty",
                "seed",
                "width",
                "height",
                "layout",
                "num_points",
                "variation_amount",
                "hairpin_chance",
                "hairpin_intensity",
                "smoothing_passes",
                "track_width_override"
            ]
        );
    }

    #[test]
    fn null_is_refused_for_defaulted_fields_but_allowed_for_optional_ones() {
        let Value::Object(body) = json!({"width": null, "num_points": null}) else {
            panic!("object")
        };
        let errors = TrackParams::from_json(&body).expect_err("null width");
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].field, errors[0].kind), ("width", "int_type"));
    }
}
