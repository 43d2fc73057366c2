//! One test per diagnostic code: a minimal source that triggers it, and the exact
//! text its span covers (the caret must sit on the mistake, not near it).

use std::path::Path;

use loadplan::diag::{Code, Diagnostic};
use loadplan::lang;
use loadplan::profile;
use loadplan::source::{Source, Syntax};

/// Compile a plan and return the first diagnostic with `code`, with the source.
fn find(name: &str, text: &str, base: &Path, code: Code) -> (Source, Diagnostic) {
    let source = Source::new(name, text);
    let syntax = Syntax::from_path(name).expect("plan extension");
    let Err(diags) = lang::compile_source(&source, syntax, base) else {
        panic!("{name} compiled");
    };
    let all: Vec<Diagnostic> = diags.into_sorted();
    let found = all.iter().find(|d| d.code == code).cloned();
    match found {
        Some(d) => (source, d),
        None => panic!(
            "no {code} in:\n{}",
            all.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Assert the code occurs and its span covers exactly `covers` (the `nth` occurrence
/// of that text in the source, counting from 0).
fn expect(name: &str, text: &str, code: Code, covers: &str, nth: usize) {
    expect_in(name, text, Path::new("."), code, covers, nth);
}

fn expect_in(name: &str, text: &str, base: &Path, code: Code, covers: &str, nth: usize) {
    let (source, d) = find(name, text, base, code);
    assert_eq!(source.slice(d.span), covers, "{code}: {d}");
    let at = text
        .match_indices(covers)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("expected text occurs");
    assert_eq!(d.span.offset, at, "{code} at the wrong occurrence: {d}");
    assert!(d.help.is_some(), "{code} has no help");
}

#[test]
fn syntax_points_at_the_kdl_v1_keyword() {
    expect(
        "p.kdl",
        "plan \"p\" {\n    cookies true\n}\nscenario \"s\" { http GET \"/\"; }\n",
        Code::Syntax,
        "true",
        0,
    );
}

#[test]
fn syntax_points_at_the_yaml_tab() {
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n\tsteps: []\n",
        Code::Syntax,
        "\t",
        0,
    );
}

#[test]
fn unknown_node_points_at_the_name() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    htp GET \"/\"\n}\n",
        Code::UnknownNode,
        "htp",
        0,
    );
}

#[test]
fn unknown_field_points_at_the_property_name() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"/\" wieght=3\n}\n",
        Code::UnknownField,
        "wieght",
        0,
    );
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, wieght: 3 }\n",
        Code::UnknownField,
        "wieght",
        0,
    );
}

#[test]
fn missing_field_points_at_the_node_lacking_it() {
    expect(
        "p.kdl",
        "feeder \"users\"\nscenario \"s\" { http GET \"/\"; }\n",
        Code::MissingField,
        "feeder",
        0,
    );
}

#[test]
fn extra_argument_points_at_the_extra_value() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"/\" \"/other\"\n}\n",
        Code::ExtraArgument,
        "\"/other\"",
        0,
    );
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: GET /health now\n",
        Code::ExtraArgument,
        "now",
        0,
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    expect(
        "p.kdl",
        "scenario \"s\" weight=\"80\" {\n    http GET \"/\"\n}\n",
        Code::WrongType,
        "\"80\"",
        0,
    );
    // KDL v2 allows spaces around `=`; the caret still covers only the value.
    expect(
        "p.kdl",
        "scenario \"s\" weight = \"80\" {\n    http GET \"/\"\n}\n",
        Code::WrongType,
        "\"80\"",
        0,
    );
}

#[test]
fn duplicate_field_points_at_the_second_occurrence() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    think \"1s\"\n    think \"2s\"\n    http GET \"/\"\n}\n",
        Code::DuplicateField,
        "think",
        1,
    );
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http:\n          method: GET\n          url: /a\n          url: /b\n",
        Code::DuplicateField,
        "url",
        1,
    );
}

#[test]
fn duplicate_name_points_at_the_second_definition() {
    expect(
        "p.kdl",
        "scenario \"a\" { http GET \"/\"; }\nscenario \"a\" { http GET \"/x\"; }\n",
        Code::DuplicateName,
        "\"a\"",
        1,
    );
}

#[test]
fn bad_value_points_at_the_value() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http FETCH \"/\"\n}\n",
        Code::BadValue,
        "FETCH",
        0,
    );
}

