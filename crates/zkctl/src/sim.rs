//! `zkctl sim RECIPE [--seed S] [--faults SPEC]`: one run of a recipe's workload in the
//! deterministic simulator, its readable timeline and the invariant verdict. No server needed.

use std::time::Duration;

use zk_recipes::sim::Faults;
use zk_recipes::workloads;

use crate::cli::{Args, Failure, exit};

/// `none`, `standard`, `heavy`, or `name=p,...` over the fields of [`Faults`].
fn parse_faults(spec: &str) -> Result<Faults, Failure> {
    match spec {
        "none" => return Ok(Faults::none()),
        "standard" => return Ok(Faults::standard()),
        "heavy" => {
            return Ok(Faults {
                drop_request: 0.03,
                drop_reply: 0.03,
                delay: 0.1,
                disconnect: 0.02,
                partition: 0.005,
                expire: 0.003,
                stall: 0.15,
                ..Faults::none()
            });
        }
        _ => {}
    }
    let mut f = Faults::none();
    for item in spec.split(',') {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--faults: {item:?} is not NAME=P")))?;
        let p: f64 = v
            .parse()
            .ok()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| Failure::usage(format!("--faults: {k} needs a probability in 0..=1")))?;
        match k {
            "drop_request" => f.drop_request = p,
            "drop_reply" => f.drop_reply = p,
            "delay" => f.delay = p,
            "disconnect" => f.disconnect = p,
            "partition" => f.partition = p,
            "expire" => f.expire = p,
            "stall" => f.stall = p,
            _ => {
                return Err(Failure::usage(format!(
                    "--faults: unknown fault {k:?} (drop_request, drop_reply, delay, disconnect, partition, expire, stall)"
                )));
            }
        }
    }
    Ok(f)
}

/// Run it.
pub fn sim(a: &Args) -> Result<u8, Failure> {
    a.only(&["seed", "faults", "max-time"])?;
    let Some(name) = a.positional.first() else {
        let mut list = String::from("zkctl sim RECIPE: one of\n");
        for w in workloads::all() {
            list.push_str(&format!("  {:<24} {}\n", w.name(), w.about()));
        }
        return Err(Failure::usage(list.trim_end().to_owned()));
    };
    let w = workloads::find(name)
        .ok_or_else(|| Failure::usage(format!("unknown recipe {name:?} (zkctl sim lists them)")))?;
    let seed: u64 = a.int("seed")?.unwrap_or(1);
    let mut config = w.config(seed);
    if let Some(spec) = a.value("faults") {
        config.faults = parse_faults(spec)?;
    }
    if let Some(t) = a.duration("max-time")? {
        config.max_time = t;
    }
    config.keep_trace = true;
    let r = workloads::run_seed_with(w, config);
    for line in &r.report.trace {
        println!("{:>12.3}ms  {}", line.at.as_secs_f64() * 1000.0, line.text);
    }
    let elapsed = r.report.elapsed.max(Duration::ZERO);
    println!(
        "\n{name} seed {seed}: {} faults injected, {:.3}s virtual, trace hash {:016x}",
        r.report.faults_injected,
        elapsed.as_secs_f64(),
        r.report.trace_hash
    );
    match r.verdict {
        Ok(()) => {
            println!("verdict: ok — every invariant held");
            Ok(exit::OK)
        }
        Err(e) => {
            println!("verdict: VIOLATION — {e}");
            Ok(exit::FAILED)
        }
    }
}
