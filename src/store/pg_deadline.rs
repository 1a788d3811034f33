//! Deadlines the PostgreSQL driver does not keep: the synchronous client
//! bounds only the TCP connect, and a server that stops answering mid-way
//! holds a statement forever (its kernel still acknowledges keepalives).
//! The connection's socket is found once, after connecting; a watchdog
//! shuts it down when a step outlives its deadline, and the blocked call
//! then fails as a closed connection, which the store reports as the
//! deadline it was.

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

/// The process's open sockets (descriptor numbers).
pub fn sockets() -> HashSet<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The remote port of TCP socket `fd`; `None` for anything else.
fn peer_port(fd: i32) -> Option<u16> {
    // SAFETY: getpeername writes at most `len` bytes into `addr`, a
    // zeroed sockaddr_storage large enough for any address family.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(fd, (&raw mut addr).cast(), &mut len) != 0 {
            return None;
        }
        match i32::from(addr.ss_family) {
            libc::AF_INET => {
                let v4: libc::sockaddr_in = std::ptr::read((&raw const addr).cast());
                Some(u16::from_be(v4.sin_port))
            }
            libc::AF_INET6 => {
                let v6: libc::sockaddr_in6 = std::ptr::read((&raw const addr).cast());
                Some(u16::from_be(v6.sin6_port))
            }
            _ => None,
        }
    }
}

/// The one socket opened since `before` whose peer is on one of `ports`
/// (a list of hosts may have one each): the new connection's, and its
/// peer's port. `None` when it cannot be told (then only the server's
/// `statement_timeout` bounds statements).
pub fn new_socket(before: &HashSet<i32>, ports: &[u16]) -> Option<(i32, u16)> {
    let mut found = sockets().into_iter().filter_map(|fd| {
        let port = peer_port(fd).filter(|p| !before.contains(&fd) && ports.contains(p))?;
        Some((fd, port))
    });
    let socket = found.next()?;
    found.next().is_none().then_some(socket)
}

/// Shuts down every socket opened since `before` whose peer is on one of
/// `ports`: a connection attempt past its deadline. A store connects
/// under its lock, one attempt at a time; another store of the process
/// connecting to the same port in that moment (none does today) would
/// see its attempt fail as a lost connection.
pub fn cut_new(before: &HashSet<i32>, ports: &[u16]) {
    for fd in sockets() {
        if !before.contains(&fd) && peer_port(fd).is_some_and(|p| ports.contains(&p)) {
            // SAFETY: shutdown ends the connection only; the descriptor
            // stays open for the driver, which closes it on the error.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// Shuts `fd` down unless disarmed within `after`.
pub struct Watchdog {
    disarm: mpsc::Sender<()>,
    fired: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    /// `port` is checked again before the shutdown: a descriptor the
    /// driver closed and the process reused for another peer is left alone.
    pub fn arm(fd: i32, port: u16, after: Duration) -> Option<Watchdog> {
        let (disarm, armed) = mpsc::channel::<()>();
        let fired = std::thread::Builder::new()
            .name("nfcron-pg-deadline".into())
            .spawn(move || match armed.recv_timeout(after) {
                Err(mpsc::RecvTimeoutError::Timeout) if peer_port(fd) == Some(port) => {
                    // SAFETY: shutdown on a descriptor only ends its
                    // connection; the descriptor stays open (the driver
                    // owns it and closes it when it sees the end).
                    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                    true
                }
                _ => false,
            })
            .ok()?;
        Some(Watchdog { disarm, fired })
    }

    /// Whether it fired.
    pub fn disarm(self) -> bool {
        let _ = self.disarm.send(());
        self.fired.join().unwrap_or(false)
    }
}