#[test]
fn bad_size_points_at_the_size() {
    expect(
        "p.kdl",
        "plan \"p\" { max-body \"16mib\"; }\nscenario \"s\" {\n    http GET \"/\" max-body=\"1 parsec\"\n}\n",
        Code::BadValue,
        "\"16mib\"",
        0,
    );
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, max-body: 12XB }\n",
        Code::BadValue,
        "12XB",
        0,
    );
}

#[test]
fn an_unknown_content_coding_points_at_the_coding_list() {
    expect(
        "p.kdl",
        "plan \"p\" { compression \"gzip lzma\"; }\nscenario \"s\" {\n    http GET \"/\"\n}\n",
        Code::BadValue,
        "\"gzip lzma\"",
        0,
    );
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, compression: compress }\n",
        Code::BadValue,
        "compress",
        1,
    );
}

#[test]
fn a_missing_body_file_points_at_the_file() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http POST \"/\" { body file=\"no/such/upload.bin\"; }\n}\n",
        Code::MissingFile,
        "\"no/such/upload.bin\"",
        0,
    );
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http POST \"/\" { multipart { file \"f\" path=\"no/such/part.bin\"; }; }\n}\n",
        Code::MissingFile,
        "\"no/such/part.bin\"",
        0,
    );
}

#[test]
fn events_with_a_multipart_body_point_at_the_events() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http POST \"/\" { multipart { field \"a\" \"b\"; }; events \"e\"; }\n}\n",
        Code::Conflict,
        "events",
        0,
    );
}

#[test]
fn bad_weight_points_at_the_weight() {
    expect(
        "p.kdl",
        "scenario \"s\" weight=0 {\n    http GET \"/\"\n}\n",
        Code::BadWeight,
        "0",
        0,
    );
}

#[test]
fn bad_duration_points_at_the_duration() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    think \"1,5s\"\n    http GET \"/\"\n}\n",
        Code::BadDuration,
        "\"1,5s\"",
        0,
    );
}

#[test]
fn bad_url_points_at_the_url() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"api/health\"\n}\n",
        Code::BadUrl,
        "\"api/health\"",
        0,
    );
}

#[test]
fn bad_template_points_into_the_template() {
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: \"/{{ uuid() }\" }\n",
        Code::BadTemplate,
        "}",
        0,
    );
}

#[test]
fn undefined_variable_points_at_the_name() {
    expect(
        "p.kdl",
        "vars { token \"a\"; }\nscenario \"s\" {\n    http GET \"/?t={{ tokne }}\"\n}\n",
        Code::UndefinedVariable,
        "tokne",
        0,
    );
}

#[test]
fn capture_before_defined_points_at_the_early_use() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"/?w={{ w }}\"\n    http GET \"/\" { capture \"w\" json=\"$.w\"; }\n}\n",
        Code::CaptureBeforeDefined,
        "w",
        1,
    );
}

#[test]
fn missing_file_points_at_the_path() {
    expect(
        "p.kdl",
        "feeder \"u\" file=\"data/none.csv\"\nscenario \"s\" { http GET \"/\"; }\n",
        Code::MissingFile,
        "\"data/none.csv\"",
        0,
    );
}

#[test]
fn bad_feeder_points_at_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rows.json"), "{\"not\": \"a list\"}").expect("write");
    expect_in(
        "p.kdl",
        "feeder \"u\" file=\"rows.json\"\nscenario \"s\" { http GET \"/\"; }\n",
        dir.path(),
        Code::BadFeeder,
        "\"rows.json\"",
        0,
    );
}

#[test]
fn conflict_points_at_the_node() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"/\" {\n        check status=200 json=\"$.a\"\n    }\n}\n",
        Code::Conflict,
        "check",
        0,
    );
}

#[test]
fn bad_regex_points_at_the_culprit() {
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, checks: [{ body-regex: \"a[b\" }] }\n",
        Code::BadRegex,
        "[",
        1,
    );
}

#[test]
fn bad_json_path_points_at_the_path() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"/\" { check json=\"status\"; }\n}\n",
        Code::BadJsonPath,
        "\"status\"",
        0,
    );
}

#[test]
fn bad_json_points_at_the_trailing_comma() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http POST \"/\" { json #\"{\"a\": 1,}\"#; }\n}\n",
        Code::BadJson,
        ",",
        0,
    );
}

#[test]
fn no_scenarios_points_at_the_first_node() {
    expect(
        "p.kdl",
        "plan \"p\" { host \"http://localhost:8000\"; }\n",
        Code::NoScenarios,
        "plan",
        0,
    );
}

#[test]
fn empty_steps_points_at_the_scenario_name() {
    expect(
        "p.kdl",
        "scenario \"idle\" {\n    think \"1s\"\n}\n",
        Code::EmptySteps,
        "\"idle\"",
        0,
    );
}

