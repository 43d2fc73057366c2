//! Feeders: data files read and checked while compiling, rows kept in the program.

use std::sync::Arc;

use super::Compiler;
use crate::ast::Node;
use crate::diag::{Code, did_you_mean};
use crate::ir::{FeedMode, Feeder};

impl Compiler<'_> {
    pub(super) fn feeder(&mut self, n: &Node, existing: &[Feeder]) -> Option<Feeder> {
        let name = n.str_arg(0)?.to_string();
        let file_v = n.prop("file")?;
        let file = file_v.as_str()?.to_string();
        if existing.iter().any(|f| f.name == name) {
            let span = n.arg(0).map_or(n.name_span, |v| v.span);
            self.err(
                Code::DuplicateName,
                span,
                format!("feeder `{name}` is defined twice"),
                "second definition",
                "feeder names must be unique",
            );
            return None;
        }
        let mode = match n.prop("mode") {
            None => FeedMode::Sequential,
            Some(v) => match v.as_str() {
                Some("sequential") => FeedMode::Sequential,
                Some("random") => FeedMode::Random,
                Some("unique") => FeedMode::Unique,
                Some(other) => {
                    let help = did_you_mean(other, ["sequential", "random", "unique"])
                        .unwrap_or_else(|| "one of: sequential, random, unique".into());
                    self.err(
                        Code::BadValue,
                        v.span,
                        format!("unknown feeder mode `{other}`"),
                        "unknown mode",
                        help,
                    );
                    FeedMode::Sequential
                }
                None => return None,
            },
        };
        let format = match n.str_prop("format") {
            Some(f) => f.to_string(),
            None if file.to_ascii_lowercase().ends_with(".json") => "json".into(),
            None => "csv".into(),
        };
        if format != "csv" && format != "json" {
            if let Some(v) = n.prop("format") {
                self.err(
                    Code::BadValue,
                    v.span,
                    format!("unknown feeder format `{format}`"),
                    "unknown format",
                    "one of: csv, json",
                );
            }
            return None;
        }
        let path = self.base.join(&file);
        // Only regular files: a device or pipe (`/dev/zero`) would never finish.
        let read = match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err("not a regular file".to_string()),
            Ok(_) => std::fs::read_to_string(&path).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let text = match read {
            Ok(t) => t,
            Err(e) => {
                self.err(
                    Code::MissingFile,
                    file_v.span,
                    format!("cannot read feeder file `{}`: {e}", path.display()),
                    "file not readable",
                    format!(
                        "feeder paths are relative to the plan file's folder ({})",
                        if self.base.as_os_str().is_empty() {
                            ".".to_string()
                        } else {
                            self.base.display().to_string()
                        }
                    ),
                );
                return None;
            }
        };
        let rows = match load_rows(&text, &format) {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => {
                self.err(
                    Code::BadFeeder,
                    file_v.span,
                    format!("feeder file `{file}` has no rows"),
                    "empty",
                    "a feeder needs at least one row",
                );
                return None;
            }
            Err(e) => {
                self.err(
                    Code::BadFeeder,
                    file_v.span,
                    format!("feeder file `{file}`: {e}"),
                    "malformed data",
                    "CSV needs a header row; JSON must be an array of objects",
                );
                return None;
            }
        };
        Some(Feeder {
            name,
            file,
            mode,
            rows: Arc::new(rows),
        })
    }
}

/// Rows of a feeder file as JSON objects.
pub fn load_rows(
    text: &str,
    format: &str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    if format == "json" {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let arr = v.as_array().ok_or("expected a JSON array of objects")?;
        arr.iter()
            .map(|row| {
                row.as_object()
                    .cloned()
                    .ok_or_else(|| "every row must be a JSON object".to_string())
            })
            .collect()
    } else {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| e.to_string())?;
            let mut m = serde_json::Map::new();
            for (h, v) in headers.iter().zip(rec.iter()) {
                m.insert(h.to_string(), serde_json::Value::String(v.to_string()));
            }
            rows.push(m);
        }
        Ok(rows)
    }
}
