//! Starting a run from the browser (`loadplan ui`): `POST /api/start` names a profile and
//! overrides (users and spawn rate, or an arrival rate; host; duration), the [`Launcher`]
//! resolves them the way `loadplan run` resolves its flags, and runs the driver on its own
//! task, feeding the [`Hub`].
//!
//! Invariants: a start is refused while a run is in progress; a bad profile name or value is
//! refused before anything starts (HTTP 400 with the reason); the run's [`Control`] is the
//! hub's, so stop/users/rate/reset from the UI reach the driver through `Control::send`.
//!
//! Trust: a request names a profile ([`Launcher::profile_source`]) by a preset or
//! `profiles/` name, or as a `.yml`/`.yaml` file inside the plan's folder; nothing else is
//! read, and a refusal never quotes a file (a profile's own diagnostics list only
//! `file:line:col`, the message and the code). The host must be an `http`/`https` URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::hub::{Hub, Refusal, Start};
use crate::control::{Command, Control};
use crate::lang::check::parse_duration_str;
use crate::profile::{self, LoadProfile, Model};
use crate::report::thresholds::Watch;
use crate::runtime::driver::Tick;
use crate::runtime::{RunConfig, driver};
use crate::source::Source;

/// The body of `POST /api/start`; every field is optional (the defaults are the command
/// line's profile and host).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// A preset (smoke, load, stress, soak), a name in `profiles/`, or a file.
    pub profile: Option<String>,
    /// Closed model: users.
    pub users: Option<u64>,
    /// Closed model: users started per second.
    pub spawn_rate: Option<f64>,
    /// Open model: iterations started per second (switches the model).
    pub arrival_rate: Option<f64>,
    /// Target base URL (overrides the plan's host).
    pub host: Option<String>,
    /// `30s`, `5m`, or seconds as a number; an empty string keeps the profile's.
    pub duration: Option<DurationField>,
}

/// A duration as text (`90s`) or a number of seconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationField {
    Secs(f64),
    Text(String),
}

