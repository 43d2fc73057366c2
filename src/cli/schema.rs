//! `loadplan schema plan|profile`: JSON Schemas for editors and validators.

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Which {
    /// YAML plans (`grammar/plan.schema.json`).
    Plan,
    /// Profiles (`grammar/profile.schema.json`).
    Profile,
    /// The `--json` result file (`grammar/result.schema.json`).
    Result,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which schema to print.
    #[arg(value_enum)]
    pub which: Which,
}

/// The schema text exactly as checked into `grammar/`.
pub fn text(which: Which) -> String {
    let v = match which {
        Which::Plan => crate::lang::jsonschema::plan_schema(),
        Which::Profile => crate::profile::json_schema(),
        Which::Result => return crate::report::model::schema_text(),
    };
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

pub fn run(args: Args) -> u8 {
    out!("{}", text(args.which));
    super::EXIT_OK
}
