//! `zkctl sim RECIPE [--clients N] [--seed S] [--faults SPEC] [--max-time D]`: one run of a
//! recipe's workload in the deterministic simulator, its readable timeline and the invariant
//! verdict. No server needed. `--clients` sets the number of simulated client processes (each
//! workload has a default and a range: `zkctl sim` lists them).

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

/// The recipes, one a line: name, default client count and range, what it checks.
fn recipe_list() -> String {
    let mut list =
        String::from("zkctl sim RECIPE [--clients N]: one of (default clients, and the range)\n");
    for w in workloads::all() {
        list.push_str(&format!(
            "  {:<24} {:>2} clients ({}..={})  {}\n",
            w.name(),
            w.default_clients(),
            w.min_clients(),
            w.max_clients(),
            w.about()
        ));
    }
    list.trim_end().to_owned()
}

/// Run it.
pub fn sim(a: &Args) -> Result<u8, Failure> {
    a.only(&["seed", "faults", "max-time", "clients"])?;
    let Some(name) = a.positional.first() else {
        return Err(Failure::usage(recipe_list()));
    };
    let w = workloads::find(name)
        .ok_or_else(|| Failure::usage(format!("unknown recipe {name:?} (zkctl sim lists them)")))?;
    let clients = match a.int::<usize>("clients")? {
        Some(n) => {
            workloads::check_clients(w, n).map_err(|e| Failure::usage(format!("--clients: {e}")))?
        }
        None => w.default_clients(),
    };
    let seed: u64 = a.int("seed")?.unwrap_or(1);
    let mut config = w.config(seed);
    if let Some(spec) = a.value("faults") {
        config.faults = parse_faults(spec)?;
    }
    if let Some(t) = a.duration("max-time")? {
        config.max_time = t;
    }
    config.keep_trace = true;
    let r = workloads::run_seed_with(w, config, clients)
        .map_err(|e| Failure::usage(format!("--clients: {e}")))?;
    for line in &r.report.trace {
        say!("{:>12.3}ms  {}", line.at.as_secs_f64() * 1000.0, line.text);
    }
    let elapsed = r.report.elapsed.max(Duration::ZERO);
    say!(
        "\n{name} seed {seed}, {clients} client{}: {} faults injected, {:.3}s virtual, trace hash {:016x}",
        if clients == 1 { "" } else { "s" },
        r.report.faults_injected,
        elapsed.as_secs_f64(),
        r.report.trace_hash
    );
    match r.verdict {
        Ok(()) => {
            say!("verdict: ok — every invariant held");
            Ok(exit::OK)
        }
        Err(e) => {
            say!("verdict: VIOLATION — {e}");
            Ok(exit::FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Args {
        let w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        Args::parse(&w, &[]).unwrap()
    }

    #[test]
    fn clients_out_of_range_is_a_one_line_usage_error_naming_the_range() {
        for (words, needle) in [
            (
                &["lock", "--clients", "0"][..],
                "lock runs with 1 to 8 clients",
            ),
            (&["lock", "--clients", "9"], "lock runs with 1 to 8 clients"),
            (
                &["semaphore", "--clients", "1"],
                "semaphore runs with 2 to 8",
            ),
            (&["lock", "--clients", "x"], "invalid number"),
            (&["lock", "--clients", "-1"], "invalid number"),
        ] {
            let e = sim(&args(words)).unwrap_err();
            assert_eq!(e.code, exit::USAGE, "{words:?}");
            assert!(e.message.contains(needle), "{words:?}: {}", e.message);
            assert!(e.message.starts_with("--clients: "), "{}", e.message);
            assert!(!e.message.contains('\n'), "{}", e.message);
        }
    }

    #[test]
    fn the_list_shows_default_client_counts() {
        let e = sim(&args(&[])).unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        let lock = e
            .message
            .lines()
            .find(|l| l.trim_start().starts_with("lock "))
            .unwrap();
        assert!(lock.contains(" 3 clients (1..=8)"), "{lock}");
        assert_eq!(
            e.message.lines().count(),
            workloads::all().len() + 1,
            "{}",
            e.message
        );
    }
}
