//! libpq's connection parameters: each keyword honoured, accepted as a
//! no-op or refused with its reason, filled as libpq fills it (the URL,
//! then the service file's entry, then the keyword's `PG*` variable), and
//! turned into the driver's `Config`. Pure, but for the files it is handed
//! a reader for (service files, the password file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::Config;

use super::pg_service;
use crate::source::display_path;

/// What nfcron does with a keyword.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Passed on to the driver (after [`check`]).
    Driver,
    /// Read by nfcron: TLS, timeouts, files, services.
    Own,
    /// Accepted without effect; the reason is logged at debug.
    NoOp(&'static str),
}

const NO_GSS: &str = "no GSSAPI here: Kerberos settings have no effect";

/// libpq's keywords, each with its environment variable.
const KEYWORDS: &[(&str, Option<&str>, Kind)] = &[
    ("host", Some("PGHOST"), Kind::Driver),
    ("hostaddr", Some("PGHOSTADDR"), Kind::Driver),
    ("port", Some("PGPORT"), Kind::Driver),
    ("dbname", Some("PGDATABASE"), Kind::Driver),
    ("user", Some("PGUSER"), Kind::Driver),
    ("password", Some("PGPASSWORD"), Kind::Driver),
    ("passfile", Some("PGPASSFILE"), Kind::Own),
    ("require_auth", Some("PGREQUIREAUTH"), Kind::Own),
    ("channel_binding", Some("PGCHANNELBINDING"), Kind::Driver),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT"), Kind::Own),
    ("client_encoding", Some("PGCLIENTENCODING"), Kind::Own),
    ("options", Some("PGOPTIONS"), Kind::Driver),
    ("application_name", Some("PGAPPNAME"), Kind::Driver),
    ("fallback_application_name", None, Kind::Own),
    ("keepalives", None, Kind::Own),
    ("keepalives_idle", None, Kind::Own),
    ("keepalives_interval", None, Kind::Own),
    ("keepalives_count", None, Kind::Own),
    ("tcp_user_timeout", None, Kind::Own),
    ("replication", None, Kind::Own),
    ("gssencmode", Some("PGGSSENCMODE"), Kind::Own),
    ("sslmode", Some("PGSSLMODE"), Kind::Own),
    ("requiressl", Some("PGREQUIRESSL"), Kind::Own),
    ("sslnegotiation", Some("PGSSLNEGOTIATION"), Kind::Driver),
    (
        "sslcompression",
        Some("PGSSLCOMPRESSION"),
        Kind::NoOp("TLS compression is never used (nor by libpq since PostgreSQL 14)"),
    ),
    ("sslcert", Some("PGSSLCERT"), Kind::Own),
    ("sslkey", Some("PGSSLKEY"), Kind::Own),
    ("sslpassword", None, Kind::Own),
    ("sslcertmode", Some("PGSSLCERTMODE"), Kind::Own),
    ("sslrootcert", Some("PGSSLROOTCERT"), Kind::Own),
    ("sslcrl", Some("PGSSLCRL"), Kind::Own),
    ("sslcrldir", Some("PGSSLCRLDIR"), Kind::Own),
    ("sslsni", Some("PGSSLSNI"), Kind::Own),
    ("requirepeer", Some("PGREQUIREPEER"), Kind::Own),
    (
        "ssl_min_protocol_version",
        Some("PGSSLMINPROTOCOLVERSION"),
        Kind::Own,
    ),
    (
        "ssl_max_protocol_version",
        Some("PGSSLMAXPROTOCOLVERSION"),
        Kind::Own,
    ),
    ("krbsrvname", Some("PGKRBSRVNAME"), Kind::NoOp(NO_GSS)),
    ("gsslib", Some("PGGSSLIB"), Kind::NoOp(NO_GSS)),
    ("gssdelegation", Some("PGGSSDELEGATION"), Kind::NoOp(NO_GSS)),
    ("service", Some("PGSERVICE"), Kind::Own),
    (
        "target_session_attrs",
        Some("PGTARGETSESSIONATTRS"),
        Kind::Driver,
    ),
    (
        "load_balance_hosts",
        Some("PGLOADBALANCEHOSTS"),
        Kind::Driver,
    ),
];

