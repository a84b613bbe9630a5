//! `zkctl` (crates/zkctl) end to end: every command and every documented exit code, run as a
//! subprocess against the real shared server (a dedicated one for TTL and container reaping),
//! including a kazoo process (`/usr/bin/python3`, Debian's kazoo) holding a lock while
//! `zkctl lock` waits for it, and a real session expiry while a command runs.
//!
//! # Which `zkctl` binary
//!
//! Cargo only exposes `CARGO_BIN_EXE_<name>` to tests of the package that owns the binary, and
//! this package does not own `zkctl`. So [`zkctl_bin`] builds it once per test process with the
//! same cargo (`$CARGO`) and the same profile and target directory as this test binary (found
//! from `std::env::current_exe()`: `<target-dir>/<profile>/deps/zkctl-<hash>`), i.e. it honours
//! `CARGO_TARGET_DIR` and `--release`, and always runs a current `zkctl`. Set `ZKCTL` to a
//! binary's path to use that one instead (no build).

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use zk_integration_tests::kazoo::Kazoo;
use zk_integration_tests::{DedicatedServer, line_channel, shared_server, unique_path};
use zk_session::{Acl, Client, CreateMode, CreateOptions};

// ---------------------------------------------------------------------------------------------
// Running zkctl

/// The `zkctl` binary, built on first use (see the module docs).
fn zkctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("ZKCTL").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "ZKCTL={} is not a file", p.display());
            return p;
        }
        let exe = std::env::current_exe().unwrap();
        // <target-dir>/<profile>/deps/<test binary>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| panic!("unexpected test binary location {}", exe.display()));
        let target_dir = profile_dir.parent().unwrap();
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "zkctl", "--target-dir"])
            .arg(target_dir)
            .current_dir(zk_integration_tests::repo_root());
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let out = build
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo to build zkctl: {e}"));
        assert!(
            out.status.success(),
            "`cargo build -p zkctl` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("zkctl");
        assert!(
            bin.is_file(),
            "built zkctl, but {} is missing",
            bin.display()
        );
        bin
    })
}

/// `zkctl` with a clean environment for it (no `ZK_SERVERS`).
fn zkctl_command() -> Command {
    let mut c = Command::new(zkctl_bin());
    c.env_remove("ZK_SERVERS");
    c
}

fn server() -> String {
    shared_server().addr
}

/// A finished run.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "zkctl failed: {self:?}");
        assert_eq!(
            self.stderr, "",
            "zkctl succeeded but wrote to stderr: {self:?}"
        );
        &self.stdout
    }

    /// Exit `code` with exactly one line on stderr, `zkctl: ...` containing `needle`.
    #[track_caller]
    fn fails(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:?}");
        assert!(
            self.stderr.starts_with("zkctl: ") && self.stderr.ends_with('\n'),
            "stderr is not a `zkctl: ...` line: {self:?}"
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "more than one line: {self:?}"
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:?}"
        );
        self
    }
}

/// Exit code of a status, 128 + signal when killed (as a shell reports it).
fn code_of(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().or(st.signal().map(|s| 128 + s)).unwrap()
}