#[test]
fn misplaced_step_points_at_the_step() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    send \"x\" text=\"y\"\n}\n",
        Code::MisplacedStep,
        "send",
        0,
    );
}

#[test]
fn io_read_points_at_the_first_byte_that_is_not_utf8() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("latin1.kdl");
    std::fs::write(&path, b"scenario \"caf\xe9\" {}\n").expect("write");
    let diags = lang::load_plan(&path).expect_err("not UTF-8");
    let d = diags.into_sorted().remove(0);
    assert_eq!(d.code, Code::Io);
    assert_eq!(d.span.offset, 13);
    assert_eq!(d.source.slice(d.span), "\u{FFFD}");
    let missing = lang::load_plan(&dir.path().join("nope.kdl")).expect_err("missing");
    assert_eq!(missing.iter().next().map(|d| d.code), Some(Code::Io));
}

fn profile_diag(text: &str, code: Code) -> (Source, Diagnostic) {
    let plan = Source::new(
        "p.kdl",
        "scenario \"http\" { http GET \"/\"; }\nscenario \"websocket\" { http GET \"/\"; }\n",
    );
    let program = lang::compile_source(&plan, Syntax::Kdl, Path::new(".")).expect("plan");
    let source = Source::new("profile.yml", text);
    let diags = profile::parse(&source, Some(&program)).expect_err("invalid profile");
    let d = diags
        .into_sorted()
        .into_iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code}"));
    (source, d)
}

#[test]
fn profile_syntax_points_at_the_open_bracket() {
    let (s, d) = profile_diag("name: x\nweights: { http: 1\n", Code::ProfileSyntax);
    assert_eq!(s.line_col(d.span.offset), (2, 10));
}

#[test]
fn profile_unknown_field_points_at_the_key() {
    let (s, d) = profile_diag("name: x\nspawn_rat: 2\n", Code::ProfileUnknownField);
    assert_eq!(s.slice(d.span), "spawn_rat");
}

#[test]
fn profile_missing_field_points_at_the_mapping_lacking_it() {
    let (s, d) = profile_diag(
        "name: x\nstages:\n  - { duration: 1m }\n",
        Code::ProfileMissingField,
    );
    assert_eq!(s.slice(d.span), "duration");
    assert!(d.message.contains("target"));
}

#[test]
fn profile_wrong_type_points_at_the_value() {
    let (s, d) = profile_diag("name: x\nusers: \"ten\"\n", Code::ProfileWrongType);
    assert_eq!(s.slice(d.span), "\"ten\"");
}

#[test]
fn profile_unknown_scenario_points_at_the_misspelt_name() {
    let (s, d) = profile_diag(
        "name: x\nweights:\n  http: 8\n  websockets: 2\n",
        Code::ProfileUnknownScenario,
    );
    assert_eq!(s.slice(d.span), "websockets");
    assert_eq!(d.help.as_deref(), Some("did you mean `websocket`?"));
}

#[test]
fn profile_bad_value_points_at_the_value() {
    let (s, d) = profile_diag(
        "name: x\nthresholds:\n  - { metric: p96, max: 1s }\n",
        Code::ProfileBadValue,
    );
    assert_eq!(s.slice(d.span), "p96");
}

#[test]
fn empty_repeat_points_at_the_repeat_in_both_spellings() {
    expect(
        "p.kdl",
        "scenario \"s\" {\n    repeat duration=\"10s\"\n    http GET \"/\"\n}\n",
        Code::EmptySteps,
        "repeat",
        0,
    );
    expect(
        "p.kdl",
        "scenario \"s\" {\n    http GET \"/\"\n    repeat count=3 {\n    }\n}\n",
        Code::EmptySteps,
        "repeat",
        0,
    );
    expect(
        "p.yaml",
        "scenarios:\n  - name: s\n    steps:\n      - http: GET /\n      - repeat: { count: 3, steps: [] }\n",
        Code::EmptySteps,
        "repeat",
        0,
    );
}

// Issue 14: strict templates, templated checks, thresholds in plans, typed comparisons.

/// The help line of the first diagnostic with `code` (after [`expect`] pinned its span).
fn help_of(name: &str, text: &str, base: &Path, code: Code) -> String {
    find(name, text, base, code).1.help.unwrap_or_default()
}

