//! The oscilloscope's command protocol as a pure state machine: text in, optional error object
//! out, with the session phase (connected → streaming ⇄ paused; halted after a non-object
//! message) and the waveform parameters it implies. `oscilloscope.rs` owns the socket and the
//! clocks; everything observable about a command is decided here.
//!
//! The `configure` quirk of the real server is reproduced on purpose: it validates like `start`
//! and then applies pydantic defaults for omitted fields, so an omitted `wave_type`, `frequency`
//! or `amplitude` resets to its default (an explicit `null` keeps the current value), and
//! `offset` only changes when the new value is non-zero (`offset: 0` cannot be set).

use serde_json::{Map, Value, json};

use super::validate::{FieldError, Range, float_in, py_type, summary};
use super::wave::{DEFAULT_PARAMETERS, DEFAULT_WAVE, Generator, WaveType};

const MODEL: &str = "OscilloscopeCommand";
const FREQUENCY: Range = Range { ge: 0.1, le: 100.0 };
const AMPLITUDE: Range = Range { ge: 0.1, le: 10.0 };
const OFFSET: Range = Range {
    ge: -10.0,
    le: 10.0,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connected,
    Streaming,
    Paused,
    /// After a valid JSON message that is not an object: nothing more is processed or sent.
    Halted,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connected => "connected",
            Phase::Streaming => "streaming",
            Phase::Paused => "paused",
            Phase::Halted => "error",
        }
    }
}

/// A field of a command as sent: omitted, explicit `null`, or a valid value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field<T> {
    Absent,
    Null,
    Set(T),
}

impl<T: Copy> Field<T> {
    /// `start`: anything not set takes the default.
    fn or_default(self, default: T) -> T {
        match self {
            Field::Set(v) => v,
            Field::Absent | Field::Null => default,
        }
    }

    /// `configure` (the quirk): omitted takes the pydantic default, `null` keeps `current`.
    fn quirk(self, default: T, current: T) -> T {
        match self {
            Field::Set(v) => v,
            Field::Absent => default,
            Field::Null => current,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Start,
    Configure,
    Stop,
}

#[derive(Debug, Clone, Copy)]
struct Command {
    verb: Verb,
    wave_type: Field<WaveType>,
    frequency: Field<f64>,
    amplitude: Field<f64>,
    offset: Field<f64>,
}

/// One WebSocket session's protocol state.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    phase: Phase,
    pub generator: Generator,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            phase: Phase::Connected,
            generator: Generator::default(),
        }
    }
}

fn error_object(message: &str) -> String {
    json!({ "error": message }).to_string()
}

impl Session {
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn streaming(&self) -> bool {
        self.phase == Phase::Streaming
    }

    /// Processes one text message; returns the error object to send, if any.
    pub(crate) fn handle_text(&mut self, text: &str) -> Option<String> {
        if self.phase == Phase::Halted {
            return None;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            // The real server forwards Python's decoder message; serde_json's says the same
            // thing in its own words ("expected value at line 1 column 1").
            Err(e) => return Some(error_object(&e.to_string())),
        };
        let Value::Object(fields) = value else {
            // The real handler unpacks the message with `**`, which raises outside its
            // validation `try`: it reports once and stops processing the connection.
            self.phase = Phase::Halted;
            let message = format!(
                "argument after ** must be a mapping, not {}",
                py_type(&value)
            );
            return Some(
                json!({ "error": "Data processing error", "message": message }).to_string(),
            );
        };
        match parse_command(&fields) {
            Ok(command) => self.apply(command),
            Err(errors) => Some(error_object(&summary(MODEL, &errors))),
        }
    }

