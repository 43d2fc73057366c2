//! Waveform generation for the demo oscilloscope: 100 samples per frame at 1000 samples/s,
//! sine `a·sin(2πft+φ)+o`, square `±a+o` (the sign of the same sine), noise uniform in
//! `[-a, a]+o`, and the serialised data frame.
//!
//! Invariant: the phase φ carries across frames (and across parameter changes), so consecutive
//! sine frames join without a jump; it is kept in `[0, 2π)`.

use std::f64::consts::TAU;

use rand::RngExt;
use serde::Serialize;

pub(crate) const SAMPLE_RATE: u32 = 1000;
pub(crate) const BUFFER_SIZE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WaveType {
    Sine,
    Square,
    Noise,
}

impl WaveType {
    pub(crate) fn from_name(name: &str) -> Option<WaveType> {
        match name {
            "sine" => Some(WaveType::Sine),
            "square" => Some(WaveType::Square),
            "noise" => Some(WaveType::Noise),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Parameters {
    pub frequency: f64,
    pub amplitude: f64,
    pub offset: f64,
}

pub(crate) const DEFAULT_WAVE: WaveType = WaveType::Sine;
pub(crate) const DEFAULT_PARAMETERS: Parameters = Parameters {
    frequency: 10.0,
    amplitude: 1.0,
    offset: 0.0,
};

/// The signal source of one session.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    pub wave_type: WaveType,
    pub parameters: Parameters,
    phase: f64,
}

impl Default for Generator {
    fn default() -> Self {
        Generator {
            wave_type: DEFAULT_WAVE,
            parameters: DEFAULT_PARAMETERS,
            phase: 0.0,
        }
    }
}

#[derive(Serialize)]
struct Frame<'a> {
    timestamp: f64,
    samples: &'a [f64],
    sample_rate: u32,
    wave_type: WaveType,
    parameters: Parameters,
}

impl Generator {
    /// The next [`BUFFER_SIZE`] samples; advances the phase by the frame's duration.
    pub(crate) fn samples(&mut self, rng: &mut impl RngExt) -> Vec<f64> {
        let Parameters {
            frequency: f,
            amplitude: a,
            offset: o,
        } = self.parameters;
        let sine = |i: usize| (TAU * f * (i as f64 / f64::from(SAMPLE_RATE)) + self.phase).sin();
        let samples = (0..BUFFER_SIZE)
            .map(|i| match self.wave_type {
                WaveType::Sine => a * sine(i) + o,
                WaveType::Square if sine(i) >= 0.0 => a + o,
                WaveType::Square => -a + o,
                WaveType::Noise => rng.random_range(-a..=a) + o,
            })
            .collect();
        let frame_seconds = BUFFER_SIZE as f64 / f64::from(SAMPLE_RATE);
        self.phase = (self.phase + TAU * f * frame_seconds).rem_euclid(TAU);
        samples
    }

    /// One data frame as JSON text, stamped with `timestamp` (Unix seconds).
    pub(crate) fn frame(&mut self, rng: &mut impl RngExt, timestamp: f64) -> String {
        let samples = self.samples(rng);
        let frame = Frame {
            timestamp,
            samples: &samples,
            sample_rate: SAMPLE_RATE,
            wave_type: self.wave_type,
            parameters: self.parameters,
        };
        // Serialising plain numbers and strings into a String cannot fail; fall back to an
        // error object rather than panic if serde_json ever says otherwise.
        serde_json::to_string(&frame)
            .unwrap_or_else(|e| format!(r#"{{"error": "frame serialisation failed: {e}"}}"#))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::Value;

    use super::*;

    fn generator(wave_type: WaveType, frequency: f64, amplitude: f64, offset: f64) -> Generator {
        Generator {
            wave_type,
            parameters: Parameters {
                frequency,
                amplitude,
                offset,
            },
            phase: 0.0,
        }
    }

    #[test]
    fn sine_follows_the_formula() {
        let mut g = generator(WaveType::Sine, 10.0, 2.0, 0.5);
        let s = g.samples(&mut StdRng::seed_from_u64(1));
        assert_eq!(s.len(), BUFFER_SIZE);
        assert!((s[0] - 0.5).abs() < 1e-12);
        // t = 25 ms is a quarter period of 10 Hz: the crest.
        assert!((s[25] - 2.5).abs() < 1e-12);
        assert!((s[75] - (-1.5)).abs() < 1e-12);
    }

    #[test]
    fn sine_phase_carries_across_frames() {
        // 7 Hz does not fit a whole number of periods into 100 ms.
        let mut g = generator(WaveType::Sine, 7.0, 1.0, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let first = g.samples(&mut rng);
        let second = g.samples(&mut rng);
        let continuous = |i: usize| (TAU * 7.0 * i as f64 / 1000.0).sin();
        assert!((first[99] - continuous(99)).abs() < 1e-9);
        assert!((second[0] - continuous(100)).abs() < 1e-9);
        assert!((second[50] - continuous(150)).abs() < 1e-9);
    }

    #[test]
    fn square_is_plus_or_minus_amplitude_around_offset() {
        let mut g = generator(WaveType::Square, 10.0, 3.0, -1.0);
        let s = g.samples(&mut StdRng::seed_from_u64(1));
        assert!(s.iter().all(|&v| v == 2.0 || v == -4.0));
        assert_eq!(s[10], 2.0);
        assert_eq!(s[60], -4.0);
    }

    #[test]
    fn noise_stays_within_amplitude_around_offset() {
        let mut g = generator(WaveType::Noise, 10.0, 0.5, 4.0);
        let s = g.samples(&mut StdRng::seed_from_u64(9));
        assert!(s.iter().all(|&v| (3.5..=4.5).contains(&v)));
        let distinct = s.iter().filter(|&&v| v != s[0]).count();
        assert!(distinct > 90, "noise should vary");
    }

    #[test]
    fn frame_has_the_documented_shape() {
        let mut g = generator(WaveType::Sine, 10.0, 1.0, 0.0);
        let text = g.frame(&mut StdRng::seed_from_u64(1), 1_795_766_341.52);
        let v: Value = serde_json::from_str(&text).expect("frame is JSON");
        assert_eq!(v["timestamp"], 1_795_766_341.52);
        assert_eq!(v["samples"].as_array().map(Vec::len), Some(100));
        assert_eq!(v["sample_rate"], 1000);
        assert_eq!(v["wave_type"], "sine");
        assert_eq!(
            v["parameters"],
            serde_json::json!({"frequency": 10.0, "amplitude": 1.0, "offset": 0.0})
        );
        assert!(
            (1900..2300).contains(&text.len()),
            "sine frame is ~2 KB: {}",
            text.len()
        );
    }
}