/// libpq's variables that set a server setting at startup rather than a
/// keyword: sent the same way, through `options`.
const SESSION_VARIABLES: &[(&str, &str)] = &[
    ("PGDATESTYLE", "DateStyle"),
    ("PGTZ", "TimeZone"),
    ("PGGEQO", "geqo"),
];

/// Every environment variable libpq reads for a connection (but `HOME`).
pub(super) const VARIABLES: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGREQUIREAUTH",
    "PGCHANNELBINDING",
    "PGCONNECT_TIMEOUT",
    "PGCLIENTENCODING",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGGSSENCMODE",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLNEGOTIATION",
    "PGSSLCOMPRESSION",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCERTMODE",
    "PGSSLROOTCERT",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGSSLSNI",
    "PGREQUIREPEER",
    "PGSSLMINPROTOCOLVERSION",
    "PGSSLMAXPROTOCOLVERSION",
    "PGKRBSRVNAME",
    "PGGSSLIB",
    "PGGSSDELEGATION",
    "PGSERVICE",
    "PGTARGETSESSIONATTRS",
    "PGLOADBALANCEHOSTS",
    "PGDATESTYLE",
    "PGTZ",
    "PGGEQO",
    "PGSERVICEFILE",
    "PGSYSCONFDIR",
];

/// A keyword as libpq spells it, or the reason it is not one.
pub(super) fn keyword(name: &str) -> Result<&'static str, String> {
    KEYWORDS
        .iter()
        .find(|(k, _, _)| *k == name)
        .map(|(k, _, _)| *k)
        .ok_or_else(|| format!("unknown parameter {name:?} (not a libpq keyword)"))
}

fn kind(name: &str) -> Kind {
    KEYWORDS
        .iter()
        .find(|(k, _, _)| *k == name)
        .map_or(Kind::Own, |(_, _, kind)| *kind)
}

/// The resolved keywords and their values.
#[derive(Clone, Default, PartialEq)]
pub(super) struct Params(BTreeMap<&'static str, String>);

/// Names the keywords set, never a value: a password or a key passphrase
/// is among them.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether a 0/1 keyword is on (`default` when unset).
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.get(name).map_or(default, |v| v != "0")
    }
}

/// The keywords `url` sets: its user, password, host, port and database,
/// then its query, each percent-decoded once (`+` stays a `+`, as in
/// libpq). An empty value counts as unset, but for a password. A keyword
/// the query gives twice with different values is refused rather than
/// the last one taken as libpq does (`?sslmode=verify-full&sslmode=disable`
/// is more likely a mistake, or an appended downgrade, than a choice).
fn of_url(url: &url::Url) -> Result<BTreeMap<&'static str, String>, String> {
    let decode = |name: &str, s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| format!("{name} is not UTF-8 once percent-decoded"))
    };
    let mut values = BTreeMap::new();
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    values.insert("host", decode("host", host)?);
    values.insert(
        "port",
        url.port().map(|p| p.to_string()).unwrap_or_default(),
    );
    values.insert("user", decode("user", url.username())?);
    values.insert(
        "dbname",
        decode("dbname", url.path().trim_start_matches('/'))?,
    );
    if let Some(password) = url.password() {
        values.insert("password", decode("password", password)?);
    }
    let mut query = BTreeMap::new();
    for segment in url.query().unwrap_or("").split('&') {
        if segment.is_empty() {
            continue;
        }
        let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
        let k = keyword(&decode("a parameter's name", k)?)?;
        let v = decode(k, v)?;
        if query.get(k).is_some_and(|old| *old != v) {
            return Err(format!(
                "{k} is given twice, with different values: give it once"
            ));
        }
        query.insert(k, v);
    }
    values.extend(query);
    // An empty value is no value (a URL without a user or a database),
    // except where an empty one would pick a weaker default: an empty
    // `sslmode=` (a template's unset variable) is refused as libpq refuses
    // it, never read as "not given" and so as `disable`.
    let enumerated = |k: &str| VALUES.iter().any(|(name, _)| *name == k);
    values.retain(|k, v| !v.is_empty() || *k == "password" || enumerated(k));
    requiressl_as_sslmode(&mut values);
    Ok(values)
}

