//! The PostgreSQL store: `--state postgres://...`, one namespace
//! (`--state-namespace`) per repository or environment in one database.
//!
//! - **Tables** are made and migrated on connect: versioned, idempotent,
//!   under a transaction-level advisory lock, so two processes starting at
//!   once migrate once (`migrate`).
//! - **Commits** write only the rows that changed, in one transaction per
//!   commit: no whole-state rewrite.
//! - **The key** is made once per namespace (`INSERT ... ON CONFLICT DO
//!   NOTHING`, then read back: two first runs agree on one key).
//! - **The lock** is a session-level advisory lock on the namespace, held
//!   on the connection every commit goes through: when that session is
//!   lost, so is the lock, and the next commit fails (the run stops). Its
//!   holder (host, pid, since) is a row written under the lock, so a second
//!   applier can name it.
//! - **Loads** read in one REPEATABLE READ, read-only transaction: a
//!   consistent snapshot, even while another run commits.
//!
//! - **Replicas** of `watch` ([`PostgresStore::replica`]) elect a leader
//!   with the same lock, held for as long as the session lives
//!   ([`PostgresStore::campaign`]): the leader's runs commit through that
//!   session and never reconnect, so a leader whose session is lost can
//!   commit nothing more (fencing) until it wins the lock again. Standbys
//!   relay webhooks to the leader with `NOTIFY` on [`HOOK_CHANNEL`].
//!
//! The URL's password is never shown: [`Target::shown`] drops it, and
//! errors name the target through it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config, IsolationLevel};

use super::pg_tls::{self, Tls};
use super::{pg_deadline, pg_params, Change, Held, Store};
use crate::manifest::JobKey;
use crate::secret::{Keyed, Redacted, KEY_LEN};
use crate::state::{DbCause, Record, Rejection, State, StateError};