#[test]
fn a_misspelt_feeder_column_points_at_the_column() {
    let text = "feeder \"row\" file=\"data/sites.csv\"\nscenario \"s\" { http GET \"/anything{{ row.ulr }}\"; }\n";
    let base = Path::new("tests/invalid");
    expect_in("p.kdl", text, base, Code::UndefinedVariable, "ulr", 0);
    assert_eq!(
        help_of("p.kdl", text, base, Code::UndefinedVariable),
        "did you mean `url`?"
    );
    // The same in YAML.
    let yaml = "feeders: [{ name: row, file: data/sites.csv }]\nscenarios:\n  - name: s\n    steps:\n      - http: GET /anything{{ row.ulr }}\n";
    expect_in("p.yaml", yaml, base, Code::UndefinedVariable, "ulr", 0);
}

#[test]
fn a_csv_without_a_header_row_is_named_as_the_likely_cause() {
    let text = "feeder \"users\" file=\"data/no-header.csv\"\nscenario \"s\" { http GET \"/?u={{ users.username }}\"; }\n";
    let base = Path::new("tests/invalid");
    expect_in("p.kdl", text, base, Code::UndefinedVariable, "username", 0);
    let help = help_of("p.kdl", text, base, Code::UndefinedVariable);
    assert!(
        help.contains("alice, secret") && help.contains("header row"),
        "{help}"
    );
}

#[test]
fn an_unknown_filter_or_test_points_at_its_name() {
    let text = "vars { x \"1\"; }\nscenario \"s\" { http GET \"/?a={{ x | tojsn }}\"; }\n";
    expect("p.kdl", text, Code::BadTemplate, "tojsn", 0);
    assert_eq!(
        help_of("p.kdl", text, Path::new("."), Code::BadTemplate),
        "did you mean `tojson`?"
    );
    let text = "vars { x \"1\"; }\nscenario \"s\" { if \"x is defnied\" { http GET \"/\"; } }\n";
    expect("p.kdl", text, Code::BadTemplate, "defnied", 0);
    // A `|` inside a string is not a filter.
    let ok =
        "vars { x \"1\"; }\nscenario \"s\" { http GET \"/?a={{ 'a|b' ~ x | urlencode }}\"; }\n";
    lang::compile_source(&Source::new("p.kdl", ok), Syntax::Kdl, Path::new("."))
        .expect("known filters compile");
}

#[test]
fn templates_in_check_values_are_checked_like_any_template() {
    let text = "scenario \"s\" {\n    http GET \"/\" {\n        check json=\"$.cookies.session\" equals=\"{{ sid }}\"\n    }\n}\n";
    expect("p.kdl", text, Code::UndefinedVariable, "sid", 0);
    let text = "scenario \"s\" {\n    http GET \"/\" {\n        check body-contains=\"{{ no_such_var }}\"\n    }\n}\n";
    expect("p.kdl", text, Code::UndefinedVariable, "no_such_var", 0);
}

#[test]
fn a_threshold_on_a_misspelt_step_points_at_the_step() {
    let text = "threshold \"p99\" step=\"GET /helth\" max=\"1s\"\nscenario \"s\" { http GET \"/health\"; }\n";
    expect("p.kdl", text, Code::BadValue, "\"GET /helth\"", 0);
    assert_eq!(
        help_of("p.kdl", text, Path::new("."), Code::BadValue),
        "did you mean `GET /health`?"
    );
    let yaml = "thresholds: [{ metric: p99, step: GET /helth, max: 1s }]\nscenarios:\n  - name: s\n    steps: [http: GET /health]\n";
    expect("p.yaml", yaml, Code::BadValue, "GET /helth", 0);
    let metric = "threshold \"p96\" max=\"1s\"\nscenario \"s\" { http GET \"/health\"; }\n";
    expect("p.kdl", metric, Code::BadValue, "\"p96\"", 0);
}

#[test]
fn thresholds_in_a_plan_compile_at_every_level() {
    let text = r#"threshold "error_rate" max="1%"
scenario "s" {
    threshold "p95" max="500ms"
    http GET "/health" {
        threshold "p99" max=800
    }
}
"#;
    let p = lang::compile_source(&Source::new("p.kdl", text), Syntax::Kdl, Path::new("."))
        .expect("compiles");
    let rules: Vec<&str> = p.thresholds.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(
        rules,
        vec![
            "error_rate <= 1%",
            "p95[scenario s] <= 500ms",
            "p99[GET /health] <= 800"
        ]
    );
    assert_eq!(p.thresholds[2].max, Some(800_000.0));
}

