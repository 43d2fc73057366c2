//! The master ↔ worker protocol: JSON text frames over one WebSocket per worker.
//!
//! Every frame is a JSON object with a `version` field ([`VERSION`]) and a `type` field
//! naming the [`Message`]. The version is read before anything else, so a peer speaking
//! another version gets a clear refusal instead of a decoding error. Snapshots travel as
//! the serde form of [`Snapshot`] (histograms as base64 HDR V2), so merging them on the
//! master is exact.
//!
//! Decoding on the master is bounded by the frame: before the secret is checked only a
//! `hello` is read ([`decode_hello`]); afterwards a worker's messages are decoded straight
//! into their fields ([`decode`]; unknown fields are skipped unread), histograms are
//! length-checked before allocation (see [`crate::metrics::hist`]) and every message is
//! at most [`MAX_MESSAGE_BYTES`].
//!
//! A session: worker `hello` (secret, name) → master `welcome` (index) or `refused`
//! (reason; the worker exits 2) → master `start` (sources, seed, first assignment) →
//! worker `started` or `compile_error` → worker `delta` per assignment and `heartbeat`
//! every second, `done` per finished assignment → master `assign` (a lost worker's share),
//! `control` (stop, kill) → master `bye`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::Snapshot;
use crate::profile::{LoadProfile, Model};
use crate::runtime::driver::Share;

/// The protocol version; peers with another version are refused.
pub const VERSION: u32 = 1;

/// The largest WebSocket message (and frame) either side accepts: larger ones end the
/// connection with a logged reason. A delta holds at most two histograms per step, each
/// under ~80 KiB as base64 (see [`crate::metrics::hist`]), so this leaves room for plans of
/// a hundred steps with the widest histograms, and for the 8 MiB plan size limit.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The largest message a worker accepts from its master: the `start` frame carries the
/// plan (at most 8 MiB), the profile and the data files ([`MAX_DATA_BYTES`]) as JSON text.
/// The master refuses to start a job whose `start` frame would be larger.
pub const MAX_JOB_BYTES: usize = 48 << 20;

/// The largest first frame (`hello`) the master reads before the secret is checked.
pub const MAX_HELLO_BYTES: usize = 64 << 10;

/// A named source text (a plan or profile file) as the master read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The file name as the master knows it (for diagnostics and the plan's syntax).
    pub name: String,
    pub text: String,
}

/// A data file the plan reads (a feeder), sent with the job so that workers need no copy
/// of their own. `path` is as the plan writes it (relative to the plan's folder, without
/// `..`); `sha256` is checked by the worker before the file is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: String,
    pub text: String,
    pub sha256: String,
}

impl DataFile {
    pub fn new(path: String, text: String) -> DataFile {
        let sha256 = sha256_hex(text.as_bytes());
        DataFile { path, text, sha256 }
    }
}

/// The most data file bytes a master sends with a job (all files together).
pub const MAX_DATA_BYTES: usize = 8 << 20;

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The load model after the master applied its command-line overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ModelSpec {
    Closed {
        users: u64,
        spawn_rate: f64,
    },
    Open {
        rate: f64,
        max_users: u64,
        poisson: bool,
    },
}

impl From<&Model> for ModelSpec {
    fn from(m: &Model) -> Self {
        match *m {
            Model::Closed { users, spawn_rate } => ModelSpec::Closed { users, spawn_rate },
            Model::Open {
                rate,
                max_users,
                poisson,
            } => ModelSpec::Open {
                rate,
                max_users,
                poisson,
            },
        }
    }
}

impl From<&ModelSpec> for Model {
    fn from(m: &ModelSpec) -> Self {
        match *m {
            ModelSpec::Closed { users, spawn_rate } => Model::Closed { users, spawn_rate },
            ModelSpec::Open {
                rate,
                max_users,
                poisson,
            } => Model::Open {
                rate,
                max_users,
                poisson,
            },
        }
    }
}