/// Whether `--state` names a PostgreSQL database rather than a file.
pub fn is_url(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

/// Set on every session: the server's side of the keepalives, and a
/// bound on any statement (a lock wait included). Each is tried alone;
/// servers that lack one (`tcp_user_timeout` is PostgreSQL 12+) keep their
/// default.
const SESSION_TIMEOUTS: &[&str] = &[
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 3",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 20000",
];

/// The server's bound on a statement (a lock wait included) unless the
/// URL's `options` set `statement_timeout`.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`. Only
/// ever appended to.
const MIGRATIONS: &[&str] = &[
    // 1: namespaces with their key, records, rejections, lock holders.
    "CREATE TABLE nfcron_namespaces (
        namespace text PRIMARY KEY,
        key text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE nfcron_jobs (
        namespace text NOT NULL,
        team text NOT NULL,
        project text NOT NULL,
        id text NOT NULL,
        name text NOT NULL,
        file text NOT NULL,
        digest text NOT NULL,
        spec text NOT NULL,
        applied_at text NOT NULL,
        revision text,
        PRIMARY KEY (namespace, team, project, id)
    );
    CREATE TABLE nfcron_rejections (
        namespace text NOT NULL,
        team text NOT NULL,
        project text NOT NULL,
        id text NOT NULL,
        digest text NOT NULL,
        status integer NOT NULL,
        message text NOT NULL,
        rejected_at text NOT NULL,
        PRIMARY KEY (namespace, team, project, id)
    );
    CREATE TABLE nfcron_locks (
        namespace text PRIMARY KEY,
        host text NOT NULL,
        pid bigint NOT NULL,
        since timestamptz NOT NULL
    );",
];

/// The schema version this nfcron writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Where to connect, resolved from the URL and libpq's environment
/// variables, and how it is shown.
#[derive(Clone)]
pub struct Target {
    config: Config,
    tls: Tls,
    shown: String,
    /// The password as a server's message may quote it back: hidden in
    /// every error (see [`DbCause`]).
    secrets: crate::secret::QuotedForms,
    /// How long connecting may take in all: TCP, TLS, startup and
    /// authentication (libpq's `connect_timeout`).
    connect_deadline: Duration,
    /// The server's `statement_timeout`, set on every session.
    statement_timeout: Duration,
}

/// A driver or server error as shown, its password hidden.
fn db_cause(error: &postgres::Error, secrets: &[String]) -> DbCause {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    DbCause::from_text(scrub(&text, secrets))
}

/// `statement_timeout` as libpq's `options` set it (`-c
/// statement_timeout=5000`, `-cstatement_timeout=5s`); milliseconds when no
/// unit is given, as the server reads it.
fn statement_timeout_in(options: &str) -> Option<Duration> {
    let value = options.split("statement_timeout=").nth(1)?;
    let value = value.split_whitespace().next()?.trim_matches('\'');
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    Some(match &value[digits.len()..] {
        "" | "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "min" => Duration::from_secs(n.saturating_mul(60)),
        _ => return None,
    })
}

/// `text` with every secret form in it shown as `***`.
fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Parses `url` (`postgres://user:password@host:port/db?sslmode=...`),
    /// filling what it leaves out as libpq does: from the service file's
    /// entry (`service`, `PGSERVICE`), then each keyword's `PG*` variable,
    /// then the password file (see [`pg_params`]).
    pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, StateError> {
        let bad = |why: String| StateError::BadUrl {
            shown: redact_url(url),
            why,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let read = pg_params::read_text;
        let params = pg_params::resolve(&parsed, env, &read).map_err(bad)?;
        let home = env("HOME").map(std::path::PathBuf::from);
        let tls = pg_tls::settings(&params, home.as_deref()).map_err(bad)?;
        let mut config = params.driver_config(env, &read).map_err(bad)?;
        config.ssl_mode(match tls {
            Tls::Off => SslMode::Disable,
            Tls::On(_) => SslMode::Require,
        });
        let statement_timeout = config
            .get_options()
            .and_then(statement_timeout_in)
            .unwrap_or(STATEMENT_TIMEOUT);
        let secrets = config
            .get_password()
            .map(|p| crate::secret::QuotedForms::of(&String::from_utf8_lossy(p)))
            .unwrap_or_default();
        // The driver logs a server's notices at info under its own name,
        // whatever the filter: they are the database's chatter (`relation
        // ... already exists` on every migration check), ours to show at
        // debug only.
        let hidden = secrets.clone();
        config.notice_callback(move |notice| {
            tracing::debug!(
                severity = notice.severity(),
                notice = scrub(notice.message(), hidden.as_slice()),
                "database notice"
            );
        });
        Ok(Target {
            config,
            tls,
            shown: redact_url(url),
            secrets,
            connect_deadline: pg_params::connect_timeout(&params),
            statement_timeout,
        })
    }

    /// How long one store step (its statements, a lock wait) may take
    /// before the client gives up on the server: the server's own bound
    /// plus the connect deadline as a margin for the answer to travel.
    fn step_deadline(&self) -> Duration {
        self.statement_timeout + self.connect_deadline
    }

    /// The ports the driver may connect to (one per host, or one for
    /// all).
    fn ports(&self) -> Vec<u16> {
        match self.config.get_ports() {
            [] => vec![5432],
            ports => ports.to_vec(),
        }
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Connects (TCP, TLS, startup, authentication) and sets the session's
    /// timeouts, within the connect deadline: the driver bounds only the
    /// TCP connect, and a server that accepts and then says nothing would
    /// hold the run forever. The attempt runs on a thread of its own; on
    /// the deadline its socket is shut down, which ends the attempt (a
    /// thread and a socket left behind on each of `watch`'s campaigns
    /// against a silent server would pile up).
    fn connect(&self) -> Result<(Client, Option<(i32, u16)>), StateError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let target = self.clone();
        let before = pg_deadline::sockets();
        let before_here = before.clone();
        std::thread::Builder::new()
            .name("nfcron-pg-connect".into())
            .spawn(move || {
                let before = before_here;
                let connected = target.connect_now().map(|mut client| {
                    let socket = pg_deadline::new_socket(&before, &target.ports());
                    let statement = format!(
                        "SET statement_timeout = {}",
                        target.statement_timeout.as_millis()
                    );
                    for set in SESSION_TIMEOUTS.iter().copied().chain([statement.as_str()]) {
                        if let Err(e) = client.batch_execute(set) {
                            let e = db_cause(&e, target.secrets.as_slice());
                            tracing::debug!(error = %e, "{set}: not applied");
                        }
                    }
                    (client, socket)
                });
                let _ = tx.send(connected);
            })
            .map_err(|_| self.deadline("start a connection", Duration::ZERO, None))?;
        match rx.recv_timeout(self.connect_deadline) {
            Ok(connected) => connected,
            Err(_) => {
                pg_deadline::cut_new(&before, &self.ports());
                Err(self.deadline(
                    "connect (TCP, TLS, startup and authentication)",
                    self.connect_deadline,
                    None,
                ))
            }
        }
    }

    /// The deadline error of `step`, naming the host on `port` (the
    /// connection's, when it is known), else the first.
    fn deadline(&self, step: &'static str, after: Duration, port: Option<u16>) -> StateError {
        let ports = self.ports();
        let at = port
            .and_then(|port| ports.iter().position(|p| *p == port))
            .filter(|_| ports.len() > 1)
            .unwrap_or(0);
        let host = match self.config.get_hosts().get(at) {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = port.unwrap_or(ports[0]);
        StateError::DatabaseDeadline {
            shown: self.shown.clone(),
            host: format!("{host}:{port}"),
            step,
            after,
        }
    }

    fn connect_now(&self) -> Result<Client, StateError> {
        let connected = match &self.tls {
            Tls::Off => self.config.connect(postgres::NoTls),
            Tls::On(settings) => {
                let tls = pg_tls::connector(settings).map_err(|why| StateError::BadUrl {
                    shown: self.shown.clone(),
                    why,
                })?;
                self.config.connect(tls)
            }
        };
        connected.map_err(|source| self.error("connect", source))
    }

    fn error(&self, doing: &'static str, source: postgres::Error) -> StateError {
        StateError::Database {
            shown: self.shown.clone(),
            doing,
            source: db_cause(&source, self.secrets.as_slice()),
        }
    }
}

/// `url` with its password replaced by `***` (and kept unparsed when it
/// does not parse: then only what precedes `@` is cut).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            // libpq (and the driver) also take it as a query parameter;
            // any parameter naming a password, in any casing, is hidden,
            // and so is any that is no libpq keyword (`pasword=` is a
            // password misspelt). The rest is kept as written.
            if let Some(query) = u.query().map(str::to_string) {
                let shown: Vec<String> = query
                    .split('&')
                    .map(|segment| {
                        let key = segment.split_once('=').map_or(segment, |(k, _)| k);
                        let name = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
                        let hidden = name.to_lowercase().contains("password")
                            || super::pg_params::keyword(&name).is_err();
                        if hidden {
                            format!("{key}=***")
                        } else {
                            segment.to_string()
                        }
                    })
                    .collect();
                u.set_query(Some(&shown.join("&")));
            }
            u.to_string()
        }
        // Unparsable: only the scheme is safe to show.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://*** (not a valid URL)"),
            None => "*** (not a valid URL)".into(),
        },
    }
}