/// `requiressl` is libpq's older spelling of `sslmode`, and libpq reads it
/// as one where it is given (`1` is `require`, `0` is `prefer`): a URL's
/// `requiressl=1` then wins over `PGSSLMODE` as its `sslmode` would. A
/// `sslmode` given in the same place wins over it.
fn requiressl_as_sslmode(values: &mut BTreeMap<&'static str, String>) {
    if let (Some(on), false) = (values.get("requiressl"), values.contains_key("sslmode")) {
        let mode = if on.starts_with('1') {
            "require"
        } else {
            "prefer"
        };
        values.insert("sslmode", mode.to_string());
    }
}

/// Every keyword's value: the URL's, else the service's (`service`, else
/// `PGSERVICE`), else its variable's; each checked.
pub(super) fn resolve(
    url: &url::Url,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Params, String> {
    let mut values = of_url(url)?;
    let service = values
        .get("service")
        .cloned()
        .or_else(|| env("PGSERVICE").filter(|s| !s.is_empty()));
    if let Some(service) = service {
        let mut entry: BTreeMap<_, _> = pg_service::lookup(&service, env, read)?
            .into_iter()
            .collect();
        requiressl_as_sslmode(&mut entry);
        for (k, v) in entry {
            values.entry(k).or_insert(v);
        }
    }
    for (name, variable, _) in KEYWORDS {
        if let (Some(variable), false) = (variable, values.contains_key(name)) {
            if let Some(value) = env(variable).filter(|v| !v.is_empty()) {
                values.insert(name, value);
            }
        }
    }
    for (variable, setting) in SESSION_VARIABLES {
        if let Some(value) = env(variable).filter(|v| !v.is_empty()) {
            let value = value.replace('\\', "\\\\").replace(' ', "\\ ");
            let options = values.entry("options").or_default();
            *options = format!("{options} -c {setting}={value}").trim().to_string();
        }
    }
    for (name, value) in &values {
        check(name, value)?;
        if let Kind::NoOp(why) = kind(name) {
            tracing::debug!(parameter = name, "accepted without effect: {why}");
        }
    }
    Ok(Params(values))
}

/// The values libpq allows for its enumerated keywords.
const VALUES: &[(&str, &[&str])] = &[
    ("gssencmode", &["disable", "prefer", "require"]),
    (
        "target_session_attrs",
        &[
            "any",
            "read-write",
            "read-only",
            "primary",
            "standby",
            "prefer-standby",
        ],
    ),
    (
        "sslmode",
        &[
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ],
    ),
    ("sslnegotiation", &["postgres", "direct"]),
    ("sslcertmode", &["disable", "allow", "require"]),
    ("channel_binding", &["disable", "prefer", "require"]),
    ("load_balance_hosts", &["disable", "random"]),
    ("requiressl", &["0", "1"]),
    ("sslsni", &["0", "1"]),
    ("keepalives", &["0", "1"]),
    ("sslcompression", &["0", "1"]),
    ("gssdelegation", &["0", "1"]),
    (
        "ssl_min_protocol_version",
        &["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"],
    ),
    (
        "ssl_max_protocol_version",
        &["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"],
    ),
];

/// Why nfcron cannot honour a value libpq would take, if it cannot.
fn unsupported(name: &str, value: &str) -> Option<&'static str> {
    match (name, value) {
        ("require_auth", _) => Some(
            "the driver cannot restrict the authentication method \
             (channel_binding=require insists on SCRAM over TLS)",
        ),
        ("requirepeer", _) => Some("the driver cannot check a Unix socket's peer"),
        ("client_encoding", v) => (!matches!(
            v.to_ascii_lowercase().as_str(),
            "utf8" | "utf-8" | "unicode" | "auto"
        ))
        .then_some("the driver speaks UTF8 only"),
        ("replication", v) => (!matches!(v, "0" | "off" | "false" | "no"))
            .then_some("a replication connection cannot run nfcron's queries"),
        ("gssencmode", "require") => Some("GSS encryption is not built in; use sslmode for TLS"),
        ("target_session_attrs", "primary" | "standby" | "prefer-standby") => {
            Some("the driver knows any, read-write and read-only only")
        }
        _ => None,
    }
}