    fn apply(&mut self, c: Command) -> Option<String> {
        let g = &mut self.generator;
        match c.verb {
            Verb::Start => {
                g.wave_type = c.wave_type.or_default(DEFAULT_WAVE);
                g.parameters.frequency = c.frequency.or_default(DEFAULT_PARAMETERS.frequency);
                g.parameters.amplitude = c.amplitude.or_default(DEFAULT_PARAMETERS.amplitude);
                g.parameters.offset = c.offset.or_default(DEFAULT_PARAMETERS.offset);
                self.phase = Phase::Streaming;
                None
            }
            Verb::Configure => {
                let p = g.parameters;
                g.wave_type = c.wave_type.quirk(DEFAULT_WAVE, g.wave_type);
                g.parameters.frequency =
                    c.frequency.quirk(DEFAULT_PARAMETERS.frequency, p.frequency);
                g.parameters.amplitude =
                    c.amplitude.quirk(DEFAULT_PARAMETERS.amplitude, p.amplitude);
                // `command.offset or generator.offset`: zero (also the default) is falsy.
                if let Field::Set(offset) = c.offset {
                    if offset != 0.0 {
                        g.parameters.offset = offset;
                    }
                }
                None
            }
            Verb::Stop if self.phase == Phase::Streaming => {
                self.phase = Phase::Paused;
                None
            }
            Verb::Stop => Some(error_object(&format!(
                "Invalid transition from {} to paused. Valid transitions: disconnecting, streaming",
                self.phase.name()
            ))),
        }
    }
}

fn parse_command(fields: &Map<String, Value>) -> Result<Command, Vec<FieldError>> {
    let mut errors = Vec::new();
    let verb = match fields.get("command") {
        None => {
            errors.push(FieldError::new(
                "missing",
                ("", "command"),
                "Field required",
                Value::Object(fields.clone()),
            ));
            None
        }
        Some(Value::String(s)) => match s.as_str() {
            "start" => Some(Verb::Start),
            "configure" => Some(Verb::Configure),
            "stop" => Some(Verb::Stop),
            _ => {
                errors.push(FieldError::new(
                    "literal_error",
                    ("", "command"),
                    "Input should be 'start', 'configure' or 'stop'",
                    Value::String(s.clone()),
                ));
                None
            }
        },
        Some(other) => {
            errors.push(FieldError::new(
                "string_type",
                ("", "command"),
                "Input should be a valid string",
                other.clone(),
            ));
            None
        }
    };
    let wave_type = field(fields, "wave_type", &mut errors, |at, v| {
        v.as_str().and_then(WaveType::from_name).ok_or_else(|| {
            FieldError::new(
                "enum",
                at,
                "Input should be 'sine', 'square' or 'noise'",
                v.clone(),
            )
        })
    });
    let frequency = field(fields, "frequency", &mut errors, |at, v| {
        float_in(at, v, FREQUENCY)
    });
    let amplitude = field(fields, "amplitude", &mut errors, |at, v| {
        float_in(at, v, AMPLITUDE)
    });
    let offset = field(fields, "offset", &mut errors, |at, v| {
        float_in(at, v, OFFSET)
    });
    match verb {
        Some(verb) if errors.is_empty() => Ok(Command {
            verb,
            wave_type,
            frequency,
            amplitude,
            offset,
        }),
        _ => Err(errors),
    }
}