/// A `postgres::Client` closes its connection on drop by blocking on its
/// own runtime, which panics on a thread that drives async tasks: this
/// drops it on a thread of its own.
/// The client and its socket's descriptor and peer port (when they could
/// be told), for the step deadline.
struct Conn(Option<Client>, Option<(i32, u16)>);

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// Runs `work` on a thread of its own when called from an async context
/// (see [`Conn`]), else here.
fn blocking<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(work).join())
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    } else {
        work()
    }
}

/// `--state postgres://...` with `--state-namespace`.
pub struct PostgresStore {
    target: Target,
    namespace: String,
    /// One connection, made on first use: the lock's session and every
    /// commit's (fencing: a commit cannot outlive the lock).
    conn: Arc<Mutex<Conn>>,
    /// A `watch` replica: only [`PostgresStore::campaign`] connects, and
    /// the lock is the leadership it won.
    replica: bool,
    /// A replica holds the lock on `conn`'s session.
    leading: AtomicBool,
}

/// The channel standbys `NOTIFY` a verified webhook on; the payload names
/// the schema and namespace, so replicas of other namespaces ignore it.
pub const HOOK_CHANNEL: &str = "nfcron_webhook";

/// What a replica's [`PostgresStore::campaign`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Campaign {
    /// This replica holds the lock; `hooks` webhooks were relayed to it
    /// by standbys since the last campaign.
    Leading { hooks: usize },
    /// Another replica holds it (`holder`: host, pid, since).
    Standby { holder: String },
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PostgresStore({}, {})",
            self.target.shown, self.namespace
        )
    }
}

impl PostgresStore {
    fn parse_key(&self, hex: &str) -> Result<Keyed, StateError> {
        crate::store::file::key::parse_key(hex).ok_or_else(|| StateError::Corrupt {
            path: self.location().into(),
            why: format!("the key is not {KEY_LEN} bytes in hex"),
        })
    }

    pub fn new(target: Target, namespace: &str) -> PostgresStore {
        PostgresStore {
            target,
            namespace: namespace.to_string(),
            conn: Arc::new(Mutex::new(Conn(None, None))),
            replica: false,
            leading: AtomicBool::new(false),
        }
    }

    /// A `watch` replica's store: it applies only while
    /// [`PostgresStore::campaign`] says it leads.
    pub fn replica(target: Target, namespace: &str) -> PostgresStore {
        PostgresStore {
            replica: true,
            ..PostgresStore::new(target, namespace)
        }
    }

    /// A replica's leadership, checked (called every `--failover-check`):
    /// a leader checks that its session (and so its lock) is alive and
    /// collects relayed webhooks; any other replica tries to take the
    /// lock. An error (the database unreachable, the session lost) leaves
    /// this replica a standby with no connection; the next campaign
    /// connects afresh.
    pub fn campaign(&self) -> Result<Campaign, StateError> {
        if self.leading() && self.session_lost() {
            self.step_down();
        }
        let namespace = self.namespace.clone();
        let result = self.with_connecting(true, |client| {
            if self.leading.load(Ordering::SeqCst) {
                self.check_lock(client)?;
                let mine = payload(client, &namespace).map_err(self.err("read the schema"))?;
                let hooks = relayed(client, &mine).map_err(self.err("read relayed webhooks"))?;
                return Ok(Campaign::Leading { hooks });
            }
            let got: bool = client
                .query_one(
                    format!("SELECT pg_try_advisory_lock({LOCK_KEY})").as_str(),
                    &[&namespace],
                )
                .map_err(self.err("take the lock"))?
                .get(0);
            if !got {
                return Ok(Campaign::Standby {
                    holder: holder(client, &namespace)
                        .map_err(self.err("read the lock's holder"))?,
                });
            }
            client
                .execute(
                    "INSERT INTO nfcron_locks (namespace, host, pid, since) VALUES ($1, $2, $3, now())
                     ON CONFLICT (namespace) DO UPDATE SET host = $2, pid = $3, since = now()",
                    &[&namespace, &hostname(), &i64::from(std::process::id())],
                )
                .map_err(self.err("record the lock's holder"))?;
            client
                .batch_execute(&format!("LISTEN {HOOK_CHANNEL}"))
                .map_err(self.err("listen for relayed webhooks"))?;
            // Webhooks relayed before this replica led were served by the
            // leader then.
            let mine = payload(client, &namespace).map_err(self.err("read the schema"))?;
            relayed(client, &mine).map_err(self.err("read relayed webhooks"))?;
            self.leading.store(true, Ordering::SeqCst);
            Ok(Campaign::Leading { hooks: 0 })
        });
        if result.is_err() {
            self.step_down();
        }
        result
    }

