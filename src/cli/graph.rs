//! `loadplan graph PLAN [--format text|dot|json]`: the compiled step graph.

use std::path::PathBuf;

use crate::lang::dump;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// An indented tree of scenarios and steps.
    Text,
    /// Graphviz dot (`loadplan graph plan.kdl --format dot | dot -Tsvg`).
    Dot,
    /// The whole compiled program as JSON (what twin plans compare equal on).
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file (.kdl, .yaml or .yml).
    pub plan: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(args: Args) -> u8 {
    match super::load_plan(&args.plan) {
        Ok(program) => {
            let out = match args.format {
                Format::Text => dump::text(&program),
                Format::Dot => dump::dot(&program),
                Format::Json => dump::json(&program),
            };
            out!("{out}");
            if !out.ends_with('\n') {
                outln!();
            }
            super::EXIT_OK
        }
        Err(code) => code,
    }
}
