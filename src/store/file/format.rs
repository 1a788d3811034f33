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

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::disk::{ensure_dir, hold_fsync, parent, read_regular, read_regular_bytes, write_atomic};
use crate::manifest::JobKey;
use crate::secret::Redacted;
use crate::state::{Change, Record, Rejection, State, StateError};

pub const FORMAT_VERSION: u32 = 1;

// The types below are private: the core never sees them.

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
