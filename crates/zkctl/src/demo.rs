//! `zkctl demo [--seed S]`: a short tour — a lock with fenced writes, an election whose leader
//! crashes, a work queue, a barrier — in the deterministic simulator (no server needed), or
//! against a real ensemble with `--server`. The scenarios are written once, generic over the
//! `Session` trait, exactly as recipes are.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_recipes::barrier::Barrier;
use zk_recipes::election::Election;
use zk_recipes::lock::Lock;
use zk_recipes::queue::LockingQueue;
use zk_recipes::sim::{Sim, SimConfig, SimSession};
use zk_recipes::{CreateMode, CreateOptions, Op, Session, SessionExt};
use zk_session::Client;

use crate::cli::{Args, Failure, exit};

const ROOT: &str = "/zkctl-demo";

/// Timestamped narration lines from every participant.
#[derive(Clone, Default)]
struct Narrator(Arc<Mutex<Vec<(Instant, String)>>>);

impl Narrator {
    fn say<S: Session>(&self, zk: &S, text: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push((zk.now(), text));
        }
    }

    fn print(&self) {
        let mut lines = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        lines.sort_by_key(|(t, _)| *t);
        let Some(t0) = lines.first().map(|(t, _)| *t) else {
            return;
        };
        for (t, text) in lines {
            say!("  {:>8.3}s  {text}", (t - t0).as_secs_f64());
        }
    }
}

type Job<S> = Box<dyn FnOnce(S) + Send>;

/// Where participants run: simulated tasks or real threads with their own sessions.
trait Stage {
    type S: Session;
    fn spawn(&mut self, name: &str, job: Job<Self::S>);
    /// Kill a participant's process without a goodbye: its session is left to expire.
    fn crash(session: &Self::S);
    fn run(self: Box<Self>) -> Result<(), Failure>;
}

struct SimStage(Sim);

impl Stage for SimStage {
    type S = SimSession;
    fn spawn(&mut self, name: &str, job: Job<SimSession>) {
        self.0.spawn(name, move |ctx| job(ctx.connect()));
    }
    fn crash(session: &SimSession) {
        session.crash();
    }
    fn run(self: Box<Self>) -> Result<(), Failure> {
        let report = self.0.run();
        match report.panics.first() {
            Some(p) => Err(Failure::failed(format!("demo participant failed: {p}"))),
            None => Ok(()),
        }
    }
}

struct RealStage {
    server: String,
    timeout: Duration,
    threads: Vec<(String, std::thread::JoinHandle<()>)>,
}

impl Stage for RealStage {
    type S = Client;
    fn spawn(&mut self, name: &str, job: Job<Client>) {
        let (server, timeout) = (self.server.clone(), self.timeout);
        let t = std::thread::spawn(move || {
            let zk = Client::builder(&server)
                .and_then(|b| b.session_timeout(timeout).connect())
                .unwrap_or_else(|e| panic!("cannot connect to {server}: {e}"));
            job(zk);
        });
        self.threads.push((name.to_owned(), t));
    }
    fn crash(session: &Client) {
        // A real process would just die; closing ends the session at once instead of
        // after the timeout, so the demo does not wait.
        let _ = session.close();
    }
    fn run(self: Box<Self>) -> Result<(), Failure> {
        for (name, t) in self.threads {
            if t.join().is_err() {
                return Err(Failure::failed(format!("demo participant {name} failed")));
            }
        }
        Ok(())
    }
}

fn lock_scene<T: Stage>(stage: &mut T, say: &Narrator) {
    for name in ["w1", "w2", "w3"] {
        let say = say.clone();
        stage.spawn(
            name,
            Box::new(move |zk: T::S| {
                let _ = zk.ensure_path(&format!("{ROOT}/log"));
                let lock = Lock::new(zk.clone(), &format!("{ROOT}/lock"), name);
                let Ok(guard) = lock.acquire(Some(Duration::from_secs(60))) else {
                    say.say(&zk, format!("{name} gave up waiting"));
                    return;
                };
                say.say(
                    &zk,
                    format!("{name} holds the lock (fencing token {})", guard.token()),
                );
                let entry = Op::create(
                    &format!("{ROOT}/log/e-"),
                    name.as_bytes().to_vec(),
                    CreateOptions::new(CreateMode::PersistentSequential),
                );
                match guard.write(vec![entry]) {
                    Ok(_) => say.say(&zk, format!("{name} appended to the log through the fence")),
                    Err(e) => say.say(&zk, format!("{name}'s fenced write failed: {e}")),
                }
                zk.sleep(Duration::from_millis(200));
                say.say(&zk, format!("{name} releases"));
                let _ = guard.release();
            }),
        );
    }
}

fn election_scene<T: Stage>(stage: &mut T, say: &Narrator) {
    let crashed = Arc::new(AtomicBool::new(false));
    for name in ["c1", "c2", "c3"] {
        let (say, crashed) = (say.clone(), crashed.clone());
        stage.spawn(
            name,
            Box::new(move |zk: T::S| {
                let _ = zk.ensure_path(ROOT);
                let election = Election::new(zk.clone(), &format!("{ROOT}/election"), name);
                let _ = election.run_within(Some(Duration::from_secs(60)), |leadership| {
                    say.say(
                        &zk,
                        format!("{name} is leader (token {})", leadership.token()),
                    );
                    zk.sleep(Duration::from_millis(300));
                    if !crashed.swap(true, Ordering::SeqCst) {
                        say.say(&zk, format!("{name} crashes while leading"));
                        T::crash(&zk);
                        return;
                    }
                    say.say(&zk, format!("{name} steps down"));
                });
            }),
        );
    }
}

