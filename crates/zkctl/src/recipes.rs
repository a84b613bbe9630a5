//! Recipe commands: lock, elect, semaphore, lease, queue, counter, barrier, double-barrier,
//! party.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use zk_recipes::Error;
use zk_recipes::barrier::{Barrier, DoubleBarrier};
use zk_recipes::counter::Counter;
use zk_recipes::election::Election;
use zk_recipes::lease::NonBlockingLease;
use zk_recipes::lock::{Lock, LockGuard, ReadLock, Semaphore, WriteLock};
use zk_recipes::party::Party;
use zk_recipes::queue::{LockingQueue, Queue};
use zk_recipes::watchers::ChildrenWatch;
use zk_session::Client;

use crate::cli::{Args, Context, Failure, exit};
use crate::hold::{self, Ended, Interrupter, interrupted, progress};

fn identifier(a: &Args) -> String {
    a.value("id").map(str::to_owned).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

fn not_acquired(what: &str, timeout: Option<Duration>) -> Failure {
    Failure {
        code: exit::NOT_ACQUIRED,
        message: match timeout {
            Some(t) => format!("{what} not acquired within {t:?}"),
            None => format!("{what} not acquired"),
        },
    }
}

fn guard_env(path: &str, guard: &LockGuard<Client>) -> Vec<(&'static str, String)> {
    vec![
        ("ZK_LOCK_PATH", path.to_owned()),
        ("ZK_LOCK_NODE", guard.node().to_owned()),
        ("ZK_LOCK_TOKEN", guard.token().to_string()),
    ]
}

fn hold_guard(
    zk: &Client,
    what: &str,
    path: &str,
    guard: LockGuard<Client>,
    a: &Args,
    stop: &Arc<AtomicBool>,
) -> Result<u8, Failure> {
    if a.command.is_empty() {
        say!("{}", guard.node());
    }
    let env = guard_env(path, &guard);
    let ended = hold::hold(zk, Some(guard.node()), &a.command, &env, stop, || true)?;
    let lost = matches!(ended, Ended::Lost(_));
    let code = hold::finish(what, ended);
    if !lost {
        let _ = guard.release();
    }
    code
}

/// Acquiring one of the lock kinds.
type Acquire = Box<dyn Fn() -> Result<LockGuard<Client>, Error>>;

/// `lock PATH [--read | --write] [--id ID] [--timeout D] [-- CMD ARGS...]`
pub fn lock(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["read", "write", "id", "timeout"])?;
    let path = a.arg(0, "PATH")?;
    let id = identifier(a);
    let timeout = a.duration("timeout")?;
    if a.flag("read") && a.flag("write") {
        return Err(Failure::usage("--read and --write exclude each other"));
    }
    let (what, contenders, acquire): (&str, Vec<String>, Acquire) = if a.flag("read") {
        let l = ReadLock::new(zk.clone(), path, &id);
        let c = l.contenders().unwrap_or_default();
        ("read lock", c, Box::new(move || l.acquire(timeout)))
    } else if a.flag("write") {
        let l = WriteLock::new(zk.clone(), path, &id);
        let c = l.contenders().unwrap_or_default();
        ("write lock", c, Box::new(move || l.acquire(timeout)))
    } else {
        let l = Lock::new(zk.clone(), path, &id);
        let c = l.contenders().unwrap_or_default();
        ("lock", c, Box::new(move || l.acquire(timeout)))
    };
    if !contenders.is_empty() {
        progress(&format!(
            "waiting for {what} {path} behind {} contender{}",
            contenders.len(),
            if contenders.len() == 1 { "" } else { "s" }
        ));
    }
    let what = format!("{what} {path}");
    let guard = match Interrupter::run(zk, stop, &what, acquire)? {
        Ok(g) => g,
        Err(Error::Timeout) => return Err(not_acquired(&what, timeout)),
        Err(e) => return Err(e).at(&what),
    };
    hold_guard(zk, &what, path, guard, a, stop)
}

