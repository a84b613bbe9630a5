//! Simulated workloads: each spawns processes that use a recipe under faults, records a
//! history, and checks it against the recipe's invariants (FAULTS.md, "Checking a recipe's
//! history"). The `simulate` example runs them over ranges of seeds.

mod cas_counter;
pub mod election_family;
pub mod lock_family;
pub mod partition_family;
pub mod queue_family;

use std::sync::{Arc, Mutex, PoisonError};

use crate::sim::{Faults, RunReport, Sim, SimConfig};

/// The outcome of one call as a history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It did not happen.
    Fail,
    /// Unknown: connection loss or timeout; it may or may not have happened.
    Info,
}

/// A shared, append-only log that simulated tasks write to (the simulator serialises them,
/// so the order is deterministic).
#[derive(Debug)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    /// Append.
    pub fn push(&self, item: T) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
    }

    /// A copy of everything so far.
    pub fn snapshot(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The checker a workload leaves behind: it sees the run's report and its own logs.
pub type Checker = Box<dyn FnOnce(&RunReport) -> Result<(), String>>;

/// A simulated workload.
pub trait Workload: Sync {
    /// The name `simulate --recipe` takes.
    fn name(&self) -> &'static str;
    /// One line on what it exercises and checks.
    fn about(&self) -> &'static str;
    /// Whether this is a deliberately broken variant that the checker must catch.
    fn broken(&self) -> bool {
        false
    }
    /// The simulation config for a seed (faults included).
    fn config(&self, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            faults: Faults::standard(),
            ..SimConfig::default()
        }
    }
    /// Spawn the processes; return the checker.
    fn spawn(&self, sim: &mut Sim) -> Checker;
}

/// Every workload, by name.
pub fn all() -> Vec<&'static dyn Workload> {
    let mut all: Vec<&'static dyn Workload> =
        vec![&cas_counter::CasCounter, &cas_counter::BrokenCounter];
    all.extend(lock_family::all());
    all.extend(election_family::all());
    all.extend(queue_family::all());
    all.extend(partition_family::all());
    all
}

/// Look a workload up by name.
pub fn find(name: &str) -> Option<&'static dyn Workload> {
    all().into_iter().find(|w| w.name() == name)
}

/// The result of one seed.
#[derive(Debug, Clone)]
pub struct SeedResult {
    /// The run.
    pub report: RunReport,
    /// `Err` with the violation when the checker (or a panicking task) found one.
    pub verdict: Result<(), String>,
}

/// Run a workload for one seed.
pub fn run_seed(w: &dyn Workload, seed: u64, keep_trace: bool) -> SeedResult {
    let mut config = w.config(seed);
    config.keep_trace = keep_trace;
    run_seed_with(w, config)
}

/// Run a workload with an explicit configuration (e.g. other faults).
pub fn run_seed_with(w: &dyn Workload, config: SimConfig) -> SeedResult {
    let mut sim = Sim::new(config);
    let check = w.spawn(&mut sim);
    let report = sim.run();
    let verdict = if let Some(p) = report.panics.first() {
        Err(format!("task panicked: {p}"))
    } else {
        check(&report)
    };
    SeedResult { report, verdict }
}
