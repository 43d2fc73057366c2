//! Shared helpers for the `lang_*` integration tests: walking the repository's plans,
//! profiles and examples.

#![allow(dead_code)]

pub mod fault_server;
pub mod proc;

use std::path::{Path, PathBuf};

/// Every file under the given repo-relative folders (recursive, sorted), as
/// repo-relative paths. Missing folders are skipped.
pub fn walk(dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(PathBuf::from).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = dir.join(e.file_name());
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn ext(p: &Path) -> &str {
    p.extension().and_then(|e| e.to_str()).unwrap_or("")
}

pub fn is_yaml(p: &Path) -> bool {
    matches!(ext(p), "yaml" | "yml")
}

/// What a file in plans/, profiles/, examples/ or grammar/ is.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Kind {
    Plan,
    Profile,
    Other,
}

/// Anything under a `profiles/` folder is a profile; a `.kdl` file is a plan; a YAML
/// file elsewhere is a plan or profile when its first line names the matching
/// schema (`# yaml-language-server: $schema=…plan.schema.json`), else something else
/// (a Prometheus or Compose file in examples/).
pub fn kind(p: &Path) -> Kind {
    if p.components().any(|c| c.as_os_str() == "profiles") && is_yaml(p) {
        return Kind::Profile;
    }
    if ext(p) == "kdl" {
        return Kind::Plan;
    }
    if !is_yaml(p) {
        return Kind::Other;
    }
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    if first.contains("$schema=") && first.contains("plan.schema.json") {
        Kind::Plan
    } else if first.contains("$schema=") && first.contains("profile.schema.json") {
        Kind::Profile
    } else {
        Kind::Other
    }
}

/// The folders whose plans and profiles are the project's own and must be valid.
pub const SHIPPED: &[&str] = &["plans", "profiles", "examples", "grammar"];