/// `semaphore PATH --max N [--timeout D] [--id ID] -- CMD`
pub fn semaphore(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["max", "timeout", "id"])?;
    let path = a.arg(0, "PATH")?;
    let max: u32 = a
        .int("max")?
        .ok_or_else(|| Failure::usage("semaphore needs --max N"))?;
    let timeout = a.duration("timeout")?;
    let sem = Semaphore::new(zk.clone(), path, &identifier(a), max);
    if let Ok(holders) = sem.lease_holders() {
        if holders.len() >= max as usize {
            progress(&format!(
                "waiting for semaphore {path}: {} of {max} leases held",
                holders.len()
            ));
        }
    }
    let what = format!("semaphore {path}");
    let guard = match Interrupter::run(zk, stop, &what, || sem.acquire(timeout))? {
        Ok(g) => g,
        Err(Error::Timeout) => return Err(not_acquired(&what, timeout)),
        Err(e) => return Err(e).at(&what),
    };
    hold_guard(zk, &what, path, guard, a, stop)
}

/// `elect PATH [--id ID] [-- CMD ...]` or `elect PATH --listen`
pub fn elect(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["id", "listen"])?;
    let path = a.arg(0, "PATH")?;
    if a.flag("listen") {
        return listen(zk, path, stop);
    }
    let election = Election::new(zk.clone(), path, &identifier(a));
    if let Ok(c) = election.contenders() {
        if !c.is_empty() {
            progress(&format!("waiting to lead {path}: current leader {}", c[0]));
        }
    }
    let what = format!("leadership of {path}");
    let mut waiting = Interrupter::arm(zk, stop);
    let outcome = election.run(|leadership| {
        if waiting.disarm() {
            return Err(interrupted(&what));
        }
        if a.command.is_empty() {
            say!("leader of {path} (token {})", leadership.token());
        }
        let env = vec![
            ("ZK_ELECTION_PATH", path.to_owned()),
            ("ZK_LEADER_NODE", leadership.fence().node.clone()),
            ("ZK_LEADER_TOKEN", leadership.token().to_string()),
        ];
        let ended = hold::hold(
            zk,
            Some(&leadership.fence().node),
            &a.command,
            &env,
            stop,
            || leadership.state() != zk_recipes::election::LeadershipState::Lost,
        );
        ended.and_then(|e| hold::finish(&what, e))
    });
    let signalled = waiting.disarm();
    match outcome {
        Ok(Some(result)) => result,
        Ok(None) => Err(interrupted(&what)),
        Err(_) if signalled => Err(interrupted(&what)),
        Err(e) => Err(e).at(&what),
    }
}

/// Print the current leader (or `(no leader)`) at once, then each change.
fn listen(zk: &Client, path: &str, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    let what = format!("elect {path} --listen");
    zk.ensure_path(path).at(&what)?;
    let election = Election::new(zk.clone(), path, "listener");
    let mut watch = ChildrenWatch::new(zk.clone(), path);
    let mut last: Option<Option<String>> = None;
    while !stop.load(Ordering::SeqCst) {
        #[allow(clippy::disallowed_methods)] // a CLI's own polling deadline
        let deadline = std::time::Instant::now() + Duration::from_millis(300);
        match watch.next(Some(deadline)) {
            Ok(Some(_)) | Ok(None) => {}
            Err(Error::NoNode) => {
                zk.ensure_path(path).at(&what)?;
                watch = ChildrenWatch::new(zk.clone(), path);
                continue;
            }
            Err(e) => return Err(e).at(&what),
        }
        let leader = election.contenders().at(&what)?.into_iter().next();
        if last.as_ref() != Some(&leader) {
            say!("{}", leader.as_deref().unwrap_or("(no leader)"));
            last = Some(leader);
        }
    }
    Ok(exit::OK)
}

#[allow(clippy::disallowed_methods)] // lease end times are wall-clock, as kazoo writes them
fn utcnow() -> SystemTime {
    SystemTime::now()
}

/// `lease PATH --duration D [--id ID] [-- CMD]`
pub fn lease(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["duration", "id"])?;
    let path = a.arg(0, "PATH")?;
    let duration = a
        .duration("duration")?
        .ok_or_else(|| Failure::usage("lease needs --duration D"))?;
    let lease = NonBlockingLease::obtain(zk, path, duration, &identifier(a), &utcnow)
        .at(&format!("lease {path}"))?;
    if !lease.obtained() {
        return Err(Failure {
            code: exit::NOT_ACQUIRED,
            message: format!("lease {path} is held by another identity"),
        });
    }
    if a.command.is_empty() {
        say!("lease {path} obtained for {duration:?}");
        return Ok(exit::OK);
    }
    let env = vec![
        ("ZK_LEASE_PATH", path.to_owned()),
        (
            "ZK_LEASE_TOKEN",
            lease.token().map(|t| t.to_string()).unwrap_or_default(),
        ),
    ];
    let ended = hold::hold(zk, None, &a.command, &env, stop, || {
        lease.is_valid_at(utcnow())
    })?;
    hold::finish(&format!("lease {path}"), ended)
}

