//! The `loadplan` binary as a child process for the distributed tests (`dist_*`):
//! spawning a master or worker, waiting for a stderr line, reading its output.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped when dropped; stderr lines are streamed.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Proc {
    /// `loadplan ARGS` with the test's environment minus `LOADPLAN_SECRET`.
    pub fn spawn(args: &[&str]) -> Proc {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"));
        cmd.args(args).env_remove("LOADPLAN_SECRET");
        Proc::start(cmd)
    }

    /// `loadplan ARGS` with exactly `env` (nothing inherited).
    pub fn spawn_env(args: &[String], env: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("loadplan"));
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        Proc::start(cmd)
    }

    fn start(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loadplan");
        let (tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let all = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                all.lock().expect("stderr").push_str(&format!("{line}\n"));
                tx.send(line).ok();
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let stdout = Some(std::thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).ok();
            s
        }));
        Proc {
            child,
            lines,
            stderr,
            stdout,
        }
    }

    /// The first stderr line containing `pattern` (within `limit`).
    pub fn wait_line(&self, pattern: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(pattern) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!(
            "no `{pattern}` on stderr within {limit:?}:\n{}",
            self.stderr.lock().expect("stderr")
        );
    }

    /// A master's address, from its `master listening on ADDR` line.
    pub fn master_address(&self) -> String {
        let line = self.wait_line("master listening on", Duration::from_secs(30));
        line.rsplit(' ')
            .next()
            .expect("an address")
            .trim()
            .to_string()
    }

    /// `n` quiet workers named `w0`, `w1`, … joining the master at `addr` with `secret`.
    pub fn workers(addr: &str, secret: &str, n: usize) -> Vec<Proc> {
        (0..n)
            .map(|i| {
                Proc::spawn(&[
                    "worker",
                    "--master",
                    addr,
                    "--secret",
                    secret,
                    "--name",
                    &format!("w{i}"),
                    "--quiet",
                ])
            })
            .collect()
    }

    /// Waits for the exit (within `limit`): status, stdout, stderr.
    pub fn finish(&mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {limit:?}:\n{}",
                self.stderr.lock().expect("stderr")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = self
            .stdout
            .take()
            .map(|h| h.join().expect("stdout reader"))
            .unwrap_or_default();
        // The stderr reader ends with the pipe; give it a moment to drain.
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().expect("stderr").clone();
        (status, out, err)
    }

    /// Peak resident memory of the process (`VmHWM`), in kB.
    pub fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status (Linux)");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line")
    }
}