/// Largest profile file read for a request.
const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Reads a profile file found by [`Launcher::profile_source`]; errors name the request,
/// never the file's content.
fn read_profile(file: &Path, shown: &str) -> Result<Source, Refusal> {
    let unreadable = || Refusal::Invalid(format!("profile `{shown}` cannot be read as a profile"));
    let len = std::fs::metadata(file).map_err(|_| unreadable())?.len();
    if len > MAX_PROFILE_BYTES {
        return Err(Refusal::Invalid(format!(
            "profile `{shown}` is larger than {MAX_PROFILE_BYTES} bytes"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|_| unreadable())?;
    Ok(Source::new(file.display().to_string(), text))
}

/// What `loadplan ui` knows before any run: the plan and the command line's defaults.
pub struct Launcher {
    pub plan_path: PathBuf,
    pub profile: Option<String>,
    pub host: Option<String>,
    pub seed: Option<u64>,
    pub insecure: bool,
}

impl Launcher {
    /// The profile names offered in the start form (the presets, and the default first).
    pub fn profiles(&self) -> Vec<String> {
        let mut names: Vec<String> = self.profile.iter().cloned().collect();
        for (name, _) in profile::PRESETS {
            if !names.iter().any(|n| n == name) {
                names.push((*name).to_owned());
            }
        }
        names
    }

    /// The source of the profile a request names: a preset or `profiles/` name, or a
    /// `.yml`/`.yaml` file inside the plan's folder (see the module docs). The command
    /// line's own profile is trusted as `loadplan run` trusts it.
    pub fn profile_source(&self, requested: Option<&str>) -> Result<Option<Source>, Refusal> {
        let plan_dir = self.plan_path.parent();
        let Some(name) = requested.filter(|s| !s.is_empty()) else {
            return match self.profile.as_deref() {
                Some(name) => profile::locate(name, plan_dir)
                    .map(Some)
                    .ok_or_else(|| Refusal::Invalid(format!("no profile `{name}`"))),
                None => Ok(None),
            };
        };
        let shown = crate::diag::visible(&name.chars().take(200).collect::<String>());
        let is_name = !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.ends_with(".yml")
            && !name.ends_with(".yaml");
        if is_name {
            // Only `profiles/NAME.yml` next to the plan (or its parent) and the presets.
            let mut candidates = Vec::new();
            if let Some(dir) = plan_dir {
                candidates.push(dir.join("profiles"));
                if let Some(parent) = dir.parent() {
                    candidates.push(parent.join("profiles"));
                }
            }
            for folder in candidates {
                let file = folder.join(format!("{name}.yml"));
                if file.is_file() {
                    return read_profile(&file, &shown).map(Some);
                }
            }
            return profile::PRESETS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, text)| Some(Source::new(format!("<builtin>/profiles/{n}.yml"), *text)))
                .ok_or_else(|| {
                    Refusal::Invalid(format!(
                        "no profile `{shown}` (not in profiles/, not a preset: smoke, load, stress, soak)"
                    ))
                });
        }
        let outside = || {
            Refusal::Invalid(format!(
                "profile `{shown}` is not a profile name or a .yml/.yaml file inside the plan's folder"
            ))
        };
        let dir = plan_dir
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .ok_or_else(outside)?;
        let path = Path::new(name);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        let (Ok(root), Ok(file)) = (dir.canonicalize(), path.canonicalize()) else {
            return Err(outside());
        };
        let yaml = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yml" || e == "yaml");
        if !yaml || !file.starts_with(&root) || !file.is_file() {
            return Err(outside());
        }
        read_profile(&file, &shown).map(Some)
    }

    /// Resolves the request into a profile (see the module docs).
    pub fn resolve(&self, hub: &Hub, req: &StartRequest) -> Result<LoadProfile, Refusal> {
        let mut p = match self.profile_source(req.profile.as_deref())? {
            Some(src) => profile::parse(&src, Some(hub.program())).map_err(|d| {
                // The diagnostics' one-line form: no snippet of the file.
                let lines: Vec<String> = d.into_sorted().iter().map(ToString::to_string).collect();
                Refusal::Invalid(lines.join("\n"))
            })?,
            None => LoadProfile::closed(1, 1.0, None),
        };
        // Thresholds written in the plan hold under any profile.
        p.thresholds
            .extend(hub.program().thresholds.iter().cloned());
        let positive = |what: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(Refusal::Invalid(format!(
                    "{what} must be a positive number"
                )))
            }
        };
        if let Some(rate) = req.arrival_rate {
            let rate = positive("arrival_rate", rate)?;
            let (max_users, poisson) = match p.model {
                Model::Open {
                    max_users, poisson, ..
                } => (max_users, poisson),
                Model::Closed { .. } => (req.users.unwrap_or(1000), false),
            };
            p.model = Model::Open {
                rate,
                max_users,
                poisson,
            };
            p.stages.clear();
        } else if let Model::Closed { users, spawn_rate } = &mut p.model {
            if let Some(u) = req.users {
                *users = u;
                p.stages.clear();
            }
            if let Some(r) = req.spawn_rate {
                *spawn_rate = positive("spawn_rate", r)?;
            }
        } else if let Model::Open { max_users, .. } = &mut p.model {
            if let Some(u) = req.users {
                *max_users = u;
            }
        }
        match &req.duration {
            Some(DurationField::Secs(s)) if *s > 0.0 => {
                let d = crate::lang::check::seconds(*s).map_err(Refusal::Invalid)?;
                p.duration = Some(d);
                p.stages.clear();
            }
            Some(DurationField::Secs(_)) => {
                return Err(Refusal::Invalid("duration must be positive".into()));
            }
            Some(DurationField::Text(t)) if !t.trim().is_empty() => {
                p.duration = Some(
                    parse_duration_str(t)
                        .map_err(|e| Refusal::Invalid(format!("duration: {e}")))?,
                );
                p.stages.clear();
            }
            _ => {}
        }
        Ok(p)
    }

    /// Starts a run on a new task; returns the run's number.
    pub fn start(&self, hub: &Arc<Hub>, req: &StartRequest) -> Result<u64, Refusal> {
        let profile = self.resolve(hub, req)?;
        let host = req
            .host
            .clone()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| self.host.clone());
        if host.is_none() && hub.program().host.is_none() {
            return Err(Refusal::Invalid(
                "the plan has no host: give one in the form".into(),
            ));
        }
        if let Some(h) = &host {
            let shown = crate::diag::visible(&h.chars().take(200).collect::<String>());
            match url::Url::parse(h) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(_) => {
                    return Err(Refusal::Invalid(format!(
                        "host `{shown}`: only http:// and https:// URLs with a host name are accepted"
                    )));
                }
                Err(e) => return Err(Refusal::Invalid(format!("host `{shown}`: {e}"))),
            }
        }
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let cfg = RunConfig {
            host: host.clone(),
            seed,
            iterations: None,
            insecure: self.insecure,
            set: Default::default(),
            http_debug: None,
        };
        let control = Control::default();
        let run = hub.begin(
            Start {
                profile: profile.clone(),
                host,
                seed,
            },
            control.clone(),
        )?;
        let hub = Arc::clone(hub);
        tokio::spawn(async move {
            let program = Arc::clone(hub.program());
            // Rules with `abort_on_fail` stop the run as in `loadplan run` (its sinks do it
            // there); the stop goes through the same control.
            let mut watch = Watch::default();
            let stop = control.clone();
            let on_tick = |t: &Tick| {
                hub.tick(t);
                let secs = t.elapsed.as_secs_f64();
                let before = watch.aborted.is_some();
                watch.tick(&program, &profile.thresholds, t.total, secs, false);
                if !before && watch.aborted.is_some() {
                    stop.send(Command::Stop);
                }
            };
            let result = driver::run(program.clone(), &profile, &cfg, control, on_tick).await;
            match result {
                Ok(r) => hub.finish(r, watch.aborted.map(|v| v.rule)),
                Err(e) => hub.fail(e.to_string()),
            }
        });
        Ok(run)
    }
}