/// `queue put PATH DATA [--priority P] [--locking]` / `queue get PATH [--timeout D] [--locking]`:
/// `get` waits for an item (at most D; `--timeout 0` does not wait), like every other wait.
pub fn queue(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["priority", "timeout", "locking"])?;
    let verb = a.arg(0, "put or get")?;
    let path = a.arg(1, "PATH")?;
    let what = format!("queue {verb} {path}");
    match verb {
        "put" => {
            let data = a.arg(2, "DATA")?;
            let priority: u16 = a.int("priority")?.unwrap_or(100);
            if priority > 999 {
                return Err(Failure::usage("--priority is 0..=999"));
            }
            let name = if a.flag("locking") {
                LockingQueue::new(zk.clone(), path).put(data.as_bytes(), priority)
            } else {
                Queue::new(zk.clone(), path).put(data.as_bytes(), priority)
            }
            .at(&what)?;
            say!("{name}");
            Ok(exit::OK)
        }
        "get" => {
            let timeout = a.duration("timeout")?;
            let item = if a.flag("locking") {
                let q = LockingQueue::new(zk.clone(), path);
                let item = Interrupter::run(zk, stop, &what, || q.get(timeout))?.at(&what)?;
                if item.is_some() && !q.consume().at(&what)? {
                    return Err(Failure::failed(format!(
                        "{what}: the item's lock was lost before it was consumed"
                    )));
                }
                item
            } else {
                Interrupter::run(zk, stop, &what, || get_plain(zk, path, timeout))?.at(&what)?
            };
            match item {
                Some(data) => {
                    use std::io::Write;
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(&data);
                    let _ = o.write_all(b"\n");
                    Ok(exit::OK)
                }
                None => Err(Failure {
                    code: exit::NOT_ACQUIRED,
                    message: format!(
                        "queue {path}: no item{}",
                        timeout
                            .map(|t| format!(" within {t:?}"))
                            .unwrap_or_default()
                    ),
                }),
            }
        }
        other => Err(Failure::usage(format!(
            "queue {other}: expected put or get"
        ))),
    }
}

