//! Holding something (a lock, a lease, leadership, a party seat) while a command runs, or
//! until SIGINT/SIGTERM, and noticing when it is lost.

use std::io::IsTerminal;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use zk_session::{Client, Error, EventType, OneshotWatch, SessionState};

use crate::cli::{Failure, exit};

/// How a hold ended.
#[derive(Debug)]
pub enum Ended {
    /// The command exited with this status.
    Command(ExitStatus),
    /// SIGINT/SIGTERM arrived while holding without a command.
    Signalled,
    /// The session (or our node) was lost; the command got SIGTERM.
    Lost(String),
}

/// Print to stderr only when it is a terminal (progress messages).
pub fn progress(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("zkctl: {msg}");
    }
}

fn spawn(cmd: &[String], env: &[(&str, String)]) -> Result<Child, Failure> {
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn()
        .map_err(|e| Failure::usage(format!("cannot run {:?}: {e}", cmd[0])))
}

fn terminate(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    for _ in 0..100 {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Hold while `cmd` runs (or, with no command, until a signal). `node` is our own node (its
/// deletion means the hold is lost); `still_held` is polled for recipe-specific loss.
///
/// When SIGINT/SIGTERM arrives while `cmd` runs, `cmd` gets SIGTERM and the hold ends with
/// its status (zkctl then exits with it, as when it ends by itself).
pub fn hold(
    zk: &Client,
    node: Option<&str>,
    cmd: &[String],
    env: &[(&str, String)],
    stop: &Arc<AtomicBool>,
    mut still_held: impl FnMut() -> bool,
) -> Result<Ended, Failure> {
    // A one-shot watch on our node; re-armed after other events (a data change), and retried
    // while it cannot be set (a connection loss).
    let arm = |n: &str| -> Result<Option<OneshotWatch>, Ended> {
        match zk.exists_watch(n) {
            Ok((Some(_), w)) => Ok(Some(w)),
            Ok((None, _)) => Err(Ended::Lost(format!("{n} was deleted"))),
            Err(Error::SessionExpired) => Err(Ended::Lost("the session expired".to_owned())),
            Err(_) => Ok(None),
        }
    };
    let mut watch = match node.map(arm) {
        Some(Err(lost)) => return Ok(lost),
        Some(Ok(w)) => w,
        None => None,
    };
    if stop.load(Ordering::SeqCst) {
        if cmd.is_empty() {
            return Ok(Ended::Signalled);
        }
        return Err(Failure {
            code: exit::NOT_ACQUIRED,
            message: format!("interrupted before {:?} started", cmd[0]),
        });
    }
    let mut child = if cmd.is_empty() {
        None
    } else {
        Some(spawn(cmd, env)?)
    };
    loop {
        if let Some(c) = &mut child {
            if let Ok(Some(st)) = c.try_wait() {
                return Ok(Ended::Command(st));
            }
        }
        if stop.load(Ordering::SeqCst) {
            if let Some(c) = &mut child {
                if let Some(st) = terminate(c) {
                    return Ok(Ended::Command(st));
                }
            }
            return Ok(Ended::Signalled);
        }
        let mut lost = match zk.state() {
            SessionState::Expired => Some("the session expired".to_owned()),
            SessionState::Closed | SessionState::AuthFailed => Some("the session ended".to_owned()),
            _ => None,
        };
        if lost.is_none() {
            if let Some(n) = node {
                let rearm = match watch.as_ref().map(OneshotWatch::try_take) {
                    None => true,
                    Some(None) => false,
                    Some(Some(Ok(ev))) if ev.event_type == EventType::NodeDeleted => {
                        lost = Some(format!("{} was deleted", ev.path));
                        false
                    }
                    Some(Some(Err(Error::SessionExpired))) => {
                        lost = Some("the session expired".to_owned());
                        false
                    }
                    Some(Some(_)) => true,
                };
                if rearm && lost.is_none() && zk.state().is_connected() {
                    match arm(n) {
                        Ok(w) => watch = w,
                        Err(Ended::Lost(why)) => lost = Some(why),
                        Err(_) => {}
                    }
                }
            }
        }
        if lost.is_none() && !still_held() {
            lost = Some("it is no longer held".to_owned());
        }
        if let Some(why) = lost {
            if let Some(c) = &mut child {
                terminate(c);
            }
            return Ok(Ended::Lost(why));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Makes a blocking wait (for a lock, leadership, a barrier, a queue item) interruptible: while
/// armed, SIGINT/SIGTERM (the `stop` flag) closes the session, which ends the wait at once and
/// deletes our ephemeral nodes with the session, so no contender node is left to delay others.
/// [`Interrupter::disarm`] it before running anything that must not lose the session under it.
pub struct Interrupter {
    armed: Arc<(Mutex<bool>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Interrupter {
    /// Start watching `stop` for `zk`.
    pub fn arm(zk: &Client, stop: &Arc<AtomicBool>) -> Interrupter {
        let armed = Arc::new((Mutex::new(true), Condvar::new()));
        let (zk, flag, a) = (zk.clone(), stop.clone(), armed.clone());
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*a;
            let mut armed = lock.lock().unwrap_or_else(PoisonError::into_inner);
            // The flag is set by a signal handler, which cannot notify: poll it.
            while *armed {
                if flag.load(Ordering::SeqCst) {
                    // Still holding `armed`: a disarm waits until the session is closed.
                    let _ = zk.close();
                    return;
                }
                armed = cv
                    .wait_timeout(armed, Duration::from_millis(50))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        });
        Interrupter {
            armed,
            stop: stop.clone(),
            thread: Some(thread),
        }
    }

    /// Stop watching; from now on the session is not closed on a signal. Returns whether a
    /// signal arrived (the session may then be closed already).
    pub fn disarm(&mut self) -> bool {
        let (lock, cv) = &*self.armed;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = false;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stop.load(Ordering::SeqCst)
    }

    /// Run `wait` armed, then disarm: `Err` (exit 3, "`what`: interrupted while waiting") if a
    /// signal arrived meanwhile, whatever `wait` returned.
    pub fn run<T, E>(
        zk: &Client,
        stop: &Arc<AtomicBool>,
        what: &str,
        wait: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, Failure> {
        let mut i = Interrupter::arm(zk, stop);
        let r = wait();
        if i.disarm() {
            return Err(interrupted(what));
        }
        Ok(r)
    }
}

impl Drop for Interrupter {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// The failure for a wait ended by SIGINT/SIGTERM.
pub fn interrupted(what: &str) -> Failure {
    Failure {
        code: exit::NOT_ACQUIRED,
        message: format!("{what}: interrupted while waiting"),
    }
}

/// A flag set by SIGINT/SIGTERM, for commands that are not handed one.
pub fn own_stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    stop
}

/// Turn a hold's end into zkctl's exit.
pub fn finish(what: &str, ended: Ended) -> Result<u8, Failure> {
    match ended {
        Ended::Command(st) => Ok(status_code(st)),
        Ended::Signalled => Ok(exit::OK),
        Ended::Lost(why) => Err(Failure {
            code: exit::SESSION_LOST,
            message: format!("lost {what}: {why}; the command was sent SIGTERM"),
        }),
    }
}

/// A child's status as an exit code (128 + signal when killed).
pub fn status_code(st: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        _ => 1,
    }
}
