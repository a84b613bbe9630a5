//! `zkctl`: a command-line front end for ZooKeeper — data commands, locks, elections and the
//! other recipes, and the deterministic simulator. See `zkctl --help`.
#![forbid(unsafe_code)]

/// `println!` that never panics: output to a reader that went away (`zkctl sim lock | head`)
/// is dropped, not an error, so the command still ends with its own exit code.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod cli;
mod data;
mod demo;
mod hold;
mod recipes;
mod sim;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use zk_session::Client;

use cli::{Args, Failure, exit};

const HELP: &str = "\
zkctl [--server HOSTS[/chroot]] [--session-timeout D] [--auth digest:USER:PASS] COMMAND

  --server            connect string (default: $ZK_SERVERS, else 127.0.0.1:2181)
  --session-timeout   requested session timeout (default 10s); durations: 500ms, 10s, 2m

Data commands:
  ls PATH [-s]                          children, sorted (-s: and the node's stat)
  get PATH                              the node's data
  stat PATH                             the node's stat
  set PATH DATA [--version V]           set data (with a version check)
  create PATH [DATA] [--ephemeral] [--sequential] [--container] [--ttl D]
  rm PATH [--recursive] [--version V]   delete (a whole subtree with --recursive)
  tree PATH                             the subtree, indented
  watch PATH [--recursive]              one line per event until interrupted

Recipes (kazoo-compatible nodes; CMD runs while held, with the fencing token in its env):
  lock PATH [--read | --write] [--id ID] [--timeout D] [-- CMD ARGS...]
        without CMD: print the lock node and hold until SIGINT/SIGTERM; with CMD: run it
        with ZK_LOCK_PATH, ZK_LOCK_NODE, ZK_LOCK_TOKEN, release, exit with its status
  elect PATH [--id ID] [-- CMD ...]     run CMD as leader (ZK_LEADER_TOKEN in its env)
  elect PATH --listen                   print each change of leader
  semaphore PATH --max N [--timeout D] -- CMD
  lease PATH --duration D [--id ID] [-- CMD]
        without CMD the exit code says whether the lease was obtained (0) or not (3)
  queue put PATH DATA [--priority P] [--locking]
  queue get PATH [--timeout D] [--locking]   wait for an item (at most D; 0: no wait)
  counter get|add|reset PATH [N]
  barrier create|wait|remove PATH [--timeout D]
  double-barrier PATH --n N [--id ID] [--timeout D] [-- CMD]
  party join PATH [--id ID] [-- CMD]    |  party members PATH
  If the session is lost (or a lease runs out) while CMD runs, CMD gets SIGTERM and zkctl
  exits 5. A plain lock and a --read lock on one path do not exclude each other (as kazoo).

Simulator (no server needed):
  sim RECIPE [--clients N] [--seed S] [--faults none|standard|heavy|NAME=P,...]
             [--max-time D]
        one run of the recipe's workload with N simulated client processes (default and
        allowed range per recipe): the timeline and the invariant verdict
  sim                  lists the recipes with their default client counts
  demo [--seed S]      a tour: lock, election with a leader crash, queue, barrier — in the
                       simulator, or against a real ensemble when --server is given

Exit codes:
  0  success
  1  the operation failed (no node, node exists, bad version, ...)
  2  bad usage
  3  not acquired within the timeout, or interrupted while waiting
  4  connection failure
  5  session lost
";

struct Global {
    server: String,
    server_given: bool,
    session_timeout: Duration,
    auth: Option<(String, Vec<u8>)>,
}