/// A value libpq would take and nfcron can honour, else why not.
fn check(name: &str, value: &str) -> Result<(), String> {
    if let Some((_, allowed)) = VALUES.iter().find(|(k, _)| *k == name) {
        if !allowed.contains(&value) {
            return Err(format!(
                "{name} {value:?} is not one of {}",
                allowed.join(", ")
            ));
        }
    }
    if let Some(why) = unsupported(name, value) {
        return Err(format!("{name}={value:?} is not supported: {why}"));
    }
    let number = || {
        value
            .trim()
            .parse::<i64>()
            .map(drop)
            .map_err(|_| format!("{name} {value:?} is not a whole number"))
    };
    match name {
        "port" => value
            .split(',')
            .try_for_each(|p| p.parse::<u16>().map(drop))
            .map_err(|_| format!("port {value:?} is not a port")),
        "hostaddr" => value
            .split(',')
            .try_for_each(|a| a.parse::<std::net::IpAddr>().map(drop))
            .map_err(|_| format!("hostaddr {value:?} is not an IP address")),
        "connect_timeout"
        | "keepalives_idle"
        | "keepalives_interval"
        | "keepalives_count"
        | "tcp_user_timeout" => number(),
        _ => Ok(()),
    }
}

/// libpq's whole-second values (`keepalives_idle`, ...); zero or less is
/// "the system's default", here nfcron's.
fn seconds(params: &Params, name: &str) -> Option<Duration> {
    let n: i64 = params.get(name)?.trim().parse().ok()?;
    (n > 0).then(|| Duration::from_secs(n as u64))
}

/// How long connecting may take: `connect_timeout`, at least 2 s as in
/// libpq; 10 s when unset or zero (nfcron never waits without a bound).
pub(super) fn connect_timeout(params: &Params) -> Duration {
    seconds(params, "connect_timeout")
        .map_or(Duration::from_secs(10), |d| d.max(Duration::from_secs(2)))
}

impl Params {
    /// The driver's `Config`: the keywords it knows, as a key/value
    /// connection string; then nfcron's defaults (host `localhost`, the
    /// user from `USER`, application `nfcron`, keepalives and
    /// `tcp_user_timeout` that notice a dead peer in about 20 s) where the
    /// keywords leave them; then the password file when no password is set.
    pub fn driver_config(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Config, String> {
        let conninfo: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| kind(k) == Kind::Driver)
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect();
        let mut config: Config = conninfo
            .join(" ")
            .parse()
            .map_err(|e: postgres::Error| e.to_string())?;
        // Only addresses given: libpq looks the password up by address.
        let by_address = config.get_hosts().is_empty() && !config.get_hostaddrs().is_empty();
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if config.get_user().is_none() {
            config.user(&env("USER").unwrap_or_else(|| "postgres".into()));
        }
        if config.get_application_name().is_none() {
            config.application_name(self.get("fallback_application_name").unwrap_or("nfcron"));
        }
        config
            .connect_timeout(connect_timeout(self))
            .keepalives(self.flag("keepalives", true))
            .keepalives_idle(seconds(self, "keepalives_idle").unwrap_or(Duration::from_secs(10)))
            .keepalives_interval(
                seconds(self, "keepalives_interval").unwrap_or(Duration::from_secs(3)),
            )
            .keepalives_retries(self.get("keepalives_count").map_or(3, |n| {
                n.trim().parse::<u32>().ok().filter(|n| *n > 0).unwrap_or(3)
            }))
            .tcp_user_timeout(
                self.get("tcp_user_timeout")
                    .and_then(|ms| ms.trim().parse::<u64>().ok())
                    .filter(|ms| *ms > 0)
                    .map_or(Duration::from_secs(20), Duration::from_millis),
            );
        if config.get_password().is_none() {
            if let Some(password) = self.password_file(&config, by_address, env, read)? {
                config.password(password);
            }
        }
        Ok(config)
    }
}

