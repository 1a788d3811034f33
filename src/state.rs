//! The last-applied store: what nfcron last PUT for each job it manages.
//!
//! `.nfcron/state.json` (or `--state PATH`) holds, per `(team, project, id)`,
//! the job's name, source file, a keyed digest of the applied spec, the
//! applied spec with secrets replaced by fingerprints, when it was applied
//! and from which source revision. Beside it: `key` (the HMAC key, mode
//! 0600), `state.lock` (the advisory lock of an applying run, holding its
//! pid) and a `.gitignore` of `*`.
//!
//! Every successful write to the API appends one fsynced line per change
//! to the journal beside it (`state.json.journal`): O(1) per commit, not a
//! rewrite of the whole state. The journal is folded into the snapshot
//! (replaced atomically: temp file, fsync, rename, fsync of the directory;
//! then the journal is removed) when the applying run ends and when the
//! next one loads. A crash at any moment leaves a snapshot that parses and
//! a journal whose complete lines are true of what the API has: a torn
//! last line (the append a crash interrupted, never acknowledged) is
//! ignored, and replaying a line the snapshot already holds changes
//! nothing. A snapshot or a journal line in the middle that does not parse
//! is an error, never an empty baseline: guessing would re-create or prune
//! jobs.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::manifest::JobKey;
use crate::secret::{Keyed, Redacted, KEY_LEN};

pub const FORMAT_VERSION: u32 = 1;

/// What nfcron last applied for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub file: String,
    /// Keyed digest of the full applied spec, secrets included.
    pub digest: String,
    /// The applied spec, secrets replaced by fingerprints.
    pub spec: Redacted,
    /// RFC 3339, UTC.
    pub applied_at: String,
    /// Source revision (a Git commit) the spec came from, when known.
    pub revision: Option<String>,
}

/// A spec the API refused with a permanent error (a 4xx other than 401,
/// 408, 409 and 429): not sent again until its digest changes or
/// `reconcile --retry-rejected`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Keyed digest of the refused spec.
    pub digest: String,
    pub status: u16,
    /// The API's message, already escaped and cut to 1 KiB.
    pub message: String,
    /// RFC 3339, UTC.
    pub rejected_at: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub jobs: BTreeMap<JobKey, Record>,
    /// Jobs whose last PUT the API refused for good, keyed like `jobs`.
    pub rejected: BTreeMap<JobKey, Rejection>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid ({why}); refusing to guess what was applied. Move it away to start from an empty baseline")]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write state file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another nfcron run (pid {pid}) is applying with this state; lock file {path}")]
    Locked { path: PathBuf, pid: String },
    #[error("another nfcron run is applying with the state {location}: {holder}")]
    HeldBy { location: String, holder: String },
    #[error("the state {location} is no longer held by this replica (its database session was lost, or another replica leads): nothing more is committed")]
    NotLeading { location: String },
    #[error("state database URL {shown} is not valid: {why}")]
    BadUrl { shown: String, why: String },
    #[error("state database {shown}: cannot {doing}")]
    Database {
        shown: String,
        doing: &'static str,
        #[source]
        source: DbCause,
    },
    #[error("state database {shown}: no answer from {host} to {step} within {after:?}")]
    DatabaseDeadline {
        shown: String,
        host: String,
        step: &'static str,
        after: std::time::Duration,
    },
    #[error("cannot take the state lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not valid: expected {KEY_LEN} bytes in hex")]
    BadKey { path: PathBuf },
    #[error("cannot create a random key")]
    Random(#[source] getrandom::Error),
}

// ---- the file format (private: the core never sees these types) ----

#[derive(Serialize, Deserialize)]
struct FileV1 {
    format_version: u32,
    jobs: Vec<RecordV1>,
    /// Added without a version bump: absent in older files (an empty map),
    /// and older readers ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rejected: Vec<RejectionV1>,
}

#[derive(Serialize, Deserialize)]
struct RejectionV1 {
    team: Option<String>,
    project: String,
    id: String,
    digest: String,
    status: u16,
    message: String,
    rejected_at: String,
}

