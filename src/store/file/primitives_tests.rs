//! The file store's format, journal, temp files, lock and key, on a real
//! file system.

use super::disk::*;
use super::format::*;
use super::key::*;
use super::lock::*;
use crate::manifest::JobKey;
use crate::secret::Redacted;
use crate::state::*;
use serde_json::json;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

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
    let end =
        append_journal(&path, len, &[rejected.clone(), Change::Deleted(key("a"))]).expect("append");
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
    let spec = json!({"name": "Job 1", "runtimeEnvironment": {"A": "(sensitive, fp 0badf00d)"}});
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
