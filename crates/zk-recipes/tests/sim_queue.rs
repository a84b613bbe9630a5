//! The queue family's workloads in the simulator: `queue`, `locking-queue`, `counter`,
//! `barrier`, `double-barrier` find no violation over a range of seeds under faults, and each
//! deliberately broken variant is caught on some of them.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::ops::Range;

use zk_recipes::workloads::{self, queue_family};

const CORRECT: [&str; 5] = [
    "queue",
    "locking-queue",
    "counter",
    "barrier",
    "double-barrier",
];

/// Seeds 0..200 (about 10 s in a debug build).
fn seeds() -> Range<u64> {
    0..200
}

#[test]
fn correct_variants_have_no_violation() {
    for name in CORRECT {
        let w = workloads::find(name).unwrap();
        assert!(!w.broken());
        let (mut faults, mut unknown, mut ok, mut unfenced, mut missed) = (0, 0, 0, 0, 0);
        for seed in seeds() {
            let s = queue_family::seed_stats(name, seed).unwrap();
            assert!(
                s.verdict.is_ok(),
                "{name} seed {seed}: {:?} (replay: cargo run --release -p zk-recipes --example simulate -- --recipe {name} --trace {seed})",
                s.verdict
            );
            faults += s.faults;
            unknown += s.unknown;
            ok += s.ok;
            unfenced += s.unfenced_violations;
            missed += s.missed_ready;
        }
        eprintln!(
            "{name}: seeds {:?}, {faults} faults, {ok} ok, {unknown} unknown, {unfenced} unfenced violations, {missed} missed ready",
            seeds()
        );
        assert!(faults > 0, "{name}: no fault was injected");
        if name == "locking-queue" {
            // Holders that stall past their session do write after the next holder when
            // nothing fences them: the checker can fail.
            assert!(unfenced > 0, "the unfenced log never showed a violation");
        }
        if matches!(name, "queue" | "counter" | "locking-queue") {
            assert!(unknown > 0, "{name}: no ambiguous outcome was exercised");
        }
    }
}

#[test]
fn broken_variants_are_caught() {
    for name in CORRECT {
        let broken = format!("{name}-broken");
        let w = workloads::find(&broken).unwrap();
        assert!(w.broken());
        let caught = seeds()
            .filter(|&seed| workloads::run_seed(w, seed, false).verdict.is_err())
            .count();
        eprintln!("{broken}: caught on {caught} of {} seeds", seeds().count());
        assert!(caught > 0, "{broken} was never caught");
    }
}

#[test]
fn runs_are_deterministic() {
    for name in CORRECT {
        let w = workloads::find(name).unwrap();
        for seed in 0..3 {
            let a = workloads::run_seed(w, seed, false).report.trace_hash;
            let b = workloads::run_seed(w, seed, false).report.trace_hash;
            assert_eq!(a, b, "{name} seed {seed} is not deterministic");
        }
    }
}
