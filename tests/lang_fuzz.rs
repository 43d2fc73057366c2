//! Fuzzing the front end: arbitrary text and mutated versions of every plan and
//! profile in the repository go through both parsers, the schema check, the compiler,
//! the profile parser and the diagnostic renderer. Nothing may panic (or overflow the
//! stack); every failure must be a diagnostic that renders.
//!
//! `LOADPLAN_FUZZ_CASES` sets the number of cases (default 256, so CI stays fast);
//! `LOADPLAN_FUZZ_SECONDS` stops a long run early. See `grammar/FUZZING.md`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use loadplan::lang::{self, dump};
use loadplan::profile;
use loadplan::source::{Source, Syntax};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

/// A seed text from the repository, with the folder its feeders resolve against.
struct Seed {
    name: String,
    text: String,
    base: PathBuf,
}

fn seeds() -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["plans", "profiles", "grammar", "examples", "tests/invalid"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if Syntax::from_path(&path.to_string_lossy()).is_some() {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push(Seed {
                        name: path.display().to_string(),
                        text,
                        base: dir.clone(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Pieces of the languages spliced into seeds to reach deeper than byte noise.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "=",
    "#",
    "#\"",
    "\"#",
    ";",
    "\n",
    "-",
    ":",
    "- ",
    "[",
    "]",
    "{{",
    "}}",
    "{%",
    "%}",
    "/-",
    "//",
    "/*",
    "*/",
    "\\",
    "#true",
    "#null",
    "1e999",
    "-1",
    "0",
    "99999999999999999999",
    "\u{e9}",
    "\u{1F600}",
    "\t",
    "  ",
    "&a",
    "*a",
    "<<: *a",
    "!!str",
    "---",
    "...",
    "|",
    ">",
    "'",
    "http",
    "ws",
    "send",
    "receive",
    "close",
    "pick",
    "repeat",
    "group",
    "if",
    "else",
    "set",
    "sleep",
    "think",
    "check",
    "capture",
    "feeder",
    "scenario",
    "plan",
    "vars",
    "headers",
    "query",
    "json",
    "form",
    "text",
    "steps:",
    "checks:",
    "captures:",
    "scenarios:",
    "feeders:",
    "weight=",
    "count=",
    "duration=",
    "between=",
    "and=",
    "pacing=",
    "timeout=",
    "status=",
    "equals=",
    "length=",
    "match=",
    "regex=",
    "\"$.a[\"",
    "\"(\"",
    "\"{{ x\"",
    "\"{{ response.status }}\"",
    "file=\"/\"",
    "file=\"data\"",
    "\"1h\"",
    "\"-1s\"",
    "\"1e400s\"",
    "users: 1",
    "weights:",
    "arrival_rate: 0",
    "stages:",
    "thresholds:",
];

/// Pieces of KDL, valid and not, for text the one-pass reader mostly accepts (so the
/// comparison with the `kdl` crate covers its accepting paths, not only its refusals).
const KDL_PIECES: &[&str] = &[
    "node",
    "n",
    "a-b",
    "x.y",
    "-",
    "--x",
    "+x",
    "-x",
    "a,b",
    "'q'",
    "a:b",
    "x?",
    "é",
    "true",
    "null",
    "inf",
    "nan",
    ".5",
    "-.5",
    "1",
    "-1",
    "+1",
    "0",
    "-0",
    "007",
    "1.5",
    "-0.0",
    "1e3",
    "1E-3",
    "1.5e+2",
    "1e400",
    "1.",
    "1_000",
    "0x1f",
    "0o7",
    "0b1",
    "1a",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "\"\"",
    "\"s\"",
    "\"a b\"",
    "\"é😀\"",
    "\"\\n\\t\\\"\\\\\\s\\b\\f\\r\"",
    "\"\\u{e9}\"",
    "\"\\u{D800}\"",
    "\"\\u{}\"",
    "\"\\u{1F600}\"",
    "\"\\/\"",
    "\"\\ \"",
    "\"\\q\"",
    "\"\t\"",
    "\"\"\"",
    "#\"r\"#",
    "#\"a\"b\"#",
    "##\"x\"#y\"##",
    "#\"\"#",
    "#\"\"\"#",
    "#true",
    "#false",
    "#null",
    "#inf",
    "#nan",
    "#x",
    "k=v",
    "k=1",
    "k=#true",
    "\"k k\"=1",
    "k= 1",
    "k =1",
    "k=",
    "=",
    "(t)",
    "(t)1",
    "/-",
    "/- n",
    "\\",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    ";",
    ";;",
    "{",
    "}",
    "{ }",
    "{}",
    "//c",
    "// c\n",
    "/* c */",
    "/*/* */*/",
    "/*",
    "*/",
    "headers",
    "vars",
    "query",
    "form",
    "Accept",
    "\u{a0}",
    "\u{feff}",
    "\u{200e}",
    "\u{85}",
    "\u{b}",
    "\u{c}",
    "\u{2028}",
];

/// Mostly well-formed lines: a name, entries from [`KDL_PIECES`], an opening or closing
/// brace now and then.
fn kdl_lines() -> impl Strategy<Value = String> {
    let piece = (0..KDL_PIECES.len()).prop_map(|i| KDL_PIECES[i]);
    let line = (
        prop::sample::select(vec![
            "n", "headers", "vars", "\"q n\"", "a-b", "}", "", "//c",
        ]),
        prop::collection::vec(
            (
                prop::option::of(prop::sample::select(vec!["k", "\"k\"", "x-y"])),
                piece,
            ),
            0..4,
        ),
        prop::sample::select(vec!["", "", " {", "{", ";", " ", " // c", " /* c */"]),
    )
        .prop_map(|(name, entries, end)| {
            let mut out = name.to_string();
            for (key, value) in entries {
                out.push(' ');
                if let Some(k) = key {
                    out.push_str(k);
                    out.push('=');
                }
                out.push_str(value);
            }
            out.push_str(end);
            out
        });
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

fn kdl_soup() -> impl Strategy<Value = String> {
    prop_oneof![1 => kdl_tokens(), 2 => kdl_lines()]
}

fn kdl_tokens() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => (0..KDL_PIECES.len()).prop_map(|i| KDL_PIECES[i].to_string()),
            2 => Just(" ".to_string()),
            1 => Just("\n".to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

#[test]
fn bundled_kdl_plans_take_the_fast_path_and_agree() {
    let mut fast = 0;
    for seed in seeds().iter().filter(|s| s.name.ends_with(".kdl")) {
        fast_kdl_agrees(&seed.text);
        let source = Source::new("p.kdl", seed.text.as_str());
        if let Ok((_, diags)) = lang::kdl::parse_with_crate(&source) {
            if diags.is_empty() {
                assert!(
                    lang::kdl::fast::parse(&seed.text).is_some(),
                    "{} is valid but not read by the fast path",
                    seed.name
                );
                fast += 1;
            }
        }
    }
    assert!(fast >= 10, "only {fast} valid bundled KDL plans");
}

#[test]
fn the_fast_kdl_reader_agrees_on_kdl_soup() {
    let cases = env_number("LOADPLAN_FUZZ_CASES", 256).max(2_000);
    let deadline = env_deadline();
    let mut done = 0u64;
    let accepted = AtomicU64::new(0);
    while done < cases && deadline.is_none_or(|d| Instant::now() < d) {
        let batch = (cases - done).min(1000) as u32;
        let mut runner = TestRunner::new(Config {
            cases: batch,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&kdl_soup(), |text| {
                if lang::kdl::fast::parse(&text).is_some() {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                fast_kdl_agrees(&text);
                Ok(())
            })
            .expect("the fast reader agrees with the kdl crate");
        done += u64::from(batch);
    }
    let accepted = accepted.load(Ordering::Relaxed);
    eprintln!("kdl soup: {accepted} of {done} read by the fast path");
    assert!(accepted > done / 20, "too few accepted: {accepted}");
}

#[derive(Clone, Debug)]
enum Op {
    /// Replace the byte at (index mod len) with this byte.
    Flip(usize, u8),
    /// Cut the text at (index mod len).
    Truncate(usize),
    /// Swap two lines.
    SwapLines(usize, usize),
    /// Delete a line.
    DeleteLine(usize),
    /// Duplicate a line.
    DupLine(usize),
    /// Insert a token at (index mod len).
    Insert(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Flip(i, b)),
        any::<usize>().prop_map(Op::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::SwapLines(a, b)),
        any::<usize>().prop_map(Op::DeleteLine),
        any::<usize>().prop_map(Op::DupLine),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Op::Insert(i, t)),
    ]
}

fn apply(text: &str, ops: &[Op]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for op in ops {
        let n = bytes.len().max(1);
        match *op {
            Op::Flip(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % n] = b;
                }
            }
            Op::Truncate(i) => bytes.truncate(i % n),
            Op::Insert(i, t) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Op::SwapLines(..) | Op::DeleteLine(_) | Op::DupLine(_) => {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let m = lines.len();
                match *op {
                    Op::SwapLines(a, b) => lines.swap(a % m, b % m),
                    Op::DeleteLine(a) => {
                        lines.remove(a % m);
                    }
                    Op::DupLine(a) => lines.insert(a % m, lines[a % m]),
                    _ => {}
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Clone, Debug)]
enum Case {
    /// Arbitrary text.
    Raw(String),
    /// A seed (by index) with mutations applied.
    Mutated(usize, Vec<Op>),
}

/// The one-pass KDL reader either declines or gives exactly what the `kdl` crate path
/// gives (values, spans, map entries), with no diagnostics.
fn fast_kdl_agrees(text: &str) {
    let Some(fast) = lang::kdl::fast::parse(text) else {
        return;
    };
    let source = Source::new("fast.kdl", text);
    match lang::kdl::parse_with_crate(&source) {
        Ok((slow, diags)) => {
            assert!(
                diags.is_empty(),
                "fast reader accepted what the kdl path reports:\n{text}\n{}",
                diags.render_plain()
            );
            // Debug, not ==: tells -0.0 from 0.0.
            assert_eq!(
                format!("{fast:#?}"),
                format!("{slow:#?}"),
                "fast reader and kdl path differ on:\n{text}"
            );
        }
        Err(d) => panic!(
            "fast reader accepted what the kdl crate refuses:\n{text}\n{}",
            d.render_plain()
        ),
    }
}

/// Everything the front end does with a text; panics are what the fuzzer hunts.
fn exercise(name: &str, text: &str, base: &Path) {
    fast_kdl_agrees(text);
    for syntax in [Syntax::Kdl, Syntax::Yaml] {
        let ext = if syntax == Syntax::Kdl { "kdl" } else { "yaml" };
        let source = Source::new(format!("{name}.{ext}"), text);
        let program = match lang::compile_source(&source, syntax, base) {
            Ok(p) => {
                let _ = (dump::json(&p), dump::text(&p), dump::dot(&p));
                Some(p)
            }
            Err(d) => {
                assert!(!d.is_empty());
                let _ = d.render_plain();
                None
            }
        };
        if syntax == Syntax::Yaml {
            if let Err(d) = profile::parse(&source, program.as_ref()) {
                let _ = d.render_plain();
            }
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When a long run stops (`LOADPLAN_FUZZ_SECONDS`).
fn env_deadline() -> Option<Instant> {
    std::env::var("LOADPLAN_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(|s| Instant::now() + Duration::from_secs(s))
}

#[test]
fn the_front_end_never_panics() {
    let seeds = seeds();
    assert!(seeds.len() >= 3, "the bundled plans are seeds");
    let cases = env_number("LOADPLAN_FUZZ_CASES", 256);
    let deadline = env_deadline();
    let strategy = prop_oneof![
        1 => any::<String>().prop_map(Case::Raw),
        1 => "[ -~\n\t{}\"=#:\\[\\]-]{0,200}".prop_map(Case::Raw),
        2 => kdl_soup().prop_map(Case::Raw),
        6 => (0..seeds.len(), prop::collection::vec(op(), 1..6))
            .prop_map(|(i, ops)| Case::Mutated(i, ops)),
    ];
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let scratch = std::env::temp_dir();
    while done.load(Ordering::Relaxed) < cases && deadline.is_none_or(|d| Instant::now() < d) {
        let batch = (cases - done.load(Ordering::Relaxed)).min(1000) as u32;
        let mut runner = TestRunner::new(Config {
            cases: batch,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |case| {
            done.fetch_add(1, Ordering::Relaxed);
            match &case {
                Case::Raw(text) => exercise("fuzz", text, &scratch),
                Case::Mutated(i, ops) => {
                    let seed = &seeds[*i];
                    exercise(&seed.name, &apply(&seed.text, ops), &seed.base);
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            let shown = match &e {
                TestError::Fail(why, Case::Mutated(i, ops)) => format!(
                    "{why}\nseed {}\nops {ops:?}\ntext:\n{}",
                    seeds[*i].name,
                    apply(&seeds[*i].text, ops)
                ),
                other => format!("{other:?}"),
            };
            panic!("the front end panicked: {shown}");
        }
    }
    eprintln!(
        "fuzz: {} cases in {:.1}s",
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

// Regressions: inputs the fuzzer (or a review) found, kept so they stay fixed.

fn run_in_small_stack(f: impl FnOnce() + Send + 'static) {
    // Test threads have 2 MiB of stack; so do the worker threads of a real run.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic");
}

#[test]
fn deep_kdl_nesting_is_a_diagnostic_not_a_stack_overflow() {
    run_in_small_stack(|| {
        let text = "scenario \"s\" {\n".repeat(5_000);
        exercise("deep", &text, Path::new("."));
        let source = Source::new("deep.kdl", text);
        let err = lang::parse(&source, Syntax::Kdl).expect_err("too deep");
        assert!(err.render_plain().contains("nested more than"));
    });
}

#[test]
fn deep_yaml_nesting_is_a_diagnostic_not_a_stack_overflow() {
    run_in_small_stack(|| {
        let text = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
        exercise("deep", &text, Path::new("."));
        let text = format!("{}{}", "{a: ".repeat(5_000), "}".repeat(5_000));
        exercise("deep", &text, Path::new("."));
    });
}

#[test]
fn huge_durations_are_diagnostics_not_panics() {
    // `Duration::from_secs_f64` panics on values it cannot hold; 1e300 seconds did.
    for text in [
        "scenario \"s\" {\n    sleep 1e300\n    http GET \"/\"\n}\n",
        "scenario \"s\" {\n    sleep \"1e300\"\n    http GET \"/\"\n}\n",
        "scenario \"s\" {\n    think between=1e300 and=1e301\n    http GET \"/\"\n}\n",
    ] {
        let source = Source::new("huge.kdl", text);
        let err = lang::compile_source(&source, Syntax::Kdl, Path::new(".")).expect_err("too long");
        assert!(err.render_plain().contains("too long for a duration"));
    }
    assert!(loadplan::lang::check::parse_duration_str("1e300").is_err());
}

#[test]
fn multibyte_text_next_to_mistakes_renders() {
    // Carets computed inside values (JSON, regex, JSON path, template errors) must
    // land on character boundaries.
    for (name, text) in [
        (
            "j.kdl",
            "scenario \"s\" {\n    http POST \"/\" { json \"{\\\"é\\\": \\\"😀\\\",}\"; }\n}\n",
        ),
        (
            "j2.kdl",
            "scenario \"s\" {\n    http POST \"/\" { json \"[\\\"é\"; }\n}\n",
        ),
        (
            "r.yaml",
            "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, checks: [{ body-regex: \"é(😀\" }] }\n",
        ),
        (
            "p.yaml",
            "scenarios:\n  - name: s\n    steps:\n      - http: { method: GET, url: /, checks: [{ json: \"$.é[\" }] }\n",
        ),
        (
            "t.kdl",
            "scenario \"s\" {\n    http GET \"/é{{ 😀 }}\"\n}\n",
        ),
        (
            "u.kdl",
            "scenario \"é\" {\n    http GET \"/?q={{ ü }}\"\n}\n",
        ),
    ] {
        let syntax = Syntax::from_path(name).expect("extension");
        let source = Source::new(name, text);
        let err = lang::compile_source(&source, syntax, Path::new(".")).expect_err(name);
        assert!(err.render_plain().contains(name));
    }
}