    /// Relays a verified webhook to the leader (`NOTIFY`).
    pub fn relay_webhook(&self) -> Result<(), StateError> {
        let namespace = self.namespace.clone();
        let result = self.with_connecting(true, |client| {
            client
                .execute(
                    format!(
                        "SELECT pg_notify('{HOOK_CHANNEL}', coalesce(current_schema(), '') || '/' || $1)"
                    )
                    .as_str(),
                    &[&namespace],
                )
                .map_err(self.err("relay the webhook"))?;
            Ok(())
        });
        if result.is_err() && !self.leading.load(Ordering::SeqCst) {
            self.drop_connection();
        }
        result
    }

    /// Fails unless this session holds the namespace's lock; a replica
    /// that finds it does not steps down (see [`HOLDS_LOCK`]).
    fn check_lock(&self, client: &mut Client) -> Result<(), StateError> {
        let holds: bool = client
            .query_one(HOLDS_LOCK, &[&self.namespace])
            .map_err(self.err("check the leader's lock"))?
            .get(0);
        if !holds {
            self.leading.store(false, Ordering::SeqCst);
            tracing::error!(state = %self.location(), "this session no longer holds the lock (a connection pooler in front of the database?): stepped down");
            return Err(StateError::NotLeading {
                location: self.location(),
            });
        }
        Ok(())
    }

    /// Whether this replica leads.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// No longer the leader: the session goes (and its lock with it, if
    /// the server still holds it).
    fn step_down(&self) {
        if self.leading.swap(false, Ordering::SeqCst) {
            tracing::error!(state = %self.location(), "lost the state database session: stepped down, nothing more is committed until this replica leads again");
        }
        self.drop_connection();
    }

    fn drop_connection(&self) {
        let old = self.conn.lock().unwrap_or_else(|e| e.into_inner()).0.take();
        drop(Conn(old, None));
    }

    /// Runs `work` on the connection, connecting (and migrating) first
    /// when there is none. A replica connects only when campaigning: its
    /// runs use the session that holds the lock, or fail.
    fn with<T: Send>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StateError> + Send,
    ) -> Result<T, StateError> {
        if self.replica && !self.leading.load(Ordering::SeqCst) {
            return Err(StateError::NotLeading {
                location: self.location(),
            });
        }
        let result = self.with_connecting(!self.replica, work);
        if self.replica && result.is_err() && (self.session_lost() || !self.leading()) {
            // Fenced: nothing more goes through this replica until it
            // wins the lock again.
            self.step_down();
        }
        result
    }

    /// Whether the connection is gone (closed by the server, the network).
    fn session_lost(&self) -> bool {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.0.as_ref().is_none_or(Client::is_closed)
    }

    fn with_connecting<T: Send>(
        &self,
        connect: bool,
        work: impl FnOnce(&mut Client) -> Result<T, StateError> + Send,
    ) -> Result<T, StateError> {
        blocking(|| {
            let mut conn = self.conn.lock().expect("connection lock");
            if conn.0.is_none() {
                if !connect {
                    return Err(StateError::NotLeading {
                        location: self.location(),
                    });
                }
                let (client, socket) = self.target.connect()?;
                *conn = Conn(Some(client), socket);
                let found = self.within_deadline(&mut conn, |client| {
                    migrate(client).map_err(|e| self.target.error("migrate the tables", e))
                })?;
                if found > SCHEMA_VERSION {
                    return Err(StateError::Corrupt {
                        path: self.location().into(),
                        why: format!("its tables are at version {found}, newer than {SCHEMA_VERSION}, the version this nfcron knows; a newer nfcron migrated them"),
                    });
                }
            }
            self.within_deadline(&mut conn, work)
        })
    }

    /// `work` on the connection, within the step deadline: past it, the
    /// connection is cut (see `pg_deadline`), dropped, and the step's error
    /// is the deadline, naming what it was doing.
    fn within_deadline<T>(
        &self,
        conn: &mut Conn,
        work: impl FnOnce(&mut Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let after = self.target.step_deadline();
        let socket = conn.1;
        let watchdog = socket.and_then(|(fd, port)| pg_deadline::Watchdog::arm(fd, port, after));
        let result = work(conn.0.as_mut().expect("connected"));
        if !watchdog.is_some_and(pg_deadline::Watchdog::disarm) {
            return result;
        }
        *conn = Conn(None, None);
        let step = match &result {
            Err(StateError::Database { doing, .. }) => doing,
            _ => "answer",
        };
        Err(self
            .target
            .deadline(step, after, socket.map(|(_, port)| port)))
    }

    fn err(&self, doing: &'static str) -> impl Fn(postgres::Error) -> StateError + '_ {
        move |source| self.target.error(doing, source)
    }
}

/// Applies the migrations this database lacks, under a transaction-level
/// advisory lock: a second process starting at once waits, then finds
/// them applied. Returns the version found before.
fn migrate(client: &mut Client) -> Result<i32, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(coalesce(current_schema(), '') || '/nfcron/migrate', 0))",
        &[],
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS nfcron_schema_version (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM nfcron_schema_version",
            &[],
        )?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        if version <= current {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO nfcron_schema_version (version) VALUES ($1)",
            &[&version],
        )?;
        tracing::info!(version, "state database migrated");
    }
    tx.commit()?;
    Ok(current)
}

