//! Real Git servers on 127.0.0.1 for tests: lighttpd running `git
//! http-backend` (CGI) behind basic auth, a listener that accepts and
//! never answers, and a switch that stalls every connection until it is
//! flipped, then forwards them to a real server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where Debian puts `git http-backend`.
const HTTP_BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// `lighttpd -D` serving the bare repositories under `root` at
/// `http://127.0.0.1:PORT/git/<name>`; killed (SIGTERM, so that its
/// access log is flushed) on drop.
pub struct Lighttpd {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Lighttpd {
    /// `None` (with a printed reason) when lighttpd or git http-backend is
    /// missing outside CI; under `CI=true` that is a failure: `.ci/run`
    /// installs lighttpd.
    pub fn start(root: &Path, users: &[(&str, &str)]) -> Option<Lighttpd> {
        let missing = if Command::new("lighttpd").arg("-v").output().is_err() {
            Some("lighttpd")
        } else if !Path::new(HTTP_BACKEND).exists() {
            Some(HTTP_BACKEND)
        } else {
            None
        };
        if let Some(what) = missing {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{what} is not installed but CI=true: .ci/run installs lighttpd (and git)"
            );
            eprintln!("SKIPPED: {what} is not installed (apt-get install lighttpd git)");
            return None;
        }
        let dir = tempfile::tempdir().expect("lighttpd dir");
        std::fs::create_dir_all(dir.path().join("www")).expect("www");
        let users_file = dir.path().join("users");
        let lines: String = users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
        std::fs::write(&users_file, lines).expect("users");
        // The port is free when probed; lighttpd binds it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("probe a port")
            .local_addr()
            .expect("addr")
            .port();
        let auth = if users.is_empty() {
            String::new()
        } else {
            format!(
                "auth.backend = \"plain\"\nauth.backend.plain.userfile = \"{}\"\nauth.require = ( \"/git/\" => ( \"method\" => \"basic\", \"realm\" => \"git\", \"require\" => \"valid-user\" ) )\n",
                users_file.display()
            )
        };
        let conf = format!(
            r#"server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ( "mod_access", "mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi", "mod_accesslog" )
accesslog.filename = "{log}"
accesslog.format = "%r %>s %{{Authorization}}i"
alias.url = ( "/git" => "{backend}" )
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ( "" => "" )
  setenv.set-environment = ( "GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "" )
}}
{auth}"#,
            www = dir.path().join("www").display(),
            log = dir.path().join("access.log").display(),
            backend = HTTP_BACKEND,
            root = root.display(),
        );
        let conf_path = dir.path().join("lighttpd.conf");
        std::fs::write(&conf_path, conf).expect("lighttpd.conf");
        let mut child = Command::new("lighttpd")
            .arg("-D")
            .arg("-f")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lighttpd");
        // lighttpd says "server started" on stderr once it listens.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("server started") => break,
                Ok(line) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("lighttpd did not start: {said:#?}");
                }
            }
        }
        Some(Lighttpd {
            port,
            dir,
            child: Some(child),
        })
    }

    /// `http://127.0.0.1:PORT/git/<name>`
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops lighttpd (SIGTERM, which flushes its access log) and returns
    /// the log: one `request-line status authorization-or-dash` a line.
    pub fn stop(&mut self) -> Vec<String> {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child by its id.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A bare repository `<root>/<name>` cloned from the work repository at
/// `origin`, so that `git http-backend` can serve it.
pub fn bare_copy(origin: &Path, root: &Path, name: &str) -> PathBuf {
    let path = root.join(name);
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(&format!("file://{}", origin.display()), &path)
        .expect("bare clone");
    path
}

/// A listener on 127.0.0.1 that holds every connection open and never
/// answers, until [`Switch::forward`] is called: from then on new
/// connections are relayed byte for byte to a real server.
pub struct Switch {
    pub port: u16,
    target: Arc<Mutex<Option<SocketAddr>>>,
    accepted: Arc<(Mutex<usize>, Condvar)>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Switch {
    pub fn spawn() -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let accepted: Arc<(Mutex<usize>, Condvar)> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (t, a, h) = (target.clone(), accepted.clone(), held.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                {
                    let (count, changed) = &*a;
                    *count.lock().expect("lock") += 1;
                    changed.notify_all();
                }
                match *t.lock().expect("lock") {
                    None => h.lock().expect("lock").push(conn),
                    Some(upstream) => relay(conn, upstream),
                }
            }
        });
        Switch {
            port,
            target,
            accepted,
            held,
        }
    }

    /// From now on, relay new connections to `upstream`; the held ones
    /// are closed.
    pub fn forward(&self, upstream: SocketAddr) {
        *self.target.lock().expect("lock") = Some(upstream);
        self.held.lock().expect("lock").clear();
    }

    /// Waits until at least `n` connections were accepted.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) {
        let (count, changed) = &*self.accepted;
        let (guard, result) = changed
            .wait_timeout_while(count.lock().expect("lock"), timeout, |c| *c < n)
            .expect("lock");
        assert!(
            !result.timed_out(),
            "{} connections accepted within {timeout:?}, wanted {n}",
            *guard
        );
    }

    pub fn accepted(&self) -> usize {
        *self.accepted.0.lock().expect("lock")
    }
}

fn relay(client: TcpStream, upstream: SocketAddr) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    pipe(client, server);
    pipe(s2, c2);
}
