//! Harness for running the client stack against real ZooKeeper servers.
//!
//! Servers are started and controlled by `scripts/zk-server` (a bash script around Debian's
//! `zookeeper` package; `scripts/zk-server install` installs it). Three kinds of servers:
//!
//! * [`shared_server`]: one standalone server for the whole test run, started outside the tests
//!   (`scripts/test` does it, or `eval "$(scripts/zk-server start)"`) and announced through the
//!   `ZK_TEST_SERVER`, `ZK_TEST_SERVER_DIR` and `ZK_TEST_SERVER_PID` environment variables. Tests
//!   sharing it must isolate themselves under a [`unique_path`].
//! * [`DedicatedServer`]: a standalone server owned by one test, for tests that stop, kill,
//!   restart or freeze it.
//! * [`Ensemble`]: a three-node quorum on loopback owned by one test.
//!
//! Nothing here skips a test: a missing server or a failing script is a panic, i.e. a test
//! failure, with a message saying what to do.
#![forbid(unsafe_code)]
// Test infrastructure: it waits on real servers, so it reads the clock.
#![allow(clippy::disallowed_methods)]

pub mod expiry;
pub mod kazoo;

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The lines `reader` yields (a child's stdout), read on a thread of their own so that a test
/// can wait for the next one with a timeout. The channel ends when the reader does.
pub fn line_channel(reader: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Timeout used by [`four_letter`] for connecting, writing and each read.
pub const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);

/// The root of the repository (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Path of the `scripts/zk-server` control script.
pub fn zk_server_script() -> PathBuf {
    repo_root().join("scripts").join("zk-server")
}

/// Sends a four-letter word (`ruok`, `srvr`, `mntr`, ...) to the server at `addr`
/// (`host:port`) and returns its whole reply, with a 5 s timeout ([`FOUR_LETTER_TIMEOUT`]).
///
/// A refused connection is an error of kind [`io::ErrorKind::ConnectionRefused`]; a server
/// that accepts the connection but does not answer (e.g. frozen) gives a `WouldBlock` or
/// `TimedOut` error.
pub fn four_letter(addr: &str, cmd: &str) -> io::Result<String> {
    four_letter_timeout(addr, cmd, FOUR_LETTER_TIMEOUT)
}

/// Like [`four_letter`], with `timeout` for connecting, writing and each read.
pub fn four_letter_timeout(addr: &str, cmd: &str, timeout: Duration) -> io::Result<String> {
    if cmd.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a four-letter word has four bytes, got {cmd:?}"),
        ));
    }
    let mut last_err = None;
    let mut stream = None;
    for sock_addr in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sock_addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let mut stream = match stream {
        Some(s) => s,
        None => {
            return Err(last_err.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{addr} resolves to nothing"),
                )
            }));
        }
    };
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(cmd.as_bytes())?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Polls `ruok` at `addr` until it answers `imok`; returns whether it did within `timeout`.
pub fn wait_for_imok(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let per_try = left
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(50));
        if matches!(four_letter_timeout(addr, "ruok", per_try), Ok(r) if r == "imok") {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client of `addr` with the 10 s session timeout the real-server tests use.
pub fn connect_to(addr: &str) -> zk_session::Client {
    zk_session::Client::builder(addr)
        .and_then(|b| b.session_timeout(Duration::from_secs(10)).connect())
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// A client of the shared server ([`connect_to`]).
pub fn connect_shared() -> zk_session::Client {
    connect_to(&shared_server().addr)
}

/// `path`'s children, sorted; none when `path` does not exist.
pub fn sorted_children(zk: &zk_session::Client, path: &str) -> Vec<String> {
    match zk.get_children(path) {
        Ok(mut c) => {
            c.sort();
            c
        }
        Err(zk_session::Error::NoNode) => Vec::new(),
        Err(e) => panic!("get_children {path}: {e}"),
    }
}

/// Whether `s` is lowercase hexadecimal digits only.
pub fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A unique absolute znode path `/{prefix}-{pid}-{nanos}-{counter}` for isolating a test's
/// znodes on a shared server (a leading `/` in `prefix` is dropped).
pub fn unique_path(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "/{}-{}-{}-{}",
        prefix.trim_start_matches('/'),
        std::process::id(),
        nanos,
        n
    )
}

/// The shared server announced by the environment (see [`shared_server`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRef {
    /// `host:port` of the server (`ZK_TEST_SERVER`).
    pub addr: String,
    /// Its `scripts/zk-server` directory (`ZK_TEST_SERVER_DIR`), if announced.
    pub dir: Option<PathBuf>,
    /// Its process id (`ZK_TEST_SERVER_PID`), if announced.
    pub pid: Option<u32>,
}

