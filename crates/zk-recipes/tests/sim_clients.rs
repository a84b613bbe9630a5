//! Every workload with other numbers of client processes than its default (`zkctl sim RECIPE
//! --clients N`, `simulate --clients N`): the correct ones hold at their minimum and at a
//! larger count, the broken ones are still caught at a non-default count, counts out of range
//! are refused, and the default count is exactly what `run_seed` runs.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::ops::Range;

use zk_recipes::workloads::{self, MAX_CLIENTS, Workload, check_clients, run_seed, run_seed_with};

/// Seeds for the correct workloads at each count (a handful: debug builds are slow).
fn seeds() -> Range<u64> {
    0..6
}

/// Seeds for the broken workloads (each must be caught on at least one).
fn broken_seeds() -> Range<u64> {
    0..40
}

fn workload(name: &str) -> &'static dyn Workload {
    workloads::find(name).unwrap_or_else(|| panic!("no workload {name}"))
}

/// A larger count than the default: three more, within the range.
fn larger(w: &dyn Workload) -> usize {
    (w.default_clients() + 3).min(w.max_clients())
}

/// A count other than the default for the broken variants: two more, within the range.
fn other(w: &dyn Workload) -> usize {
    (w.default_clients() + 2).min(w.max_clients())
}

fn run(w: &dyn Workload, seed: u64, clients: usize) -> workloads::SeedResult {
    run_seed_with(w, w.config(seed), clients)
        .unwrap_or_else(|e| panic!("{} with {clients} clients refused: {e}", w.name()))
}

/// The correct workload `name` holds over [`seeds`] at its minimum count and at a larger one,
/// deterministically.
fn holds(name: &str) {
    let w = workload(name);
    assert!(!w.broken());
    for clients in [w.min_clients(), larger(w)] {
        assert_ne!(clients, w.default_clients(), "{name}: not another count");
        for seed in seeds() {
            let r = run(w, seed, clients);
            assert!(
                r.verdict.is_ok(),
                "{name} seed {seed}, {clients} clients: {:?} (replay: cargo run --release -p \
                 zk-recipes --example simulate -- --recipe {name} --trace {seed} --clients {clients})",
                r.verdict
            );
        }
        let again = run(w, 0, clients);
        assert_eq!(
            again.report.trace_hash,
            run(w, 0, clients).report.trace_hash,
            "{name}, {clients} clients: not deterministic"
        );
    }
}

/// The broken workload `name` is caught at a count other than its default.
fn caught(name: &str) {
    let w = workload(name);
    assert!(w.broken());
    let clients = other(w);
    assert_ne!(clients, w.default_clients());
    let n = broken_seeds()
        .filter(|&seed| run(w, seed, clients).verdict.is_err())
        .count();
    eprintln!(
        "{name}, {clients} clients: caught on {n} of {} seeds",
        broken_seeds().count()
    );
    assert!(n > 0, "{name} with {clients} clients was never caught");
}

macro_rules! correct {
    ($($test:ident: $name:literal,)*) => {$(
        #[test]
        fn $test() {
            holds($name);
        }
    )*};
}

macro_rules! broken {
    ($($test:ident: $name:literal,)*) => {$(
        #[test]
        fn $test() {
            caught($name);
        }
    )*};
}

correct! {
    cas_counter_holds: "cas-counter",
    lock_holds: "lock",
    read_write_lock_holds: "read-write-lock",
    semaphore_holds: "semaphore",
    election_holds: "election",
    party_holds: "party",
    shallow_party_holds: "shallow-party",
    queue_holds: "queue",
    locking_queue_holds: "locking-queue",
    counter_holds: "counter",
    barrier_holds: "barrier",
    double_barrier_holds: "double-barrier",
    partitioner_holds: "partitioner",
    lease_holds: "lease",
}

broken! {
    cas_counter_broken_caught: "cas-counter-broken",
    lock_broken_caught: "lock-broken",
    read_write_lock_broken_caught: "read-write-lock-broken",
    semaphore_broken_caught: "semaphore-broken",
    election_broken_caught: "election-broken",
    party_broken_caught: "party-broken",
    shallow_party_broken_caught: "shallow-party-broken",
    queue_broken_caught: "queue-broken",
    locking_queue_broken_caught: "locking-queue-broken",
    counter_broken_caught: "counter-broken",
    barrier_broken_caught: "barrier-broken",
    double_barrier_broken_caught: "double-barrier-broken",
    partitioner_broken_caught: "partitioner-broken",
    partitioner_cover_broken_caught: "partitioner-cover-broken",
    lease_broken_caught: "lease-broken",
    lease_skew_broken_caught: "lease-skew-broken",
}

#[test]
fn every_workload_is_covered_above() {
    let covered = [
        "cas-counter",
        "lock",
        "read-write-lock",
        "semaphore",
        "election",
        "party",
        "shallow-party",
        "queue",
        "locking-queue",
        "counter",
        "barrier",
        "double-barrier",
        "partitioner",
        "lease",
    ];
    for w in workloads::all() {
        let base = w.name().trim_end_matches("-broken");
        let base = base.trim_end_matches("-cover").trim_end_matches("-skew");
        assert!(covered.contains(&base), "{} is not tested here", w.name());
    }
}

#[test]
fn ranges_are_sane_and_out_of_range_counts_refused() {
    for w in workloads::all() {
        let name = w.name();
        let (min, default, max) = (w.min_clients(), w.default_clients(), w.max_clients());
        assert!(
            1 <= min && min <= default && default <= max && max <= MAX_CLIENTS,
            "{name}: {min} <= {default} <= {max} <= {MAX_CLIENTS}"
        );
        for ok in [min, default, max] {
            assert_eq!(check_clients(w, ok), Ok(ok), "{name}");
        }
        for bad in [0, min - 1, max + 1, usize::MAX] {
            if (min..=max).contains(&bad) {
                continue;
            }
            let e = check_clients(w, bad).unwrap_err();
            assert!(
                e.contains(name)
                    && e.contains(&format!("{min} to {max}"))
                    && e.contains(&bad.to_string())
                    && !e.contains('\n'),
                "{name}, {bad}: {e:?}"
            );
            let refused = run_seed_with(w, w.config(0), bad);
            assert_eq!(refused.err(), Some(e), "{name}, {bad}");
        }
    }
}

#[test]
fn the_default_count_is_what_run_seed_runs() {
    for w in workloads::all() {
        for seed in [1, 2] {
            let a = run_seed(w, seed, false);
            let b = run(w, seed, w.default_clients());
            assert_eq!(
                a.report.trace_hash,
                b.report.trace_hash,
                "{} seed {seed}",
                w.name()
            );
            assert_eq!(a.verdict, b.verdict, "{} seed {seed}", w.name());
        }
    }
}

#[test]
fn the_count_changes_the_run() {
    // More clients, more processes in the timeline.
    for name in ["lock", "queue", "double-barrier", "partitioner"] {
        let w = workload(name);
        let a = run(w, 3, w.default_clients());
        let b = run(w, 3, larger(w));
        assert_ne!(a.report.trace_hash, b.report.trace_hash, "{name}");
    }
}