fn queue_scene<T: Stage>(stage: &mut T, say: &Narrator) {
    let qpath = format!("{ROOT}/jobs");
    {
        let (say, qpath) = (say.clone(), qpath.clone());
        stage.spawn(
            "producer",
            Box::new(move |zk: T::S| {
                let q = LockingQueue::new(zk.clone(), &qpath);
                for i in 1..=6 {
                    if q.put(format!("job-{i}").as_bytes(), 100).is_ok() {
                        say.say(&zk, format!("producer queued job-{i}"));
                    }
                }
            }),
        );
    }
    for name in ["q1", "q2", "q3"] {
        let (say, qpath) = (say.clone(), qpath.clone());
        stage.spawn(
            name,
            Box::new(move |zk: T::S| {
                let q = LockingQueue::new(zk.clone(), &qpath);
                while let Ok(Some(job)) = q.get(Some(Duration::from_millis(500))) {
                    let job = String::from_utf8_lossy(&job).into_owned();
                    zk.sleep(Duration::from_millis(50));
                    if q.consume().unwrap_or(false) {
                        say.say(&zk, format!("{name} did {job}"));
                    }
                }
            }),
        );
    }
}

fn barrier_scene<T: Stage>(stage: &mut T, say: &Narrator) {
    let bpath = format!("{ROOT}/barrier");
    {
        let (say, bpath) = (say.clone(), bpath.clone());
        stage.spawn(
            "coordinator",
            Box::new(move |zk: T::S| {
                let _ = zk.ensure_path(ROOT);
                let b = Barrier::new(zk.clone(), &bpath);
                let _ = b.create();
                say.say(&zk, "coordinator raised the barrier".to_owned());
                zk.sleep(Duration::from_millis(500));
                say.say(&zk, "coordinator lowers the barrier".to_owned());
                let _ = b.remove();
            }),
        );
    }
    for name in ["b1", "b2", "b3"] {
        let (say, bpath) = (say.clone(), bpath.clone());
        stage.spawn(
            name,
            Box::new(move |zk: T::S| {
                zk.sleep(Duration::from_millis(100));
                let b = Barrier::new(zk.clone(), &bpath);
                say.say(&zk, format!("{name} waits at the barrier"));
                match b.wait(Some(Duration::from_secs(30))) {
                    Ok(true) => say.say(&zk, format!("{name} passed")),
                    _ => say.say(&zk, format!("{name} gave up")),
                }
            }),
        );
    }
}

type Scene<T> = fn(&mut T, &Narrator);

fn play<T: Stage + 'static>(make: &dyn Fn() -> T, clean: &dyn Fn()) -> Result<(), Failure> {
    let scenes: [(&str, Scene<T>); 4] = [
        (
            "lock: three workers, one lock, writes through the fence",
            lock_scene::<T>,
        ),
        (
            "election: the first leader crashes; the next takes over once its session is gone",
            election_scene::<T>,
        ),
        (
            "queue: a producer and three workers, each job done once",
            queue_scene::<T>,
        ),
        (
            "barrier: workers wait until the coordinator lowers it",
            barrier_scene::<T>,
        ),
    ];
    for (title, scene) in scenes {
        say!("== {title}");
        clean();
        let say = Narrator::default();
        let mut stage = make();
        scene(&mut stage, &say);
        Box::new(stage).run()?;
        say.print();
        say!();
    }
    clean();
    Ok(())
}

/// Run the tour: in the simulator, or against `server` when given.
pub fn demo(a: &Args, server: Option<(&str, Duration)>) -> Result<u8, Failure> {
    a.only(&["seed"])?;
    match server {
        None => {
            let seed: u64 = a.int("seed")?.unwrap_or(7);
            say!("zkctl demo: a tour in the deterministic simulator (seed {seed}; virtual time)\n");
            play::<SimStage>(
                &|| {
                    SimStage(Sim::new(SimConfig {
                        seed,
                        ..SimConfig::default()
                    }))
                },
                &|| {},
            )?;
            say!("(the same code runs against a real ensemble: zkctl --server HOSTS demo)");
        }
        Some((server, timeout)) => {
            say!("zkctl demo: a tour against {server}\n");
            let cleaner = Client::builder(server)
                .and_then(|b| b.session_timeout(timeout).connect())
                .map_err(|e| Failure {
                    code: exit::CONNECTION,
                    message: format!("cannot connect to {server}: {e}"),
                })?;
            play::<RealStage>(
                &|| RealStage {
                    server: server.to_owned(),
                    timeout,
                    threads: Vec::new(),
                },
                &|| {
                    let _ = cleaner.delete_recursive(ROOT);
                },
            )?;
        }
    }
    Ok(exit::OK)
}