#[derive(Serialize, Deserialize)]
struct RecordV1 {
    team: Option<String>,
    project: String,
    id: String,
    name: String,
    file: String,
    digest: String,
    spec: Redacted,
    applied_at: String,
    revision: Option<String>,
}

impl RecordV1 {
    fn of(k: &JobKey, r: &Record) -> RecordV1 {
        RecordV1 {
            team: k.team.clone(),
            project: k.project.clone(),
            id: k.id.clone(),
            name: r.name.clone(),
            file: r.file.clone(),
            digest: r.digest.clone(),
            spec: r.spec.clone(),
            applied_at: r.applied_at.clone(),
            revision: r.revision.clone(),
        }
    }

    fn entry(self) -> (JobKey, Record) {
        (
            JobKey {
                team: self.team,
                project: self.project,
                id: self.id,
            },
            Record {
                name: self.name,
                file: self.file,
                digest: self.digest,
                spec: self.spec.compact(),
                applied_at: self.applied_at,
                revision: self.revision,
            },
        )
    }
}

impl RejectionV1 {
    fn of(k: &JobKey, r: &Rejection) -> RejectionV1 {
        RejectionV1 {
            team: k.team.clone(),
            project: k.project.clone(),
            id: k.id.clone(),
            digest: r.digest.clone(),
            status: r.status,
            message: r.message.clone(),
            rejected_at: r.rejected_at.clone(),
        }
    }

    fn entry(self) -> (JobKey, Rejection) {
        (
            JobKey {
                team: self.team,
                project: self.project,
                id: self.id,
            },
            Rejection {
                digest: self.digest,
                status: self.status,
                message: self.message,
                rejected_at: self.rejected_at,
            },
        )
    }
}

impl State {
    /// Reads the state file; `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<State>, StateError> {
        let text = match read_regular(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let corrupt = |why: String| StateError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let file: FileV1 = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        match file.format_version {
            FORMAT_VERSION => {}
            v if v > FORMAT_VERSION => {
                return Err(corrupt(format!(
                    "format_version {v} is newer than {FORMAT_VERSION}, the version this nfcron reads; a newer nfcron wrote it"
                )))
            }
            v => {
                return Err(corrupt(format!(
                    "format_version {v} is older than {FORMAT_VERSION} and unsupported: no nfcron release wrote it"
                )))
            }
        }
        let jobs = file.jobs.into_iter().map(RecordV1::entry).collect();
        let rejected = file.rejected.into_iter().map(RejectionV1::entry).collect();
        Ok(Some(State { jobs, rejected }))
    }

    /// Replaces the state file atomically: a reader (or a crash) sees the
    /// old file or the new one, never a mix.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        write_atomic(path, &self.to_bytes())
    }

    /// The file's bytes (format_version 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let file = FileV1 {
            format_version: FORMAT_VERSION,
            jobs: self.jobs.iter().map(|(k, r)| RecordV1::of(k, r)).collect(),
            rejected: self
                .rejected
                .iter()
                .map(|(k, r)| RejectionV1::of(k, r))
                .collect(),
        };
        let mut text = serde_json::to_vec_pretty(&file).expect("state serialises");
        text.push(b'\n');
        text
    }
}

/// One line of the journal: a change, with its job's key inline.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum JournalLine {
    Applied(RecordV1),
    Deleted(KeyV1),
    Rejected(RejectionV1),
    Forgotten(KeyV1),
}

#[derive(Serialize, Deserialize)]
struct KeyV1 {
    team: Option<String>,
    project: String,
    id: String,
}

impl KeyV1 {
    fn of(key: &JobKey) -> KeyV1 {
        KeyV1 {
            team: key.team.clone(),
            project: key.project.clone(),
            id: key.id.clone(),
        }
    }

    fn key(self) -> JobKey {
        JobKey {
            team: self.team,
            project: self.project,
            id: self.id,
        }
    }
}

impl JournalLine {
    fn of(change: &Change) -> JournalLine {
        match change {
            Change::Applied(k, r) => JournalLine::Applied(RecordV1::of(k, r)),
            Change::Deleted(k) => JournalLine::Deleted(KeyV1::of(k)),
            Change::Rejected(k, r) => JournalLine::Rejected(RejectionV1::of(k, r)),
            Change::Forgotten(k) => JournalLine::Forgotten(KeyV1::of(k)),
        }
    }

