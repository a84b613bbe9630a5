//! `zk-bench`: the benchmark workloads W1–W6 of `shared/bench/README.md`, run with this
//! project's client, printing one JSON line per workload in the comparator format so that
//! `shared/bench/run-peers.sh --add ours=target/release/zk-bench` runs it beside the peers.
//!
//! ```text
//! zk-bench --server HOST:PORT --workload W1..W6|all[,..] [--ops N] [--warmup N]
//!          [--warmup-secs S] [--window N] [--contenders N] [--server-pid PID]
//! ```
#![forbid(unsafe_code)]
// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_recipes::lock::Lock;
use zk_session::{Client, CreateOptions, Error, SessionState};

const CLIENT: &str = "zk-rs";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const PAYLOAD: [u8; 100] = [b'x'; 100];
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
const GET_PATH: &str = "/bench-get";
const SET_PATH: &str = "/bench-set";
const EPH_PATH: &str = "/bench-eph";
const LOCK_PATH: &str = "/bench-lock";

type Res<T> = Result<T, String>;

#[derive(Clone, Debug)]
struct Args {
    server: String,
    workloads: Vec<String>,
    ops: Option<usize>,
    warmup: Option<usize>,
    warmup_secs: f64,
    window: usize,
    contenders: usize,
    server_pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: zk-bench --server HOST:PORT --workload W1..W6|all[,..] [--ops N] [--warmup N] \
         [--warmup-secs S] [--window N] [--contenders N] [--server-pid PID]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        server: String::new(),
        workloads: Vec::new(),
        ops: None,
        warmup: None,
        warmup_secs: 2.0,
        window: 1000,
        contenders: 4,
        server_pid: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_else(|| usage());
        let num = |s: String| s.parse().unwrap_or_else(|_| usage());
        match argv[i].as_str() {
            "--server" => a.server = val(),
            "--workload" => {
                for w in val().split(',') {
                    let w = w.trim().to_uppercase();
                    if w == "ALL" {
                        a.workloads
                            .extend(["W1", "W2", "W3", "W4", "W5", "W6"].map(String::from));
                    } else {
                        a.workloads.push(w);
                    }
                }
            }
            "--ops" => a.ops = Some(num(val())),
            "--warmup" => a.warmup = Some(num(val())),
            "--warmup-secs" => a.warmup_secs = val().parse().unwrap_or_else(|_| usage()),
            "--window" => a.window = num(val()),
            "--contenders" => a.contenders = num(val()),
            "--server-pid" => a.server_pid = Some(val().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
        i += 2;
    }
    if a.server.is_empty() || a.workloads.is_empty() {
        usage()
    }
    a
}

/// User+system CPU seconds of a process from `/proc/PID/stat` (fields 14 and 15), in clock
/// ticks of 10 ms (Linux's USER_HZ is 100 on every mainstream architecture).
fn proc_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn own_cpu_secs() -> f64 {
    proc_cpu_secs("self").unwrap_or(0.0)
}

struct Phase {
    t0: Instant,
    cpu0: f64,
    srv0: Option<f64>,
    pid: Option<u32>,
}

struct Measured {
    ops: usize,
    secs: f64,
    cpu: f64,
    server_cpu: Option<f64>,
    lat_ns: Vec<u64>,
    extra: String,
}

impl Phase {
    fn start(args: &Args) -> Phase {
        Phase {
            srv0: args.server_pid.and_then(|p| proc_cpu_secs(&p.to_string())),
            pid: args.server_pid,
            cpu0: own_cpu_secs(),
            t0: Instant::now(),
        }
    }

    fn finish(self, ops: usize, lat_ns: Vec<u64>, extra: String) -> Measured {
        let secs = self.t0.elapsed().as_secs_f64();
        let cpu = own_cpu_secs() - self.cpu0;
        let server_cpu = match (
            self.srv0,
            self.pid.and_then(|p| proc_cpu_secs(&p.to_string())),
        ) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        Measured {
            ops,
            secs,
            cpu,
            server_cpu,
            lat_ns,
            extra,
        }
    }
}

/// Nearest-rank percentile (README): `lat[ceil(p/100 * n) - 1]`, in microseconds.
fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn emit(workload: &str, mut m: Measured) {
    m.lat_ns.sort_unstable();
    if let Some(srv) = m.server_cpu {
        m.extra.push_str(&format!(",\"server_cpu_s\":{srv:.3}"));
    }
    println!(
        "{{\"client\":\"{CLIENT}\",\"version\":\"{VERSION}\",\"workload\":\"{workload}\",\
         \"ops\":{},\"secs\":{:.4},\"ops_per_s\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\
         \"cpu_s\":{:.3},\"cpu_s_per_100k_ops\":{:.3}{}}}",
        m.ops,
        m.secs,
        m.ops as f64 / m.secs,
        percentile_us(&m.lat_ns, 50.0),
        percentile_us(&m.lat_ns, 99.0),
        m.cpu,
        m.cpu / m.ops as f64 * 100_000.0,
        m.extra,
    );
}

impl Args {
    fn warm_chunk(&self, n: usize) -> usize {
        self.warmup.unwrap_or(n / 10)
    }

