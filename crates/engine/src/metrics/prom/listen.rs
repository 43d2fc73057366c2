//! `--metrics [ADDR]` / `LOADPLAN_METRICS`: where the exporter listens, or off.

use std::net::SocketAddr;

/// The default listen address (metrics on 9646, opt-in).
pub const DEFAULT_ADDR: &str = "127.0.0.1:9646";

/// What `--metrics` / `LOADPLAN_METRICS` asked for: `None` is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

/// Parses a `--metrics` value: an address (`127.0.0.1:9646`, `0.0.0.0:9646`, `:9646` for every
/// interface), `1`/`true`/`on` for the default address, `0`/`false`/`off`/empty for off.
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "off" | "no" => Ok(Listen(None)),
        "1" | "true" | "on" | "yes" => default_addr().map(|a| Listen(Some(a))),
        _ => {
            let full = if t.starts_with(':') {
                format!("0.0.0.0{t}")
            } else {
                t.to_owned()
            };
            full.parse::<SocketAddr>()
                .map(|a| Listen(Some(a)))
                .map_err(|_| {
                    format!(
                        "`{s}` is not an address like 127.0.0.1:9646 (give the plan before \
                     --metrics, or write --metrics=ADDR)"
                    )
                })
        }
    }
}

fn default_addr() -> Result<SocketAddr, String> {
    DEFAULT_ADDR
        .parse()
        .map_err(|_| "bad default address".to_owned())
}
