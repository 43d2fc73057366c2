//! The JSON Schemas in `grammar/` are exactly what `loadplan schema` prints (no
//! drift), every YAML plan and profile the project ships validates against them, and
//! they reject the structural mistakes of `tests/invalid/`.

mod common;

use std::path::Path;

use common::Kind;
use loadplan::cli::schema::{Which, text};
use serde_json::Value;

fn load_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml_value(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("readable");
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(path: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&load_json(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn checked_in_schemas_match_the_generated_ones() {
    for (which, path) in [
        (Which::Plan, "grammar/plan.schema.json"),
        (Which::Profile, "grammar/profile.schema.json"),
    ] {
        let on_disk = std::fs::read_to_string(path).expect("schema file");
        assert!(
            on_disk == text(which),
            "{path} is out of date: run `cargo run -q -- schema {}` > {path}",
            if matches!(which, Which::Plan) {
                "plan"
            } else {
                "profile"
            }
        );
    }
}

#[test]
fn every_shipped_yaml_plan_and_profile_validates_against_its_schema() {
    let plan = validator("grammar/plan.schema.json");
    let profile = validator("grammar/profile.schema.json");
    let (mut plans, mut profiles) = (0, 0);
    for path in common::walk(common::SHIPPED) {
        if !common::is_yaml(&path) {
            continue;
        }
        let (v, n) = match common::kind(&path) {
            Kind::Plan => (&plan, &mut plans),
            Kind::Profile => (&profile, &mut profiles),
            Kind::Other => continue,
        };
        let errs = errors(v, &yaml_value(&path));
        assert!(
            errs.is_empty(),
            "{} does not match its schema:\n{}",
            path.display(),
            errs.join("\n")
        );
        *n += 1;
    }
    assert!(plans >= 11, "only {plans} YAML plans");
    assert!(profiles >= 7, "only {profiles} profiles");
}

#[test]
fn the_schemas_reject_structural_mistakes() {
    let plan = validator("grammar/plan.schema.json");
    for file in [
        "unknown-field.yaml",
        "unknown-field-top-level.yaml",
        "unknown-node.yaml",
        "missing-field.yaml",
        "wrong-type.yaml",
        "wrong-type-step-fields-beside.yaml",
        "wrong-type-missing-colon.yaml",
        "misplaced-step.yaml",
    ] {
        let path = Path::new("tests/invalid").join(file);
        assert!(
            !errors(&plan, &yaml_value(&path)).is_empty(),
            "the plan schema accepts {}",
            path.display()
        );
    }
    let profile = validator("grammar/profile.schema.json");
    for file in ["unknown-field.yml", "missing-field.yml", "wrong-type.yml"] {
        let path = Path::new("tests/invalid/profiles").join(file);
        assert!(
            !errors(&profile, &yaml_value(&path)).is_empty(),
            "the profile schema accepts {}",
            path.display()
        );
    }
}
