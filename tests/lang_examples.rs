//! Everything the project ships as a plan or profile is valid, and the reference in
//! `grammar/` agrees with the language's own table (`lang::schema::SPECS`) and codes.
//!
//! Walks `plans/`, `profiles/`, `examples/` and `grammar/`: every `.kdl` file and
//! every YAML plan compiles; every YAML file under a `profiles/` folder (and every
//! YAML naming the profile schema) is a valid profile.

mod common;

use std::path::Path;

use common::Kind;
use loadplan::diag::Code;
use loadplan::lang::{self, schema};
use loadplan::profile;

#[test]
fn every_shipped_plan_and_profile_checks_clean() {
    let mut plans = 0;
    let mut profiles = 0;
    for path in common::walk(common::SHIPPED) {
        match common::kind(&path) {
            Kind::Plan => {
                if let Err(d) = lang::load_plan(&path) {
                    panic!("{} does not check:\n{}", path.display(), d.render_plain());
                }
                plans += 1;
            }
            Kind::Profile => {
                let source = lang::read_source(&path).expect("readable");
                if let Err(d) = profile::parse(&source, None) {
                    panic!(
                        "{} is not a valid profile:\n{}",
                        path.display(),
                        d.render_plain()
                    );
                }
                profiles += 1;
            }
            Kind::Other => {}
        }
    }
    // plans/ (3 + 3 twins), grammar/examples (8 pairs); profiles/ (4), examples (3).
    assert!(plans >= 22, "only {plans} plans found");
    assert!(profiles >= 7, "only {profiles} profiles found");
}

#[test]
fn yaml_in_plans_and_grammar_is_recognisably_a_plan_or_profile() {
    // Elsewhere a YAML file may be something else; here an unmarked file would be
    // silently skipped by the walker above.
    for path in common::walk(&["plans", "profiles", "grammar"]) {
        if common::is_yaml(&path) {
            assert_ne!(common::kind(&path), Kind::Other, "{}", path.display());
        }
    }
}

/// The text of the section under a `### `name`` heading, up to the next heading.
fn section<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let heading = format!("### `{name}`");
    let start = doc
        .lines()
        .position(|l| l.trim_end() == heading || l.starts_with(&format!("{heading} ")))?;
    let lines: Vec<&str> = doc.lines().collect();
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with('#') && !l.starts_with("####"))
        .map_or(lines.len(), |i| start + 1 + i);
    let from = lines[..start].iter().map(|l| l.len() + 1).sum::<usize>();
    let to = lines[..end]
        .iter()
        .map(|l| l.len() + 1)
        .sum::<usize>()
        .min(doc.len());
    doc.get(from..to)
}

#[test]
fn the_reference_documents_every_node_and_field() {
    let doc = std::fs::read_to_string("grammar/README.md").expect("grammar/README.md");
    for spec in schema::SPECS {
        let Some(text) = section(&doc, spec.name) else {
            panic!("grammar/README.md has no heading ### `{}`", spec.name);
        };
        for field in spec.args.iter().chain(spec.props) {
            assert!(
                text.contains(&format!("`{}`", field.name)),
                "the section of `{}` does not mention `{}`",
                spec.name,
                field.name
            );
        }
        for child in spec.children {
            if child.node != "steps" {
                assert!(
                    text.contains(&format!("`{}`", child.node)),
                    "the section of `{}` does not mention its child `{}`",
                    spec.name,
                    child.node
                );
            }
        }
    }
}

#[test]
fn the_reference_lists_every_builtin_and_context_variable() {
    let doc = std::fs::read_to_string("grammar/README.md").expect("grammar/README.md");
    for name in lang::template::BUILTIN_FUNCTIONS
        .iter()
        .chain(lang::template::CONTEXT_VARS)
    {
        assert!(
            doc.contains(&format!("`{name}")),
            "grammar/README.md does not mention `{name}`"
        );
    }
}

#[test]
fn every_diagnostic_code_is_explained_with_an_example() {
    let doc = std::fs::read_to_string("grammar/errors.md").expect("grammar/errors.md");
    for code in Code::ALL {
        let text = section(&doc, code.as_str())
            .unwrap_or_else(|| panic!("grammar/errors.md has no heading ### `{code}`"));
        assert!(
            text.contains("```"),
            "`{code}` has no example in grammar/errors.md"
        );
    }
}

#[test]
fn the_profile_reference_documents_every_field() {
    let doc = std::fs::read_to_string("grammar/profiles.md").expect("grammar/profiles.md");
    let schema = profile::json_schema();
    let mut fields: Vec<String> = Vec::new();
    for def in [
        &schema,
        &schema["$defs"]["StageFile"],
        &schema["$defs"]["ThresholdFile"],
    ] {
        if let Some(props) = def["properties"].as_object() {
            fields.extend(props.keys().cloned());
        }
    }
    assert!(fields.len() > 12);
    for f in fields {
        assert!(
            doc.contains(&format!("| `{f}` |")),
            "grammar/profiles.md has no row for `{f}`"
        );
    }
    assert!(Path::new("grammar/examples/profiles").is_dir());
}
