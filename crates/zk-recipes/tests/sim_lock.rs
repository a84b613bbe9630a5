//! The lock family's workloads in the simulator: the correct recipes pass every seed, the
//! deliberately broken variants are caught, runs are deterministic; and the cancel API.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_recipes::lock::{Lock, Semaphore};
use zk_recipes::sim::{Sim, SimConfig, SimCtx, SimSession};
use zk_recipes::workloads::{self, lock_family};
use zk_recipes::{Error, Session};

fn seeds() -> Range<u64> {
    0..200
}

#[derive(Debug, Default)]
struct Totals {
    runs: usize,
    violations: usize,
    unfenced: usize,
    seeds_with_unfenced: usize,
    acquisitions: usize,
    entries: usize,
    faults: u64,
    first: Option<(u64, String)>,
}

fn totals(name: &str) -> Totals {
    let mut t = Totals::default();
    for seed in seeds() {
        let s = lock_family::seed_stats(name, seed).unwrap();
        t.runs += 1;
        t.unfenced += s.unfenced_violations;
        t.seeds_with_unfenced += usize::from(s.unfenced_violations > 0);
        t.acquisitions += s.acquisitions;
        t.entries += s.fenced_entries;
        t.faults += s.faults;
        if let Some(v) = s.violation {
            t.violations += 1;
            t.first.get_or_insert((seed, v));
        }
    }
    println!("{name}: {t:?}");
    t
}

#[test]
fn lock_passes_every_seed() {
    let t = totals("lock");
    assert_eq!(t.violations, 0, "{:?}", t.first);
    assert!(t.acquisitions > t.runs * 5, "too little progress: {t:?}");
    // The unfenced log shows stalled holders writing late (the checker can fail), but only
    // a bounded number of times: at most one late entry per stall.
    assert!(t.unfenced > 0, "no unfenced violation at all: {t:?}");
    assert!(t.unfenced <= t.faults as usize, "{t:?}");
}

#[test]
fn read_write_lock_passes_every_seed() {
    let t = totals("read-write-lock");
    assert_eq!(t.violations, 0, "{:?}", t.first);
    assert!(t.acquisitions > t.runs * 5, "too little progress: {t:?}");
    assert!(t.unfenced <= t.faults as usize, "{t:?}");
}

#[test]
fn semaphore_passes_every_seed() {
    let t = totals("semaphore");
    assert_eq!(t.violations, 0, "{:?}", t.first);
    assert!(t.acquisitions > t.runs * 5, "too little progress: {t:?}");
    assert!(t.unfenced <= t.faults as usize, "{t:?}");
}

#[test]
fn broken_variants_are_caught() {
    for name in ["lock-broken", "read-write-lock-broken", "semaphore-broken"] {
        assert!(workloads::find(name).unwrap().broken());
        let t = totals(name);
        assert!(
            t.violations > 0,
            "{name}: the checker caught nothing: {t:?}"
        );
    }
}

#[test]
fn registered_and_deterministic() {
    for name in ["lock", "read-write-lock", "semaphore"] {
        let w = workloads::find(name).unwrap();
        assert!(!w.broken());
        for seed in [3, 17, 42] {
            let a = workloads::run_seed(w, seed, false);
            let b = workloads::run_seed(w, seed, false);
            assert_eq!(
                a.report.trace_hash, b.report.trace_hash,
                "{name} seed {seed}"
            );
            assert!(a.verdict.is_ok(), "{name} seed {seed}: {:?}", a.verdict);
        }
    }
}

/// Where one simulated process publishes a recipe for another to cancel.
type Slot<T> = Arc<Mutex<Option<Arc<T>>>>;

/// Half a second after `slot` is filled, `cancel` what it holds; gives up after 10 s (a waiter
/// that failed before it published never does).
fn cancel_when_published<T>(ctx: &SimCtx, slot: &Slot<T>, cancel: fn(&T)) {
    for _ in 0..1000 {
        let item = slot.lock().unwrap().clone();
        if let Some(item) = item {
            ctx.sleep(Duration::from_millis(500));
            cancel(&item);
            return;
        }
        ctx.sleep(Duration::from_millis(10));
    }
}

/// `cancel()` from another process ends a waiting acquire with `Cancelled` within the 100 ms
/// poll, and the waiter's node goes; a cancel with nothing waiting cancels the next blocking
/// acquire (a try ignores it). Likewise for a semaphore and its inner lock.
#[test]
fn cancel_ends_a_waiting_acquire_in_the_simulator() {
    let mut sim = Sim::new(SimConfig {
        seed: 3,
        max_time: Duration::from_secs(30),
        ..SimConfig::default()
    });
    let lock_slot: Slot<Lock<SimSession>> = Arc::default();
    let sem_slot: Slot<Semaphore<SimSession>> = Arc::default();
    sim.spawn("holder", |ctx| {
        let zk = ctx.connect();
        let guard = Lock::new(zk.clone(), "/l", "holder").acquire(None).unwrap();
        let lease = Semaphore::new(zk, "/s", "holder", 1).acquire(None).unwrap();
        ctx.sleep(Duration::from_secs(3));
        guard.release().unwrap();
        lease.release().unwrap();
    });
    let (ls, ss) = (lock_slot.clone(), sem_slot.clone());
    sim.spawn("waiter", move |ctx| {
        ctx.sleep(Duration::from_millis(100));
        let zk = ctx.connect();
        let lock = Arc::new(Lock::new(zk.clone(), "/l", "waiter"));
        lock.cancel();
        assert!(
            lock.try_acquire().unwrap().is_none(),
            "held, and the cancel is kept"
        );
        assert_eq!(lock.acquire(None).map(|_| ()), Err(Error::Cancelled));
        assert_eq!(zk.get_children("/l").unwrap().0.len(), 1);
        *ls.lock().unwrap() = Some(lock.clone());
        let t = ctx.now();
        assert_eq!(lock.acquire(None).map(|_| ()), Err(Error::Cancelled));
        let waited = ctx.now() - t;
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_millis(700),
            "{waited:?}"
        );
        assert_eq!(zk.get_children("/l").unwrap().0.len(), 1);

        let sem = Arc::new(Semaphore::new(zk.clone(), "/s", "waiter", 1));
        *ss.lock().unwrap() = Some(sem.clone());
        assert_eq!(sem.acquire(None).map(|_| ()), Err(Error::Cancelled));
        assert_eq!(zk.get_children("/s").unwrap().0.len(), 1);
        assert!(zk.get_children("/s-__lock__").unwrap().0.is_empty());
        // Once the holder is gone, both are taken: the cancels were used up.
        lock.acquire(None).unwrap().release().unwrap();
        sem.acquire(None).unwrap().release().unwrap();
    });
    let (ls, ss) = (lock_slot, sem_slot);
    sim.spawn("canceller", move |ctx| {
        cancel_when_published(&ctx, &ls, |l| l.cancel());
        cancel_when_published(&ctx, &ss, |s| s.cancel());
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    assert!(!report.timed_out, "the run hit its time limit");
}