fn field<T>(
    fields: &Map<String, Value>,
    name: &'static str,
    errors: &mut Vec<FieldError>,
    parse: impl Fn((&'static str, &'static str), &Value) -> Result<T, FieldError>,
) -> Field<T> {
    match fields.get(name) {
        None => Field::Absent,
        Some(Value::Null) => Field::Null,
        Some(v) => match parse(("", name), v) {
            Ok(t) => Field::Set(t),
            Err(e) => {
                errors.push(e);
                Field::Absent
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::wave::Parameters;
    use super::*;

    fn error_of(reply: Option<String>) -> Value {
        let text = reply.expect("an error object");
        serde_json::from_str(&text).expect("error objects are JSON")
    }

    fn streaming_session(start: &str) -> Session {
        let mut s = Session::default();
        assert_eq!(s.handle_text(start), None);
        assert_eq!(s.phase(), Phase::Streaming);
        s
    }

    #[test]
    fn start_applies_defaults_for_omitted_fields() {
        let s = streaming_session(r#"{"command": "start", "wave_type": "square", "amplitude": 2}"#);
        assert_eq!(s.generator.wave_type, WaveType::Square);
        assert_eq!(
            s.generator.parameters,
            Parameters {
                frequency: 10.0,
                amplitude: 2.0,
                offset: 0.0
            }
        );
    }

    #[test]
    fn configure_with_all_fields_sets_them_without_changing_phase() {
        let mut s = Session::default();
        let configure = r#"{"command":"configure","wave_type":"noise","frequency":25,"amplitude":2,"offset":-3}"#;
        assert_eq!(s.handle_text(configure), None);
        assert_eq!(s.phase(), Phase::Connected);
        assert_eq!(s.generator.wave_type, WaveType::Noise);
        assert_eq!(
            s.generator.parameters,
            Parameters {
                frequency: 25.0,
                amplitude: 2.0,
                offset: -3.0
            }
        );
    }

    #[test]
    fn configure_quirk_resets_omitted_fields_and_ignores_zero_offset() {
        let mut s = streaming_session(
            r#"{"command":"start","wave_type":"square","frequency":50,"amplitude":5,"offset":2}"#,
        );
        assert_eq!(s.handle_text(r#"{"command":"configure","offset":0}"#), None);
        assert_eq!(s.generator.wave_type, WaveType::Sine);
        assert_eq!(
            s.generator.parameters,
            Parameters {
                frequency: 10.0,
                amplitude: 1.0,
                offset: 2.0
            }
        );
        assert_eq!(
            s.handle_text(r#"{"command":"configure","frequency":null,"amplitude":3}"#),
            None
        );
        assert_eq!(s.generator.parameters.frequency, 10.0);
        assert_eq!(s.generator.parameters.amplitude, 3.0);
        assert!(s.streaming());
    }

    #[test]
    fn stop_pauses_and_a_second_stop_is_an_invalid_transition() {
        let mut s = streaming_session(r#"{"command":"start"}"#);
        assert_eq!(s.handle_text(r#"{"command":"stop"}"#), None);
        assert_eq!(s.phase(), Phase::Paused);
        assert_eq!(
            error_of(s.handle_text(r#"{"command":"stop"}"#)),
            json!({"error": "Invalid transition from paused to paused. Valid transitions: disconnecting, streaming"})
        );
        assert_eq!(s.phase(), Phase::Paused);
        assert_eq!(s.handle_text(r#"{"command":"start"}"#), None);
        assert!(s.streaming());
    }

    #[test]
    fn stop_before_start_is_an_invalid_transition() {
        let mut s = Session::default();
        let e = error_of(s.handle_text(r#"{"command":"stop"}"#));
        assert!(
            e["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("Invalid transition from connected"))
        );
    }

    #[test]
    fn text_that_is_not_json_gets_a_decoder_message() {
        let mut s = Session::default();
        let e = error_of(s.handle_text("hello"));
        assert!(
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("line 1 column 1"))
        );
        assert_eq!(s.phase(), Phase::Connected);
    }

    #[test]
    fn validation_errors_are_reported_and_streaming_goes_on() {
        let mut s = streaming_session(r#"{"command":"start"}"#);
        for bad in [
            r#"{"wave_type":"sine"}"#,
            r#"{"command":"pause"}"#,
            r#"{"command":"start","frequency":150}"#,
            r#"{"command":"configure","amplitude":0}"#,
            r#"{"command":"configure","offset":-11}"#,
            r#"{"command":"start","wave_type":"triangle"}"#,
            r#"{"command":"start","frequency":"fast"}"#,
        ] {
            let e = error_of(s.handle_text(bad));
            let message = e["error"].as_str().expect("error text");
            assert!(
                message.contains("validation error for OscilloscopeCommand"),
                "{bad}: {message}"
            );
            assert!(s.streaming(), "{bad} must not stop streaming");
        }
        assert_eq!(s.generator.parameters, DEFAULT_PARAMETERS);
    }

    #[test]
    fn every_bad_field_is_listed() {
        let mut s = Session::default();
        let e = error_of(s.handle_text(r#"{"command":"start","frequency":0,"amplitude":20}"#));
        let message = e["error"].as_str().expect("error text");
        assert!(message.starts_with("2 validation errors"), "{message}");
        assert!(message.contains("\nfrequency\n") && message.contains("\namplitude\n"));
    }

    #[test]
    fn non_object_json_halts_processing() {
        let mut s = streaming_session(r#"{"command":"start"}"#);
        assert_eq!(
            error_of(s.handle_text("[1, 2]")),
            json!({"error": "Data processing error", "message": "argument after ** must be a mapping, not list"})
        );
        assert_eq!(s.phase(), Phase::Halted);
        assert!(!s.streaming());
        assert_eq!(s.handle_text(r#"{"command":"start"}"#), None);
        assert_eq!(s.handle_text("not json"), None);
        assert_eq!(s.phase(), Phase::Halted);
    }
}