/// Everything a worker needs to rebuild the run: sources (recompiled on the worker) and
/// the master's resolved settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub plan: SourceFile,
    /// `None`: the default profile (one user).
    pub profile: Option<SourceFile>,
    pub model: ModelSpec,
    pub duration_secs: Option<f64>,
    /// The master's command line replaced the profile's stages (e.g. with `-t`).
    pub clear_stages: bool,
    pub seed: u64,
    pub iterations: Option<u64>,
    pub host: Option<String>,
    pub set: BTreeMap<String, String>,
    pub insecure: bool,
    /// The plan's feeder files (older masters send none: workers then read their own).
    #[serde(default)]
    pub files: Vec<DataFile>,
}

impl Job {
    /// Applies the master's resolved settings to a profile parsed from `profile`.
    pub fn apply(&self, profile: &mut LoadProfile) {
        profile.model = Model::from(&self.model);
        if let Some(d) = self.duration_secs {
            // A number that no `Duration` holds (NaN, negative, past the bound) keeps the
            // profile's own duration rather than panicking.
            if let Ok(d) = crate::lang::check::seconds(d) {
                profile.duration = Some(d);
            }
        }
        if self.clear_stages {
            profile.stages.clear();
        }
    }
}

/// A share of the users for a worker to run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Unique within the run (the master numbers them).
    pub id: u32,
    pub share: Share,
    /// Overrides the run length (a re-assigned share runs for the time left).
    pub duration_secs: Option<f64>,
    /// Overrides the spawn rate (a re-assigned share starts its users at once).
    pub spawn_rate: Option<f64>,
}

/// One protocol message; see the module docs for the order. On the wire the variant
/// name is the frame's `type` and its fields sit beside it ([`encode`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    // worker → master
    Hello {
        secret: String,
        name: String,
    },
    Started {
        assignment: u32,
    },
    CompileError {
        message: String,
    },
    Delta {
        assignment: u32,
        snapshot: Snapshot,
    },
    Done {
        assignment: u32,
        elapsed_secs: f64,
        interrupted: bool,
    },
    Failed {
        assignment: u32,
        message: String,
    },
    Heartbeat {},
    // master → worker
    Welcome {
        worker: u32,
    },
    Refused {
        reason: String,
    },
    Start {
        job: Box<Job>,
        assignment: Assignment,
    },
    Assign {
        assignment: Assignment,
    },
    Control {
        command: crate::control::Command,
    },
    Bye {},
}

/// Why a frame could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "protocol version mismatch: the peer speaks version {theirs}, this is version {VERSION}"
    )]
    Version { theirs: u32 },
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a message as one JSON object: `version`, `type` and the variant's fields.
///
/// Why not serde's internally tagged enums: they buffer the fields, and buffered maps
/// lose the integer keys of [`Snapshot::steps`]. Serde's default (external) tagging is
/// rearranged here into the flat form instead.
pub fn encode(message: &Message) -> String {
    use serde_json::{Map, Value};
    let mut frame = Map::new();
    frame.insert("version".into(), VERSION.into());
    if let Ok(Value::Object(tagged)) = serde_json::to_value(message) {
        for (kind, fields) in tagged {
            frame.insert("type".into(), Value::String(kind));
            if let Value::Object(fields) = fields {
                frame.extend(fields);
            }
        }
    }
    Value::Object(frame).to_string()
}

