//! Simulated workloads: each spawns processes that use a recipe under faults, records a
//! history, and checks it against the recipe's invariants (FAULTS.md, "Checking a recipe's
//! history"). The `simulate` example runs them over ranges of seeds.
//!
//! # Client processes
//!
//! Every workload runs a number of simulated *client processes* (each with its own
//! sessions) that use the recipe: contenders, members, producers and consumers, a
//! coordinator and its waiters, ... Observer tasks that only read the final state for the
//! checker (`reader`, `final`, `log-reader`) are not counted. The count is a parameter of
//! [`Workload::spawn`], within [`Workload::min_clients`]`..=`[`Workload::max_clients`];
//! [`Workload::default_clients`] is what [`run_seed`] (and so CI's `scripts/simulate-all`)
//! uses, and a run with the default count is identical, byte for byte, to one of the
//! workload before the count became a parameter. How a workload with several roles splits
//! the count is said in its family's module docs; the checkers use the actual count.

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

/// The largest number of client processes any workload accepts (a workload may accept
/// fewer: [`Workload::max_clients`]).
pub const MAX_CLIENTS: usize = 8;

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
    /// How many client processes [`run_seed`] spawns (see the module docs).
    fn default_clients(&self) -> usize;
    /// The fewest client processes the workload runs with (and its checker is sound for).
    fn min_clients(&self) -> usize {
        1
    }
    /// The most client processes the workload runs with.
    fn max_clients(&self) -> usize {
        MAX_CLIENTS
    }
    /// Spawn `clients` client processes (and any observer tasks); return the checker.
    ///
    /// `clients` lies in `min_clients()..=max_clients()`: [`run_seed`] passes the default,
    /// [`run_seed_with`] refuses other counts ([`check_clients`]).
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker;
}

/// `Ok(clients)` when a workload accepts that many client processes, else a one-line message
/// naming the allowed range.
pub fn check_clients(w: &dyn Workload, clients: usize) -> Result<usize, String> {
    let (min, max) = (w.min_clients(), w.max_clients());
    if (min..=max).contains(&clients) {
        Ok(clients)
    } else {
        Err(format!(
            "{} runs with {min} to {max} clients (default {}), not {clients}",
            w.name(),
            w.default_clients()
        ))
    }
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

/// Run a workload for one seed with its default number of clients.
pub fn run_seed(w: &dyn Workload, seed: u64, keep_trace: bool) -> SeedResult {
    let mut config = w.config(seed);
    config.keep_trace = keep_trace;
    run(w, config, w.default_clients())
}

/// Run a workload with an explicit configuration (e.g. other faults; start from
/// [`Workload::config`]) and number of client processes. `Err` (from [`check_clients`]) when
/// the workload does not accept that many.
pub fn run_seed_with(
    w: &dyn Workload,
    config: SimConfig,
    clients: usize,
) -> Result<SeedResult, String> {
    let clients = check_clients(w, clients)?;
    Ok(run(w, config, clients))
}

fn run(w: &dyn Workload, config: SimConfig, clients: usize) -> SeedResult {
    let mut sim = Sim::new(config);
    let check = w.spawn(&mut sim, clients);
    let report = sim.run();
    let verdict = if let Some(p) = report.panics.first() {
        Err(format!("task panicked: {p}"))
    } else {
        check(&report)
    };
    SeedResult { report, verdict }
}
