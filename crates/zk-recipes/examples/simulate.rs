//! Run a recipe workload in the deterministic simulator over a range of seeds.
//!
//! ```text
//! cargo run --release -p zk-recipes --example simulate -- --recipe NAME --seeds A..B
//! cargo run --release -p zk-recipes --example simulate -- --recipe NAME --trace SEED
//! cargo run --release -p zk-recipes --example simulate -- --recipe NAME --seeds A..B --clients N
//! cargo run --release -p zk-recipes --example simulate -- --list
//! ```
//!
//! Prints one summary line last (seeds run, faults injected, violations found) and exits
//! non-zero on a violation, after printing each failing seed with the command that replays it.
//! `--trace SEED` prints that run's timeline, identical on every run of the same seed.
//! `--check-determinism` runs every seed twice and compares the trace hashes. `--clients N`
//! runs N client processes instead of the workload's default (`--list` shows each workload's
//! default and range; a count out of range exits 2).

use std::process::ExitCode;

/// `println!` that drops output to a reader that went away (`--trace N | head`) instead of
/// panicking; the exit code stays the verdict's.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

use zk_recipes::workloads;

fn usage() -> ExitCode {
    eprintln!(
        "usage: simulate --recipe NAME (--seeds A..B | --trace SEED) [--clients N] [--check-determinism]\n       simulate --list"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut recipe = None;
    let mut seeds = None;
    let mut trace = None;
    let mut determinism = false;
    let mut clients = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--list" => {
                // The name comes first on each line (scripts/simulate-all reads it).
                for w in workloads::all() {
                    say!(
                        "{:<24} clients {} ({}..={})  {}",
                        w.name(),
                        w.default_clients(),
                        w.min_clients(),
                        w.max_clients(),
                        w.about()
                    );
                }
                return ExitCode::SUCCESS;
            }
            "--recipe" => {
                recipe = args.get(i + 1).cloned();
                i += 1;
            }
            "--seeds" => {
                let Some((a, b)) = args.get(i + 1).and_then(|s| s.split_once("..")) else {
                    return usage();
                };
                let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
                    return usage();
                };
                seeds = Some(a..b);
                i += 1;
            }
            "--trace" => {
                trace = args.get(i + 1).and_then(|s| s.parse::<u64>().ok());
                if trace.is_none() {
                    return usage();
                }
                i += 1;
            }
            "--clients" => {
                clients = args.get(i + 1).and_then(|s| s.parse::<usize>().ok());
                if clients.is_none() {
                    return usage();
                }
                i += 1;
            }
            "--check-determinism" => determinism = true,
            _ => return usage(),
        }
        i += 1;
    }
    let Some(name) = recipe else { return usage() };
    let Some(w) = workloads::find(&name) else {
        eprintln!("unknown recipe {name:?}; --list shows them");
        return ExitCode::from(2);
    };
    let clients = match workloads::check_clients(w, clients.unwrap_or(w.default_clients())) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("--clients: {e}");
            return ExitCode::from(2);
        }
    };
    // Added to replay commands when not the default.
    let clients_arg = if clients == w.default_clients() {
        String::new()
    } else {
        format!(" --clients {clients}")
    };
    let clients_s = if clients == 1 { "" } else { "s" };
    let run = |seed: u64, keep_trace: bool| -> workloads::SeedResult {
        let mut config = w.config(seed);
        config.keep_trace = keep_trace;
        // In range (checked above), so this does not refuse it.
        workloads::run_seed_with(w, config, clients).unwrap_or_else(|e| {
            eprintln!("--clients: {e}");
            std::process::exit(2)
        })
    };
    if let Some(seed) = trace {
        let r = run(seed, true);
        for line in &r.report.trace {
            say!("{:>12.3}ms  {}", line.at.as_secs_f64() * 1000.0, line.text);
        }
        say!(
            "seed {seed}, {clients} client{clients_s}: {} faults, trace hash {:016x}, verdict: {}",
            r.report.faults_injected,
            r.report.trace_hash,
            match &r.verdict {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("VIOLATION: {e}"),
            }
        );
        return if r.verdict.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let Some(seeds) = seeds else { return usage() };
    let (mut runs, mut faults, mut violations, mut nondeterministic) = (0u64, 0u64, 0u64, 0u64);
    for seed in seeds {
        let r = run(seed, false);
        runs += 1;
        faults += r.report.faults_injected;
        if determinism {
            let again = run(seed, false);
            if again.report.trace_hash != r.report.trace_hash {
                nondeterministic += 1;
                say!(
                    "seed {seed}: NONDETERMINISTIC: trace hashes {:016x} != {:016x}",
                    r.report.trace_hash,
                    again.report.trace_hash
                );
            }
        }
        if let Err(e) = &r.verdict {
            violations += 1;
            say!("seed {seed}: VIOLATION: {e}");
            say!(
                "  replay: cargo run --release -p zk-recipes --example simulate -- --recipe {name} --trace {seed}{clients_arg}"
            );
        }
    }
    say!(
        "{name} ({clients} client{clients_s}): {runs} seeds run, {faults} faults injected, {violations} violations found{}",
        if determinism {
            format!(", {nondeterministic} nondeterministic")
        } else {
            String::new()
        }
    );
    if violations > 0 || nondeterministic > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