/// Decodes one JSON text; the version is checked first.
pub fn decode(text: &str) -> Result<Message, DecodeError> {
    #[derive(Deserialize)]
    struct Envelope {
        version: Option<u64>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    if !text.trim_start().starts_with('{') {
        return Err(DecodeError::Malformed("not a JSON object".into()));
    }
    // Everything but these two fields is skipped unread here.
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let theirs = envelope
        .version
        .ok_or_else(|| DecodeError::Malformed("no `version` field".into()))?;
    if theirs != u64::from(VERSION) {
        return Err(DecodeError::Version {
            theirs: u32::try_from(theirs).unwrap_or(u32::MAX),
        });
    }
    let kind = envelope
        .kind
        .ok_or_else(|| DecodeError::Malformed("no `type` field".into()))?;
    match decode_from_worker(&kind, text) {
        Some(decoded) => decoded.map_err(|e| DecodeError::Malformed(e.to_string())),
        None => decode_any(text),
    }
}

/// The messages a worker sends, decoded straight into their fields (no intermediate JSON
/// tree, so a frame costs the master about its own size); `None` for other kinds.
fn decode_from_worker(kind: &str, text: &str) -> Option<Result<Message, serde_json::Error>> {
    #[derive(Deserialize)]
    struct Assigned {
        assignment: u32,
    }
    #[derive(Deserialize)]
    struct Said {
        message: String,
    }
    #[derive(Deserialize)]
    struct DeltaFields {
        assignment: u32,
        snapshot: Snapshot,
    }
    #[derive(Deserialize)]
    struct DoneFields {
        assignment: u32,
        elapsed_secs: f64,
        interrupted: bool,
    }
    #[derive(Deserialize)]
    struct FailedFields {
        assignment: u32,
        message: String,
    }
    let m = match kind {
        "started" => serde_json::from_str::<Assigned>(text).map(|f| Message::Started {
            assignment: f.assignment,
        }),
        "compile_error" => {
            serde_json::from_str::<Said>(text).map(|f| Message::CompileError { message: f.message })
        }
        "delta" => serde_json::from_str::<DeltaFields>(text).map(|f| Message::Delta {
            assignment: f.assignment,
            snapshot: f.snapshot,
        }),
        "done" => serde_json::from_str::<DoneFields>(text).map(|f| Message::Done {
            assignment: f.assignment,
            elapsed_secs: f.elapsed_secs,
            interrupted: f.interrupted,
        }),
        "failed" => serde_json::from_str::<FailedFields>(text).map(|f| Message::Failed {
            assignment: f.assignment,
            message: f.message,
        }),
        "heartbeat" => Ok(Message::Heartbeat {}),
        _ => return None,
    };
    Some(m)
}

/// Any message, through a JSON tree rearranged into serde's external tagging (the
/// master's messages to a worker).
fn decode_any(text: &str) -> Result<Message, DecodeError> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let theirs = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| DecodeError::Malformed("no `version` field".into()))?;
    if theirs != u64::from(VERSION) {
        return Err(DecodeError::Version {
            theirs: u32::try_from(theirs).unwrap_or(u32::MAX),
        });
    }
    let Some(object) = value.as_object_mut() else {
        return Err(DecodeError::Malformed("not a JSON object".into()));
    };
    object.remove("version");
    let kind = match object.remove("type") {
        Some(serde_json::Value::String(kind)) => kind,
        _ => return Err(DecodeError::Malformed("no `type` field".into())),
    };
    let mut tagged = serde_json::Map::new();
    tagged.insert(kind, value);
    serde_json::from_value(serde_json::Value::Object(tagged))
        .map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// The first frame of a session, decoded as nothing but a `hello`: two strings, with
/// every other field skipped unread, so an unauthenticated peer's frame never reaches the
/// snapshot or histogram decoders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub secret: String,
    pub name: String,
}

/// Why a first frame is not a usable `hello`.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("hello frame of {0} bytes is over the {MAX_HELLO_BYTES}-byte limit")]
    TooLarge(usize),
    #[error(
        "protocol version mismatch: the peer speaks version {theirs}, this is version {VERSION}"
    )]
    Version { theirs: u64 },
    #[error("expected `hello`, got `{0}`")]
    NotHello(String),
    #[error("malformed hello: {0}")]
    Malformed(String),
}

