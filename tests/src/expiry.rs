//! A real session expiry on demand (FAULTS.md F7), for recipe tests: a client behind a
//! holding proxy, and a takeover of its session on a second connection that is then closed.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test infrastructure

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zk_session::{Client, SessionState};

use crate::shared_server;

/// A loopback TCP proxy whose new connections can be held back (so an expiring client cannot
/// win its session back before the takeover's close arrives).
pub struct Proxy {
    /// Where clients connect.
    pub addr: String,
    /// While true, new connections wait before reaching the server.
    pub hold: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy to `target` on a free loopback port.
    pub fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hold = Arc::new(AtomicBool::new(false));
        let (target, held) = (target.to_owned(), hold.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (target, held) = (target.clone(), held.clone());
                std::thread::spawn(move || {
                    while held.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let Ok(server) = TcpStream::connect(&target) else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                    pipe(server, client);
                });
            }
        });
        Proxy { addr, hold }
    }

    /// Hold back new connections (`true`) or let them through.
    pub fn hold(&self, yes: bool) {
        self.hold.store(yes, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A client that reaches the server through its own [`Proxy`], so [`expire`] can expire it.
pub fn connect_expirable() -> (Client, Proxy) {
    let proxy = Proxy::start(&shared_server().addr);
    let zk = Client::builder(&proxy.addr)
        .unwrap()
        .session_timeout(Duration::from_secs(10))
        .connect()
        .unwrap();
    (zk, proxy)
}

/// Expire `zk`'s session for real (F7): take it over on a second connection and close that,
/// while the proxy holds `zk`'s reconnect back; then let `zk` learn it.
pub fn expire(zk: &Client, proxy: &Proxy) {
    proxy.hold(true);
    let other = Client::builder(&shared_server().addr)
        .unwrap()
        .session_timeout(Duration::from_secs(10))
        .resume(zk.session_id(), zk.session_password())
        .connect()
        .unwrap();
    assert_eq!(other.session_id(), zk.session_id());
    other.close().unwrap();
    proxy.hold(false);
    let states = zk.state_watch();
    let deadline = Instant::now() + Duration::from_secs(10);
    while zk.state() != SessionState::Expired && Instant::now() < deadline {
        let _ = states.next_timeout(Duration::from_millis(100));
    }
    assert_eq!(zk.state(), SessionState::Expired);
}