    /// Warm up in chunks: at least one, until `--warmup-secs` have passed.
    fn warm_up(&self, n: usize, mut chunk_fn: impl FnMut(usize) -> Res<()>) -> Res<()> {
        let chunk = self.warm_chunk(n);
        if chunk == 0 {
            return Ok(());
        }
        let start = Instant::now();
        loop {
            chunk_fn(chunk)?;
            if start.elapsed().as_secs_f64() >= self.warmup_secs {
                return Ok(());
            }
        }
    }
}

fn connect(server: &str) -> Res<Client> {
    Client::builder(server)
        .and_then(|b| b.session_timeout(SESSION_TIMEOUT).connect())
        .map_err(|e| format!("connect to {server}: {e}"))
}

fn ensure_node(client: &Client, path: &str) -> Res<()> {
    match client.create(path, &PAYLOAD, &CreateOptions::persistent()) {
        Ok(_) => Ok(()),
        Err(Error::NodeExists) => client
            .set_data(path, &PAYLOAD, None)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn check_payload(data: &[u8]) -> Res<()> {
    if data.len() == PAYLOAD.len() {
        Ok(())
    } else {
        Err(format!("getData returned {} bytes", data.len()))
    }
}

fn w1(args: &Args) -> Res<Measured> {
    let n = args.ops.unwrap_or(20_000);
    let client = connect(&args.server)?;
    ensure_node(&client, GET_PATH)?;
    let get = || -> Res<()> {
        let (data, _) = client.get_data(GET_PATH).map_err(|e| e.to_string())?;
        check_payload(&data)
    };
    args.warm_up(n, |k| (0..k).try_for_each(|_| get()))?;
    let mut lat = Vec::with_capacity(n);
    let phase = Phase::start(args);
    for _ in 0..n {
        let s = Instant::now();
        get()?;
        lat.push(s.elapsed().as_nanos() as u64);
    }
    Ok(phase.finish(n, lat, String::new()))
}

/// `count` requests with at most `window` in flight; waits on the oldest (replies come in
/// order). Returns per-request latencies.
fn pipelined(client: &Client, count: usize, window: usize, set: bool) -> Res<Vec<u64>> {
    let payload = Bytes::from_static(&PAYLOAD);
    let mut lat = Vec::with_capacity(count);
    let mut inflight = VecDeque::with_capacity(window);
    let mut issued = 0;
    while issued < count || !inflight.is_empty() {
        while issued < count && inflight.len() < window {
            let start = Instant::now();
            let c = if set {
                Ok(client.set_data_async(SET_PATH, payload.clone(), None))
            } else {
                Err(client.get_data_async(GET_PATH))
            };
            inflight.push_back((start, c));
            issued += 1;
        }
        if let Some((start, c)) = inflight.pop_front() {
            match c {
                Ok(c) => {
                    c.wait().map_err(|e| e.to_string())?;
                }
                Err(c) => {
                    let (data, _) = c.wait().map_err(|e| e.to_string())?;
                    check_payload(&data)?;
                }
            }
            lat.push(start.elapsed().as_nanos() as u64);
        }
    }
    Ok(lat)
}

fn w2_w3(args: &Args, set: bool) -> Res<Measured> {
    let n = args.ops.unwrap_or(if set { 50_000 } else { 200_000 });
    let client = connect(&args.server)?;
    ensure_node(&client, if set { SET_PATH } else { GET_PATH })?;
    args.warm_up(n, |k| pipelined(&client, k, args.window, set).map(|_| ()))?;
    let phase = Phase::start(args);
    let lat = pipelined(&client, n, args.window, set)?;
    Ok(phase.finish(n, lat, format!(",\"window\":{}", args.window)))
}

fn w4(args: &Args) -> Res<Measured> {
    let n = args.ops.unwrap_or(5_000);
    let client = connect(&args.server)?;
    let opts = CreateOptions::ephemeral();
    let pair = || -> Res<()> {
        client
            .create(EPH_PATH, &PAYLOAD, &opts)
            .map_err(|e| e.to_string())?;
        client.delete(EPH_PATH, None).map_err(|e| e.to_string())
    };
    args.warm_up(n, |k| (0..k).try_for_each(|_| pair()))?;
    let mut lat = Vec::with_capacity(n);
    let phase = Phase::start(args);
    for _ in 0..n {
        let s = Instant::now();
        pair()?;
        lat.push(s.elapsed().as_nanos() as u64);
    }
    Ok(phase.finish(n, lat, String::new()))
}

/// One W5 cycle: acquire, empty critical section, release (the delete of the own node,
/// awaited). Returns its latency.
fn lock_cycle(lock: &Lock<Client>) -> Res<u64> {
    let s = Instant::now();
    let guard = lock.acquire(None).map_err(|e| format!("acquire: {e}"))?;
    guard.release().map_err(|e| format!("release: {e}"))?;
    Ok(s.elapsed().as_nanos() as u64)
}

/// W5 lock hand-off: `--contenders` sessions (default 4), each on its own thread with its own
/// `zk_recipes::Lock` on `/bench-lock`, `N / contenders` cycles each after a common barrier.
fn w5(args: &Args) -> Res<Measured> {
    let contenders = args.contenders.max(1);
    let total = args.ops.unwrap_or(1_000);
    let per = total / contenders;
    let chunk = args.warm_chunk(total) / contenders;
    let setup = connect(&args.server)?;
    ensure_node(&setup, LOCK_PATH)?;
    let mut clients = Vec::with_capacity(contenders);
    for _ in 0..contenders {
        clients.push(connect(&args.server)?);
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(contenders + 1));
    let mut threads = Vec::with_capacity(contenders);
    for client in clients {
        let barrier = barrier.clone();
        let warmup_secs = args.warmup_secs;
        threads.push(std::thread::spawn(move || -> Res<(Vec<u64>, Client)> {
            let lock = Lock::new(client.clone(), LOCK_PATH, "");
            let run = |n: usize, lat: &mut Vec<u64>| -> Res<()> {
                for _ in 0..n {
                    lat.push(lock_cycle(&lock)?);
                }
                Ok(())
            };
            barrier.wait(); // warm-up starts together
            let mut scratch = Vec::new();
            let (warm_start, mut result) = (Instant::now(), Ok(()));
            if chunk > 0 {
                loop {
                    result = run(chunk, &mut scratch);
                    if result.is_err() || warm_start.elapsed().as_secs_f64() >= warmup_secs {
                        break;
                    }
                }
            }
            barrier.wait(); // timed phase starts together (never leave the others waiting)
            result?;
            let mut lat = Vec::with_capacity(per);
            run(per, &mut lat)?;
            drop(lock);
            // Closed after the timed phase.
            Ok((lat, client))
        }));
    }
    barrier.wait();
    barrier.wait();
    let phase = Phase::start(args);
    let mut lat = Vec::with_capacity(per * contenders);
    let mut failure = None;
    let mut sessions = Vec::with_capacity(contenders);
    for t in threads {
        match t.join() {
            Ok(Ok((l, client))) => {
                lat.extend(l);
                sessions.push(client);
            }
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a contender thread panicked".into()),
        }
    }
    let ops = lat.len();
    let m = phase.finish(
        ops,
        lat,
        format!(",\"contenders\":{contenders},\"recipe\":\"zk_recipes::Lock\""),
    );
    for client in sessions {
        let _ = client.close();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(m),
    }
}

fn one_session(server: &str) -> Res<()> {
    let client = connect(server)?;
    let states = client.state_watch();
    client.close().map_err(|e| e.to_string())?;
    if client.state() != SessionState::Closed {
        // close() returns once the driver reports Closed; the watch must agree.
        while let Some(s) = states.next_timeout(Duration::from_secs(5)) {
            if s == SessionState::Closed {
                return Ok(());
            }
        }
        return Err("session did not report Closed".into());
    }
    Ok(())
}

fn w6(args: &Args) -> Res<Measured> {
    let n = args.ops.unwrap_or(500);
    args.warm_up(n, |k| (0..k).try_for_each(|_| one_session(&args.server)))?;
    let mut lat = Vec::with_capacity(n);
    let phase = Phase::start(args);
    for _ in 0..n {
        let s = Instant::now();
        one_session(&args.server)?;
        lat.push(s.elapsed().as_nanos() as u64);
    }
    Ok(phase.finish(n, lat, String::new()))
}

fn main() {
    let args = parse_args();
    for w in args.workloads.clone() {
        let m = match w.as_str() {
            "W1" => w1(&args),
            "W2" => w2_w3(&args, false),
            "W3" => w2_w3(&args, true),
            "W4" => w4(&args),
            "W5" => w5(&args),
            "W6" => w6(&args),
            other => Err(format!("unknown workload {other}")),
        };
        match m {
            Ok(m) => emit(&w, m),
            Err(e) => {
                eprintln!("zk-bench: {w}: error: {e}");
                std::process::exit(1);
            }
        }
    }
}