fn parse_global(words: &mut Vec<String>) -> Result<Global, Failure> {
    let mut g = Global {
        server: std::env::var("ZK_SERVERS").unwrap_or_else(|_| "127.0.0.1:2181".to_owned()),
        server_given: false,
        session_timeout: Duration::from_secs(10),
        auth: None,
    };
    while let Some(first) = words.first() {
        let take = |words: &mut Vec<String>| -> Result<String, Failure> {
            let name = words.remove(0);
            if words.is_empty() {
                return Err(Failure::usage(format!("{name} needs a value")));
            }
            Ok(words.remove(0))
        };
        match first.as_str() {
            "--server" => {
                g.server = take(words)?;
                g.server_given = true;
            }
            "--session-timeout" => g.session_timeout = cli::parse_duration(&take(words)?)?,
            "--auth" => {
                let v = take(words)?;
                let (scheme, cred) = v
                    .split_once(':')
                    .ok_or_else(|| Failure::usage("--auth takes SCHEME:CREDENTIALS"))?;
                g.auth = Some((scheme.to_owned(), cred.as_bytes().to_vec()));
            }
            _ => break,
        }
    }
    Ok(g)
}

fn connect(g: &Global) -> Result<Client, Failure> {
    let mut b = Client::builder(&g.server)
        .map_err(|e| Failure::usage(format!("--server {}: {e}", g.server)))?
        .session_timeout(g.session_timeout)
        .connect_timeout(g.session_timeout);
    if let Some((scheme, cred)) = &g.auth {
        b = b.auth(scheme, cred.clone());
    }
    b.connect().map_err(|e| Failure {
        code: exit::CONNECTION,
        message: format!("cannot connect to {}: {e}", g.server),
    })
}

fn run(mut words: Vec<String>) -> Result<u8, Failure> {
    if words.is_empty() || matches!(words[0].as_str(), "-h" | "--help" | "help") {
        say!("{}", HELP.trim_end_matches('\n'));
        return Ok(exit::OK);
    }
    let g = parse_global(&mut words)?;
    let Some(cmd) = words.first().cloned() else {
        return Err(Failure::usage("missing COMMAND (zkctl --help)"));
    };
    let rest = &words[1..];
    let flags: &[&str] = match cmd.as_str() {
        "ls" => &["s", "stat"],
        "create" => &["ephemeral", "sequential", "container"],
        "rm" => &["recursive", "r"],
        "watch" => &["recursive", "r"],
        "lock" => &["read", "write"],
        "elect" => &["listen"],
        "queue" => &["locking"],
        _ => &[],
    };
    let a = Args::parse(rest, flags)?;
    match cmd.as_str() {
        "ls" | "get" | "stat" | "set" | "create" | "rm" | "tree" | "watch" => {
            let zk = connect(&g)?;
            // Only `watch` waits for a signal; the others keep the default (terminate).
            let stop = if cmd == "watch" {
                hold::own_stop_flag()
            } else {
                Arc::new(AtomicBool::new(false))
            };
            match cmd.as_str() {
                "ls" => data::ls(&zk, &a),
                "get" => data::get(&zk, &a),
                "stat" => data::stat(&zk, &a),
                "set" => data::set(&zk, &a),
                "create" => data::create(&zk, &a),
                "rm" => data::rm(&zk, &a),
                "tree" => data::tree(&zk, &a),
                _ => data::watch(&zk, &a, &stop),
            }
            .map(|()| exit::OK)
        }
        "lock" | "elect" | "semaphore" | "lease" | "queue" | "counter" | "barrier"
        | "double-barrier" | "party" => {
            let zk = connect(&g)?;
            let stop = hold::own_stop_flag();
            match cmd.as_str() {
                "lock" => recipes::lock(&zk, &a, &stop),
                "elect" => recipes::elect(&zk, &a, &stop),
                "semaphore" => recipes::semaphore(&zk, &a, &stop),
                "lease" => recipes::lease(&zk, &a, &stop),
                "queue" => recipes::queue(&zk, &a, &stop),
                "counter" => recipes::counter(&zk, &a),
                "barrier" => recipes::barrier(&zk, &a, &stop),
                "double-barrier" => recipes::double_barrier(&zk, &a, &stop),
                _ => recipes::party(&zk, &a, &stop),
            }
        }
        "sim" => sim::sim(&a),
        "demo" => demo::demo(
            &a,
            g.server_given
                .then_some((g.server.as_str(), g.session_timeout)),
        ),
        other => Err(Failure::usage(format!(
            "unknown command {other:?} (zkctl --help)"
        ))),
    }
}

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    match run(words) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("zkctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
