//! `loadplan check PLAN [--profile P]`: compile and report, send nothing.

use std::path::PathBuf;

use crate::lang::ir::Step;
use crate::profile;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file (.kdl, .yaml or .yml).
    pub plan: PathBuf,
    /// A profile name (smoke, load, stress, soak, or profiles/NAME.yml) or file to check with the plan.
    #[arg(long, short = 'p', env = "LOADPLAN_PROFILE")]
    pub profile: Option<String>,
}

fn count_steps(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Group { steps, .. } | Step::Repeat { steps, .. } | Step::Pick { steps, .. } => {
                1 + count_steps(steps)
            }
            Step::If {
                then, otherwise, ..
            } => 1 + count_steps(then) + count_steps(otherwise),
            Step::Ws(w) => 1 + w.steps.len(),
            _ => 1,
        })
        .sum()
}

pub fn run(args: Args) -> u8 {
    let program = match super::load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut profile_line = String::new();
    if let Some(name) = &args.profile {
        let Some(src) = profile::locate(name, args.plan.parent()) else {
            errln!("{}", profile::not_found(name, args.plan.parent()));
            return super::EXIT_USAGE;
        };
        match profile::parse(&src, Some(&program)) {
            Ok(p) => {
                for name in profile::unknown_weights(&p, &program) {
                    errln!(
                        "note: profile `{}` weights scenario `{name}`, which this plan does not have; that weight is ignored",
                        p.name
                    );
                }
                profile_line = format!(", profile `{}` ({})", p.name, src.name());
            }
            Err(d) => {
                super::report(d);
                return super::EXIT_USAGE;
            }
        }
    }
    let steps: usize = program
        .scenarios
        .iter()
        .map(|s| count_steps(&s.on_start) + count_steps(&s.steps) + count_steps(&s.on_stop))
        .sum();
    let scen: Vec<String> = program
        .scenarios
        .iter()
        .map(|s| format!("{} (weight {})", s.name, s.weight))
        .collect();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let thresholds = if program.thresholds.is_empty() {
        String::new()
    } else {
        format!(
            ", {}",
            plural(program.thresholds.len(), "threshold", "thresholds")
        )
    };
    outln!(
        "ok: {} — plan `{}`: {} [{}], {}, {}{thresholds}{profile_line}",
        args.plan.display(),
        program.name,
        plural(program.scenarios.len(), "scenario", "scenarios"),
        scen.join(", "),
        plural(steps, "step", "steps"),
        plural(
            program.stats.len(),
            "statistics entry",
            "statistics entries"
        ),
    );
    // The process ends right after: freeing a large plan's every node (templates, JSON
    // paths, the source) one by one was a fifth of `check`'s time (benches/check_large.sh).
    std::mem::forget(program);
    super::EXIT_OK
}