/// The advisory lock key of a namespace (per schema: tests and tenants
/// that share a database by schema do not share locks).
const LOCK_KEY: &str =
    "hashtextextended(coalesce(current_schema(), '') || '/nfcron/lock/' || $1, 0)";

/// Whether this session holds the namespace's lock (`$1`), as the server
/// sees it: a live session alone proves nothing behind a connection pooler
/// that hands the session's backend to someone else.
const HOLDS_LOCK: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks l, (SELECT hashtextextended(coalesce(current_schema(), '') || '/nfcron/lock/' || $1, 0) AS k) key
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_backend_pid() AND l.objsubid = 1
      AND l.classid = ((key.k >> 32) & 4294967295)::oid AND l.objid = (key.k & 4294967295)::oid)";

/// The lock of an applying run: unlocked (and its holder row removed) when
/// dropped; lost with the session.
struct PgLock {
    conn: Arc<Mutex<Conn>>,
    namespace: String,
    deadline: Duration,
}

impl Drop for PgLock {
    fn drop(&mut self) {
        let (conn, namespace) = (self.conn.clone(), self.namespace.clone());
        let deadline = self.deadline;
        blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            let watchdog = conn
                .1
                .and_then(|(fd, port)| pg_deadline::Watchdog::arm(fd, port, deadline));
            if let Some(client) = conn.0.as_mut() {
                let _ = client.execute(
                    "DELETE FROM nfcron_locks WHERE namespace = $1 AND pid = $2",
                    &[&namespace, &i64::from(std::process::id())],
                );
                let _ = client.execute(
                    format!("SELECT pg_advisory_unlock({LOCK_KEY})").as_str(),
                    &[&namespace],
                );
            }
            if watchdog.is_some_and(pg_deadline::Watchdog::disarm) {
                // The server stopped answering: the session (and the lock
                // with it) ends with the connection.
                *conn = Conn(None, None);
            }
        });
    }
}

fn team_column(key: &JobKey) -> &str {
    key.team.as_deref().unwrap_or("")
}

fn team_of(column: String) -> Option<String> {
    (!column.is_empty()).then_some(column)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The payload a relayed webhook carries for this schema and namespace.
fn payload(client: &mut Client, namespace: &str) -> Result<String, postgres::Error> {
    Ok(client
        .query_one(
            "SELECT coalesce(current_schema(), '') || '/' || $1",
            &[&namespace],
        )?
        .get(0))
}

/// How many webhooks for `mine` (see [`payload`]) the session has received
/// since it was last asked; never waits.
fn relayed(client: &mut Client, mine: &str) -> Result<usize, postgres::Error> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut pending = client.notifications();
    let mut notes = pending.iter();
    let mut hooks = 0;
    while let Some(note) = notes.next()? {
        if note.channel() == HOOK_CHANNEL && note.payload() == mine {
            hooks += 1;
        }
    }
    Ok(hooks)
}

/// Who holds the lock of `namespace`, as its row says.
fn holder(client: &mut Client, namespace: &str) -> Result<String, postgres::Error> {
    let row = client.query_opt(
        "SELECT host, pid, to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM nfcron_locks WHERE namespace = $1",
        &[&namespace],
    )?;
    Ok(match row {
        Some(row) => format!(
            "host {}, pid {}, since {}",
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            row.get::<_, String>(2)
        ),
        None => "holder not yet recorded".into(),
    })
}

/// A replica's lock for one run: the leadership it holds already.
struct Leadership;

impl Store for PostgresStore {
    fn location(&self) -> String {
        format!("{} (namespace {})", self.target.shown, self.namespace)
    }

