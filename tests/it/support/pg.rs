//! A schema of its own per test in the PostgreSQL server the machines run
//! on 127.0.0.1:5432 (trust auth, database `test`), dropped at the end, so
//! tests run in parallel. Without the server: under `CI=true` the test
//! fails (`.ci/run` starts it); elsewhere it is skipped with a reason.
#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct Db {
    pub schema: String,
    /// `--state` for this test's schema.
    pub url: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn admin() -> Result<postgres::Client, postgres::Error> {
    postgres::Client::connect(SERVER, postgres::NoTls)
}

impl Db {
    /// A fresh, empty schema, or `None` (skip) when no server runs
    /// outside CI.
    pub fn new(test: &str) -> Option<Db> {
        let mut client = match admin() {
            Ok(client) => client,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!(
                    "PostgreSQL on 127.0.0.1:5432 is needed under CI=true (.ci/run starts it): {e}"
                )
            }
            Err(e) => {
                eprintln!("skipped {test}: no PostgreSQL on 127.0.0.1:5432 ({e})");
                return None;
            }
        };
        let schema = format!(
            "t_{}_{}_{}",
            test.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect::<String>(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        )
        .to_lowercase();
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .expect("create schema");
        let url = format!("{SERVER}?options=-csearch_path%3D{schema}");
        Some(Db { schema, url })
    }

    /// A query in this schema; rows as text.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut client = admin().expect("connect");
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .expect("search_path");
        client
            .simple_query(sql)
            .expect("query")
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// One number from a query.
    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0][0]
            .as_deref()
            .expect("a value")
            .parse()
            .expect("a number")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut client) = admin() {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// A TCP relay to the PostgreSQL server that a test can cut, as a server
/// restart would: every open connection is closed and new ones are closed
/// on accept until [`Relay::restore`].
pub struct Relay {
    pub port: u16,
    state: Arc<Mutex<RelayState>>,
}

struct RelayState {
    up: bool,
    open: Vec<TcpStream>,
}

impl Relay {
    pub fn spawn() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(RelayState {
            up: true,
            open: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let mut state = shared.lock().expect("relay state");
                if !state.up {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                state.open.push(client);
                state.open.push(server);
            }
        });
        Relay { port, state }
    }

    /// Closes every connection; refuses new ones.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("relay state");
        state.up = false;
        for stream in state.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.state.lock().expect("relay state").up = true;
    }

    /// `url` (a [`Db`]'s) through this relay.
    pub fn url(&self, url: &str) -> String {
        url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", self.port))
    }
}

/// A PostgreSQL server of its own on a free loopback port that admits only
/// clients with a certificate (`hostssl all all 127.0.0.1/32 cert`), with a
/// test CA made by `openssl`: the server's certificate is for `localhost`
/// and 127.0.0.1, the client's for the user `postgres` (its key in SEC1
/// and PKCS#8). Stopped on drop, whatever the test's outcome. `None`
/// (skip) when PostgreSQL or openssl is missing outside CI.
pub struct CertServer {
    pub port: u16,
    /// The CA's certificate (`sslrootcert`).
    pub ca: PathBuf,
    /// The client's certificate and keys (`sslcert`, `sslkey`): mode 0600.
    pub cert: PathBuf,
    pub key_sec1: PathBuf,
    pub key_pkcs8: PathBuf,
    /// Revocation lists from the CA: one revoking nothing, one revoking
    /// the server's certificate (`sslcrl`).
    pub crl_empty: PathBuf,
    pub crl_revoking_server: PathBuf,
    pg_ctl: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn skip_or_fail(what: &str) -> Option<CertServer> {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{what} is needed under CI=true"
    );
    eprintln!("skipped: {what}");
    None
}