impl ServerRef {
    /// Sends a four-letter word to this server (see [`four_letter`]).
    pub fn four_letter(&self, cmd: &str) -> io::Result<String> {
        four_letter(&self.addr, cmd)
    }
}

/// The shared ZooKeeper server for this test run, from `ZK_TEST_SERVER` (`host:port`),
/// `ZK_TEST_SERVER_DIR` and `ZK_TEST_SERVER_PID`.
///
/// # Panics
///
/// If `ZK_TEST_SERVER` is unset or empty: the test needs a real server and is never skipped.
pub fn shared_server() -> ServerRef {
    let addr = std::env::var("ZK_TEST_SERVER")
        .ok()
        .filter(|a| !a.trim().is_empty());
    let Some(addr) = addr else {
        panic!(
            "this test needs a real ZooKeeper server, but ZK_TEST_SERVER is not set.\n\
             Run `scripts/test` (which starts one), or\n    \
             eval \"$(scripts/zk-server start)\"\n\
             and re-run (`scripts/zk-server install` installs the server if it is missing)."
        );
    };
    let dir = std::env::var_os("ZK_TEST_SERVER_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let pid = std::env::var("ZK_TEST_SERVER_PID")
        .ok()
        .and_then(|p| p.trim().parse().ok());
    ServerRef {
        addr: addr.trim().to_string(),
        dir,
        pid,
    }
}

/// Runs `scripts/zk-server ARGS...`, returning its output whatever the exit status.
fn run_script(args: &[&str]) -> Output {
    let script = zk_server_script();
    Command::new(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

/// Runs `scripts/zk-server ARGS...` and panics with its output if it fails.
fn run_script_ok(args: &[&str]) -> Output {
    let out = run_script(args);
    if !out.status.success() {
        panic!("{}", script_failure(args, &out));
    }
    out
}

fn script_failure(args: &[&str], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut msg = format!(
        "`scripts/zk-server {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        stderr,
        stdout
    );
    if stderr.contains("not found") || stderr.contains("install") {
        msg.push_str(
            "\nhint: run `scripts/zk-server install` to install the ZooKeeper server \
             (Debian package zookeeper) and a JRE",
        );
    }
    msg
}

/// The value of `export KEY=VALUE` in the script's stdout.
fn export_value(stdout: &[u8], key: &str) -> Option<String> {
    let prefix = format!("export {key}=");
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix).map(str::to_string))
}

fn required_export(stdout: &[u8], key: &str) -> String {
    export_value(stdout, key).unwrap_or_else(|| {
        panic!(
            "scripts/zk-server printed no `export {key}=...`; its stdout:\n{}",
            String::from_utf8_lossy(stdout)
        )
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 server path {}", p.display()))
}

fn read_pid(dir: &Path) -> u32 {
    let f = dir.join("pid");
    let s =
        std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
    s.trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad pid {s:?} in {}: {e}", f.display()))
}

fn read_addr(dir: &Path) -> String {
    let f = dir.join("port");
    let s =
        std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
    format!("127.0.0.1:{}", s.trim())
}

/// Kills everything in `dir` and deletes it (for `Drop`: reports problems, never panics).
fn kill_and_remove(dir: &Path) {
    let Some(d) = dir.to_str() else { return };
    match Command::new(zk_server_script())
        .args(["kill", d, "--rm"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!("{}", script_failure(&["kill", d, "--rm"], &out)),
        Err(e) => eprintln!("cannot run scripts/zk-server kill {d}: {e}"),
    }
    if dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A standalone server owned by one test (for tests that stop, kill, restart or freeze it),
/// started with `scripts/zk-server start`. Dropping it kills the server and deletes its
/// directory; if the test process dies without dropping it, the script's watchdog does that.
#[derive(Debug)]
pub struct DedicatedServer {
    addr: String,
    dir: PathBuf,
    pid: AtomicU32,
}

impl DedicatedServer {
    /// Starts a standalone server with `tickTime` = `tick_ms` (session timeouts may range from
    /// `2 * tick_ms` to 60 s) on a free loopback port, and waits until it answers `imok`.
    ///
    /// # Panics
    ///
    /// If the server cannot be started; the message holds the script's stderr (and the server
    /// logs), with a hint to run `scripts/zk-server install` if the server is not installed.
    pub fn start(tick_ms: u32) -> DedicatedServer {
        Self::start_with(tick_ms, &[])
    }

    /// Like [`start`](Self::start), with extra `key=value` lines for `zoo.cfg`
    /// (e.g. `"globalOutstandingLimit=10"`).
    pub fn start_with(tick_ms: u32, config: &[&str]) -> DedicatedServer {
        Self::start_with_jvm(tick_ms, config, &[])
    }

    /// Like [`start_with`](Self::start_with), with extra JVM options for the server process
    /// (e.g. `"-Dznode.container.checkIntervalMs=100"`: some server settings are only read
    /// from system properties, not from `zoo.cfg`).
    pub fn start_with_jvm(tick_ms: u32, config: &[&str], jvm_opts: &[&str]) -> DedicatedServer {
        let tick = tick_ms.to_string();
        let owner = std::process::id().to_string();
        let mut args = vec!["start", "--tick", &tick, "--owner", &owner];
        for kv in config {
            args.push("--set");
            args.push(kv);
        }
        for opt in jvm_opts {
            args.push("--jvm-opt");
            args.push(opt);
        }
        let out = run_script_ok(&args);
        let addr = required_export(&out.stdout, "ZK_TEST_SERVER");
        let dir = PathBuf::from(required_export(&out.stdout, "ZK_TEST_SERVER_DIR"));
        let pid = required_export(&out.stdout, "ZK_TEST_SERVER_PID")
            .parse()
            .unwrap_or_else(|e| panic!("bad ZK_TEST_SERVER_PID: {e}"));
        DedicatedServer {
            addr,
            dir,
            pid: AtomicU32::new(pid),
        }
    }

    /// `127.0.0.1:PORT`; the port stays the same across [`restart`](Self::restart).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The server's directory (config, data, logs, pid).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the current server process (changes on restart).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Stops the server gracefully (SIGTERM, SIGKILL after 10 s); returns once the process
    /// and its port are gone. Data is kept for [`restart`](Self::restart).
    pub fn stop(&self) {
        run_script_ok(&["stop", path_str(&self.dir)]);
    }

    /// Kills the server with SIGKILL; returns once the process and its port are gone.
    pub fn kill(&self) {
        run_script_ok(&["kill", path_str(&self.dir)]);
    }

    /// Starts the server again with the same command line, port and data (stopping it first
    /// if it is running, thawing it if frozen) and waits until it answers `imok`. Sessions
    /// survive (their expiry restarts) because the data directory persists.
    pub fn restart(&self) {
        run_script_ok(&["restart", path_str(&self.dir)]);
        self.pid.store(read_pid(&self.dir), Ordering::SeqCst);
    }

    /// Freezes the server process (SIGSTOP): connections are accepted by the kernel but
    /// nothing is answered, and sessions do not expire until [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        run_script_ok(&["freeze", path_str(&self.dir)]);
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        run_script_ok(&["thaw", path_str(&self.dir)]);
    }

    /// The server's reply to a four-letter word, or an empty string if it does not answer
    /// (see [`four_letter`] for the error).
    pub fn four_letter(&self, cmd: &str) -> String {
        four_letter(&self.addr, cmd).unwrap_or_default()
    }
}

impl Drop for DedicatedServer {
    fn drop(&mut self) {
        kill_and_remove(&self.dir);
    }
}

/// A three-node ZooKeeper ensemble on loopback owned by one test, started with
/// `scripts/zk-server ensemble start` (tickTime 200 ms, sub-second elections). Nodes are
/// indexed `0..3` (directories `node1..node3`). Dropping it kills all nodes and deletes the
/// directory.
#[derive(Debug)]
pub struct Ensemble {
    connect: String,
    dir: PathBuf,
    nodes: Vec<PathBuf>,
    addrs: Vec<String>,
}

impl Ensemble {
    /// Starts three nodes and waits until all answer `imok` and one is the leader and two are
    /// followers. `readonly` enables read-only mode (`-Dreadonlymode.enabled=true`): a node cut
    /// off from the quorum then serves reads to clients that allow read-only connections.
    ///
    /// # Panics
    ///
    /// If the ensemble cannot be started (with the script's stderr and the nodes' logs).
    pub fn start(readonly: bool) -> Ensemble {
        let owner = std::process::id().to_string();
        let mut args = vec!["ensemble", "start", "--owner", &owner];
        if readonly {
            args.push("--readonly");
        }
        let out = run_script_ok(&args);
        let connect = required_export(&out.stdout, "ZK_TEST_ENSEMBLE");
        let dir = PathBuf::from(required_export(&out.stdout, "ZK_TEST_ENSEMBLE_DIR"));
        let nodes: Vec<PathBuf> = (1..=3).map(|n| dir.join(format!("node{n}"))).collect();
        let addrs = nodes.iter().map(|d| read_addr(d)).collect();
        Ensemble {
            connect,
            dir,
            nodes,
            addrs,
        }
    }

    /// The client connect string `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// The ensemble's directory (holding `node1..node3`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes' directories, index `i` is `node{i+1}`.
    pub fn node_dirs(&self) -> &[PathBuf] {
        &self.nodes
    }

    /// The client address `127.0.0.1:PORT` of node `i`.
    pub fn node_addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }

    /// The process id of node `i`'s current process.
    pub fn node_pid(&self, i: usize) -> u32 {
        read_pid(&self.nodes[i])
    }

    /// Node `i`'s `Mode:` from `srvr` (`leader`, `follower`, `read-only`, ...), or `None` if
    /// it is down, frozen or not serving.
    pub fn node_mode(&self, i: usize) -> Option<String> {
        let reply = four_letter_timeout(&self.addrs[i], "srvr", Duration::from_secs(2)).ok()?;
        reply
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// The index of the node whose `srvr` currently says `Mode: leader`, if any.
    pub fn leader_index(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.node_mode(i).as_deref() == Some("leader"))
    }

    /// Polls [`leader_index`](Self::leader_index) until there is a leader or `timeout` passes.
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader_index() {
                return Some(i);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until node `i` reports one of `modes` (e.g. `&["leader", "follower"]`); returns
    /// whether it did within `timeout`.
    pub fn wait_for_mode(&self, i: usize, modes: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .node_mode(i)
                .is_some_and(|m| modes.contains(&m.as_str()))
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops node `i` gracefully (SIGTERM, SIGKILL after 10 s).
    pub fn stop_node(&self, i: usize) {
        run_script_ok(&["stop", path_str(&self.nodes[i])]);
    }

    /// Kills node `i` with SIGKILL; returns once it and its client port are gone.
    pub fn kill_node(&self, i: usize) {
        run_script_ok(&["kill", path_str(&self.nodes[i])]);
    }

    /// Restarts node `i` with the same command line, ports and data (stopping it first if it
    /// runs) and waits until it answers `imok`. It may not be serving yet: it still has to
    /// join a quorum (see [`wait_for_mode`](Self::wait_for_mode)).
    pub fn restart_node(&self, i: usize) {
        run_script_ok(&["restart", path_str(&self.nodes[i])]);
    }

    /// Freezes node `i` (SIGSTOP).
    pub fn freeze_node(&self, i: usize) {
        run_script_ok(&["freeze", path_str(&self.nodes[i])]);
    }

    /// Resumes a frozen node `i` (SIGCONT).
    pub fn thaw_node(&self, i: usize) {
        run_script_ok(&["thaw", path_str(&self.nodes[i])]);
    }

    /// Node `i`'s reply to a four-letter word, or an empty string if it does not answer.
    pub fn four_letter(&self, i: usize, cmd: &str) -> String {
        four_letter(&self.addrs[i], cmd).unwrap_or_default()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        kill_and_remove(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_paths_differ_and_are_absolute() {
        let a = unique_path("harness");
        let b = unique_path("/harness");
        assert_ne!(a, b);
        assert!(a.starts_with("/harness-"), "{a}");
        assert!(b.starts_with("/harness-"), "{b}");
        assert!(!a[1..].contains('/'), "{a}");
    }

    #[test]
    fn export_lines_are_parsed() {
        let out = b"export ZK_TEST_SERVER=127.0.0.1:1234\nexport ZK_TEST_SERVER_DIR=/tmp/x y\n";
        assert_eq!(
            export_value(out, "ZK_TEST_SERVER").as_deref(),
            Some("127.0.0.1:1234")
        );
        assert_eq!(
            export_value(out, "ZK_TEST_SERVER_DIR").as_deref(),
            Some("/tmp/x y")
        );
        assert_eq!(export_value(out, "ZK_TEST_SERVER_PID"), None);
    }

    #[test]
    fn four_letter_rejects_long_words() {
        let e = four_letter("127.0.0.1:1", "ruokk").expect_err("five letters");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