/// Take the head item, waiting up to `timeout` (`None`: forever) for one.
fn get_plain(
    zk: &Client,
    path: &str,
    timeout: Option<Duration>,
) -> Result<Option<bytes::Bytes>, Error> {
    let q = Queue::new(zk.clone(), path);
    #[allow(clippy::disallowed_methods)] // the CLI's own deadline
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        if let Some(item) = q.get()? {
            return Ok(Some(item));
        }
        zk.ensure_path(path)?;
        let (_, _, w) = zk.get_children_watch(path)?;
        if q.length()? > 0 {
            continue;
        }
        let fired = match deadline {
            None => w.wait().map(|_| ()),
            Some(deadline) => {
                #[allow(clippy::disallowed_methods)]
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                w.wait_timeout(left).map(|_| ())
            }
        };
        match fired {
            Ok(()) => {}
            Err(Error::Timeout) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// `counter get|add|reset PATH [N]`
pub fn counter(zk: &Client, a: &Args) -> Result<u8, Failure> {
    a.only(&[])?;
    let verb = a.arg(0, "get, add or reset")?;
    let path = a.arg(1, "PATH")?;
    let what = format!("counter {verb} {path}");
    let c = Counter::new(zk.clone(), path);
    let unknown = |op: &str| Failure {
        code: exit::CONNECTION,
        message: format!("{what}: the connection was lost; the {op} may or may not have applied"),
    };
    let value = match verb {
        "get" => c.get().at(&what)?,
        "add" => {
            let n: i64 = a
                .arg(2, "N")?
                .parse()
                .map_err(|_| Failure::usage("counter add PATH N: N is an integer"))?;
            let update = c.increment(n).at(&what)?;
            if update.is_unknown() {
                return Err(unknown("increment"));
            }
            update.applied().unwrap_or_default()
        }
        "reset" => {
            if c.reset().at(&what)?.is_unknown() {
                return Err(unknown("reset"));
            }
            c.get().at(&what)?
        }
        other => {
            return Err(Failure::usage(format!(
                "counter {other}: expected get, add or reset"
            )));
        }
    };
    say!("{value}");
    Ok(exit::OK)
}

/// `barrier create|wait|remove PATH [--timeout D]`
pub fn barrier(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["timeout"])?;
    let verb = a.arg(0, "create, wait or remove")?;
    let path = a.arg(1, "PATH")?;
    let what = format!("barrier {verb} {path}");
    let b = Barrier::new(zk.clone(), path);
    match verb {
        "create" => b.create().at(&what)?,
        "remove" => {
            if !b.remove().at(&what)? {
                return Err(Failure::failed(format!("barrier {path} does not exist")));
            }
        }
        "wait" => {
            let timeout = a.duration("timeout")?;
            progress(&format!("waiting for barrier {path} to be removed"));
            if !Interrupter::run(zk, stop, &what, || b.wait(timeout))?.at(&what)? {
                return Err(Failure {
                    code: exit::NOT_ACQUIRED,
                    message: format!(
                        "barrier {path} still up{}",
                        timeout.map(|t| format!(" after {t:?}")).unwrap_or_default()
                    ),
                });
            }
        }
        other => {
            return Err(Failure::usage(format!(
                "barrier {other}: expected create, wait or remove"
            )));
        }
    }
    Ok(exit::OK)
}

/// `double-barrier PATH --n N [--id ID] [--timeout D] [-- CMD]`: enter (wait for N
/// participants), run CMD, leave (wait for all to leave); exits with CMD's status.
pub fn double_barrier(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["n", "id", "timeout"])?;
    let path = a.arg(0, "PATH")?;
    let n: usize = a
        .int("n")?
        .ok_or_else(|| Failure::usage("double-barrier needs --n N"))?;
    if n == 0 {
        return Err(Failure::usage("double-barrier --n is at least 1"));
    }
    let timeout = a.duration("timeout")?;
    let b = DoubleBarrier::with_identifier(zk.clone(), path, n, &identifier(a));
    progress(&format!(
        "entering double barrier {path} ({n} participants)"
    ));
    let what = format!("entry to double barrier {path}");
    match Interrupter::run(zk, stop, &what, || b.enter(timeout))? {
        Ok(()) => {}
        Err(Error::Timeout) => return Err(not_acquired(&what, timeout)),
        Err(e) => return Err(e).at(&what),
    }
    let mut code = exit::OK;
    if !a.command.is_empty() {
        let env = vec![("ZK_BARRIER_PATH", path.to_owned())];
        let node = format!("{}/{}", path.trim_end_matches('/'), b.node_name());
        let ended = hold::hold(zk, Some(&node), &a.command, &env, stop, || true)?;
        code = hold::finish(&format!("double barrier {path}"), ended)?;
        if stop.load(Ordering::SeqCst) {
            // Interrupted: leave by ending the session (our node goes with it), not by waiting.
            return Ok(code);
        }
    }
    progress(&format!("leaving double barrier {path}"));
    let what = format!("exit from double barrier {path}");
    match Interrupter::run(zk, stop, &what, || b.leave(timeout))? {
        Ok(()) => Ok(code),
        Err(Error::Timeout) => Err(not_acquired(&what, timeout)),
        Err(e) => Err(e).at(&what),
    }
}

/// `party join PATH [--id ID] [-- CMD]` / `party members PATH`
pub fn party(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<u8, Failure> {
    a.only(&["id"])?;
    let verb = a.arg(0, "join or members")?;
    let path = a.arg(1, "PATH")?;
    let what = format!("party {verb} {path}");
    let mut p = Party::new(zk.clone(), path, &identifier(a));
    match verb {
        "members" => {
            let mut m = p.members().at(&what)?;
            m.sort();
            for x in m {
                say!("{x}");
            }
            Ok(exit::OK)
        }
        "join" => {
            p.join().at(&what)?;
            if a.command.is_empty() {
                say!("joined {path}");
            }
            let env = vec![("ZK_PARTY_PATH", path.to_owned())];
            let node = p.node().to_owned();
            let ended = hold::hold(zk, Some(&node), &a.command, &env, stop, || p.is_member())?;
            let lost = matches!(ended, Ended::Lost(_));
            let code = hold::finish(&format!("membership of {path}"), ended);
            if !lost {
                let _ = p.leave();
            }
            code
        }
        other => Err(Failure::usage(format!(
            "party {other}: expected join or members"
        ))),
    }
}