    fn nothing_recorded(&self) -> &'static str {
        "a new, empty namespace"
    }

    fn lock(&self) -> Result<Held, StateError> {
        if self.replica {
            // The session holds the lock while it lives: check it does.
            self.fence()?;
            return Ok(Box::new(Leadership));
        }
        let namespace = self.namespace.clone();
        let host = hostname();
        self.with(|client| {
            // A holder on this host whose process is gone (killed) has a
            // session the server has not reaped yet: wait for it, briefly.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let got = loop {
                let got: bool = client
                    .query_one(format!("SELECT pg_try_advisory_lock({LOCK_KEY})").as_str(), &[&namespace])
                    .map_err(self.err("take the lock"))?
                    .get(0);
                if got || std::time::Instant::now() > deadline {
                    break got;
                }
                let holder = client
                    .query_opt("SELECT host, pid FROM nfcron_locks WHERE namespace = $1", &[&namespace])
                    .map_err(self.err("read the lock's holder"))?;
                let dead_here = holder.is_some_and(|row| {
                    let pid = i32::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                    row.get::<_, String>(0) == host && crate::store::file::lock::pid_gone(pid)
                });
                if !dead_here {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if !got {
                let holder = holder(client, &namespace).map_err(self.err("read the lock's holder"))?;
                return Err(StateError::HeldBy {
                    location: self.location(),
                    holder,
                });
            }
            client
                .execute(
                    "INSERT INTO nfcron_locks (namespace, host, pid, since) VALUES ($1, $2, $3, now())
                     ON CONFLICT (namespace) DO UPDATE SET host = $2, pid = $3, since = now()",
                    &[&namespace, &host, &i64::from(std::process::id())],
                )
                .map_err(self.err("record the lock's holder"))?;
            Ok(())
        })?;
        Ok(Box::new(PgLock {
            conn: self.conn.clone(),
            namespace: self.namespace.clone(),
            deadline: self.target.step_deadline(),
        }))
    }

    fn load(&self) -> Result<Option<State>, StateError> {
        let namespace = self.namespace.clone();
        self.with(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(self.err("read the state"))?;
            let known = tx
                .query_opt("SELECT 1 FROM nfcron_namespaces WHERE namespace = $1", &[&namespace])
                .map_err(self.err("read the state"))?
                .is_some();
            let mut state = State::default();
            for row in tx
                .query(
                    "SELECT team, project, id, name, file, digest, spec, applied_at, revision FROM nfcron_jobs WHERE namespace = $1",
                    &[&namespace],
                )
                .map_err(self.err("read the state"))?
            {
                let key = JobKey {
                    team: team_of(row.get(0)),
                    project: row.get(1),
                    id: row.get(2),
                };
                let spec: String = row.get(6);
                let spec = Redacted::from_stored(spec).map_err(|e| StateError::Corrupt {
                    path: self.location().into(),
                    why: format!("the spec of {key} is not JSON: {e}"),
                })?;
                state.jobs.insert(
                    key,
                    Record {
                        name: row.get(3),
                        file: row.get(4),
                        digest: row.get(5),
                        spec,
                        applied_at: row.get(7),
                        revision: row.get(8),
                    },
                );
            }
            for row in tx
                .query(
                    "SELECT team, project, id, digest, status, message, rejected_at FROM nfcron_rejections WHERE namespace = $1",
                    &[&namespace],
                )
                .map_err(self.err("read the state"))?
            {
                let key = JobKey {
                    team: team_of(row.get(0)),
                    project: row.get(1),
                    id: row.get(2),
                };
                let status: i32 = row.get(4);
                state.rejected.insert(
                    key,
                    Rejection {
                        digest: row.get(3),
                        status: u16::try_from(status).unwrap_or(0),
                        message: row.get(5),
                        rejected_at: row.get(6),
                    },
                );
            }
            tx.commit().map_err(self.err("read the state"))?;
            let empty = state.jobs.is_empty() && state.rejected.is_empty();
            Ok((known || !empty).then_some(state))
        })
    }

    fn key(&self, create: bool) -> Result<Keyed, StateError> {
        if !create {
            // A dry-run on a namespace never applied: a throwaway key.
            return match self.stored_key()? {
                Some(keyed) => Ok(keyed),
                None => Keyed::generate().map_err(StateError::Random),
            };
        }
        let namespace = self.namespace.clone();
        let hex: Option<String> = self.with(|client| {
            let fresh = Keyed::generate().map_err(StateError::Random)?;
            let hex: String = fresh.bytes().iter().map(|b| format!("{b:02x}")).collect();
            client
                .execute(
                    "INSERT INTO nfcron_namespaces (namespace, key) VALUES ($1, $2) ON CONFLICT (namespace) DO NOTHING",
                    &[&namespace, &hex],
                )
                .map_err(self.err("create the key"))?;
            Ok(client
                .query_opt("SELECT key FROM nfcron_namespaces WHERE namespace = $1", &[&namespace])
                .map_err(self.err("read the key"))?
                .map(|row| row.get(0)))
        })?;
        match hex {
            Some(hex) => self.parse_key(&hex),
            None => Err(StateError::Corrupt {
                path: self.location().into(),
                why: "the key made for this namespace is not there".into(),
            }),
        }
    }

    fn stored_key(&self) -> Result<Option<Keyed>, StateError> {
        let namespace = self.namespace.clone();
        let hex: Option<String> = self.with(|client| {
            Ok(client
                .query_opt(
                    "SELECT key FROM nfcron_namespaces WHERE namespace = $1",
                    &[&namespace],
                )
                .map_err(self.err("read the key"))?
                .map(|row| row.get(0)))
        })?;
        hex.map(|hex| self.parse_key(&hex)).transpose()
    }

    fn set_key(&self, key: &Keyed) -> Result<(), StateError> {
        let namespace = self.namespace.clone();
        let hex: String = key.bytes().iter().map(|b| format!("{b:02x}")).collect();
        self.with(|client| {
            client
                .execute(
                    "INSERT INTO nfcron_namespaces (namespace, key) VALUES ($1, $2)
                     ON CONFLICT (namespace) DO UPDATE SET key = $2",
                    &[&namespace, &hex],
                )
                .map_err(self.err("write the key"))?;
            Ok(())
        })
    }

    fn fence(&self) -> Result<(), StateError> {
        if !self.replica {
            return Ok(());
        }
        self.with(|client| self.check_lock(client))
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StateError> {
        let namespace = self.namespace.clone();
        self.with(|client| {
            if self.replica {
                self.check_lock(client)?;
            }
            let mut tx = client.transaction().map_err(self.err("commit"))?;
            for change in changes {
                let sql_err = self.err("commit");
                match change {
                    Change::Applied(key, r) => {
                        let spec = r.spec.as_str();
                        tx.execute(
                            "INSERT INTO nfcron_jobs (namespace, team, project, id, name, file, digest, spec, applied_at, revision)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                             ON CONFLICT (namespace, team, project, id) DO UPDATE SET
                               name = $5, file = $6, digest = $7, spec = $8, applied_at = $9, revision = $10",
                            &[&namespace, &team_column(key), &key.project, &key.id, &r.name, &r.file, &r.digest, &spec, &r.applied_at, &r.revision],
                        )
                        .map_err(&sql_err)?;
                        forget(&mut tx, &namespace, key).map_err(&sql_err)?;
                    }
                    Change::Deleted(key) => {
                        tx.execute(
                            "DELETE FROM nfcron_jobs WHERE namespace = $1 AND team = $2 AND project = $3 AND id = $4",
                            &[&namespace, &team_column(key), &key.project, &key.id],
                        )
                        .map_err(&sql_err)?;
                        forget(&mut tx, &namespace, key).map_err(&sql_err)?;
                    }
                    Change::Rejected(key, r) => {
                        tx.execute(
                            "INSERT INTO nfcron_rejections (namespace, team, project, id, digest, status, message, rejected_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                             ON CONFLICT (namespace, team, project, id) DO UPDATE SET
                               digest = $5, status = $6, message = $7, rejected_at = $8",
                            &[&namespace, &team_column(key), &key.project, &key.id, &r.digest, &i32::from(r.status), &r.message, &r.rejected_at],
                        )
                        .map_err(&sql_err)?;
                    }
                    Change::Forgotten(key) => {
                        forget(&mut tx, &namespace, key).map_err(&sql_err)?;
                    }
                }
            }
            tx.commit().map_err(self.err("commit"))
        })
    }
}