/// Read a pipe to the end on a thread.
fn collect(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Run `cmd` to completion (killed and a panic after 30 s).
fn run_command(mut cmd: Command) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        code: code_of(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `zkctl ARGS...` (no `--server`).
fn zkctl_raw(args: &[&str]) -> Out {
    let mut c = zkctl_command();
    c.args(args);
    run_command(c)
}

/// `zkctl --server <shared server> ARGS...`
fn zkctl(args: &[&str]) -> Out {
    let mut c = zkctl_command();
    c.arg("--server").arg(server()).args(args);
    run_command(c)
}

/// A `zkctl` running in the background, its stdout read line by line.
struct Bg {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    what: String,
}

impl Bg {
    /// `zkctl --server <shared server> ARGS...` in the background.
    fn spawn(args: &[&str]) -> Bg {
        let mut c = zkctl_command();
        c.arg("--server").arg(server()).args(args);
        Bg::spawn_command(c, format!("zkctl {}", args.join(" ")))
    }

    fn spawn_command(mut c: Command, what: String) -> Bg {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        let lines = line_channel(stdout);
        Bg {
            child,
            lines,
            stderr: Some(stderr),
            what,
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The next stdout line, within 15 s.
    #[track_caller]
    fn line(&self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(15)) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("{}: no output within 15 s", self.what),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: stdout closed (exited?)", self.what)
            }
        }
    }

    /// No stdout line, and still running, for `d`.
    #[track_caller]
    fn quiet_for(&mut self, d: Duration) {
        match self.lines.recv_timeout(d) {
            Ok(l) => panic!("{}: said {l:?} too early", self.what),
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(50));
                panic!("{}: exited early: {:?}", self.what, self.child.try_wait())
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "{}: exited early",
            self.what
        );
    }

    fn signal(&self, sig: &str) {
        signal(&self.pid(), sig);
    }

    /// Send `sig` every 200 ms until it exits (at most 5 s): robust even if the first signal
    /// arrives before the command is ready for it. The exit code and stderr.
    #[track_caller]
    fn interrupt(&mut self, sig: &str) -> (i32, String) {
        for _ in 0..25 {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            self.signal(sig);
            std::thread::sleep(Duration::from_millis(200));
        }
        self.wait(Duration::from_secs(1))
    }

    /// Wait (at most `within`) for the exit; the exit code and stderr.
    #[track_caller]
    fn wait(&mut self, within: Duration) -> (i32, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let err = self
                    .stderr
                    .take()
                    .map(|h| h.join().unwrap())
                    .unwrap_or_default();
                return (code_of(st), err);
            }
            if Instant::now() > deadline {
                panic!("{}: still running after {within:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The remaining stdout lines (after the exit).
    fn rest(&self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            v.push(l);
        }
        v
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: &str, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// `ls PATH` as sorted names (empty when the node is missing).
fn children(path: &str) -> Vec<String> {
    let out = zkctl(&["ls", path]);
    if out.code == 1 {
        return Vec::new();
    }
    out.ok().lines().map(str::to_owned).collect()
}

/// A fresh directory for marker files.
fn temp_dir(name: &str) -> PathBuf {
    let d =
        std::env::temp_dir().join(unique_path(&format!("zkctl-{name}")).trim_start_matches('/'));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Wait until some session has a data watch on `path` (the server's `wchp`, which lists no
/// child watches): a background zkctl is then really waiting, e.g. for a barrier's removal.
#[track_caller]
fn wait_watched(path: &str) {
    let watched = || {
        zk_integration_tests::four_letter(&server(), "wchp")
            .is_ok_and(|w| w.lines().any(|l| l == path))
    };
    assert!(
        eventually(Duration::from_secs(10), watched),
        "nobody watches {path}"
    );
}

/// A free (closed) loopback port.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Poll `f` every 50 ms until it holds or `within` passes.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Help, bad usage (exit 2), connection failure (exit 4)

#[test]
fn help_lists_commands_and_exit_codes() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = zkctl_raw(args);
        let text = out.ok();
        for word in [
            "ls PATH",
            "watch PATH",
            "lock PATH",
            "elect PATH",
            "semaphore PATH",
            "lease PATH",
            "queue put",
            "counter get",
            "barrier create",
            "double-barrier PATH",
            "party join",
            "Exit codes",
        ] {
            assert!(text.contains(word), "help lacks {word:?}:\n{text}");
        }
        // every exit code is documented
        for code in 0..=5 {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
                "help does not document exit code {code}:\n{text}"
            );
        }
    }
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    let root = unique_path("zkctl-usage");
    let r = root.as_str();
    let cases: &[(&[&str], &str)] = &[
        (&["frob", "/x"], "unknown command \"frob\""),
        (&["ls"], "missing PATH"),
        (&["ls", "/", "--bogus"], "unknown option --bogus"),
        (&["ls", "/", "--bogus", "value"], "unknown option --bogus"),
        (&["get", "no-slash"], "invalid path"),
        (&["create", "/a//b"], "invalid path"),
        (&["set", r], "missing DATA"),
        (&["set", r, "x", "--version", "abc"], "invalid number"),
        (&["rm", r, "--recursive", "--version", "1"], "--version"),
        (&["create", r, "--ephemeral", "--container"], "--container"),
        (&["create", r, "--ttl", "soon"], "invalid duration"),
        (&["lock", r, "--read", "--write"], "exclude each other"),
        (&["lock", r, "--timeout"], "--timeout needs a value"),
        (&["lock", r, "--timeout", "5d"], "invalid duration"),
        (&["semaphore", r, "--", "true"], "--max"),
        (&["lease", r], "--duration"),
        (&["queue", "frob", r], "expected put or get"),
        (
            &["queue", "put", r, "x", "--priority", "1000"],
            "--priority",
        ),
        (&["counter", "add", r], "missing N"),
        (&["counter", "add", r, "x"], "integer"),
        (&["counter", "frob", r], "expected get, add or reset"),
        (&["barrier", "frob", r], "expected create, wait or remove"),
        (&["double-barrier", r], "--n"),
        (&["party", "frob", r], "expected join or members"),
        (&["elect", r, "--frob"], "unknown option --frob"),
    ];
    for (args, needle) in cases {
        zkctl(args).fails(2, needle);
    }
    // Global options.
    zkctl_raw(&["--server"]).fails(2, "--server needs a value");
    zkctl_raw(&["--server", &server()]).fails(2, "COMMAND");
    zkctl_raw(&["--session-timeout", "x", "ls", "/"]).fails(2, "invalid duration");
    zkctl_raw(&["--server", &server(), "--auth", "nocolon", "ls", "/"]).fails(2, "--auth");
    // Nothing was created by any of this.
    zkctl(&["stat", r]).fails(1, "no node");
    // A command that cannot be run is bad usage too (after taking and releasing the lock).
    let l = format!("{r}-lock");
    zkctl(&["lock", &l, "--", "/nonexistent/command"]).fails(2, "cannot run");
    assert_eq!(children(&l), Vec::<String>::new());
}

#[test]
fn connection_failure_exits_4() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let t0 = Instant::now();
    let mut c = zkctl_command();
    c.args(["--server", &addr, "--session-timeout", "1s", "ls", "/"]);
    run_command(c).fails(4, "cannot connect");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // Recipes too.
    let mut c = zkctl_command();
    c.args([
        "--server",
        &addr,
        "--session-timeout",
        "1s",
        "lock",
        "/x",
        "--",
        "true",
    ]);
    run_command(c).fails(4, &addr);
    // ZK_SERVERS is the default server.
    let mut c = zkctl_command();
    c.env("ZK_SERVERS", &addr)
        .args(["--session-timeout", "1s", "get", "/"]);
    run_command(c).fails(4, &addr);
}

// ---------------------------------------------------------------------------------------------
// Data commands

#[test]
fn data_commands_and_their_failures() {
    let root = unique_path("zkctl-data");
    let r = root.as_str();
    assert_eq!(zkctl(&["create", r, "hello"]).ok(), format!("{r}\n"));
    assert_eq!(zkctl(&["get", r]).ok(), "hello\n");
    let stat = zkctl(&["stat", r]);
    let stat = stat.ok();
    for field in [
        "cZxid = 0x",
        "dataVersion = 0",
        "dataLength = 5",
        "numChildren = 0",
    ] {
        assert!(stat.contains(field), "stat lacks {field:?}:\n{stat}");
    }

    // set, with and without a version check
    zkctl(&["set", r, "v1", "--version", "7"]).fails(1, "bad version");
    zkctl(&["set", r, "v1", "--version", "0"]).ok();
    zkctl(&["set", r, "v2"]).ok();
    assert_eq!(zkctl(&["get", r]).ok(), "v2\n");
    assert!(zkctl(&["stat", r]).ok().contains("dataVersion = 2"));

    // children, sorted; -s adds the stat
    let b = format!("{r}/b");
    let a = format!("{r}/a");
    assert_eq!(zkctl(&["create", &b]).ok(), format!("{b}\n"));
    zkctl(&["create", &a, "x"]).ok();
    zkctl(&["create", &format!("{a}/deep"), "y"]).ok();
    assert_eq!(zkctl(&["ls", r]).ok(), "a\nb\n");
    let ls = zkctl(&["ls", r, "-s"]);
    let ls = ls.ok();
    assert!(ls.starts_with("a\nb\ncZxid = 0x"), "{ls}");
    assert!(ls.contains("numChildren = 2"), "{ls}");
    assert_eq!(zkctl(&["get", &b]).ok(), "\n");
    assert_eq!(
        zkctl(&["tree", r]).ok(),
        format!("{r}\n  a\n    deep\n  b\n")
    );

    // sequential nodes get the 10-digit suffix
    let out = zkctl(&["create", &format!("{r}/seq-"), "--sequential"]);
    let created = out.ok().trim_end().to_owned();
    let suffix = created.strip_prefix(&format!("{r}/seq-")).unwrap();
    assert_eq!(suffix.len(), 10, "{created}");
    assert!(suffix.bytes().all(|c| c.is_ascii_digit()), "{created}");
    // an ephemeral node lives as long as zkctl's session: gone once it exits
    let e = format!("{r}/eph");
    assert_eq!(zkctl(&["create", &e, "--ephemeral"]).ok(), format!("{e}\n"));
    zkctl(&["get", &e]).fails(1, "no node");
    let out = zkctl(&[
        "create",
        &format!("{r}/eseq-"),
        "--ephemeral",
        "--sequential",
    ]);
    assert!(out.ok().starts_with(&format!("{r}/eseq-00")), "{out:?}");
    // containers and TTL nodes are created (their reaping: container_and_ttl_nodes_are_reaped)
    zkctl(&["create", &format!("{r}/container"), "--container"]).ok();
    zkctl(&["create", &format!("{r}/ttl"), "--ttl", "1h"]).ok();
    zkctl(&[
        "create",
        &format!("{r}/ttlseq-"),
        "--ttl",
        "1h",
        "--sequential",
    ])
    .ok();

    // failures: exit 1, one line naming the command and path
    zkctl(&["create", r]).fails(1, &format!("create {r}: node exists"));
    zkctl(&["create", &format!("{r}/no/parent")]).fails(1, "no node");
    zkctl(&["get", &format!("{r}/missing")]).fails(1, &format!("get {r}/missing: no node"));
    zkctl(&["stat", &format!("{r}/missing")]).fails(1, "no node");
    zkctl(&["set", &format!("{r}/missing"), "x"]).fails(1, "no node");
    zkctl(&["ls", &format!("{r}/missing")]).fails(1, "no node");
    zkctl(&["tree", &format!("{r}/missing")]).fails(1, "no node");
    zkctl(&["rm", &format!("{r}/missing")]).fails(1, "no node");
    zkctl(&["rm", r]).fails(1, &format!("rm {r}: node not empty"));
    zkctl(&["rm", &b, "--version", "3"]).fails(1, "bad version");
    zkctl(&["rm", &b, "--version", "0"]).ok();
    zkctl(&["rm", r, "--recursive"]).ok();
    zkctl(&["stat", r]).fails(1, "no node");
}

#[test]
fn chroot_and_default_server() {
    let root = unique_path("zkctl-chroot");
    let r = root.as_str();
    zkctl(&["create", r]).ok();
    let chrooted = format!("{}{r}", server());
    let mut c = zkctl_command();
    c.args(["--server", &chrooted, "create", "/inside", "data"]);
    // paths are relative to the chroot, in and out
    assert_eq!(run_command(c).ok(), "/inside\n");
    assert_eq!(zkctl(&["get", &format!("{r}/inside")]).ok(), "data\n");
    let mut c = zkctl_command();
    c.args(["--server", &chrooted, "ls", "/"]);
    assert_eq!(run_command(c).ok(), "inside\n");
    // ZK_SERVERS (with a chroot) when there is no --server
    let mut c = zkctl_command();
    c.env("ZK_SERVERS", &chrooted).args(["get", "/inside"]);
    assert_eq!(run_command(c).ok(), "data\n");
    zkctl(&["rm", r, "--recursive"]).ok();
}

#[test]
fn auth_digest_reads_an_acl_protected_node() {
    let root = unique_path("zkctl-auth");
    let zk = Client::builder(&server())
        .unwrap()
        .auth("digest", &b"alice:secret"[..])
        .connect()
        .unwrap();
    let opts = CreateOptions {
        acl: Acl::creator_all(),
        ..CreateOptions::new(CreateMode::Persistent)
    };
    zk.create(&root, b"classified", &opts).unwrap();
    zkctl(&["get", &root]).fails(1, &format!("get {root}: "));
    let with = |cred: &str, args: &[&str]| {
        let mut c = zkctl_command();
        c.args(["--server", &server(), "--auth", cred]).args(args);
        run_command(c)
    };
    with("digest:alice:wrong", &["get", &root]).fails(1, &root);
    assert_eq!(
        with("digest:alice:secret", &["get", &root]).ok(),
        "classified\n"
    );
    with("digest:alice:secret", &["set", &root, "new"]).ok();
    with("digest:alice:secret", &["rm", &root]).ok();
    zkctl(&["stat", &root]).fails(1, "no node");
}

#[test]
fn watch_streams_events_until_sigterm() {
    let root = unique_path("zkctl-watch");
    let r = root.as_str();
    zkctl(&["create", r]).ok();
    let mut w = Bg::spawn(&["watch", r, "--recursive"]);
    // The watch is set some time after the spawn: poke until its first event shows up.
    let mut first = None;
    for i in 0..100 {
        zkctl(&["set", r, &format!("probe{i}")]).ok();
        if let Ok(l) = w.lines.recv_timeout(Duration::from_millis(100)) {
            first = Some(l);
            break;
        }
    }
    assert_eq!(first.unwrap(), format!("NodeDataChanged {r}"));
    while w.lines.recv_timeout(Duration::from_millis(300)).is_ok() {}
    let kid = format!("{r}/kid");
    zkctl(&["create", &kid]).ok();
    zkctl(&["set", &kid, "x"]).ok();
    zkctl(&["rm", &kid]).ok();
    assert_eq!(w.line(), format!("NodeCreated {kid}"));
    assert_eq!(w.line(), format!("NodeDataChanged {kid}"));
    assert_eq!(w.line(), format!("NodeDeleted {kid}"));
    w.signal("TERM");
    assert_eq!(w.wait(Duration::from_secs(5)), (0, String::new()));

    // Not recursive: the node's own changes and its children list; SIGINT ends it too.
    let mut w = Bg::spawn(&["watch", r]);
    let mut first = None;
    for i in 0..100 {
        zkctl(&["set", r, &format!("probe{i}")]).ok();
        if let Ok(l) = w.lines.recv_timeout(Duration::from_millis(100)) {
            first = Some(l);
            break;
        }
    }
    assert_eq!(first.unwrap(), format!("NodeDataChanged {r}"));
    while w.lines.recv_timeout(Duration::from_millis(300)).is_ok() {}
    zkctl(&["create", &kid]).ok();
    zkctl(&["set", &kid, "not seen"]).ok();
    zkctl(&["rm", &kid]).ok();
    zkctl(&["rm", r]).ok();
    assert_eq!(w.line(), format!("NodeChildrenChanged {r}"));
    assert_eq!(w.line(), format!("NodeChildrenChanged {r}"));
    assert_eq!(w.line(), format!("NodeDeleted {r}"));
    w.signal("INT");
    assert_eq!(w.wait(Duration::from_secs(5)), (0, String::new()));
}

#[test]
fn container_and_ttl_nodes_are_reaped() {
    // The reaper period is a JVM system property; the shared server reaps once a minute.
    let srv = DedicatedServer::start_with_jvm(200, &[], &["-Dznode.container.checkIntervalMs=100"]);
    let run = |args: &[&str]| {
        let mut c = zkctl_command();
        c.args(["--server", srv.addr()]).args(args);
        run_command(c)
    };
    run(&["create", "/c", "--container"]).ok();
    run(&["create", "/c/kid"]).ok();
    run(&["create", "/ttl", "--ttl", "300ms"]).ok();
    let out = run(&["create", "/ttlseq-", "--ttl", "300ms", "--sequential"]);
    let seq = out.ok().trim_end().to_owned();
    run(&["create", "/plain"]).ok();
    run(&["rm", "/c/kid"]).ok();
    let gone = |p: &str| run(&["stat", p]).code == 1;
    assert!(
        eventually(Duration::from_secs(10), || gone("/c")),
        "container kept"
    );
    assert!(
        eventually(Duration::from_secs(10), || gone("/ttl")),
        "TTL node kept"
    );
    assert!(
        eventually(Duration::from_secs(10), || gone(&seq)),
        "{seq} kept"
    );
    run(&["stat", "/plain"]).ok();
}

// ---------------------------------------------------------------------------------------------
// Locks

#[test]
fn lock_runs_command_with_fencing_env_and_propagates_status() {
    let root = unique_path("zkctl-lock-cmd");
    let r = root.as_str();
    let bin = s(zkctl_bin()).to_owned();
    let script = format!(
        r#"echo "path=$ZK_LOCK_PATH"; echo "node=$ZK_LOCK_NODE"; echo "token=$ZK_LOCK_TOKEN"
"{bin}" --server "{}" ls "$ZK_LOCK_PATH"
"{bin}" --server "{}" stat "$ZK_LOCK_NODE" | grep cZxid
exit 7"#,
        server(),
        server()
    );
    let out = zkctl(&["lock", r, "--id", "me", "--", "sh", "-c", &script]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{out:?}");
    assert_eq!(lines[0], format!("path={r}"));
    let node = lines[1].strip_prefix("node=").unwrap();
    let name = node.strip_prefix(&format!("{r}/")).unwrap();
    assert!(name.contains("__lock__"), "kazoo's node name: {node}");
    let token: i64 = lines[2].strip_prefix("token=").unwrap().parse().unwrap();
    // the node is there while the command runs, and the token is its czxid
    assert_eq!(lines[3], name);
    assert_eq!(lines[4], format!("cZxid = {token:#x}"));
    // released afterwards
    assert_eq!(children(r), Vec::<String>::new());

    // a command killed by a signal: 128 + signal, as a shell reports it
    let out = zkctl(&["lock", r, "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.code, 137, "{out:?}");
    assert_eq!(zkctl(&["lock", r, "--", "true"]).code, 0);
    assert_eq!(children(r), Vec::<String>::new());
}

#[test]
fn lock_without_command_holds_until_signalled_and_timeouts_exit_3() {
    let root = unique_path("zkctl-lock-hold");
    let r = root.as_str();
    let mut holder = Bg::spawn(&["lock", r, "--id", "holder"]);
    let node = holder.line();
    assert!(node.starts_with(&format!("{r}/")), "{node}");
    assert_eq!(children(r), [node.rsplit('/').next().unwrap()]);
    holder.quiet_for(Duration::from_millis(300));

    // Others time out: exit 3, one line, and no contender node is left behind.
    let t0 = Instant::now();
    zkctl(&["lock", r, "--timeout", "400ms", "--", "true"])
        .fails(3, &format!("lock {r} not acquired"));
    assert!(t0.elapsed() >= Duration::from_millis(400));
    zkctl(&["lock", r, "--timeout", "0", "--", "true"]).fails(3, "not acquired");
    assert_eq!(children(r).len(), 1);

    // A waiter interrupted by SIGTERM leaves at once (exit 3) and takes its node with it.
    let mut waiter = Bg::spawn(&["lock", r, "--id", "waiter", "--", "echo", "never"]);
    assert!(eventually(Duration::from_secs(10), || children(r).len() == 2));
    waiter.signal("TERM");
    let (code, err) = waiter.wait(Duration::from_secs(5));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(waiter.rest().is_empty());
    assert_eq!(children(r).len(), 1);

    // A waiter gets the lock once the holder is signalled (exit 0, lock released).
    let mut next = Bg::spawn(&["lock", r, "--timeout", "20s", "--", "echo", "acquired"]);
    assert!(eventually(Duration::from_secs(10), || children(r).len() == 2));
    next.quiet_for(Duration::from_millis(300));
    holder.signal("TERM");
    assert_eq!(holder.wait(Duration::from_secs(5)), (0, String::new()));
    assert_eq!(next.line(), "acquired");
    assert_eq!(next.wait(Duration::from_secs(5)), (0, String::new()));
    assert_eq!(children(r), Vec::<String>::new());

    // SIGINT ends a hold the same way.
    let mut holder = Bg::spawn(&["lock", r]);
    holder.line();
    holder.signal("INT");
    assert_eq!(holder.wait(Duration::from_secs(5)), (0, String::new()));
    assert_eq!(children(r), Vec::<String>::new());
}

#[test]
fn lock_signalled_while_command_runs_stops_it_and_exits_with_its_status() {
    let root = unique_path("zkctl-lock-sig");
    let r = root.as_str();
    let dir = temp_dir("lock-sig");
    let marker = dir.join("term");
    let script = format!(
        "trap 'echo term > {}; exit 9' TERM; echo started; while :; do sleep 0.05; done",
        s(&marker)
    );
    let mut z = Bg::spawn(&["lock", r, "--", "sh", "-c", &script]);
    assert_eq!(z.line(), "started");
    z.signal("TERM");
    assert_eq!(z.wait(Duration::from_secs(10)), (9, String::new()));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");
    assert_eq!(children(r), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_and_write_locks() {
    let root = unique_path("zkctl-rw");
    let r = root.as_str();
    let mut reader = Bg::spawn(&["lock", r, "--read", "--id", "reader-1"]);
    assert!(reader.line().contains("__rlock__"));
    // readers share
    let out = zkctl(&[
        "lock",
        r,
        "--read",
        "--timeout",
        "5s",
        "--",
        "sh",
        "-c",
        "echo $ZK_LOCK_NODE",
    ]);
    assert!(out.ok().contains("__rlock__"), "{out:?}");
    // a writer is excluded
    zkctl(&["lock", r, "--write", "--timeout", "300ms", "--", "true"]).fails(3, "write lock");
    // a writer waits for the reader
    let mut writer = Bg::spawn(&[
        "lock",
        r,
        "--write",
        "--timeout",
        "20s",
        "--",
        "echo",
        "writing",
    ]);
    writer.quiet_for(Duration::from_millis(400));
    reader.signal("TERM");
    assert_eq!(reader.wait(Duration::from_secs(5)).0, 0);
    assert_eq!(writer.line(), "writing");
    assert_eq!(writer.wait(Duration::from_secs(5)).0, 0);
    // a held write lock excludes readers
    let mut writer = Bg::spawn(&["lock", r, "--write"]);
    assert!(writer.line().contains("__lock__"));
    zkctl(&["lock", r, "--read", "--timeout", "300ms", "--", "true"]).fails(3, "read lock");
    writer.signal("TERM");
    assert_eq!(writer.wait(Duration::from_secs(5)).0, 0);
    zkctl(&["lock", r, "--read", "--timeout", "5s", "--", "true"]).ok();
    assert_eq!(children(r), Vec::<String>::new());
}

#[test]
fn lock_waits_for_a_kazoo_holder() {
    let root = unique_path("zkctl-kazoo");
    let r = root.as_str();
    let mut py = Kazoo::session(
        r#"
lock = zk.Lock(path, "kazoo")
lock.acquire()
out("held")
wait_cmd()
out("contenders", ",".join(lock.contenders()))
wait_cmd()
lock.release()
out("released")
"#,
        r,
    );
    py.expect("held");
    // Timed out behind kazoo: exit 3. Progress goes to stderr only when it is a terminal:
    // here it is a pipe, so the one line is the failure.
    zkctl(&["lock", r, "--timeout", "300ms", "--", "true"]).fails(3, "not acquired within");
    // On a terminal (`script` gives the command a pty) it says what it waits for.
    let cmd = format!(
        "'{}' --server '{}' lock '{r}' --timeout 300ms -- true",
        s(zkctl_bin()),
        server()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]);
    let out = run_command(c);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("waiting for lock {r} behind 1 contender\r\n")),
        "{out:?}"
    );

    let mut waiter = Bg::spawn(&[
        "lock",
        r,
        "--id",
        "zkctl",
        "--timeout",
        "30s",
        "--",
        "sh",
        "-c",
        "echo acquired $ZK_LOCK_TOKEN",
    ]);
    assert!(eventually(Duration::from_secs(10), || children(r).len() == 2));
    waiter.quiet_for(Duration::from_millis(300));
    // kazoo sees zkctl queued behind it
    py.send("go");
    py.expect("contenders kazoo,zkctl");
    waiter.quiet_for(Duration::from_millis(200));
    py.send("go");
    py.expect("released");
    let line = waiter.line();
    assert!(line.starts_with("acquired "), "{line}");
    assert_eq!(waiter.wait(Duration::from_secs(10)), (0, String::new()));
    py.finish();
    assert_eq!(children(r), Vec::<String>::new());

    // And the other way round: kazoo waits for a zkctl holder.
    let mut holder = Bg::spawn(&["lock", r, "--id", "zkctl-holder"]);
    holder.line();
    let py = Kazoo::session(
        r#"
lock = zk.Lock(path, "kazoo")
out("contenders", ",".join(lock.contenders()))
out("try", lock.acquire(blocking=False))
lock.acquire(timeout=20)
out("acquired")
lock.release()
"#,
        r,
    );
    py.expect("contenders zkctl-holder");
    py.expect("try False");
    holder.signal("TERM");
    assert_eq!(holder.wait(Duration::from_secs(5)).0, 0);
    py.expect("acquired");
    py.finish();
}

#[test]
fn session_loss_while_command_runs_exits_5_and_terminates_it() {
    let root = unique_path("zkctl-expiry");
    let r = root.as_str();
    let dir = temp_dir("expiry");
    let marker = dir.join("term");
    let script = format!(
        "trap 'echo term > {}; exit 9' TERM; echo started; while :; do sleep 0.05; done",
        s(&marker)
    );
    let mut z = Bg::spawn(&[
        "--session-timeout",
        "2s",
        "lock",
        r,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(z.line(), "started");
    assert_eq!(children(r).len(), 1);
    // Freeze zkctl itself past its session timeout: the server expires the session (and
    // deletes the lock node) while the command still runs.
    z.signal("STOP");
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        children(r),
        Vec::<String>::new(),
        "the session should have expired"
    );
    assert!(!marker.exists(), "the command was stopped too early");
    z.signal("CONT");
    let (code, err) = z.wait(Duration::from_secs(15));
    assert_eq!(code, 5, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("lost lock {r}")), "{err}");
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Elections, semaphores, leases

#[test]
fn elect_runs_command_as_leader_and_listen_prints_changes() {
    let root = unique_path("zkctl-elect");
    let r = root.as_str();
    let mut listen = Bg::spawn(&["elect", r, "--listen"]);
    assert_eq!(listen.line(), "(no leader)");

    let mut a = Bg::spawn(&["elect", r, "--id", "A"]);
    assert!(a.line().starts_with(&format!("leader of {r} (token ")));
    assert_eq!(listen.line(), "A");

    let mut b = Bg::spawn(&[
        "elect",
        r,
        "--id",
        "B",
        "--",
        "sh",
        "-c",
        "echo \"B leads $ZK_ELECTION_PATH $ZK_LEADER_TOKEN ${ZK_LEADER_NODE##*/}\"; sleep 0.3; exit 4",
    ]);
    // B is queued behind A (so the leadership passes straight from A to B) and does not lead.
    assert!(eventually(Duration::from_secs(10), || children(r).len() == 2));
    b.quiet_for(Duration::from_millis(300));
    a.signal("TERM");
    assert_eq!(a.wait(Duration::from_secs(5)), (0, String::new()));
    let line = b.line();
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words[..3], ["B", "leads", r], "{line}");
    assert!(words[3].parse::<i64>().is_ok(), "{line}");
    assert!(words[4].contains("__lock__"), "{line}");
    assert_eq!(listen.line(), "B");
    assert_eq!(b.wait(Duration::from_secs(5)), (4, String::new()));
    assert_eq!(listen.line(), "(no leader)");

    // A contender interrupted while waiting withdraws (exit 3) and never leads.
    let mut a = Bg::spawn(&["elect", r, "--id", "A2"]);
    a.line();
    assert_eq!(listen.line(), "A2");
    let mut c = Bg::spawn(&["elect", r, "--id", "C", "--", "echo", "never"]);
    assert!(eventually(Duration::from_secs(10), || children(r).len() == 2));
    c.signal("INT");
    let (code, err) = c.wait(Duration::from_secs(5));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    a.signal("TERM");
    assert_eq!(a.wait(Duration::from_secs(5)).0, 0);
    assert_eq!(listen.line(), "(no leader)");
    listen.quiet_for(Duration::from_millis(300));
    listen.signal("TERM");
    assert_eq!(listen.wait(Duration::from_secs(5)), (0, String::new()));
}

/// `(start, end)` pairs in ns from lines `start <id> <ns>` / `end <id> <ns>`.
fn intervals(log: &str) -> Vec<(u128, u128)> {
    let mut starts = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for l in log.lines() {
        let w: Vec<&str> = l.split(' ').collect();
        let t: u128 = w[2].parse().unwrap();
        match w[0] {
            "start" => {
                starts.insert(w[1].to_owned(), t);
            }
            "end" => out.push((starts[w[1]], t)),
            _ => panic!("{l}"),
        }
    }
    out
}

#[test]
fn semaphore_admits_at_most_max_holders() {
    let root = unique_path("zkctl-sem");
    let r = root.as_str();
    let dir = temp_dir("sem");
    let log = dir.join("log");
    let body = |id: &str, secs: &str| {
        format!(
            "echo \"start {id} $(date +%s%N)\" >> {log}; echo \"in $ZK_LOCK_PATH\"; sleep {secs}; \
             echo \"end {id} $(date +%s%N)\" >> {log}",
            log = s(&log)
        )
    };
    let mut first: Vec<Bg> = ["a", "b"]
        .iter()
        .map(|id| {
            Bg::spawn(&[
                "semaphore",
                r,
                "--max",
                "2",
                "--",
                "sh",
                "-c",
                &body(id, "1.5"),
            ])
        })
        .collect();
    for h in &first {
        assert_eq!(h.line(), format!("in {r}"));
    }
    // Both leases are taken: a third times out, and nothing of it is left.
    zkctl(&[
        "semaphore",
        r,
        "--max",
        "2",
        "--timeout",
        "300ms",
        "--",
        "true",
    ])
    .fails(3, &format!("semaphore {r} not acquired"));
    // A third and a fourth wait; each gets in only when a lease is free.
    let mut later: Vec<Bg> = ["c", "d"]
        .iter()
        .map(|id| {
            Bg::spawn(&[
                "semaphore",
                r,
                "--max",
                "2",
                "--",
                "sh",
                "-c",
                &body(id, "0.2"),
            ])
        })
        .collect();
    for h in first.iter_mut().chain(later.iter_mut()) {
        assert_eq!(h.wait(Duration::from_secs(20)), (0, String::new()));
    }
    let spans = intervals(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(spans.len(), 4);
    let mut peak = 0;
    for &(start, _) in &spans {
        let at = spans
            .iter()
            .filter(|&&(s, e)| s <= start && start < e)
            .count();
        peak = peak.max(at);
    }
    assert_eq!(peak, 2, "at most (and here exactly) 2 at a time: {spans:?}");
    // A different --max on the same path is refused (exit 2).
    zkctl(&["semaphore", r, "--max", "3", "--", "true"]).fails(2, "max leases");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lease_obtained_or_not() {
    let root = unique_path("zkctl-lease");
    let r = root.as_str();
    let out = zkctl(&["lease", r, "--duration", "3s", "--id", "X"]);
    assert!(out.ok().contains(&format!("lease {r} obtained")), "{out:?}");
    // held by X: Y does not get it (exit 3), and its command does not run
    zkctl(&["lease", r, "--duration", "3s", "--id", "Y"]).fails(3, &format!("lease {r}"));
    let out = zkctl(&[
        "lease",
        r,
        "--duration",
        "3s",
        "--id",
        "Y",
        "--",
        "echo",
        "ran",
    ]);
    out.fails(3, "held by another");
    assert_eq!(out.stdout, "");
    // X renews it, and runs a command under it with its status
    let out = zkctl(&[
        "lease",
        r,
        "--duration",
        "5s",
        "--id",
        "X",
        "--",
        "sh",
        "-c",
        "echo \"$ZK_LEASE_PATH $ZK_LEASE_TOKEN\"; exit 6",
    ]);
    assert_eq!(out.code, 6, "{out:?}");
    let (p, token) = out.stdout.trim_end().split_once(' ').unwrap();
    assert_eq!(p, r);
    assert!(token.parse::<i64>().is_ok(), "{out:?}");
    // Once it runs out, another identity gets it.
    let root2 = unique_path("zkctl-lease-short");
    let t0 = Instant::now();
    zkctl(&["lease", &root2, "--duration", "2s", "--id", "X"]).ok();
    zkctl(&["lease", &root2, "--duration", "1s", "--id", "Y"]).fails(3, "held");
    std::thread::sleep(Duration::from_millis(2300).saturating_sub(t0.elapsed()));
    zkctl(&["lease", &root2, "--duration", "1s", "--id", "Y"]).ok();
    // A command outliving its lease is stopped: exit 5.
    let root3 = unique_path("zkctl-lease-outlived");
    let out = zkctl(&["lease", &root3, "--duration", "500ms", "--", "sleep", "10"]);
    out.fails(5, &format!("lost lease {root3}"));
}

// ---------------------------------------------------------------------------------------------
// Queues, counters, barriers, parties

#[test]
fn queue_put_get_priority_timeout_and_locking() {
    let root = unique_path("zkctl-queue");
    let q = format!("{}/plain", root);
    let q = q.as_str();
    let put = |data: &str, prio: Option<&str>| {
        let mut args = vec!["queue", "put", q, data];
        if let Some(p) = prio {
            args.extend(["--priority", p]);
        }
        zkctl(&args).ok().trim_end().to_owned()
    };
    assert!(put("low", Some("500")).starts_with("entry-500-"));
    assert!(put("high", Some("1")).starts_with("entry-001-"));
    assert!(put("mid", None).starts_with("entry-100-"));
    put("mid2", None);
    for want in ["high", "mid", "mid2", "low"] {
        assert_eq!(
            zkctl(&["queue", "get", q, "--timeout", "1s"]).ok(),
            format!("{want}\n")
        );
    }
    // empty: exit 3 after the timeout (or at once with --timeout 0)
    let t0 = Instant::now();
    zkctl(&["queue", "get", q, "--timeout", "400ms"]).fails(3, "no item within");
    assert!(t0.elapsed() >= Duration::from_millis(400));
    zkctl(&["queue", "get", q, "--timeout", "0"]).fails(3, "no item");
    // without --timeout it waits for an item
    let mut getter = Bg::spawn(&["queue", "get", q]);
    getter.quiet_for(Duration::from_millis(400));
    put("late", None);
    assert_eq!(getter.line(), "late");
    assert_eq!(getter.wait(Duration::from_secs(5)), (0, String::new()));
    // ... until interrupted (exit 3)
    let mut getter = Bg::spawn(&["queue", "get", q]);
    getter.quiet_for(Duration::from_millis(300));
    let (code, err) = getter.interrupt("TERM");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("interrupted"), "{err}");

    // The locking queue (kazoo's LockingQueue layout) on its own path.
    let lq = format!("{root}/locking");
    let lq = lq.as_str();
    zkctl(&["queue", "put", lq, "a", "--locking"]).ok();
    zkctl(&["queue", "put", lq, "b", "--locking", "--priority", "5"]).ok();
    assert_eq!(zkctl(&["queue", "get", lq, "--locking"]).ok(), "b\n");
    assert_eq!(
        zkctl(&["queue", "get", lq, "--locking", "--timeout", "1s"]).ok(),
        "a\n"
    );
    zkctl(&["queue", "get", lq, "--locking", "--timeout", "300ms"]).fails(3, "no item");
    let mut getter = Bg::spawn(&["queue", "get", lq, "--locking", "--timeout", "20s"]);
    getter.quiet_for(Duration::from_millis(300));
    zkctl(&["queue", "put", lq, "c", "--locking"]).ok();
    assert_eq!(getter.line(), "c");
    assert_eq!(getter.wait(Duration::from_secs(5)), (0, String::new()));
    zkctl(&["queue", "get", lq, "--locking", "--timeout", "0"]).fails(3, "no item");
    zkctl(&["rm", &root, "--recursive"]).ok();
}

#[test]
fn counter_get_add_reset() {
    let c = unique_path("zkctl-counter");
    let c = c.as_str();
    assert_eq!(zkctl(&["counter", "get", c]).ok(), "0\n");
    assert_eq!(zkctl(&["counter", "add", c, "5"]).ok(), "5\n");
    assert_eq!(zkctl(&["counter", "add", c, "-2"]).ok(), "3\n");
    assert_eq!(zkctl(&["counter", "get", c]).ok(), "3\n");
    assert_eq!(zkctl(&["counter", "reset", c]).ok(), "0\n");
    assert_eq!(zkctl(&["counter", "get", c]).ok(), "0\n");
    // concurrent adds all count
    let adders: Vec<_> = (0..4)
        .map(|_| {
            let c = c.to_owned();
            std::thread::spawn(move || zkctl(&["counter", "add", &c, "10"]).code)
        })
        .collect();
    for a in adders {
        assert_eq!(a.join().unwrap(), 0);
    }
    assert_eq!(zkctl(&["counter", "get", c]).ok(), "40\n");
    zkctl(&["rm", c]).ok();
}

#[test]
fn barrier_create_wait_remove() {
    let b = unique_path("zkctl-barrier");
    let b = b.as_str();
    // no barrier: nothing to wait for
    zkctl(&["barrier", "wait", b, "--timeout", "1s"]).ok();
    zkctl(&["barrier", "create", b]).ok();
    zkctl(&["barrier", "wait", b, "--timeout", "300ms"]).fails(3, &format!("barrier {b} still up"));
    let mut waiter = Bg::spawn(&["barrier", "wait", b]);
    waiter.quiet_for(Duration::from_millis(400));
    zkctl(&["barrier", "remove", b]).ok();
    assert_eq!(waiter.wait(Duration::from_secs(5)), (0, String::new()));
    zkctl(&["barrier", "remove", b]).fails(1, "does not exist");
    // a waiter without a timeout can be interrupted (exit 3)
    zkctl(&["barrier", "create", b]).ok();
    let mut waiter = Bg::spawn(&["barrier", "wait", b]);
    wait_watched(b);
    waiter.signal("INT");
    assert_eq!(waiter.wait(Duration::from_secs(5)).0, 3);
    zkctl(&["barrier", "remove", b]).ok();
}

#[test]
fn double_barrier_with_two_processes() {
    let root = unique_path("zkctl-dbarrier");
    let r = root.as_str();
    // alone, entry times out: exit 3, and no participant node is left
    zkctl(&["double-barrier", r, "--n", "2", "--timeout", "300ms"]).fails(3, "double barrier");
    assert_eq!(children(r), Vec::<String>::new());

    let body =
        |id: &str, code: u8| format!("echo \"{id} in $ZK_BARRIER_PATH\"; sleep 0.3; exit {code}");
    let mut p1 = Bg::spawn(&[
        "double-barrier",
        r,
        "--n",
        "2",
        "--id",
        "p1",
        "--",
        "sh",
        "-c",
        &body("p1", 0),
    ]);
    p1.quiet_for(Duration::from_millis(500));
    let mut p2 = Bg::spawn(&[
        "double-barrier",
        r,
        "--n",
        "2",
        "--id",
        "p2",
        "--",
        "sh",
        "-c",
        &body("p2", 4),
    ]);
    assert_eq!(p1.line(), format!("p1 in {r}"));
    assert_eq!(p2.line(), format!("p2 in {r}"));
    assert_eq!(p1.wait(Duration::from_secs(10)), (0, String::new()));
    assert_eq!(p2.wait(Duration::from_secs(10)), (4, String::new()));
    assert_eq!(children(r), Vec::<String>::new());

    // Without commands: both just pass through.
    let mut p1 = Bg::spawn(&["double-barrier", r, "--n", "2", "--timeout", "10s"]);
    p1.quiet_for(Duration::from_millis(300));
    zkctl(&["double-barrier", r, "--n", "2", "--timeout", "10s"]).ok();
    assert_eq!(p1.wait(Duration::from_secs(10)), (0, String::new()));
}

#[test]
fn party_join_and_members() {
    let root = unique_path("zkctl-party");
    let r = root.as_str();
    assert_eq!(zkctl(&["party", "members", r]).ok(), "");
    let mut alice = Bg::spawn(&["party", "join", r, "--id", "alice"]);
    assert_eq!(alice.line(), format!("joined {r}"));
    assert_eq!(zkctl(&["party", "members", r]).ok(), "alice\n");
    // bob is a member while his command runs, and its status is zkctl's
    let script = format!(
        "echo \"$ZK_PARTY_PATH\"; '{}' --server '{}' party members \"$ZK_PARTY_PATH\"; exit 3",
        s(zkctl_bin()),
        server()
    );
    let out = zkctl(&["party", "join", r, "--id", "bob", "--", "sh", "-c", &script]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, format!("{r}\nalice\nbob\n"));
    assert_eq!(zkctl(&["party", "members", r]).ok(), "alice\n");
    alice.quiet_for(Duration::from_millis(100));
    alice.signal("TERM");
    assert_eq!(alice.wait(Duration::from_secs(5)), (0, String::new()));
    assert_eq!(zkctl(&["party", "members", r]).ok(), "");
}

// ---------------------------------------------------------------------------------------------
// The simulator (no server)

#[test]
fn sim_runs_with_the_given_number_of_clients() {
    let out = zkctl_raw(&["sim", "lock", "--clients", "5", "--seed", "3"]);
    let text = out.ok();
    assert!(
        text.contains("lock seed 3, 5 clients:"),
        "no summary naming 5 clients:\n{text}"
    );
    assert!(text.contains("verdict: ok"), "{text}");
    // Five contenders L0..L4 in the timeline, and no sixth.
    for i in 0..5 {
        assert!(
            text.contains(&format!(" L{i}: ")),
            "L{i} is not in the timeline"
        );
    }
    assert!(!text.contains(" L5: "), "a sixth contender:\n{text}");
    // The same run again is the same run.
    assert_eq!(
        zkctl_raw(&["sim", "lock", "--clients", "5", "--seed", "3"]).ok(),
        text
    );
    // Without --clients: the default (3).
    let default = zkctl_raw(&["sim", "lock", "--seed", "3"]);
    assert!(
        default.ok().contains("lock seed 3, 3 clients:"),
        "{default:?}"
    );
}

#[test]
fn sim_refuses_a_client_count_out_of_range() {
    zkctl_raw(&["sim", "lock", "--clients", "0"]).fails(2, "1 to 8 clients");
    zkctl_raw(&["sim", "lock", "--clients", "9"]).fails(2, "1 to 8 clients");
    zkctl_raw(&["sim", "semaphore", "--clients", "1"]).fails(2, "2 to 8 clients");
    zkctl_raw(&["sim", "lock", "--clients", "many"]).fails(2, "invalid number");
    zkctl_raw(&["sim", "lock", "--clients"]).fails(2, "--clients needs a value");
    // The list of recipes names each one's default count.
    let list = zkctl_raw(&["sim"]);
    assert_eq!(list.code, 2, "{list:?}");
    assert!(
        list.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("lock ") && l.contains(" 3 clients")),
        "{list:?}"
    );
}

/// A reader that goes away early (`zkctl sim lock | head -2`) is not a failure: no panic
/// about a broken pipe, and the exit code is still the verdict's.
#[test]
fn output_to_a_closed_pipe_is_not_an_error() {
    for args in [
        &["sim", "lock", "--seed", "1"][..],
        &["sim", "queue", "--seed", "2"][..],
    ] {
        let mut child = zkctl_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // closed before the simulation has printed anything (it runs first, for milliseconds)
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: stderr {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: stderr {stderr}");
    }
}