impl Params {
    /// The password the password file (`passfile`, else `~/.pgpass`)
    /// gives the hosts `config` may try. libpq looks one up per host; the
    /// driver sends one to every host, so hosts the file gives different
    /// passwords (or some none) are refused rather than one host's sent
    /// to another.
    fn password_file(
        &self,
        config: &Config,
        by_address: bool,
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Option<String>, String> {
        let file = self
            .get("passfile")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
        let Some(file) = file else { return Ok(None) };
        let text = match read(&file) {
            Ok(text) => text,
            // As libpq: a password file that is not there, or not one,
            // is passed over (the latter with a warning).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                tracing::warn!(file = %display_path(&file), "password file not read: {e}");
                return Ok(None);
            }
        };
        let hosts: Vec<String> = if by_address {
            config
                .get_hostaddrs()
                .iter()
                .map(|a| a.to_string())
                .collect()
        } else {
            config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    postgres::config::Host::Tcp(h) => h.clone(),
                    _ => "localhost".into(),
                })
                .collect()
        };
        let ports = config.get_ports();
        let mut found = hosts.iter().enumerate().map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            pgpass(&text, host, port, config)
        });
        let first = found.next().flatten();
        if found.any(|other| other != first) {
            return Err(format!(
                "the password file {} gives the hosts different passwords (or some \
                 none), and one password is sent to every host: give the password, or \
                 one host",
                display_path(&file)
            ));
        }
        Ok(first)
    }
}

/// Service and password files are at most this big.
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// A service or password file's text: a regular file of at most
/// [`MAX_TEXT_BYTES`] of UTF-8, opened without blocking (a FIFO or a
/// device put in its place is refused, never waited on or read forever).
pub(super) fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = super::file::disk::read_regular_at_most(path, MAX_TEXT_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 ({})", e.utf8_error()),
        )
    })
}

