//! Data commands: ls, get, stat, set, create, rm, tree, watch.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zk_session::{Client, CreateMode, CreateOptions, Error, Stat};

use crate::cli::{Args, Context, Failure};

fn out(bytes: &[u8]) {
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(bytes);
}

/// `ls PATH [-s]`
pub fn ls(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&["s", "stat"])?;
    let path = a.arg(0, "PATH")?;
    let (mut children, stat) = zk.get_children_with_stat(path).at(&format!("ls {path}"))?;
    children.sort();
    let mut text = String::new();
    for c in &children {
        text.push_str(c);
        text.push('\n');
    }
    if a.flag("s") || a.flag("stat") {
        text.push_str(&format_stat(&stat));
    }
    out(text.as_bytes());
    Ok(())
}

/// `get PATH`
pub fn get(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&[])?;
    let path = a.arg(0, "PATH")?;
    let (data, _) = zk.get_data(path).at(&format!("get {path}"))?;
    out(&data);
    if !data.ends_with(b"\n") {
        out(b"\n");
    }
    Ok(())
}

/// `stat PATH`
pub fn stat(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&[])?;
    let path = a.arg(0, "PATH")?;
    let what = format!("stat {path}");
    match zk.exists(path).at(&what)? {
        Some(s) => {
            out(format_stat(&s).as_bytes());
            Ok(())
        }
        None => Err(Error::NoNode).at(&what),
    }
}

/// zkCli's layout.
pub fn format_stat(s: &Stat) -> String {
    format!(
        "cZxid = {:#x}\nctime = {}\nmZxid = {:#x}\nmtime = {}\npZxid = {:#x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = {:#x}\ndataLength = {}\n\
         numChildren = {}\n",
        s.czxid,
        s.ctime,
        s.mzxid,
        s.mtime,
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// `set PATH DATA [--version V]`
pub fn set(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&["version"])?;
    let path = a.arg(0, "PATH")?;
    let data = a.arg(1, "DATA")?;
    zk.set_data(path, data.as_bytes(), a.int("version")?)
        .at(&format!("set {path}"))?;
    Ok(())
}

/// `create PATH [DATA] [--ephemeral] [--sequential] [--container] [--ttl D]`
pub fn create(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&["ephemeral", "sequential", "container", "ttl"])?;
    let path = a.arg(0, "PATH")?;
    let data = a.positional.get(1).map_or("", String::as_str);
    let (e, s, c, ttl) = (
        a.flag("ephemeral"),
        a.flag("sequential"),
        a.flag("container"),
        a.duration("ttl")?,
    );
    let mode = match (e, s, c, ttl.is_some()) {
        (false, false, false, false) => CreateMode::Persistent,
        (true, false, false, false) => CreateMode::Ephemeral,
        (false, true, false, false) => CreateMode::PersistentSequential,
        (true, true, false, false) => CreateMode::EphemeralSequential,
        (false, false, true, false) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, true, false, true) => CreateMode::PersistentSequentialWithTtl,
        _ => {
            return Err(Failure::usage(
                "--container and --ttl exclude --ephemeral and each other",
            ));
        }
    };
    let mut opts = CreateOptions::new(mode);
    if let Some(t) = ttl {
        opts = opts.with_ttl(t);
    }
    let (created, _) = zk
        .create(path, data.as_bytes(), &opts)
        .at(&format!("create {path}"))?;
    out(format!("{created}\n").as_bytes());
    Ok(())
}

/// `rm PATH [--recursive] [--version V]`
pub fn rm(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&["recursive", "r", "version"])?;
    let path = a.arg(0, "PATH")?;
    if a.flag("recursive") || a.flag("r") {
        if a.value("version").is_some() {
            return Err(Failure::usage("--version does not go with --recursive"));
        }
        zk.delete_recursive(path).at(&format!("rm {path}"))?;
    } else {
        zk.delete(path, a.int("version")?)
            .at(&format!("rm {path}"))?;
    }
    Ok(())
}

/// `tree PATH`
pub fn tree(zk: &Client, a: &Args) -> Result<(), Failure> {
    a.only(&[])?;
    let path = a.arg(0, "PATH")?;
    let what = format!("tree {path}");
    zk.exists(path).at(&what)?.ok_or(Error::NoNode).at(&what)?;
    let mut text = String::new();
    walk(zk, path, 0, &mut text).at(&what)?;
    out(text.as_bytes());
    Ok(())
}

fn walk(zk: &Client, path: &str, depth: usize, text: &mut String) -> Result<(), Error> {
    let name = if depth == 0 {
        path
    } else {
        path.rsplit('/').next().unwrap_or(path)
    };
    text.push_str(&"  ".repeat(depth));
    text.push_str(name);
    text.push('\n');
    let mut children = match zk.get_children(path) {
        Ok(c) => c,
        Err(Error::NoNode) => return Ok(()),
        Err(e) => return Err(e),
    };
    children.sort();
    for c in children {
        let child = if path == "/" {
            format!("/{c}")
        } else {
            format!("{path}/{c}")
        };
        walk(zk, &child, depth + 1, text)?;
    }
    Ok(())
}

/// `watch PATH [--recursive]`: one line per event until SIGINT/SIGTERM.
pub fn watch(zk: &Client, a: &Args, stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    a.only(&["recursive", "r"])?;
    let path = a.arg(0, "PATH")?;
    let what = format!("watch {path}");
    let w = zk
        .add_watch(path, a.flag("recursive") || a.flag("r"))
        .at(&what)?;
    while !stop.load(Ordering::SeqCst) {
        match w.next_timeout(Duration::from_millis(200)) {
            Ok(ev) => {
                let mut so = std::io::stdout().lock();
                let line = format!("{:?} {}\n", ev.event_type, ev.path);
                if so
                    .write_all(line.as_bytes())
                    .and_then(|()| so.flush())
                    .is_err()
                {
                    // The reader went away (`zkctl watch /x | head -1`): done.
                    return Ok(());
                }
            }
            Err(Error::Timeout) => {}
            Err(e) => return Err(e).at(&what),
        }
    }
    Ok(())
}
