//! A counter kept by compare-and-set (`set_data` with the read version), the simplest
//! read-modify-write a recipe does. Checked as FAULTS.md says for counters: the final value
//! lies in [#ok, #ok + #info], and successful increments return distinct values. Every client
//! process is a worker making the same number of increments (3 by default).

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Checker, Log, Outcome, Workload};
use crate::sim::Sim;
use crate::{CreateOptions, Error, Session, SessionExt};

const PATH: &str = "/cas-counter";
/// Workers by default.
const WORKERS: usize = 3;
const INCREMENTS: usize = 8;

/// Correct: retry on BadVersion, record ConnectionLoss as unknown.
#[derive(Debug)]
pub struct CasCounter;

/// Broken on purpose: treats an ambiguous increment as failed and retries it blindly
/// (without a version check), so an increment can apply twice.
#[derive(Debug)]
pub struct BrokenCounter;

fn spawn(sim: &mut Sim, workers: usize, broken: bool) -> Checker {
    let log: Log<(Outcome, Option<i64>)> = Log::default();
    for i in 0..workers {
        let log = log.clone();
        sim.spawn(&format!("worker{i}"), move |ctx| {
            let mut zk = ctx.connect();
            let _ = zk.ensure_path(PATH);
            for _ in 0..INCREMENTS {
                loop {
                    if ctx.stopped() {
                        return;
                    }
                    if matches!(zk.state(), crate::SessionState::Expired) {
                        zk = ctx.connect();
                    }
                    let (data, stat) = match zk.get_data(PATH) {
                        Ok(v) => v,
                        Err(Error::NoNode) => {
                            let _ = zk.create(PATH, b"0", &CreateOptions::persistent());
                            continue;
                        }
                        Err(_) => {
                            ctx.sleep(Duration::from_millis(20));
                            continue;
                        }
                    };
                    let v: i64 = std::str::from_utf8(&data)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let next = (v + 1).to_string();
                    let version = if broken { None } else { Some(stat.version) };
                    match zk.set_data(PATH, next.as_bytes(), version) {
                        Ok(_) => {
                            log.push((Outcome::Ok, Some(v + 1)));
                            break;
                        }
                        Err(Error::BadVersion) => continue,
                        Err(Error::ConnectionLoss) if !broken => {
                            log.push((Outcome::Info, None));
                            break;
                        }
                        Err(_) => {
                            // Broken: retried as if it had not happened.
                            ctx.sleep(Duration::from_millis(10));
                            continue;
                        }
                    }
                }
            }
        });
    }
    Box::new(move |report| {
        let entries = log.snapshot();
        let ok = entries.iter().filter(|e| e.0 == Outcome::Ok).count() as i64;
        let info = entries.iter().filter(|e| e.0 == Outcome::Info).count() as i64;
        let value: i64 = match report.model.node(PATH) {
            Some((data, _)) => std::str::from_utf8(&data)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("the counter node holds no number")?,
            None if ok == 0 => 0,
            None => return Err("the counter node is gone".into()),
        };
        if value < ok || value > ok + info {
            return Err(format!(
                "final value {value} outside [ok={ok}, ok+info={}]",
                ok + info
            ));
        }
        let mut seen = BTreeSet::new();
        for (_, v) in &entries {
            if let Some(v) = v {
                if !seen.insert(*v) {
                    return Err(format!("two successful increments returned {v}"));
                }
            }
        }
        Ok(())
    })
}

impl Workload for CasCounter {
    fn name(&self) -> &'static str {
        "cas-counter"
    }
    fn about(&self) -> &'static str {
        "read-modify-write with version checks; value within [ok, ok+info], distinct results"
    }
    fn default_clients(&self) -> usize {
        WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn(sim, clients, false)
    }
}

impl Workload for BrokenCounter {
    fn name(&self) -> &'static str {
        "cas-counter-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: blind retries after ambiguous writes (the checker must catch it)"
    }
    fn broken(&self) -> bool {
        true
    }
    fn default_clients(&self) -> usize {
        WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn(sim, clients, true)
    }
}