fn forget(
    tx: &mut postgres::Transaction<'_>,
    namespace: &str,
    key: &JobKey,
) -> Result<u64, postgres::Error> {
    tx.execute(
        "DELETE FROM nfcron_rejections WHERE namespace = $1 AND team = $2 AND project = $3 AND id = $4",
        &[&namespace, &team_column(key), &key.project, &key.id],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_other_libpq_variables_and_the_password_file_work() {
        let dir = tempfile::tempdir().expect("dir");
        let pgpass = dir.path().join("pgpass");
        std::fs::write(
            &pgpass,
            "# comment\nother:5432:*:nf:wrong\ndb.internal:*:state:nf:pa\\:ss\n",
        )
        .expect("write");
        let file = pgpass.display().to_string();
        let env = |name: &str| {
            Some(match name {
                "PGOPTIONS" => "-c statement_timeout=5000".to_string(),
                "PGAPPNAME" => "sidecar".into(),
                "PGTARGETSESSIONATTRS" => "read-write".into(),
                "PGHOSTADDR" => "10.0.0.7".into(),
                "PGPASSFILE" => file.clone(),
                _ => return None,
            })
        };
        let t = Target::parse("postgres://nf@db.internal/state", &env).expect("parse");
        assert_eq!(t.config.get_options(), Some("-c statement_timeout=5000"));
        assert_eq!(t.config.get_application_name(), Some("sidecar"));
        assert_eq!(
            t.config.get_hostaddrs(),
            ["10.0.0.7".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(t.config.get_password(), Some(&b"pa:ss"[..]));
        assert_eq!(t.step_deadline(), Duration::from_secs(15));
        // The URL's own values win.
        let t = Target::parse(
            "postgres://nf:url@db.internal/state?application_name=a",
            &env,
        )
        .expect("parse");
        assert_eq!(t.config.get_password(), Some(&b"url"[..]));
        assert_eq!(t.config.get_application_name(), Some("a"));
    }

    #[test]
    fn a_connect_past_its_deadline_is_cut_not_left_holding_the_server() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = std::thread::spawn(move || listener.accept().expect("accept").0);
        let url = format!("postgres://u@127.0.0.1:{port}/x?connect_timeout=2");
        let target = Target::parse(&url, &no_env).expect("parse");
        let e = target.connect().map(drop).expect_err("silent server");
        assert!(matches!(e, StateError::DatabaseDeadline { .. }), "{e}");
        let mut server_side = accepted.join().expect("accepted");
        server_side
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        // The startup message, then the end: the attempt was cut, not left
        // on a thread holding a socket for as long as the server is silent.
        let mut got = Vec::new();
        let read = server_side.read_to_end(&mut got);
        assert!(read.is_ok(), "still open after the deadline: {read:?}");
    }

    #[test]
    fn the_statement_timeout_the_options_set_bounds_each_step() {
        assert_eq!(
            statement_timeout_in("-c statement_timeout=5000"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            statement_timeout_in("-csearch_path=x -cstatement_timeout=7s"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(statement_timeout_in("-c search_path=x"), None);
        assert_eq!(statement_timeout_in("-c statement_timeout=5h"), None);
        let target = Target::parse(
            "postgres://u@db/x?connect_timeout=3&options=-c%20statement_timeout%3D2000",
            &no_env,
        )
        .expect("parse");
        assert_eq!(target.step_deadline(), Duration::from_secs(5));
        let default = Target::parse("postgres://u@db/x", &no_env).expect("parse");
        assert_eq!(default.step_deadline(), Duration::from_secs(70));
    }

    #[test]
    fn the_password_is_redacted_wherever_the_url_is_shown() {
        assert_eq!(
            redact_url("postgres://u:s3cret@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        // Unparsable (a bad port): only the scheme is shown.
        assert_eq!(
            redact_url("postgres://u:s3cret@db:99999/x?password=s3cret"),
            "postgres://*** (not a valid URL)"
        );
        // A password given as a query parameter.
        assert_eq!(
            redact_url("postgres://u@db/x?password=s3cret&sslmode=require"),
            "postgres://u@db/x?password=***&sslmode=require"
        );
        // In any casing, and the rest of the query kept as written.
        assert_eq!(
            redact_url("postgres://u@db/x?PassWord=s3cret&options=-c%20a%3D1&sslPASSWORD=k"),
            "postgres://u@db/x?PassWord=***&options=-c%20a%3D1&sslPASSWORD=***"
        );
        // A parameter that is no libpq keyword may be a password misspelt.
        assert_eq!(
            redact_url("postgres://u@db/x?pasword=s3cret&sslmode=require&paswd"),
            "postgres://u@db/x?pasword=***&sslmode=require&paswd=***"
        );
        let target = Target::parse(
            "postgres://u@db/x?options=-c%20a%3D1&sslmode=disable",
            &no_env,
        )
        .expect("parse");
        assert_eq!(
            target.shown(),
            "postgres://u@db/x?options=-c%20a%3D1&sslmode=disable"
        );
        assert_eq!(target.config.get_options(), Some("-c a=1"));
        let target = Target::parse("postgres://u:s3cret@db/x", &no_env).expect("parse");
        assert!(!format!("{target:?}").contains("s3cret"));
        assert!(!target.shown().contains("s3cret"));
        let e = Target::parse("postgres://u:s3cret@db/x?sslmode=maybe", &no_env)
            .expect_err("bad sslmode")
            .to_string();
        assert!(
            !e.contains("s3cret") && e.contains("sslmode \"maybe\""),
            "{e}"
        );
    }

    #[test]
    fn libpq_variables_fill_what_the_url_leaves_out() {
        let env = |name: &str| {
            Some(
                match name {
                    "PGHOST" => "db.internal",
                    "PGPORT" => "6543",
                    "PGUSER" => "nf",
                    "PGPASSWORD" => "pw",
                    "PGDATABASE" => "state",
                    "PGSSLMODE" => "verify-full",
                    "PGSSLROOTCERT" => "/ca.pem",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let t = Target::parse("postgres://", &env).expect("parse");
        assert_eq!(
            t.config.get_hosts(),
            [postgres::config::Host::Tcp("db.internal".into())]
        );
        assert_eq!(t.config.get_ports(), [6543]);
        assert_eq!(t.config.get_user(), Some("nf"));
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.config.get_dbname(), Some("state"));
        let Tls::On(tls) = &t.tls else {
            panic!("TLS off")
        };
        assert_eq!(tls.root, Some("/ca.pem".into()));
        assert!(tls.verify_name);
        // The URL wins over the environment.
        let t = Target::parse(
            "postgresql://me@h:1/db?sslmode=disable&application_name=x",
            &env,
        )
        .expect("parse");
        assert_eq!(t.config.get_user(), Some("me"));
        assert_eq!(t.config.get_ports(), [1]);
        assert_eq!(t.config.get_dbname(), Some("db"));
        assert_eq!(t.tls, Tls::Off);
        assert_eq!(t.config.get_application_name(), Some("x"));
    }
}
