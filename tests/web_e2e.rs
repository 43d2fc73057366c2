//! End to end: `loadplan ui --demo` driven by a real headless Chromium through
//! `tests/e2e/ui.mjs` (playwright-core, no bundled browser): the Users box follows the live
//! count (in a second run too, not the first run's), the statistics sort by a clicked column,
//! both CSV downloads work, a failed run says why, and the page fits a 390 px phone.
//! Screenshots land in `target/e2e-screenshots/`.
//!
//! Needs node, Debian's `chromium` (or `LOADPLAN_CHROMIUM=/path`) and
//! `npm ci --prefix tests/e2e`. A missing piece FAILS the test with the install line: it
//! never passes silently.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Only the process this test started, by its handle.
        if let Err(e) = self.0.kill() {
            eprintln!("could not stop loadplan ui: {e}");
        }
        let _ = self.0.wait();
    }
}

fn require(what: &str, ok: bool, fix: &str) {
    assert!(
        ok,
        "the browser test needs {what}, which is missing.\nInstall: {fix}\n\
         (all at once, as root: bash scripts/setup.sh)"
    );
}

#[test]
fn the_ui_starts_watches_changes_stops_and_downloads_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require("node", node_ok, "apt-get install -y nodejs npm");
    let chromium = std::env::var_os("LOADPLAN_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    require(
        &format!("Chromium at {}", chromium.display()),
        chromium.exists(),
        "apt-get install -y chromium chromium-driver (or set LOADPLAN_CHROMIUM)",
    );
    require(
        "playwright-core in tests/e2e/node_modules",
        root.join("tests/e2e/node_modules/playwright-core").is_dir(),
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e",
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_loadplan"))
        .current_dir(root)
        .args(["ui", "plans/http.kdl", "--demo", "--seed", "1"])
        .args(["--ui-bind", "127.0.0.1:0"])
        .env_remove("LOADPLAN_UI_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadplan ui starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let _guard = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[loadplan] {line}");
            if let Some(url) = line.strip_prefix("ui listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = rx
        .recv_timeout(deadline - Instant::now())
        .expect("`ui listening on http://ADDR` on stderr");

    let shots = root.join("target/e2e-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let profile = shots.join(".profile");
    if profile.exists() {
        std::fs::remove_dir_all(&profile).expect("fresh browser profile");
    }
    let out = Command::new("node")
        .current_dir(root)
        .arg("tests/e2e/ui.mjs")
        .arg(format!("{url}/"))
        .arg(&shots)
        .env("LOADPLAN_CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{text}",
        shots.display()
    );
    for name in [
        "01-start.png",
        "02-running.png",
        "03-charts.png",
        "04-stopped.png",
        "05-phone.png",
        "06-sorted.png",
        "07-second-run.png",
        "08-failed-why.png",
    ] {
        assert!(shots.join(name).is_file(), "no screenshot {name}");
    }
}
