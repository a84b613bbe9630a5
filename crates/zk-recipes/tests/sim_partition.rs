//! The partition family's workloads in the simulator: the correct ones pass every seed, the
//! deliberately broken ones are caught. (The 10,000-seed runs are the documented command:
//! `cargo run --release -p zk-recipes --example simulate -- --recipe partitioner --seeds 0..10000`.)
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use zk_recipes::workloads::{self, Workload};

/// Fewer seeds in debug builds, where each run is ~10× slower.
fn seeds() -> std::ops::Range<u64> {
    if cfg!(debug_assertions) {
        0..100
    } else {
        0..200
    }
}

fn run(name: &str) -> (u64, u64, Vec<String>) {
    let w: &dyn Workload = workloads::find(name).unwrap_or_else(|| panic!("no workload {name}"));
    let (mut runs, mut violations, mut first) = (0, 0, Vec::new());
    for seed in seeds() {
        let r = workloads::run_seed(w, seed, false);
        runs += 1;
        if let Err(e) = r.verdict {
            violations += 1;
            if first.len() < 3 {
                first.push(format!("seed {seed}: {e}"));
            }
        }
    }
    (runs, violations, first)
}

fn correct(name: &str) {
    let (runs, violations, first) = run(name);
    assert_eq!(
        violations, 0,
        "{name}: {violations}/{runs} seeds failed: {first:#?}"
    );
}

fn caught(name: &str) {
    let w = workloads::find(name).unwrap();
    assert!(w.broken());
    let (runs, violations, first) = run(name);
    eprintln!("{name}: caught on {violations}/{runs} seeds, e.g. {first:?}");
    assert!(
        violations > 0,
        "{name}: the checker never caught the broken variant"
    );
}

#[test]
fn partitioner_passes() {
    correct("partitioner");
}

#[test]
fn partitioner_unfenced_writes_are_caught() {
    caught("partitioner-broken");
}

#[test]
fn partitioner_leaky_partition_function_is_caught() {
    caught("partitioner-cover-broken");
}

#[test]
fn lease_passes() {
    correct("lease");
}

#[test]
fn lease_unfenced_writes_are_caught() {
    caught("lease-broken");
}

#[test]
fn lease_clock_skew_is_caught() {
    caught("lease-skew-broken");
}

#[test]
fn runs_are_deterministic() {
    for name in ["partitioner", "lease"] {
        let w = workloads::find(name).unwrap();
        for seed in [3, 17] {
            let a = workloads::run_seed(w, seed, false);
            let b = workloads::run_seed(w, seed, false);
            assert_eq!(
                a.report.trace_hash, b.report.trace_hash,
                "{name} seed {seed} is not deterministic"
            );
        }
    }
}
