//! The worker side of a distributed run: connect to the master, present the secret,
//! recompile the received plan and profile sources, run the assigned shares of users
//! and stream their snapshot deltas.
//!
//! Each [`Assignment`] runs as its own driver run ([`driver::run_share`]) with its own
//! [`Control`]; a worker normally has one, and gains more when the master re-assigns a
//! lost worker's share. Deltas are folded into a per-assignment pending snapshot by the
//! driver's tick and sent every second, so nothing is lost or counted twice: the
//! master's merge is exact. The worker ends on the master's `bye`, and stops its users
//! when the master is gone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::protocol::{self, Assignment, DecodeError, Job, Message};
use crate::control::{Command, Control};
use crate::lang::{self, ir::Program};
use crate::metrics::Snapshot;
use crate::profile::{self, LoadProfile, Model};
use crate::runtime::driver;
use crate::runtime::{RunConfig, RunError, RunResult};
use crate::source::{Source, Syntax};

/// How a worker finds and identifies itself to the master.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// `HOST:PORT`, or a full `ws://` / `wss://` URL.
    pub master: String,
    pub secret: String,
    pub name: String,
    /// Keep trying to connect this long (the master may start after its workers).
    pub connect_timeout: Duration,
}

/// Why a worker stopped without finishing its part.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot connect to the master at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the master refused this worker: {0}")]
    Refused(String),
    #[error("{0}")]
    Version(String),
    #[error("the plan does not compile on this worker:\n{0}")]
    Compile(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("lost the master: {0}")]
    Lost(String),
}

impl WorkerError {
    /// Exit code: 2 for refusals and plans that do not compile, 3 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            WorkerError::Refused(_) | WorkerError::Version(_) | WorkerError::Compile(_) => 2,
            _ => 3,
        }
    }
}

/// What the worker did, for its own closing line.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub index: u32,
    pub assignments: usize,
    pub requests: u64,
    pub failures: u64,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The master's URL for `HOST:PORT` (or the URL as given).
pub fn master_url(master: &str) -> String {
    if master.starts_with("ws://") || master.starts_with("wss://") {
        master.to_string()
    } else {
        format!("ws://{master}/dist")
    }
}