#[test]
fn comparing_a_text_capture_with_a_number_needs_a_cast() {
    let text = "scenario \"s\" {\n    http GET \"/\" { capture \"n\" regex=\"(\\\\d+)\"; }\n    if \"n > 5\" { http GET \"/big\"; }\n}\n";
    expect("p.kdl", text, Code::BadValue, "n", 2);
    assert!(help_of("p.kdl", text, Path::new("."), Code::BadValue).contains("n | int"));
    let cast = "scenario \"s\" {\n    http GET \"/\" { capture \"n\" regex=\"(\\\\d+)\"; }\n    if \"n | int > 5\" { http GET \"/big\"; }\n}\n";
    lang::compile_source(&Source::new("p.kdl", cast), Syntax::Kdl, Path::new("."))
        .expect("a cast compiles");
}

#[test]
fn a_json_path_key_with_a_dash_gets_a_bracket_hint_and_no_cascade() {
    let text = "scenario \"s\" {\n    http GET \"/\" { capture \"ct\" json=\"$.headers.Content-Type\"; }\n    http GET \"/?t={{ ct }}\"\n}\n";
    let (_, d) = find("p.kdl", text, Path::new("."), Code::BadJsonPath);
    assert_eq!(
        d.help.as_deref(),
        Some("a key with `-` or a space goes in brackets: write `$.headers['Content-Type']`")
    );
    let Err(all) = lang::compile_source(&Source::new("p.kdl", text), Syntax::Kdl, Path::new("."))
    else {
        panic!("compiled");
    };
    let codes: Vec<Code> = all.into_sorted().into_iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        vec![Code::BadJsonPath],
        "no `used before it is captured` after it"
    );
}

#[test]
fn think_in_a_yaml_step_list_is_not_a_step() {
    let text = "scenarios:\n  - name: s\n    steps:\n      - http: GET /\n      - think: 1s\n";
    expect("p.yaml", text, Code::UnknownNode, "think", 0);
    let (_, d) = find("p.yaml", text, Path::new("."), Code::UnknownNode);
    assert_eq!(d.message, "`think` is not a step");
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean `sleep`?"))
    );
}

#[test]
fn every_kdl_syntax_error_is_reported_in_file_order() {
    let text = "scenario \"s\" {\n    http GET \"/a\" weight=#tru\n    http GET \"/b\" x=1,\n    http GET /c\n}\n";
    let source = Source::new("p.kdl", text);
    let Err(diags) = lang::compile_source(&source, Syntax::Kdl, Path::new(".")) else {
        panic!("compiled");
    };
    let found: Vec<(Code, (usize, usize))> = diags
        .into_sorted()
        .iter()
        .map(|d| (d.code, source.line_col(d.span.offset)))
        .collect();
    assert_eq!(
        found,
        vec![
            (Code::Syntax, (2, 5)),
            (Code::Syntax, (3, 22)),
            (Code::Syntax, (4, 14)),
        ]
    );
}

#[test]
fn a_yaml_status_list_is_the_kdl_status_string() {
    let yaml = "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, checks: [{ status: [200, 201, 3xx] }] }\n";
    let kdl = "scenario \"s\" { http GET \"/\" { check status=\"200,201,3xx\"; }; }\n";
    let y = lang::compile_source(&Source::new("p.yaml", yaml), Syntax::Yaml, Path::new("."))
        .expect("yaml compiles");
    let k = lang::compile_source(&Source::new("p.kdl", kdl), Syntax::Kdl, Path::new("."))
        .expect("kdl compiles");
    assert_eq!(lang::dump::json(&y), lang::dump::json(&k));
    assert!(lang::dump::json(&y).contains("status_in"));
}

#[test]
fn think_inside_a_block_suggests_sleep() {
    let text = "scenario \"s\" {\n    group \"g\" {\n        http GET \"/\"\n        think \"1s\"\n    }\n}\n";
    expect("p.kdl", text, Code::UnknownNode, "think", 0);
    assert!(
        help_of("p.kdl", text, Path::new("."), Code::UnknownNode)
            .starts_with("did you mean `sleep`?")
    );
}

#[test]
fn repeated_form_keys_in_both_spellings() {
    let yaml = "scenarios:\n  - name: s\n    steps:\n      - http: { method: POST, url: /, form: { tag: [a, b], one: 1 } }\n";
    let kdl = "scenario \"s\" { http POST \"/\" { form { tag \"a\"; tag \"b\"; one 1; }; }; }\n";
    let y = lang::compile_source(&Source::new("p.yaml", yaml), Syntax::Yaml, Path::new("."))
        .expect("yaml compiles");
    let k = lang::compile_source(&Source::new("p.kdl", kdl), Syntax::Kdl, Path::new("."))
        .expect("kdl compiles");
    assert_eq!(lang::dump::json(&y), lang::dump::json(&k));
}