    /// Reads a line by hand rather than through serde's internally tagged
    /// enum: that buffers the line, and a spec's text cannot be taken as
    /// it is from the buffer. The tree it goes through instead can.
    fn parse(line: &str) -> Result<JournalLine, String> {
        let Fields(fields) = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let mut value = Json::Object(fields);
        let op = match value.as_object_mut().and_then(|m| m.remove("op")) {
            Some(Json::String(op)) => op,
            _ => return Err("no `op` naming the change".into()),
        };
        let shape = |e: serde_json::Error| format!("`{op}`: {e}");
        Ok(match op.as_str() {
            "applied" => JournalLine::Applied(RecordV1::deserialize(value).map_err(shape)?),
            "deleted" => JournalLine::Deleted(KeyV1::deserialize(value).map_err(shape)?),
            "rejected" => JournalLine::Rejected(RejectionV1::deserialize(value).map_err(shape)?),
            "forgotten" => JournalLine::Forgotten(KeyV1::deserialize(value).map_err(shape)?),
            other => return Err(format!("unknown change `{other}`")),
        })
    }

    fn change(self) -> Change {
        match self {
            JournalLine::Applied(r) => {
                let (k, r) = r.entry();
                Change::Applied(k, r)
            }
            JournalLine::Deleted(k) => Change::Deleted(k.key()),
            JournalLine::Rejected(r) => {
                let (k, r) = r.entry();
                Change::Rejected(k, r)
            }
            JournalLine::Forgotten(k) => Change::Forgotten(k.key()),
        }
    }
}

/// A journal line's fields; a field given twice is an error (which of
/// the two was meant cannot be told), as it was for the derived reader.
struct Fields(serde_json::Map<String, Json>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = serde_json::Map::new();
                while let Some((name, value)) = map.next_entry::<String, Json>()? {
                    if fields.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate field `{name}`"
                        )));
                    }
                    fields.insert(name, value);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The journal of the state file at `state_path`.
pub fn journal_path(state_path: &Path) -> PathBuf {
    let mut name = state_path
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| "state.json".into());
    name.push(".journal");
    state_path.with_file_name(name)
}

/// Writes `changes` to the journal at `at` (its length after the last
/// acknowledged append), one line each, in one write, then fsyncs it
/// (and, when this made the file, its directory): durable when this
/// returns `Ok`. Whatever follows `at` (the torn end of an append that
/// failed) is cut first, so it can never end up amid complete lines.
/// Returns the journal's new length.
pub fn append_journal(state_path: &Path, at: u64, changes: &[Change]) -> Result<u64, StateError> {
    use std::io::{Seek, SeekFrom};
    let path = journal_path(state_path);
    let write_err = |source| StateError::Write {
        path: path.clone(),
        source,
    };
    let mut bytes = Vec::new();
    for change in changes {
        serde_json::to_writer(&mut bytes, &JournalLine::of(change)).expect("a change serialises");
        bytes.push(b'\n');
    }
    let dir = parent(&path);
    ensure_dir(dir).map_err(write_err)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(write_err)?;
    let len = file.metadata().map_err(write_err)?.len();
    if len < at {
        // Only this store writes the journal, under the lock: shorter than
        // it wrote means someone else cut it. Never pad it.
        return Err(StateError::Corrupt {
            path,
            why: format!("{len} bytes, shorter than the {at} this run wrote to it"),
        });
    }
    if len > at {
        file.set_len(at).map_err(write_err)?;
    }
    file.seek(SeekFrom::Start(at)).map_err(write_err)?;
    file.write_all(&bytes).map_err(write_err)?;
    file.sync_data().map_err(write_err)?;
    hold_fsync();
    // A journal that starts here may have just been made (or made by an
    // append that failed before this fsync): its directory entry too.
    if at == 0 {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err)?;
    }
    Ok(at + bytes.len() as u64)
}

