//! kazoo processes beside a test (`/usr/bin/python3`: Debian's python with `python3-kazoo`,
//! not the first `python3` on PATH), for the interoperation tests: our recipes and kazoo's on
//! the same paths of the shared server.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test infrastructure

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::{line_channel, shared_server};

/// What [`Kazoo::session`] runs before its body: `zk` started on the shared server, `path`
/// from the arguments, and small helpers: `out(*a)` prints a line at once, `wait_cmd()` reads
/// one command from stdin, `poll_cmd()` reads one if there is one, `clock(secs)` is a fixed
/// clock for kazoo's leases.
const SESSION_PRELUDE: &str = r#"
import sys, time, json, datetime, logging, select
logging.basicConfig(level=logging.ERROR)
from kazoo.client import KazooClient
from kazoo.recipe.lease import NonBlockingLease, MultiNonBlockingLease
zk = KazooClient(hosts=sys.argv[1], timeout=10.0)
zk.start(timeout=10)
path = sys.argv[2]
def out(*a):
    print(*a, flush=True)
def wait_cmd():
    return sys.stdin.readline().strip()
def poll_cmd():
    r, _, _ = select.select([sys.stdin], [], [], 0)
    return sys.stdin.readline().strip() if r else None
def clock(secs):
    return lambda: datetime.datetime.utcfromtimestamp(secs)
"#;

/// How long [`Kazoo::line`] and [`Kazoo::expect`] wait.
const LINE_WAIT: Duration = Duration::from_secs(30);
/// How long [`Kazoo::finish`] waits for the exit.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// A running kazoo script: `argv[1]` is the shared server, then its arguments. Its stdout
/// lines arrive on a channel, its stdin takes commands, and it is killed when dropped.
pub struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Set by [`Kazoo::session`]: the script ends by printing `bye`.
    says_bye: bool,
}

impl Kazoo {
    /// Run `script` as it is, with `args` after the server's address.
    pub fn script(script: &str, args: &[&str]) -> Kazoo {
        Kazoo::spawn(script.to_owned(), args, false)
    }

    /// Run `body` after [`SESSION_PRELUDE`] (`zk` connected, `path` set to `path`); then the
    /// client stops and the script prints `bye`, which [`Kazoo::finish`] expects.
    pub fn session(body: &str, path: &str) -> Kazoo {
        let script = format!("{SESSION_PRELUDE}\n{body}\nzk.stop()\nout('bye')\n");
        Kazoo::spawn(script, &[path], true)
    }

    fn spawn(script: String, args: &[&str], says_bye: bool) -> Kazoo {
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(shared_server().addr)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run /usr/bin/python3 with kazoo (Debian's python3-kazoo)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = line_channel(stdout);
        Kazoo {
            child,
            stdin,
            lines,
            says_bye,
        }
    }

    /// The next line, within `timeout`.
    #[track_caller]
    pub fn line_within(&self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                panic!("kazoo process: no output within {timeout:?}")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("kazoo process exited early"),
        }
    }

    /// The next line, within 30 s.
    #[track_caller]
    pub fn line(&self) -> String {
        self.line_within(LINE_WAIT)
    }

    /// The next line is `want`, within `timeout`.
    #[track_caller]
    pub fn expect_within(&self, want: &str, timeout: Duration) {
        let got = self.line_within(timeout);
        assert_eq!(got, want, "kazoo process said {got:?}, expected {want:?}");
    }

    /// The next line is `want`, within 30 s.
    #[track_caller]
    pub fn expect(&self, want: &str) {
        self.expect_within(want, LINE_WAIT);
    }

    /// The next line, if one arrives within `d`.
    #[track_caller]
    pub fn try_line(&self, d: Duration) -> Option<String> {
        match self.lines.recv_timeout(d) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("kazoo process exited early"),
        }
    }

    /// Nothing is printed for `d` (panics on a line); true.
    #[track_caller]
    pub fn quiet_for(&self, d: Duration) -> bool {
        match self.lines.recv_timeout(d) {
            Ok(l) => panic!("kazoo process said {l:?} too early"),
            Err(_) => true,
        }
    }

    /// Send one command line to its stdin.
    pub fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Wait for a clean exit within `timeout` (after `bye` as the next line, for a
    /// [`Kazoo::session`]).
    #[track_caller]
    pub fn finish_within(mut self, timeout: Duration) {
        if self.says_bye {
            self.expect("bye");
        }
        self.wait_exit(timeout);
    }

    #[track_caller]
    fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "kazoo process failed: {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kazoo process did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Kazoo::finish_within`] 10 s.
    #[track_caller]
    pub fn finish(self) {
        self.finish_within(EXIT_WAIT);
    }

    /// Every line until the script ends (within `timeout`), after a clean exit.
    #[track_caller]
    pub fn output_within(mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => out.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            assert!(
                Instant::now() < deadline,
                "kazoo script timed out; output so far: {out:?}"
            );
        }
        self.wait_exit(timeout);
        out
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