async fn connect(cfg: &WorkerConfig) -> Result<Ws, WorkerError> {
    let url = master_url(&cfg.master);
    let deadline = Instant::now() + cfg.connect_timeout;
    loop {
        // The `start` frame holds the plan and its data files in one message.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(protocol::MAX_JOB_BYTES))
            .max_frame_size(Some(protocol::MAX_JOB_BYTES));
        match tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false).await
        {
            Ok((ws, _)) => return Ok(ws),
            Err(e) if Instant::now() >= deadline => {
                return Err(WorkerError::Connect {
                    url,
                    message: e.to_string(),
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn send(ws: &mut Ws, m: &Message) -> Result<(), WorkerError> {
    ws.send(Frame::text(protocol::encode(m)))
        .await
        .map_err(|e| WorkerError::Lost(e.to_string()))
}

/// The next protocol message; `Ok(None)` when the master closed the connection.
async fn receive(ws: &mut Ws) -> Result<Option<Message>, WorkerError> {
    // Bounded: every pass consumes one frame; non-text frames are skipped.
    loop {
        match ws.next().await {
            None | Some(Ok(Frame::Close(_))) => return Ok(None),
            Some(Err(e)) => return Err(WorkerError::Lost(e.to_string())),
            Some(Ok(Frame::Text(text))) => {
                return match protocol::decode(text.as_str()) {
                    Ok(m) => Ok(Some(m)),
                    Err(e @ DecodeError::Version { .. }) => Err(WorkerError::Version(format!(
                        "the master speaks another protocol ({e}); use the same loadplan version on both sides"
                    ))),
                    Err(e) => Err(WorkerError::Protocol(e.to_string())),
                };
            }
            Some(Ok(_)) => {}
        }
    }
}

/// A private folder holding the job's data files, removed when dropped.
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn create(files: &[crate::protocol::DataFile]) -> Result<DataDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let root =
            std::env::temp_dir().join(format!("loadplan-worker-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let dir = DataDir(root);
        let mut total = 0usize;
        for f in files {
            if !crate::master::sendable(&f.path) {
                return Err(format!(
                    "the master sent a data file outside the plan's folder: {:?}",
                    f.path
                ));
            }
            total += f.text.len();
            if total > crate::protocol::MAX_DATA_BYTES {
                return Err("the master sent more data files than the limit".into());
            }
            if crate::protocol::sha256_hex(f.text.as_bytes()) != f.sha256 {
                return Err(format!(
                    "data file {} arrived damaged (its SHA-256 does not match the master's)",
                    f.path
                ));
            }
            let path = dir.0.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            std::fs::write(&path, &f.text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Rebuilds the run from the master's sources: compile the plan, parse the profile.
pub fn prepare(job: &Job) -> Result<(Arc<Program>, LoadProfile), String> {
    if job.plan.text.len() > crate::source::MAX_SOURCE_BYTES {
        return Err(format!(
            "{}: the plan is larger than the {} MiB limit",
            job.plan.name,
            crate::source::MAX_SOURCE_BYTES >> 20
        ));
    }
    let source = Source::new(job.plan.name.clone(), job.plan.text.clone());
    let syntax = Syntax::from_path(&job.plan.name)
        .ok_or_else(|| format!("{}: a plan file ends in .kdl, .yaml or .yml", job.plan.name))?;
    let program = if job.files.is_empty() {
        lang::compile_source(&source, syntax, Path::new(".")).map_err(|d| d.render_plain())?
    } else {
        // The master's feeder files, checked and laid out in a folder of our own for the
        // compiler (which loads their rows); the folder goes once the plan is compiled.
        let dir = DataDir::create(&job.files)?;
        lang::compile_source(&source, syntax, &dir.0).map_err(|d| d.render_plain())?
    };
    let mut profile = match &job.profile {
        Some(p) => profile::parse(&Source::new(p.name.clone(), p.text.clone()), Some(&program))
            .map_err(|d| d.render_plain())?,
        None => LoadProfile::closed(1, 1.0, None),
    };
    job.apply(&mut profile);
    Ok((Arc::new(program), profile))
}

struct Running {
    control: Control,
    pending: Arc<Mutex<Snapshot>>,
    /// The driver has ticked: until then the pending users gauge is not the share's (an
    /// empty delta sent earlier would tell the master the share runs no users, and a loss
    /// then would be reported with no users missing).
    ticked: Arc<std::sync::atomic::AtomicBool>,
}

type Finished = (u32, Result<RunResult, RunError>);

fn start(
    program: &Arc<Program>,
    profile: &LoadProfile,
    cfg: &RunConfig,
    a: Assignment,
    done: mpsc::Sender<Finished>,
) -> Running {
    let mut profile = profile.clone();
    if let Some(d) = a.duration_secs {
        if let Ok(d) = crate::lang::check::seconds(d.max(0.0)) {
            profile.duration = Some(d);
        }
    }
    if let (Some(r), Model::Closed { spawn_rate, .. }) = (a.spawn_rate, &mut profile.model) {
        *spawn_rate = r;
    }
    let control = Control::default();
    let pending = Arc::new(Mutex::new(Snapshot::default()));
    let ticked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (program, cfg, c, p, k) = (
        program.clone(),
        cfg.clone(),
        control.clone(),
        pending.clone(),
        ticked.clone(),
    );
    tokio::spawn(async move {
        let result = driver::run_share(program, &profile, &cfg, a.share, c, |t| {
            if let Ok(mut p) = p.lock() {
                p.accumulate(t.delta);
            }
            k.store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .await;
        // The receiver only goes when the worker is ending anyway.
        done.send((a.id, result)).await.ok();
    });
    Running {
        control,
        pending,
        ticked,
    }
}

fn take(r: &Running) -> Snapshot {
    r.pending
        .lock()
        .map(|mut p| {
            let users = p.users;
            let mut out = std::mem::take(&mut *p);
            // The gauge stays with the pending snapshot for the next (maybe empty) delta.
            p.users = users;
            out.users = users;
            out
        })
        .unwrap_or_default()
}

/// Runs a worker until the master says `bye`.
pub async fn run(cfg: &WorkerConfig) -> Result<Summary, WorkerError> {
    let mut ws = connect(cfg).await?;
    send(
        &mut ws,
        &Message::Hello {
            secret: cfg.secret.clone(),
            name: cfg.name.clone(),
        },
    )
    .await?;
    let index = match receive(&mut ws).await? {
        Some(Message::Welcome { worker }) => worker,
        Some(Message::Refused { reason }) => return Err(WorkerError::Refused(reason)),
        Some(other) => return Err(WorkerError::Protocol(format!("unexpected {other:?}"))),
        None => return Err(WorkerError::Lost("closed during the handshake".into())),
    };
    let (job, first) = match receive(&mut ws).await? {
        Some(Message::Start { job, assignment }) => (job, assignment),
        Some(Message::Bye {}) | None => {
            return Ok(Summary {
                index,
                ..Summary::default()
            });
        }
        Some(other) => return Err(WorkerError::Protocol(format!("unexpected {other:?}"))),
    };
    let (program, profile) = match prepare(&job) {
        Ok(p) => p,
        Err(message) => {
            send(
                &mut ws,
                &Message::CompileError {
                    message: message.clone(),
                },
            )
            .await?;
            ws.close(None).await.ok();
            return Err(WorkerError::Compile(message));
        }
    };
    let run_cfg = RunConfig {
        host: job.host.clone(),
        seed: job.seed,
        iterations: job.iterations,
        insecure: job.insecure,
        set: job.set.clone(),
        http_debug: None,
    };
    let (done_tx, mut done_rx) = mpsc::channel::<Finished>(64);
    let mut running: BTreeMap<u32, Running> = BTreeMap::new();
    let mut summary = Summary {
        index,
        ..Summary::default()
    };
    let launch = |a: Assignment, running: &mut BTreeMap<u32, Running>| {
        running.insert(
            a.id,
            start(&program, &profile, &run_cfg, a, done_tx.clone()),
        );
    };
    launch(first, &mut running);
    summary.assignments += 1;
    send(
        &mut ws,
        &Message::Started {
            assignment: first.id,
        },
    )
    .await?;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut heard = Instant::now();
    let silence = Duration::from_secs(15);
    let outcome = loop {
        tokio::select! {
            incoming = receive(&mut ws) => {
                heard = Instant::now();
                match incoming {
                    Ok(Some(Message::Assign { assignment })) => {
                        launch(assignment, &mut running);
                        summary.assignments += 1;
                        send(&mut ws, &Message::Started { assignment: assignment.id }).await?;
                    }
                    Ok(Some(Message::Control { command })) => {
                        for r in running.values() {
                            r.control.send(command.clone());
                        }
                    }
                    Ok(Some(Message::Bye {})) => break Ok(()),
                    Ok(Some(_)) => {}
                    Ok(None) => break Err(WorkerError::Lost("the master closed the connection".into())),
                    Err(e) => break Err(e),
                }
            }
            _ = ticker.tick() => {
                if heard.elapsed() > silence {
                    break Err(WorkerError::Lost(format!("no word from the master for {}s", silence.as_secs())));
                }
                for (&id, r) in &running {
                    if !r.ticked.load(std::sync::atomic::Ordering::SeqCst) {
                        continue;
                    }
                    let snapshot = take(r);
                    summary.requests += snapshot.requests();
                    summary.failures += snapshot.failures();
                    send(&mut ws, &Message::Delta { assignment: id, snapshot }).await?;
                }
                send(&mut ws, &Message::Heartbeat {}).await?;
            }
            Some((id, result)) = done_rx.recv() => {
                if let Some(r) = running.remove(&id) {
                    let snapshot = take(&r);
                    summary.requests += snapshot.requests();
                    summary.failures += snapshot.failures();
                    send(&mut ws, &Message::Delta { assignment: id, snapshot }).await?;
                }
                let m = match result {
                    Ok(r) => Message::Done {
                        assignment: id,
                        elapsed_secs: r.elapsed.as_secs_f64(),
                        interrupted: r.interrupted,
                    },
                    Err(e) => Message::Failed { assignment: id, message: e.to_string() },
                };
                send(&mut ws, &m).await?;
            }
        }
    };
    // Users must not outlive the session: whatever still runs is stopped at once.
    for r in running.values() {
        r.control.send(Command::Kill);
    }
    ws.close(None).await.ok();
    outcome.map(|()| summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ModelSpec, SourceFile};

    fn job(plan: &str) -> Job {
        Job {
            plan: SourceFile {
                name: "plans/p.kdl".into(),
                text: plan.into(),
            },
            profile: None,
            model: ModelSpec::Closed {
                users: 4,
                spawn_rate: 2.0,
            },
            duration_secs: Some(3.0),
            clear_stages: true,
            seed: 1,
            iterations: None,
            host: None,
            set: BTreeMap::new(),
            insecure: false,
            files: Vec::new(),
        }
    }

    const FEEDER_PLAN: &str = r#"feeder "u" file="data/users.csv" mode="sequential"
scenario "s" { http GET "/u/{{ u.id }}"; }"#;

    #[test]
    fn data_files_from_the_master_are_checked_and_used() {
        use crate::protocol::DataFile;
        let mut j = job(FEEDER_PLAN);
        // Without the file (not on this machine either) the plan does not compile.
        assert!(prepare(&j).is_err());
        j.files = vec![DataFile::new(
            "data/users.csv".into(),
            "id\n1\n2\n3\n".into(),
        )];
        let (program, _) = prepare(&j).expect("compiles with the sent file");
        assert_eq!(program.feeders[0].rows.len(), 3);
        // A damaged file is refused.
        let mut damaged = j.clone();
        damaged.files[0].text.push_str("4\n");
        let e = prepare(&damaged).expect_err("hash mismatch");
        assert!(e.contains("SHA-256"), "{e}");
        // A path leaving the folder is refused.
        for path in ["../users.csv", "/tmp/users.csv", "data/../../x.csv"] {
            let mut evil = j.clone();
            evil.files[0] = DataFile::new(path.into(), "id\n1\n".into());
            let e = prepare(&evil).expect_err("outside");
            assert!(e.contains("outside"), "{path}: {e}");
        }
    }

    #[test]
    fn received_sources_are_recompiled_with_the_masters_settings() {
        let (program, profile) =
            prepare(&job(r#"scenario "s" { http GET "/health"; }"#)).expect("compiles");
        assert_eq!(program.scenarios.len(), 1);
        assert_eq!(
            profile.model,
            Model::Closed {
                users: 4,
                spawn_rate: 2.0
            }
        );
        assert_eq!(profile.duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_plan_that_does_not_compile_is_reported_with_its_file_name() {
        let message =
            prepare(&job(r#"scenario "s" { htp GET "/health"; }"#)).expect_err("does not compile");
        assert!(message.contains("plans/p.kdl"), "{message}");
        assert!(message.contains("htp"), "{message}");
    }

    #[test]
    fn master_addresses_become_websocket_urls() {
        assert_eq!(master_url("10.0.0.1:5557"), "ws://10.0.0.1:5557/dist");
        assert_eq!(master_url("wss://m.example/dist"), "wss://m.example/dist");
    }
}