/// The changes in the journal, in order (none when there is no journal),
/// and the length of its complete lines. A last line without its newline
/// is an append a crash cut short, never acknowledged: ignored. Any other
/// line that does not parse is an error.
pub fn read_journal(state_path: &Path) -> Result<(Vec<Change>, u64), StateError> {
    let path = journal_path(state_path);
    let bytes = match read_regular_bytes(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    // The torn tail is cut off as bytes: a full disk can stop an append
    // inside a character, and that tail is ignored like any other.
    let (complete, torn) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => bytes.split_at(end + 1),
        None => (&bytes[..0], &bytes[..]),
    };
    let complete = std::str::from_utf8(complete).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        why: format!("not UTF-8 ({e})"),
    })?;
    if !torn.is_empty() {
        tracing::warn!(journal = %path.display(), bytes = torn.len(), "ignoring the journal's last line, cut short by a crash before it was acknowledged");
    }
    let changes = complete
        .lines()
        .enumerate()
        .map(|(i, line)| {
            JournalLine::parse(line)
                .map(JournalLine::change)
                .map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    why: format!("line {}: {e}", i + 1),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok((changes, complete.len() as u64))
}

/// Folds the journal into the snapshot: `state` (the snapshot with the
/// journal applied) replaces the state file atomically, then the journal
/// goes. A crash between the two replays lines the snapshot already holds,
/// which changes nothing. Called with the lock held.
pub fn fold_journal(state_path: &Path, state: &State) -> Result<(), StateError> {
    let path = journal_path(state_path);
    if !path.exists() {
        return Ok(());
    }
    state.save(state_path)?;
    fs::remove_file(&path).map_err(|source| StateError::Write {
        path: path.clone(),
        source,
    })?;
    File::open(parent(&path))
        .and_then(|d| d.sync_all())
        .map_err(|source| StateError::Write { path, source })
}

/// A state file is at most this big (10,000 jobs take about 10 MB).
const MAX_STATE_BYTES: u64 = 1 << 30;

/// Reads a regular file of at most [`MAX_STATE_BYTES`]: a device or FIFO
/// given as `--state` (`/dev/zero` reads forever) is an error, never read.
fn read_regular(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular_bytes(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// The bytes of a regular file of at most [`MAX_STATE_BYTES`]. Opened
/// without blocking, so a FIFO (or a device) put where the state, its
/// journal or its key belongs is refused, never waited on.
fn read_regular_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_STATE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes, more than {MAX_STATE_BYTES}", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How [`write_atomic`] names its temp files: `.state.` + 6 random
/// alphanumerics + `.tmp`. A kill between create and rename leaves one
/// behind; [`StateLock::acquire`] removes those (and only those).
const TEMP_PREFIX: &str = ".state.";
const TEMP_SUFFIX: &str = ".tmp";
const TEMP_RAND: usize = 6;

fn is_our_temp(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|r| r.len() == TEMP_RAND && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Removes the temp files a killed run left in `dir`: only names of our own
/// pattern, only regular files (never a symlink), only those last modified
/// before `before` (the moment this run took the lock, so none belongs to
/// a run still writing). Called with the lock held. Returns how many went.
fn remove_stale_temps(dir: &Path, before: std::time::SystemTime) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_our_temp) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let old = meta.modified().is_ok_and(|m| m <= before);
        if meta.file_type().is_file() && old && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed temp state files left by an interrupted run");
    }
    removed
}

/// Temp file in the same directory, fsync, rename over `path`, fsync of the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let write_err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = parent(path);
    ensure_dir(dir).map_err(write_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RAND)
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    hold_fsync();
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)?;
    Ok(())
}

/// Test-only: `NFCRON_TEST_FSYNC_DELAY` (a duration such as `2s`, read
/// once per process) makes each state fsync take that much longer, a
/// stand-in for a slow volume. Unset in production: no delay.
fn test_fsync_delay() -> std::time::Duration {
    static DELAY: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("NFCRON_TEST_FSYNC_DELAY")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
            .unwrap_or_default()
    })
}

