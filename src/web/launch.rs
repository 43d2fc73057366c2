//! Starting a run from the browser (`loadplan ui`): `POST /api/start` names a profile and
//! overrides (users and spawn rate, or an arrival rate; host; duration), the [`Launcher`]
//! resolves them the way `loadplan run` resolves its flags, and runs the driver on its own
//! task, feeding the [`Hub`].
//!
//! Invariants: a start is refused while a run is in progress; a bad profile name or value is
//! refused before anything starts (HTTP 400 with the reason); the run's [`Control`] is the
//! hub's, so stop/users/rate/reset from the UI reach the driver through `Control::send`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::hub::{Hub, Refusal, Start};
use crate::control::{Command, Control};
use crate::lang::check::parse_duration_str;
use crate::profile::{self, LoadProfile, Model};
use crate::report::thresholds::Watch;
use crate::runtime::driver::Tick;
use crate::runtime::{RunConfig, driver};

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

    /// Resolves the request into a profile (see the module docs).
    pub fn resolve(&self, hub: &Hub, req: &StartRequest) -> Result<LoadProfile, Refusal> {
        let mut p = match req
            .profile
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.profile.as_deref())
        {
            Some(name) => {
                let src = profile::locate(name, self.plan_path.parent()).ok_or_else(|| {
                    Refusal::Invalid(format!(
                        "no profile `{name}` (not a file, not in profiles/, not a preset: smoke, load, stress, soak)"
                    ))
                })?;
                profile::parse(&src, Some(hub.program()))
                    .map_err(|d| Refusal::Invalid(d.render_plain()))?
            }
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
            Some(DurationField::Secs(s)) if *s > 0.0 && s.is_finite() => {
                p.duration = Some(Duration::from_secs_f64(*s));
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
            url::Url::parse(h).map_err(|e| Refusal::Invalid(format!("host `{h}`: {e}")))?;
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