/// `program` run as the user `postgres` when this is root (initdb refuses
/// root), else as this user.
fn as_server_user(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A key (EC P-256, SEC1) and a certificate for `subject`, signed by the
/// CA in `dir` with the extensions `ext`.
fn issue(dir: &Path, name: &str, subject: &str, ext: &str) {
    let key = format!("{name}.key");
    openssl(
        dir,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            &key,
        ],
    );
    let csr = format!("{name}.csr");
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
    );
    let extfile = format!("{name}.ext");
    std::fs::write(dir.join(&extfile), ext).expect("write ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// `empty.crl`, then `revoked.crl` with the server's certificate revoked,
/// by `openssl ca` with a minimal configuration.
fn revocation_lists(dir: &Path) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 2\n",
    )
    .expect("ca.cnf");
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
    for step in [
        ["-gencrl", "-out", "empty.crl"].as_slice(),
        &["-revoke", "server.crt"],
        &["-gencrl", "-out", "revoked.crl"],
    ] {
        let ca = [
            "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem",
        ];
        openssl(dir, &[&ca[..], step].concat());
    }
}

impl CertServer {
    pub fn start() -> Option<CertServer> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
        else {
            return skip_or_fail("PostgreSQL's initdb (/usr/lib/postgresql/*/bin)");
        };
        if !crate::common::have_command("openssl", "Debian package openssl") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        let server = dir.path().join("server");
        std::fs::create_dir(&certs).expect("mkdir");
        std::fs::create_dir(&server).expect("mkdir");
        // ca.pem and ca.key in `certs`.
        super::git_servers::PrivateCa::new(&certs);
        issue(
            &certs,
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        );
        issue(
            &certs,
            "client",
            "/CN=postgres",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        openssl(
            &certs,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "client.key",
                "-out",
                "client.pk8",
            ],
        );
        revocation_lists(&certs);
        for f in ["server.crt", "server.key", "ca.pem"] {
            std::fs::copy(certs.join(f), server.join(f)).expect("copy");
        }
        for f in ["client.key", "client.pk8"] {
            std::fs::set_permissions(certs.join(f), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(
            server.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        if unsafe { libc::geteuid() } == 0 {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&server));
        }
        let data = server.join("data");
        run(as_server_user(&bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(&data));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 cert\n",
        )
        .expect("pg_hba");
        let s = |f: &str| server.join(f).display().to_string();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n\
             fsync = off\n",
            server.display(),
            s("server.crt"),
            s("server.key"),
            s("ca.pem"),
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut file, conf.as_bytes()).expect("write conf");
        let started = CertServer {
            port,
            ca: certs.join("ca.pem"),
            cert: certs.join("client.crt"),
            key_sec1: certs.join("client.key"),
            key_pkcs8: certs.join("client.pk8"),
            crl_empty: certs.join("empty.crl"),
            crl_revoking_server: certs.join("revoked.crl"),
            pg_ctl: bin.join("pg_ctl"),
            data: data.clone(),
            _dir: dir,
        };
        run(as_server_user(&started.pg_ctl)
            .args(["-w", "-t", "60", "-l"])
            .arg(server.join("log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        Some(started)
    }
}

impl Drop for CertServer {
    fn drop(&mut self) {
        let _ = as_server_user(&self.pg_ctl)
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

/// A relay to the PostgreSQL server on 127.0.0.1:5432 that goes silent on
/// a connection from the first message holding `trigger`: it drops what
/// the client sends from then on and answers nothing, keeping the
/// connection open, as a server stuck mid-statement does.
pub fn freezing_relay(trigger: &'static str) -> u16 {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = std::net::TcpStream::connect("127.0.0.1:5432") else {
                continue;
            };
            let frozen = Arc::new(AtomicBool::new(false));
            for (from, to, upstream) in [
                (client.try_clone(), server.try_clone(), true),
                (server.try_clone(), client.try_clone(), false),
            ] {
                let (Ok(mut from), Ok(mut to)) = (from, to) else {
                    continue;
                };
                let frozen = frozen.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if upstream && String::from_utf8_lossy(&buf[..n]).contains(trigger) {
                            frozen.store(true, Ordering::SeqCst);
                        }
                        if !frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    // Either side gone: the other goes too, so that the
                    // server ends the session and frees its locks.
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    port
}
