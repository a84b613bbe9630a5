//! A short tour of the client against a real server:
//! `cargo run --release -p zk-session --example tour -- 127.0.0.1:2181`
//! (or with `ZK_SERVERS` set). `scripts/demo` starts a server and runs this.
#![allow(clippy::disallowed_methods)] // an example program may read the clock

use std::time::{Duration, Instant};

use zk_session::{Client, CreateMode, CreateOptions, Error, Op};

fn main() -> Result<(), Error> {
    let server = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVERS").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".to_owned());
    let zk = Client::builder(&server)?
        .session_timeout(Duration::from_secs(10))
        .connect()?;
    println!(
        "connected to {server}: session {:#x}, timeout {:?}",
        zk.session_id(),
        zk.negotiated_timeout()
    );

    let root = "/zk-rs-tour";
    zk.delete_recursive(root)?;
    zk.ensure_path(&format!("{root}/config"))?;
    zk.set_data(&format!("{root}/config"), b"v1", None)?;

    // A one-shot watch, fired by our own write.
    let (data, stat, watch) = zk.get_data_watch(&format!("{root}/config"))?;
    println!(
        "config = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );
    zk.set_data(&format!("{root}/config"), b"v2", Some(stat.version))?;
    let event = watch.wait()?;
    println!("watch fired: {:?} on {}", event.event_type, event.path);

    // Sequential ephemeral members, as a lock or election recipe would create them.
    let opts = CreateOptions::new(CreateMode::EphemeralSequential);
    for _ in 0..3 {
        let (path, _) = zk.create(&format!("{root}/member-"), b"", &opts)?;
        println!("created {path}");
    }

    // An atomic multi: the check fails, so nothing is applied.
    let failed = zk.multi(vec![
        Op::create(
            &format!("{root}/never"),
            &b""[..],
            CreateOptions::persistent(),
        ),
        Op::check(&format!("{root}/config"), Some(0)),
    ]);
    println!("multi with a stale check: {failed:?}");
    assert!(zk.exists(&format!("{root}/never"))?.is_none());

    // Pipelining: 10,000 reads in flight at once.
    let t0 = Instant::now();
    let pending: Vec<_> = (0..10_000)
        .map(|_| zk.get_data_async(&format!("{root}/config")))
        .collect();
    for p in pending {
        p.wait()?;
    }
    println!("10,000 pipelined reads in {:?}", t0.elapsed());

    zk.delete_recursive(root)?;
    zk.close()?;
    println!("closed");
    Ok(())
}