fn hold_fsync() {
    let delay = test_fsync_delay();
    if !delay.is_zero() {
        tracing::info!(
            hold_ms = delay.as_millis() as u64,
            "NFCRON_TEST_FSYNC_DELAY: holding the state fsync"
        );
        std::thread::sleep(delay);
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates the state directory with a `.gitignore` of `*`, so that state,
/// key and lock are never committed by accident. Only in a directory of
/// nfcron's own (one this made, or a `.nfcron`): a `*` dropped into a
/// directory that holds other things (`--state state.json` at a
/// repository's root) would hide all of them from Git.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    let made = !dir.as_os_str().is_empty() && !dir.exists();
    fs::create_dir_all(dir)?;
    let ignore = dir.join(".gitignore");
    let ours = made || dir.file_name().is_some_and(|n| n == ".nfcron");
    if ours && !ignore.exists() {
        fs::write(ignore, "*\n")?;
    }
    Ok(())
}

/// The advisory lock of an applying run. Held until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock beside `state_path`, or fails at once naming the pid
    /// that holds it.
    pub fn acquire(state_path: &Path) -> Result<StateLock, StateError> {
        let dir = parent(state_path);
        let path = dir.join("state.lock");
        let lock_err = |source| StateError::Lock {
            path: path.clone(),
            source,
        };
        ensure_dir(dir).map_err(lock_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(StateError::Locked {
                    path,
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        let acquired = std::time::SystemTime::now();
        file.set_len(0).map_err(lock_err)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(lock_err)?;
        file.sync_all().map_err(lock_err)?;
        // Every writer of the state holds this lock, so a temp file from
        // before it was taken belongs to a run that is gone.
        remove_stale_temps(dir, acquired);
        Ok(StateLock { _file: file })
    }
}

/// Reads the HMAC key beside `state_path`. When there is none: with
/// `create`, makes one (mode 0600); without (a dry-run writes nothing), a
/// throwaway key for this run.
pub fn load_key(state_path: &Path, create: bool) -> Result<Keyed, StateError> {
    let dir = parent(state_path);
    let path = dir.join("key");
    match read_key(state_path)? {
        Some(keyed) => Ok(keyed),
        None => {
            let keyed = Keyed::generate().map_err(StateError::Random)?;
            if state_path.exists() || journal_path(state_path).exists() {
                // Nothing recorded can be checked against a new key: each
                // job's digest differs, so each is planned (and, applying,
                // sent) once again. Loud, since it costs a PUT per job.
                tracing::warn!(
                    key = %path.display(),
                    state = %state_path.display(),
                    "the key file is missing beside an existing state: with a new key no recorded digest matches, so every job is planned as changed (sensitive values) and an apply sends each once; restore the key to avoid that"
                );
            }
            if create {
                write_key(dir, &path, &keyed)
                    .map_err(|source| StateError::Write { path, source })?;
            }
            Ok(keyed)
        }
    }
}

/// The HMAC key beside `state_path` as stored; `None` when there is none.
pub fn read_key(state_path: &Path) -> Result<Option<Keyed>, StateError> {
    let path = parent(state_path).join("key");
    match read_regular(&path) {
        Ok(text) => parse_key(text.trim())
            .map(Some)
            .ok_or(StateError::BadKey { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read { path, source }),
    }
}

/// Replaces the key beside `state_path` atomically (mode 0600, as the
/// temp file is made): `state migrate` brings a key along.
pub fn replace_key(state_path: &Path, keyed: &Keyed) -> Result<(), StateError> {
    let hex: String = keyed.bytes().iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(
        &parent(state_path).join("key"),
        format!("{hex}\n").as_bytes(),
    )
}

/// Whether no process `pid` runs on this host (a positive pid that
/// `kill(pid, 0)` reports as absent).
pub fn pid_gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    pid > 0
        && unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// What `state unlock --force` did.
#[derive(Debug, PartialEq)]
pub enum Unlocked {
    /// The lock file was removed; the pid it named, if any.
    Removed { path: PathBuf, pid: Option<String> },
    /// There was no lock file.
    Absent { path: PathBuf },
}

/// Removes the lock file beside `state_path` when no live process holds
/// it: a lock whose holder is gone. A lock a running nfcron holds is
/// refused (`Locked`): stop that run first.
pub fn force_unlock(state_path: &Path) -> Result<Unlocked, StateError> {
    let path = parent(state_path).join("state.lock");
    let lock_err = |source| StateError::Lock {
        path: path.clone(),
        source,
    };
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Unlocked::Absent { path }),
        Err(e) => return Err(lock_err(e)),
    };
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    let pid = Some(pid.trim().to_string()).filter(|p| !p.is_empty());
    match file.try_lock() {
        Ok(()) => {}
        // The kernel releases a dead process's flock: a held one has a
        // live holder, even when its pid is not visible here (another PID
        // namespace: a sidecar container beside a `kubectl exec`).
        Err(fs::TryLockError::WouldBlock) => {
            return Err(StateError::Locked {
                path,
                pid: pid.unwrap_or_else(|| "unknown".into()),
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(lock_err(e)),
    }
    fs::remove_file(&path).map_err(lock_err)?;
    Ok(Unlocked::Removed { path, pid })
}

pub(crate) fn parse_key(hex: &str) -> Option<Keyed> {
    if hex.len() != KEY_LEN * 2 {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(Keyed::new(key))
}

fn write_key(dir: &Path, path: &Path, keyed: &Keyed) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    ensure_dir(dir)?;
    let hex: String = keyed.bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{hex}\n").as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(n: u32) -> Record {
        Record {
            name: format!("Job {n}"),
            file: "jobs.d/a.yaml".into(),
            digest: "d".repeat(64),
            spec: Redacted::assume(&json!({"name": format!("Job {n}")})),
            applied_at: "2026-11-28T16:00:00Z".into(),
            revision: None,
        }
    }

    fn key(id: &str) -> JobKey {
        JobKey {
            team: None,
            project: "p".into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_torn_journal_tail_is_ignored_and_cut_before_the_next_append() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        let applied = Change::Applied(key("a"), record(1));
        let rejected = Change::Rejected(
            key("b"),
            Rejection {
                digest: "e".repeat(64),
                status: 400,
                message: "no".into(),
                rejected_at: "2026-11-28T16:00:00Z".into(),
            },
        );
        let len = append_journal(&path, 0, std::slice::from_ref(&applied)).expect("append");
        assert_eq!(
            read_journal(&path).expect("read"),
            (vec![applied.clone()], len)
        );
        // An append a crash (or a full disk) cut short.
        let mut file = OpenOptions::new()
            .append(true)
            .open(journal_path(&path))
            .expect("open");
        // Cut inside a two-byte character ("ä" is C3 A4), as a full disk
        // can leave it.
        file.write_all(b"{\"op\":\"deleted\",\"team\":null,\"project\":\"j\xc3")
            .expect("tear");
        assert_eq!(
            read_journal(&path).expect("the torn line is ignored"),
            (vec![applied.clone()], len)
        );
        // The next append goes where the last acknowledged one ended.
        let end = append_journal(&path, len, &[rejected.clone(), Change::Deleted(key("a"))])
            .expect("append");
        let (changes, read_len) = read_journal(&path).expect("read");
        assert_eq!(changes, [applied, rejected, Change::Deleted(key("a"))]);
        assert_eq!(read_len, end);
        assert_eq!(
            fs::metadata(journal_path(&path)).expect("journal").len(),
            end
        );
        // A line amid others that does not parse is corruption.
        fs::write(
            journal_path(&path),
            "{\"op\":\"forgotten\",\"team\":null,\"project\":\"p\",\"id\":\"a\"}\nnot json\n{\"op\":\"forgotten\",\"team\":null,\"project\":\"p\",\"id\":\"b\"}\n",
        )
        .expect("write");
        let e = read_journal(&path).expect_err("corrupt").to_string();
        assert!(e.contains("line 2"), "{e}");
        // Never padded: a journal shorter than the run wrote is refused.
        assert!(append_journal(&path, 10_000, &[Change::Deleted(key("c"))]).is_err());
    }

    #[test]
    fn a_journal_line_that_says_a_field_twice_or_names_no_change_is_corrupt() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        let good = r#"{"op":"deleted","team":null,"project":"p","id":"a"}"#;
        for bad in [
            r#"{"op":"deleted","op":"applied","team":null,"project":"p","id":"a"}"#,
            r#"{"op":"deleted","team":null,"project":"p","id":"a","id":"b"}"#,
            r#"{"op":"renamed","team":null,"project":"p","id":"a"}"#,
            r#"{"team":null,"project":"p","id":"a"}"#,
            r#"["deleted"]"#,
        ] {
            fs::write(journal_path(&path), format!("{good}\n{bad}\n")).expect("write");
            let err = read_journal(&path).expect_err(bad);
            assert!(
                matches!(&err, StateError::Corrupt { why, .. } if why.starts_with("line 2: ")),
                "{bad}: {err:?}"
            );
        }
        fs::write(journal_path(&path), format!("{good}\n")).expect("write");
        let (changes, len) = read_journal(&path).expect("read");
        assert_eq!(changes, vec![Change::Deleted(key("a"))]);
        assert_eq!(len, good.len() as u64 + 1);
    }

    #[test]
    fn round_trips_and_ignores_itself_in_git() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(".nfcron/state.json");
        assert_eq!(State::load(&path).expect("load"), None);
        let mut state = State::default();
        state.jobs.insert(key("a"), record(1));
        state.save(&path).expect("save");
        assert_eq!(State::load(&path).expect("load"), Some(state.clone()));
        assert_eq!(
            fs::read_to_string(dir.path().join(".nfcron/.gitignore")).expect("ignore"),
            "*\n"
        );
        // A state file put in a directory that was there already (a
        // repository's root) leaves its Git alone.
        let root = dir.path().join("repo");
        fs::create_dir(&root).expect("mkdir");
        state.save(&root.join("state.json")).expect("save");
        assert!(!root.join(".gitignore").exists());
        assert!(!dir.path().join(".gitignore").exists());
    }

    #[test]
    fn specs_are_stored_one_compact_line_each_and_pretty_ones_still_load() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        // A file as nfcron wrote it before specs were kept as text: every
        // spec pretty-printed over several lines.
        let spec =
            json!({"name": "Job 1", "runtimeEnvironment": {"A": "(sensitive, fp 0badf00d)"}});
        let old = json!({"format_version": 1, "jobs": [{"team": null, "project": "p", "id": "a",
            "name": "Job 1", "file": "jobs.d/a.yaml", "digest": "d".repeat(64), "spec": spec,
            "applied_at": "2026-11-28T16:00:00Z", "revision": null}]});
        fs::write(&path, serde_json::to_string_pretty(&old).expect("text")).expect("write");
        let state = State::load(&path).expect("load").expect("a state");
        let record = &state.jobs[&key("a")];
        assert_eq!(record.spec.value(), spec);
        assert_eq!(record.spec.as_str(), spec.to_string());
        state.save(&path).expect("save");
        let text = fs::read_to_string(&path).expect("read");
        let line = format!("\"spec\": {spec}");
        assert!(
            text.lines().any(|l| l.trim().trim_end_matches(',') == line),
            "{text}"
        );
        assert_eq!(State::load(&path).expect("load"), Some(state));
    }

    #[test]
    fn corrupt_state_is_an_error_not_an_empty_baseline() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        fs::write(&path, "{\"format_version\":1,\"jobs\":[").expect("write");
        assert!(matches!(
            State::load(&path),
            Err(StateError::Corrupt { .. })
        ));
        fs::write(&path, "{\"format_version\":2,\"jobs\":[]}").expect("write");
        assert!(matches!(
            State::load(&path),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn an_older_format_version_is_called_older_not_newer() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        for (v, word) in [(0, "older"), (2, "newer")] {
            fs::write(&path, format!("{{\"format_version\":{v},\"jobs\":[]}}")).expect("write");
            let e = State::load(&path).expect_err("unsupported").to_string();
            assert!(e.contains(word), "{v}: {e}");
            let other = if word == "older" { "newer" } else { "older" };
            assert!(!e.contains(other), "{v}: {e}");
        }
    }

    #[test]
    fn only_our_own_stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        State::default().save(&path).expect("save");
        let ours = dir.path().join(".state.Ab12Z9.tmp");
        fs::write(&ours, "partial").expect("write");
        let keep = [
            ".state.Ab12Z9.tmp.bak",
            ".state.toolong1.tmp",
            "state.Ab12Z9.tmp",
            ".state.Ab-2Z9.tmp",
            "notes.tmp",
        ];
        for name in keep {
            fs::write(dir.path().join(name), "x").expect("write");
        }
        std::os::unix::fs::symlink(&path, dir.path().join(".state.Link01.tmp")).expect("link");
        // Written after the lock was taken: a live writer's, kept.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let young = dir.path().join(".state.Young1.tmp");
        fs::write(&young, "x").expect("write");
        assert_eq!(remove_stale_temps(dir.path(), past), 0);
        assert!(young.exists() && ours.exists());

        drop(StateLock::acquire(&path).expect("lock"));
        assert!(
            !ours.exists(),
            "a stale temp file is removed under the lock"
        );
        assert!(!young.exists());
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name} is not ours");
        }
        assert!(dir
            .path()
            .join(".state.Link01.tmp")
            .symlink_metadata()
            .is_ok());
        assert!(path.exists());
    }

    #[test]
    fn a_state_path_that_is_not_a_regular_file_is_refused_unread() {
        for path in ["/dev/zero", "/dev/full"] {
            match State::load(Path::new(path)) {
                Err(StateError::Read { source, .. }) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput, "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_fifo_where_the_state_journal_or_key_belongs_is_refused_not_waited_on() {
        use std::os::unix::ffi::OsStrExt;
        use std::sync::mpsc;
        for name in ["state.json", "state.json.journal", "key"] {
            let dir = tempfile::tempdir().expect("dir");
            let fifo = dir.path().join(name);
            let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("path");
            // SAFETY: a valid NUL-terminated path; mkfifo only makes a node.
            assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
            let path = dir.path().join("state.json");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let load = State::load(&path).map(|_| ());
                let journal = read_journal(&path).map(|_| ());
                let key = load_key(&path, false).map(|_| ());
                let _ = tx.send([load, journal, key].into_iter().find(Result::is_err));
            });
            // A blocking open would wait for a writer for ever.
            let found = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{name}: reading blocked on the FIFO"));
            match found {
                Some(Err(StateError::Read { source, .. })) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput, "{name}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn second_lock_fails_naming_the_holder() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        let held = StateLock::acquire(&path).expect("first");
        match StateLock::acquire(&path) {
            Err(StateError::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        StateLock::acquire(&path).expect("free again");
    }

    #[test]
    fn key_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        let a = load_key(&path, true).expect("create");
        let b = load_key(&path, true).expect("read");
        assert_eq!(a.bytes(), b.bytes());
        let mode = fs::metadata(dir.path().join("key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = dir.path().join("other/state.json");
        load_key(&other, false).expect("ephemeral");
        assert!(!dir.path().join("other/key").exists());
    }
}

/// One change to the recorded state, committed after the API took (or
/// refused for good) a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The job was PUT (or adopted as it is live): its record, and no
    /// rejection any more.
    Applied(JobKey, Record),
    /// The job was deleted: neither record nor rejection.
    Deleted(JobKey),
    /// The API refused this spec for good.
    Rejected(JobKey, Rejection),
    /// A rejection no longer held back (the manifest is gone, or
    /// `--retry-rejected`).
    Forgotten(JobKey),
}

impl Change {
    /// The job the change is about.
    pub fn key(&self) -> &JobKey {
        match self {
            Change::Applied(key, _)
            | Change::Deleted(key)
            | Change::Rejected(key, _)
            | Change::Forgotten(key) => key,
        }
    }

    /// Applies the change to an in-memory state.
    pub fn apply_to(&self, state: &mut State) {
        match self {
            Change::Applied(key, record) => {
                state.rejected.remove(key);
                state.jobs.insert(key.clone(), record.clone());
            }
            Change::Deleted(key) => {
                state.rejected.remove(key);
                state.jobs.remove(key);
            }
            Change::Rejected(key, rejection) => {
                state.rejected.insert(key.clone(), rejection.clone());
            }
            Change::Forgotten(key) => {
                state.rejected.remove(key);
            }
        }
    }
}

/// A driver or server error as shown: its text (with its causes) with the
/// password hidden. The driver's error is not kept, so nothing can format
/// it unredacted later.
#[derive(Debug)]
pub struct DbCause(String);

impl DbCause {
    /// Text already cleared of the password.
    pub(crate) fn from_text(text: String) -> DbCause {
        DbCause(text)
    }
}

impl std::fmt::Display for DbCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbCause {}