/// Decodes a session's first frame as a `hello` only (see [`Hello`]). The size is checked
/// before parsing, then the version, then the type.
pub fn decode_hello(text: &str) -> Result<Hello, HelloError> {
    #[derive(Deserialize)]
    struct Frame {
        version: Option<u64>,
        #[serde(rename = "type")]
        kind: Option<String>,
        secret: Option<String>,
        name: Option<String>,
    }
    if text.len() > MAX_HELLO_BYTES {
        return Err(HelloError::TooLarge(text.len()));
    }
    if !text.trim_start().starts_with('{') {
        return Err(HelloError::Malformed("not a JSON object".into()));
    }
    // Unknown fields (e.g. a `snapshot`) are skipped by serde without being decoded.
    let frame: Frame =
        serde_json::from_str(text).map_err(|e| HelloError::Malformed(e.to_string()))?;
    let theirs = frame
        .version
        .ok_or_else(|| HelloError::Malformed("no `version` field".into()))?;
    if theirs != u64::from(VERSION) {
        return Err(HelloError::Version { theirs });
    }
    match frame.kind.as_deref() {
        Some("hello") => {}
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(HelloError::NotHello(shown.escape_debug().to_string()));
        }
        None => return Err(HelloError::Malformed("no `type` field".into())),
    }
    Ok(Hello {
        secret: frame.secret.unwrap_or_default(),
        name: frame
            .name
            .ok_or_else(|| HelloError::Malformed("no `name` field".into()))?,
    })
}

/// Compares secrets without an early exit on the first differing byte.
pub fn secrets_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Event;

    #[test]
    fn messages_round_trip_with_their_version() {
        let mut snapshot = Snapshot::default();
        for us in [100, 2_000, 30_000] {
            snapshot.record(Event::new(0, us).with_status(200));
        }
        let m = Message::Delta {
            assignment: 3,
            snapshot,
        };
        let text = encode(&m);
        assert!(text.contains("\"version\":1"), "{text}");
        assert!(text.contains("\"type\":\"delta\""), "{text}");
        assert_eq!(decode(&text).expect("decodes"), m);
        let hb = encode(&Message::Heartbeat {});
        assert_eq!(decode(&hb).expect("decodes"), Message::Heartbeat {});
    }

    #[test]
    fn every_worker_message_decodes_to_itself_without_a_json_tree() {
        let mut snapshot = Snapshot::default();
        snapshot.record(Event::new(2, 1_500).with_status(503));
        for m in [
            Message::Started { assignment: 4 },
            Message::CompileError {
                message: "x".into(),
            },
            Message::Delta {
                assignment: 1,
                snapshot,
            },
            Message::Done {
                assignment: 1,
                elapsed_secs: 2.5,
                interrupted: true,
            },
            Message::Failed {
                assignment: 2,
                message: "m".into(),
            },
            Message::Heartbeat {},
            Message::Bye {},
            Message::Welcome { worker: 3 },
        ] {
            assert_eq!(decode(&encode(&m)).expect("decodes"), m);
        }
        // Arrays are not frames, even when serde could read them as a struct.
        assert!(matches!(
            decode(r#"[1, "heartbeat"]"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(decode(r#"{"version":1,"type":"delta","assignment":0}"#).is_err());
    }

    #[test]
    fn another_version_is_reported_before_decoding() {
        let text = r#"{"version":7,"type":"something_new"}"#;
        match decode(text) {
            Err(DecodeError::Version { theirs: 7 }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(r#"{"type":"bye"}"#),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn the_first_frame_is_read_as_a_hello_only() {
        let hello = encode(&Message::Hello {
            secret: "s".into(),
            name: "w1".into(),
        });
        assert_eq!(
            decode_hello(&hello).expect("a hello"),
            Hello {
                secret: "s".into(),
                name: "w1".into()
            }
        );
        // A delta whose histogram would be refused by the full decoder is not even read.
        let forged =
            r#"{"version":1,"type":"delta","assignment":0,"snapshot":{"lateness":"HIST"}}"#;
        assert!(matches!(
            decode_hello(forged),
            Err(HelloError::NotHello(kind)) if kind == "delta"
        ));
        assert!(matches!(
            decode_hello(r#"{"version":9,"type":"hello"}"#),
            Err(HelloError::Version { theirs: 9 })
        ));
        assert!(matches!(
            decode_hello(&" ".repeat(MAX_HELLO_BYTES + 1)),
            Err(HelloError::TooLarge(_))
        ));
        assert!(matches!(
            decode_hello("[1,2]"),
            Err(HelloError::Malformed(_))
        ));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(!secrets_match("s3cret", "s3cre"));
        assert!(!secrets_match("s3cret", "s3cret!"));
        assert!(!secrets_match("s3cret", "S3cret"));
        assert!(secrets_match("", ""));
    }
}
