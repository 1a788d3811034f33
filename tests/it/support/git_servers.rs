//! Real Git servers on 127.0.0.1 for tests: lighttpd running `git
//! http-backend` (CGI) behind basic auth, over plain HTTP or over TLS with
//! a certificate from a private CA made here, a listener that accepts and
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
/// lighttpd's TLS module (Debian's lighttpd-mod-openssl).
const MOD_OPENSSL: &str = "/usr/lib/lighttpd/mod_openssl.so";

/// `lighttpd -D` serving the bare repositories under `root` at
/// `http://127.0.0.1:PORT/git/<name>`; killed (SIGTERM, so that its
/// access log is flushed) on drop.
pub struct Lighttpd {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    tls: bool,
}

/// lighttpd's TLS: the server certificate and its key, PEM files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Lighttpd {
    /// `None` (with a printed reason) when lighttpd or git http-backend is
    /// missing outside CI; under `CI=true` that is a failure: `.ci/run`
    /// installs lighttpd.
    pub fn start(root: &Path, users: &[(&str, &str)]) -> Option<Lighttpd> {
        Lighttpd::start_with(root, users, None)
    }

    /// The same over TLS with `cert` (`https://localhost:PORT/git/<name>`);
    /// `None` also when lighttpd's TLS module is missing.
    pub fn start_tls(root: &Path, users: &[(&str, &str)], cert: &ServerCert) -> Option<Lighttpd> {
        Lighttpd::start_with(root, users, Some(cert))
    }

    fn start_with(
        root: &Path,
        users: &[(&str, &str)],
        tls: Option<&ServerCert>,
    ) -> Option<Lighttpd> {
        let missing = if Command::new("lighttpd").arg("-v").output().is_err() {
            Some("lighttpd")
        } else if !Path::new(HTTP_BACKEND).exists() {
            Some(HTTP_BACKEND)
        } else if tls.is_some() && !Path::new(MOD_OPENSSL).exists() {
            Some(MOD_OPENSSL)
        } else {
            None
        };
        if let Some(what) = missing {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{what} is not installed but CI=true: .ci/run installs lighttpd, lighttpd-mod-openssl and git"
            );
            eprintln!(
                "SKIPPED: {what} is not installed (apt-get install lighttpd lighttpd-mod-openssl git)"
            );
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
        let ssl = match tls {
            None => String::new(),
            Some(cert) => format!(
                "server.modules += ( \"mod_openssl\" )\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
                cert.cert.display(),
                cert.key.display()
            ),
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
{auth}{ssl}"#,
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
            tls: tls.is_some(),
        })
    }

    /// `http://127.0.0.1:PORT/git/<name>`, or over TLS
    /// `https://localhost:PORT/git/<name>`.
    pub fn url(&self, name: &str) -> String {
        if self.tls {
            format!("https://localhost:{}/git/{name}", self.port)
        } else {
            format!("http://127.0.0.1:{}/git/{name}", self.port)
        }
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

/// A private certificate authority made with the `openssl` command line
/// (Debian's `openssl`, which `ca-certificates` depends on) in `dir`.
pub struct PrivateCa {
    dir: PathBuf,
    /// The CA's certificate: what `SSL_CERT_FILE` names to trust it.
    pub cert: PathBuf,
    key: PathBuf,
}

impl PrivateCa {
    pub fn new(dir: &Path) -> PrivateCa {
        let cert = dir.join("ca.pem");
        let key = dir.join("ca.key");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=nfcron test CA",
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&cert),
        ]);
        PrivateCa {
            dir: dir.to_path_buf(),
            cert,
            key,
        }
    }

    /// A server certificate signed by this CA for `names` (subjectAltName
    /// entries such as `DNS:localhost`, `IP:127.0.0.1`).
    pub fn issue(&self, file_stem: &str, names: &str) -> ServerCert {
        let key = self.dir.join(format!("{file_stem}.key"));
        let csr = self.dir.join(format!("{file_stem}.csr"));
        let cert = self.dir.join(format!("{file_stem}.pem"));
        let ext = self.dir.join(format!("{file_stem}.ext"));
        std::fs::write(&ext, format!("subjectAltName = {names}\n")).expect("extensions file");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=nfcron test server",
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr),
            "-CA",
            path_str(&self.cert),
            "-CAkey",
            path_str(&self.key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            path_str(&ext),
            "-out",
            path_str(&cert),
        ]);
        ServerCert { cert, key }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