/// The password the first matching line of a libpq password file gives
/// `host` and `port` (`host:port:database:user:password`, `*` matching anything, `\:` and
/// `\\` escaped).
fn pgpass(text: &str, host: &str, port: u16, config: &Config) -> Option<String> {
    let (host, port) = (host.to_string(), port.to_string());
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("")
        .to_string();
    let user = config.get_user().unwrap_or("").to_string();
    let wanted = [host, port, db, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            [h, p, d, u]
                .iter()
                .zip(&wanted)
                .all(|(field, want)| field.as_str() == "*" || field == &want)
                .then(|| password.clone())
        })
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn no_files(_: &Path) -> std::io::Result<String> {
        Err(std::io::ErrorKind::NotFound.into())
    }

    fn resolved(url: &str, vars: &[(&str, &str)]) -> Result<Params, String> {
        resolve(
            &url::Url::parse(url).expect("url"),
            &env_of(vars),
            &no_files,
        )
    }

    #[test]
    fn the_url_is_decoded_once_and_wins_over_the_environment() {
        let p = resolved(
            "postgres://me:p%40ss@[::1]:6543/my%20db?options=-c%20a%3D1+2&sslmode=require",
            &[
                ("PGUSER", "other"),
                ("PGSSLMODE", "disable"),
                ("PGAPPNAME", "app"),
            ],
        )
        .expect("resolve");
        assert_eq!(p.get("user"), Some("me"));
        assert_eq!(p.get("password"), Some("p@ss"));
        assert_eq!(p.get("host"), Some("::1"));
        assert_eq!(p.get("port"), Some("6543"));
        assert_eq!(p.get("dbname"), Some("my db"));
        assert_eq!(p.get("options"), Some("-c a=1+2"));
        assert_eq!(p.get("sslmode"), Some("require"));
        assert_eq!(p.get("application_name"), Some("app"));
        let config = p.driver_config(&env_of(&[]), &no_files).expect("config");
        assert_eq!(config.get_options(), Some("-c a=1+2"));
        assert_eq!(config.get_dbname(), Some("my db"));
        assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
    }

    #[test]
    fn every_libpq_variable_fills_its_keyword() {
        for (name, variable, _) in KEYWORDS {
            let Some(variable) = variable else { continue };
            let value = match *name {
                "port" => "5433",
                "hostaddr" => "10.0.0.1",
                "sslmode" => "verify-full",
                "gssencmode" | "channel_binding" => "prefer",
                "sslnegotiation" => "postgres",
                "sslcertmode" => "allow",
                "target_session_attrs" => "read-write",
                "load_balance_hosts" => "random",
                "client_encoding" => "UTF8",
                "connect_timeout" => "5",
                "requiressl" | "sslsni" | "sslcompression" | "gssdelegation" => "1",
                "ssl_min_protocol_version" => "TLSv1.3",
                "ssl_max_protocol_version" => "TLSv1.3",
                "require_auth" | "requirepeer" | "service" => continue,
                _ => "x",
            };
            let p = resolved("postgres://", &[(variable, value)])
                .unwrap_or_else(|e| panic!("{variable}: {e}"));
            assert_eq!(p.get(name), Some(value), "{variable}");
        }
    }

    #[test]
    fn every_variable_read_is_in_the_list_checked_for_utf8() {
        let read = KEYWORDS
            .iter()
            .filter_map(|(_, variable, _)| *variable)
            .chain(SESSION_VARIABLES.iter().map(|(v, _)| *v))
            .chain(["PGSERVICEFILE", "PGSYSCONFDIR"]);
        for variable in read {
            assert!(VARIABLES.contains(&variable), "{variable}");
        }
    }

    #[test]
    fn session_variables_go_through_options() {
        let p = resolved(
            "postgres://h/d?options=-c%20search_path%3Dx",
            &[("PGTZ", "Europe/Paris"), ("PGDATESTYLE", "ISO, DMY")],
        )
        .expect("resolve");
        assert_eq!(
            p.get("options"),
            Some("-c search_path=x -c DateStyle=ISO,\\ DMY -c TimeZone=Europe/Paris")
        );
    }

    #[test]
    fn each_refusal_names_the_parameter_and_why_never_a_password() {
        for (url, says) in [
            (
                "postgres://h/d?gssencmode=require",
                "GSS encryption is not built in",
            ),
            ("postgres://h/d?require_auth=scram-sha-256", "require_auth"),
            ("postgres://h/d?requirepeer=postgres", "Unix socket's peer"),
            ("postgres://h/d?client_encoding=LATIN1", "UTF8 only"),
            ("postgres://h/d?replication=database", "replication"),
            (
                "postgres://h/d?target_session_attrs=primary",
                "any, read-write and read-only",
            ),
            (
                "postgres://h/d?sslmode=maybe",
                "sslmode \"maybe\" is not one of",
            ),
            ("postgres://h/d?port=x", "port \"x\" is not a port"),
            ("postgres://h/d?keepalives_idle=soon", "keepalives_idle"),
            (
                "postgres://u:s3cret@h/d?nonsense=1",
                "unknown parameter \"nonsense\"",
            ),
            (
                "postgres://h/d?PassWord=s3cret",
                "unknown parameter \"PassWord\"",
            ),
        ] {
            let e = resolved(url, &[]).expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e = resolved("postgres://h/d", &[("PGGSSENCMODE", "require")]).expect_err("gss");
        assert!(e.contains("gssencmode"), "{e}");
        for fine in [
            "postgres://h/d?gssencmode=disable&krbsrvname=pg&gsslib=gssapi&sslcompression=1",
            "postgres://h/d?replication=off&client_encoding=utf8&gssencmode=prefer",
        ] {
            resolved(fine, &[]).expect(fine);
        }
    }

    #[test]
    fn nfcron_defaults_fill_what_the_keywords_leave() {
        let p = resolved("postgres://", &[]).expect("resolve");
        let c = p
            .driver_config(&env_of(&[("USER", "ci")]), &no_files)
            .expect("config");
        assert_eq!(
            c.get_hosts(),
            [postgres::config::Host::Tcp("localhost".into())]
        );
        assert_eq!(c.get_user(), Some("ci"));
        assert_eq!(c.get_application_name(), Some("nfcron"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(10)));
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(20)));
        let p = resolved(
            "postgres:///d?host=%2Frun%2Fpg&connect_timeout=1&keepalives=0&keepalives_idle=30\
             &tcp_user_timeout=5000&fallback_application_name=ops",
            &[],
        )
        .expect("resolve");
        let c = p.driver_config(&env_of(&[]), &no_files).expect("config");
        assert_eq!(
            c.get_hosts(),
            [postgres::config::Host::Unix("/run/pg".into())]
        );
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert!(!c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(c.get_application_name(), Some("ops"));
    }

    #[test]
    fn requiressl_is_an_sslmode_where_it_is_given() {
        // libpq reads a URL's requiressl=1 as its sslmode=require, over
        // PGSSLMODE: never a silent downgrade to no TLS.
        let p =
            resolved("postgres://h/d?requiressl=1", &[("PGSSLMODE", "disable")]).expect("resolve");
        assert_eq!(p.get("sslmode"), Some("require"));
        let p =
            resolved("postgres://h/d?requiressl=0", &[("PGSSLMODE", "require")]).expect("resolve");
        assert_eq!(p.get("sslmode"), Some("prefer"));
        // The same place's sslmode wins; PGSSLMODE wins over PGREQUIRESSL.
        let p = resolved("postgres://h/d?requiressl=1&sslmode=verify-full", &[]).expect("resolve");
        assert_eq!(p.get("sslmode"), Some("verify-full"));
        let p = resolved(
            "postgres://h/d",
            &[("PGREQUIRESSL", "1"), ("PGSSLMODE", "verify-ca")],
        )
        .expect("resolve");
        assert_eq!(p.get("sslmode"), Some("verify-ca"));
        // A service's requiressl=1, over PGSSLMODE too.
        let files = |path: &Path| {
            (path == Path::new("/svc"))
                .then(|| "[s]\nrequiressl=1\n".to_string())
                .ok_or(std::io::ErrorKind::NotFound.into())
        };
        let url = url::Url::parse("postgres://h/d?service=s").expect("url");
        let env = env_of(&[("PGSERVICEFILE", "/svc"), ("PGSSLMODE", "disable")]);
        let p = resolve(&url, &env, &files).expect("resolve");
        assert_eq!(p.get("sslmode"), Some("require"));
    }

    #[test]
    fn a_parameter_given_twice_with_different_values_is_refused_unquoted() {
        for (url, names) in [
            (
                "postgres://h/d?sslmode=verify-full&sslmode=disable",
                "sslmode",
            ),
            ("postgres://h/d?password=s3cret&password=other", "password"),
            ("postgres://h/d?sslmode=require&sslmode=", "sslmode"),
        ] {
            let e = resolved(url, &[]).expect_err(url);
            assert_eq!(
                e,
                format!("{names} is given twice, with different values: give it once")
            );
        }
        let p = resolved("postgres://h/d?sslmode=require&sslmode=require", &[])
            .expect("the same value twice");
        assert_eq!(p.get("sslmode"), Some("require"));
    }

    #[test]
    fn a_value_not_utf8_once_decoded_is_refused_naming_its_parameter_only() {
        for (url, says) in [
            ("postgres://u:s3cret%FF@h/d", "password is not UTF-8"),
            (
                "postgres://h/d?sslrootcert=%FFs3cret",
                "sslrootcert is not UTF-8",
            ),
            ("postgres://h/d%FF", "dbname is not UTF-8"),
        ] {
            let e = resolved(url, &[]).expect_err(url);
            assert!(e.starts_with(says) && !e.contains("s3cret"), "{url}: {e}");
        }
    }

    #[test]
    fn a_service_or_password_file_that_is_no_regular_file_is_never_waited_on() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf8")).expect("c");
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; (MAX_TEXT_BYTES + 1) as usize]).expect("write");
        let latin1 = dir.path().join("latin1");
        std::fs::write(&latin1, b"[s]\nhost=caf\xe9\n").expect("write");
        for (file, says) in [
            (fifo.as_path(), "not a regular file"),
            (Path::new("/dev/zero"), "not a regular file"),
            (dir.path(), "not a regular file"),
            (big.as_path(), "bytes, more than"),
            (latin1.as_path(), "not UTF-8"),
        ] {
            let e = read_text(file).expect_err("refused").to_string();
            assert!(e.contains(says), "{}: {e}", file.display());
            let file = file.to_str().expect("utf8");
            let url = url::Url::parse("postgres://?service=s").expect("url");
            let e = resolve(&url, &env_of(&[("PGSERVICEFILE", file)]), &read_text)
                .expect_err("refused");
            assert!(
                e.starts_with(&format!("cannot read service file {file}: ")),
                "{e}"
            );
            // A password file is passed over, as by libpq.
            let url = url::Url::parse(&format!("postgres://h/d?passfile={file}")).expect("url");
            let p = resolve(&url, &env_of(&[]), &read_text).expect("resolve");
            let c = p.driver_config(&env_of(&[]), &read_text).expect("config");
            assert_eq!(c.get_password(), None);
        }
    }

    #[test]
    fn the_password_file_is_read_for_every_host_the_driver_may_try() {
        let files = |_: &Path| {
            Ok(
                "localhost:*:*:nf:local\n10.0.0.7:*:*:nf:addr\na:*:*:nf:pw-a-77\nb:*:*:nf:pw-b-88\n\
                c:*:*:nf:pw-a-77\n"
                    .to_string(),
            )
        };
        let config = |url: &str| {
            let url = url::Url::parse(url).expect("url");
            let p = resolve(&url, &env_of(&[]), &files).expect("resolve");
            p.driver_config(&env_of(&[]), &files)
        };
        // Only an address: as libpq, the address is the line's host, and
        // the localhost line's password is not sent to 10.0.0.7.
        let c =
            config("postgres:///state?passfile=/pgpass&user=nf&hostaddr=10.0.0.7").expect("config");
        assert_eq!(c.get_password(), Some(&b"addr"[..]));
        let c = config("postgres:///state?passfile=/pgpass&user=nf").expect("config");
        assert_eq!(c.get_password(), Some(&b"local"[..]));
        // Hosts the file gives one password: it goes to both.
        let c = config("postgres:///state?passfile=/pgpass&user=nf&host=a,c").expect("config");
        assert_eq!(c.get_password(), Some(&b"pw-a-77"[..]));
        // The driver sends one password to every host: a's is never
        // sent to b; refused, quoting neither.
        let e = config("postgres:///state?passfile=/pgpass&user=nf&host=a,b").expect_err("differ");
        assert!(e.contains("different passwords"), "{e}");
        assert!(!e.contains("pw-a-77") && !e.contains("pw-b-88"), "{e}");
        let e = config("postgres:///state?passfile=/pgpass&user=nf&host=a,d")
            .expect_err("one has none");
        assert!(e.contains("different passwords"), "{e}");
    }

    #[test]
    fn the_passfile_parameter_names_the_password_file() {
        let files = |path: &Path| {
            (path == Path::new("/secrets/pgpass"))
                .then(|| "db:*:state:nf:from\\:file\n".to_string())
                .ok_or(std::io::ErrorKind::NotFound.into())
        };
        let url = url::Url::parse("postgres://nf@db/state?passfile=/secrets/pgpass").expect("url");
        let p = resolve(&url, &env_of(&[("PGPASSFILE", "/elsewhere")]), &files).expect("resolve");
        let c = p.driver_config(&env_of(&[]), &files).expect("config");
        assert_eq!(c.get_password(), Some(&b"from:file"[..]));
        // A password given wins over the file.
        let url =
            url::Url::parse("postgres://nf:given@db/state?passfile=/secrets/pgpass").expect("url");
        let p = resolve(&url, &env_of(&[]), &files).expect("resolve");
        let c = p.driver_config(&env_of(&[]), &files).expect("config");
        assert_eq!(c.get_password(), Some(&b"given"[..]));
    }

    #[test]
    fn params_debug_names_keywords_never_values() {
        let mut params = Params::default();
        params.0.insert("password", "hunter2-secret".into());
        params.0.insert("sslpassword", "key-pass".into());
        let shown = format!("{params:?}");
        assert!(shown.contains("password"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("key-pass"),
            "{shown}"
        );
    }

    #[test]
    fn an_empty_enumerated_parameter_is_refused_not_taken_as_unset() {
        let files = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let env = env_of(&[("PGSSLMODE", "verify-full")]);
        for query in ["sslmode=", "gssencmode=", "target_session_attrs="] {
            let url = url::Url::parse(&format!("postgres://u@db/x?{query}")).expect("url");
            let error = resolve(&url, &env, &files).expect_err(query);
            assert!(error.contains("is not one of"), "{query}: {error}");
        }
        // An empty user or database in the URL is still "not given".
        let url = url::Url::parse("postgres://db/?sslmode=disable").expect("url");
        let params = resolve(&url, &env_of(&[]), &files).expect("resolve");
        assert!(!format!("{params:?}").contains("dbname"), "{params:?}");
    }
}
