//! `--prune` never deletes a job whose manifest may still be there: any
//! invalid document (whatever its code), any unreadable or unparsable file
//! blocks every DELETE of the run, the plan says which file and why, and
//! the run exits 1. Through the binary against the fake (DELETEs counted),
//! through `watch --prune`, and as a property of the loader + planner.

use crate::common;
use crate::fake;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::{job, Run, Workspace};
use fake::{Fake, TOKEN};
use nfcron::manifest::{self, LoadOptions};
use nfcron::plan::{self, Action};
use nfcron::reconcile;
use nfcron::secret::{Keyed, KEY_LEN};
use nfcron::source::SourceFile;
use nfcron::state::State;
use serde_json::Value;

use crate::support::sidecar::{Sidecar, WAIT};

fn manifest(name: &str) -> String {
    common::manifest(name, "0 3 * * *")
}

struct Env {
    ws: Workspace,
    fake: Fake,
}

impl Env {
    /// Jobs A, B and C applied (one file each), the request log cleared.
    fn applied() -> Env {
        let ws = Workspace::new();
        for l in ["a", "b", "c"] {
            ws.write(
                &format!("jobs.d/{l}.yaml"),
                manifest(&format!("Job {}", l.to_uppercase())),
            );
        }
        let env = Env {
            ws,
            fake: Fake::spawn(0),
        };
        let run = env.run(&[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(env.fake.job_ids("acme"), ["job-a", "job-b", "job-c"]);
        env.fake.clear_log();
        env
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["reconcile"];
        full.extend_from_slice(args);
        self.ws.nfcron_env(
            &full,
            &[
                ("NORTHFLANK_API_URL", self.fake.url.as_str()),
                ("NORTHFLANK_API_TOKEN", TOKEN),
            ],
        )
    }
}

/// The three edits of the issue, each of which used to send a DELETE for
/// the job the file still names.
const EDITS: [(&str, &str, &str); 3] = [
    ("name-typo", "  name: Job A\n", "  nmae: Job A\n"),
    ("invalid-project", "project: acme\n", "project: Acme_Prod\n"),
    (
        "unset-variable-in-name",
        "  name: Job A\n",
        "  name: \"${NFCRON_TEST_JOB_NAME}\"\n",
    ),
];

#[test]
fn an_invalid_manifest_blocks_every_delete_and_fails_the_run() {
    for (what, from, to) in EDITS {
        let env = Env::applied();
        let path = env.ws.path().join("jobs.d/a.yaml");
        let good = std::fs::read_to_string(&path).expect("read");
        assert!(good.contains(from), "{what}");
        std::fs::write(&path, good.replace(from, to)).expect("edit");
        // A job whose manifest really is gone waits too: a.yaml could be
        // its manifest for all nfcron can tell.
        std::fs::remove_file(env.ws.path().join("jobs.d/c.yaml")).expect("rm");

        let run = env.run(&["--prune", "--output", "json"]);
        assert_eq!(run.code, 1, "{what}: {}", run.stdout);
        assert_eq!(env.fake.count("DELETE"), 0, "{what}");
        assert_eq!(env.fake.requests(), vec![], "{what}: nothing is sent");
        let report = run.json();
        let blocked = report["prune_blocked"].as_array().expect("prune_blocked");
        assert_eq!(blocked.len(), 1, "{what}: {report:#}");
        assert_eq!(blocked[0]["file"], "jobs.d/a.yaml", "{what}");
        assert!(
            !blocked[0]["reason"].as_str().expect("reason").is_empty(),
            "{what}"
        );
        assert_eq!(job(&report, "job-c")["action"], "orphan", "{what}");
        assert_ne!(
            report["jobs"]
                .as_array()
                .expect("jobs")
                .iter()
                .find(|j| j["id"] == "job-a")
                .map(|j| j["action"].clone()),
            Some(Value::from("delete")),
            "{what}"
        );
        assert!(
            run.stderr.contains("prune skipped"),
            "{what}: {}",
            run.stderr
        );

        // Text and Markdown name the file too.
        let text = env.run(&["--prune"]);
        assert_eq!(text.code, 1);
        assert!(
            text.stdout.contains("Prune blocked") && text.stdout.contains("  jobs.d/a.yaml: "),
            "{what}: {}",
            text.stdout
        );
        assert!(text.stdout.contains("not deleted: prune is blocked"));
        let md = env.run(&["--prune", "--output", "markdown"]);
        assert!(
            md.stdout.contains("**Prune blocked**") && md.stdout.contains("`jobs.d/a.yaml`"),
            "{what}: {}",
            md.stdout
        );
        assert_eq!(env.fake.count("DELETE"), 0, "{what}");
        assert_eq!(env.fake.job_ids("acme"), ["job-a", "job-b", "job-c"]);

        // Fixed: pruning goes ahead, and deletes only the job whose
        // manifest is gone.
        std::fs::write(&path, &good).expect("fix");
        let run = env.run(&["--prune", "--output", "json"]);
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        assert_eq!(run.json()["prune_blocked"], serde_json::json!([]));
        assert_eq!(env.fake.count("DELETE"), 1, "{what}");
        assert_eq!(env.fake.job_ids("acme"), ["job-a", "job-b"]);
    }
}

#[test]
fn an_unreadable_entry_blocks_pruning() {
    let env = Env::applied();
    std::fs::remove_file(env.ws.path().join("jobs.d/c.yaml")).expect("rm");
    // A dangling symlink: a manifest nfcron cannot read.
    std::os::unix::fs::symlink(
        "/nonexistent/nfcron-test",
        env.ws.path().join("jobs.d/x.yaml"),
    )
    .expect("symlink");
    let run = env.run(&["--prune", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(env.fake.count("DELETE"), 0);
    let report = run.json();
    assert_eq!(
        report["prune_blocked"][0]["file"], "jobs.d/x.yaml",
        "{report:#}"
    );
    // Without --prune there is nothing to block.
    let run = env.run(&["--output", "json"]);
    assert_eq!(run.json()["prune_blocked"], serde_json::json!([]));
}

/// An editor that truncates a file before writing it (or a user who empties
/// it) leaves a file with no document: its jobs are not deleted; deleting
/// them takes deleting the file.
#[test]
fn an_emptied_manifest_file_blocks_pruning_until_it_is_deleted() {
    for empty in ["", "# nothing yet\n", "---\n"] {
        let env = Env::applied();
        env.ws.write("jobs.d/c.yaml", empty);
        let run = env.run(&["--prune", "--output", "json"]);
        assert_eq!(run.code, 1, "{empty:?}: {}", run.stderr);
        assert_eq!(env.fake.count("DELETE"), 0, "{empty:?}");
        let report = run.json();
        assert_eq!(
            report["prune_blocked"][0]["file"], "jobs.d/c.yaml",
            "{report:#}"
        );
        assert!(
            report["prune_blocked"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no job document")),
            "{report:#}"
        );
        std::fs::remove_file(env.ws.path().join("jobs.d/c.yaml")).expect("rm");
        let run = env.run(&["--prune", "--output", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(env.fake.count("DELETE"), 1, "{empty:?}");
    }
}

/// `watch --prune` shares the reconcile path: an editor saving a typo
/// sends no DELETE.
#[test]
fn watch_prune_sends_no_delete_when_a_save_breaks_a_manifest() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A"));
    ws.write("jobs.d/b.yaml", manifest("Job B"));
    let fake = Fake::spawn(0);
    let mut watch = Sidecar::builder(ws.path(), &fake.url, TOKEN)
        .env_remove("NFCRON_WEBHOOK_SECRET")
        .no_listener()
        .args(&["--prune", "--resync", "1h"])
        .start();
    let first = watch.next("reconciled");
    assert_eq!(first["create"], 2, "{first}");
    ws.write(
        "jobs.d/a.yaml",
        manifest("Job A").replace("  name:", "  nmae:"),
    );
    let warned = watch.next_where("prune skipped warning", |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("prune skipped"))
    });
    assert!(
        warned["message"]
            .as_str()
            .expect("message")
            .contains("jobs.d/a.yaml"),
        "{warned}"
    );
    watch.next("reconciled");
    assert_eq!(fake.count("DELETE"), 0);
    assert_eq!(fake.job_ids("acme"), ["job-a", "job-b"]);
    assert_eq!(watch.terminate().code, 0);
}

// ---- the property: loader + planner, random manifests and edits ----

/// What happens to one file between the apply and the `--prune` run.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Keep,
    /// The file is deleted: its jobs may go.
    Remove,
    /// Moved to another name: its jobs stay.
    Rename,
    /// Emptied (0 bytes, a comment, a lone `---`): an editor's save caught
    /// half-way looks like this; its jobs stay.
    Empty(usize),
    /// An invalid edit to one of its documents (index `doc % len`).
    Break {
        how: usize,
        doc: usize,
    },
}

/// Invalid edits of one document: every one must keep the file's jobs.
fn break_document(doc: &str, how: usize) -> String {
    match how % 9 {
        0 => doc.replace("  name:", "  nmae:"),
        1 => doc.replace("project: acme", "project: Acme_Prod"),
        2 => doc
            .lines()
            .map(|l| match l.starts_with("  name: ") {
                true => "  name: \"${NFCRON_PROP_UNSET}\"\n".to_string(),
                false => format!("{l}\n"),
            })
            .collect(),
        3 => doc.replace("kind: CronJob", "kind: CronJobs"),
        4 => doc.replace("  schedule: \"0 3 * * *\"", "  schedule: \"61 3 * * *\""),
        5 => doc.replace("  backoffLimit: 1", "  backoffLimit: \"1\""),
        6 => format!("{doc}  unknownField: 1\n"),
        7 => doc.replace("spec:", "spec: [unclosed"),
        _ => doc.replace("project: acme\n", "project: acme\n\tbad: tab\n"),
    }
}

fn sources(files: &BTreeMap<String, Vec<String>>) -> Vec<SourceFile> {
    files
        .iter()
        .map(|(path, docs)| SourceFile {
            path: path.clone(),
            content: Ok(docs.join("---\n")),
        })
        .collect()
}

fn load(files: &BTreeMap<String, Vec<String>>) -> nfcron::manifest::Catalog {
    let sources = sources(files);
    let lookup = |_: &str| None;
    manifest::load(
        &sources,
        &LoadOptions {
            default_project: None,
            require_env: false,
            lookup: &lookup,
            allow_unknown_fields: false,
        },
    )
}

fn prune_plan(
    files: &BTreeMap<String, Vec<String>>,
    recorded: &State,
    keyed: &Keyed,
    allow_empty: bool,
) -> plan::Plan {
    let catalog = load(files);
    let (desired, invalid) = reconcile::prepare(&catalog, keyed, &[]);
    let mut problems = reconcile::file_problems(&catalog);
    problems.extend(reconcile::emptied_files(
        &sources(files),
        &catalog,
        recorded,
    ));
    plan::plan(
        plan::Inputs {
            desired: &desired,
            invalid: &invalid,
            recorded,
            problems: &problems,
            live: &BTreeMap::new(),
            unverified: &BTreeSet::new(),
        },
        plan::Options {
            prune: true,
            allow_empty,
            max_deletions: usize::MAX,
        },
    )
}

fn edit_strategy() -> impl proptest::strategy::Strategy<Value = Edit> {
    use proptest::prelude::*;
    prop_oneof![
        2 => Just(Edit::Keep),
        2 => Just(Edit::Remove),
        1 => Just(Edit::Rename),
        1 => (0usize..3).prop_map(Edit::Empty),
        3 => (0usize..9, 0usize..3).prop_map(|(how, doc)| Edit::Break { how, doc }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 300,
        rng_seed: proptest::test_runner::RngSeed::Fixed(10),
        failure_persistence: None,
        ..Default::default()
    })]
    #[test]
    fn prune_never_deletes_a_job_whose_source_file_still_exists(
        // Per file: how many documents (jobs) it holds, and its edit.
        layout in proptest::collection::vec((1usize..4, edit_strategy()), 1..7),
        allow_empty in proptest::bool::ANY,
    ) {
        let keyed = Keyed::new([7; KEY_LEN]);
        let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut n = 0;
        for (f, (docs, _)) in layout.iter().enumerate() {
            let docs = (0..*docs).map(|_| { n += 1; manifest(&format!("Job {n:02}")) }).collect();
            files.insert(format!("jobs.d/{f}.yaml"), docs);
        }
        // Apply: every job recorded, as a successful run leaves it.
        let catalog = load(&files);
        let (desired, invalid) = reconcile::prepare(&catalog, &keyed, &[]);
        proptest::prop_assert!(invalid.is_empty());
        let recorded = State {
            jobs: desired.iter().map(|d| (d.key.clone(), d.record("t", None))).collect(),
            ..State::default()
        };
        // Edit.
        let mut broken = false;
        let mut removed_jobs = BTreeSet::new();
        for (f, (_, edit)) in layout.iter().enumerate() {
            let path = format!("jobs.d/{f}.yaml");
            match *edit {
                Edit::Keep => {}
                Edit::Remove => {
                    removed_jobs.extend(
                        desired.iter().filter(|d| d.file == path).map(|d| d.key.clone()),
                    );
                    files.remove(&path);
                }
                Edit::Rename => {
                    let docs = files.remove(&path).expect("file");
                    files.insert(format!("jobs.d/{f}-renamed.yaml"), docs);
                }
                Edit::Empty(how) => {
                    let empty = ["", "# nothing here yet\n", "---\n"][how % 3];
                    files.insert(path, vec![empty.to_string()]);
                    broken = true;
                }
                Edit::Break { how, doc } => {
                    let docs = files.get_mut(&path).expect("file");
                    let i = doc % docs.len();
                    docs[i] = break_document(&docs[i], how);
                    broken = true;
                }
            }
        }
        let p = prune_plan(&files, &recorded, &keyed, allow_empty);
        for step in p.steps.iter().filter(|s| s.action() == Action::Delete) {
            let key = step.key.as_ref().expect("deletes have keys");
            let file = &recorded.jobs[key].file;
            proptest::prop_assert!(
                !files.contains_key(file),
                "deleted {key} although {file} still exists; edits {layout:?}"
            );
        }
        if broken {
            proptest::prop_assert_eq!(p.count(Action::Delete), 0, "edits {:?}", layout);
            proptest::prop_assert!(!p.prune_blocked.is_empty());
        } else {
            // Not blocked for nothing: every job of a removed file goes
            // (unless no manifest is left and --allow-empty is not given).
            let deleted: BTreeSet<_> = p
                .steps
                .iter()
                .filter(|s| s.action() == Action::Delete)
                .filter_map(|s| s.key.clone())
                .collect();
            if files.is_empty() && !allow_empty {
                proptest::prop_assert!(deleted.is_empty());
            } else {
                proptest::prop_assert_eq!(deleted, removed_jobs);
            }
            proptest::prop_assert!(p.prune_blocked.is_empty());
        }
    }
}

#[test]
fn prune_sends_no_delete_when_a_directory_of_applied_jobs_gets_a_latin1_name() {
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let reconcile = |args: &[&str]| {
        ws.nfcron_env(
            &[&["reconcile"][..], args].concat(),
            &[
                ("NORTHFLANK_API_URL", fake.url.as_str()),
                ("NORTHFLANK_API_TOKEN", TOKEN),
            ],
        )
    };
    for n in ["A", "B", "C"] {
        ws.write(
            &format!("jobs.d/team/{n}.yaml"),
            common::manifest(&format!("Job {n}"), "0 3 * * *"),
        );
    }
    ws.write("jobs.d/other.yaml", common::manifest("Job D", "0 4 * * *"));
    assert_eq!(reconcile(&[]).code, 0);
    assert_eq!(fake.job_ids("acme").len(), 4);

    // `café` in Latin-1: not UTF-8.
    let latin1 = ws.path().join("jobs.d").join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::rename(ws.path().join("jobs.d/team"), &latin1).expect("rename");
    fake.clear_log();
    let run = reconcile(&["--prune", "--output", "json"]);
    assert_eq!(fake.count("DELETE"), 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fake.job_ids("acme").len(), 4);
    assert_eq!(run.code, 1, "an unreadable entry is an error");
    assert!(
        run.stderr.contains("jobs.d/caf\\xe9") && run.stderr.contains("not valid UTF-8"),
        "the entry is named, escaped: {}",
        run.stderr
    );

    let (run, _) = ws.nfcron_within(&["validate", "--output", "json"], &[], WAIT);
    assert_eq!(run.code, 1);
    assert_eq!(
        common::diagnostics(&run),
        [(
            "jobs.d/caf\\xe9".to_string(),
            "io".to_string(),
            "cannot read: the directory name is not valid UTF-8, so the manifests in it are not read; rename it".to_string()
        )]
    );
}
