//! The composite GitHub Action (`action.yml` at the root).
//!
//! Its file and the example workflows are checked against GitHub's own
//! schemas with `check-jsonschema` (the schemas are vendored in that
//! package: no network). Its steps run here the way a runner runs a
//! composite action: each `run:` through `bash --noprofile --norc -eo
//! pipefail` with the step's `env:`, whose `${{ ... }}` expressions this
//! test substitutes (inputs, `github.*`, earlier steps' outputs read back
//! from the `GITHUB_OUTPUT` file each step wrote); fresh `GITHUB_OUTPUT`,
//! `GITHUB_STEP_SUMMARY`, `GITHUB_PATH` files per step; `RUNNER_TOOL_CACHE`
//! in a temp dir. The `actions/cache` step is a cache hit: the binary this
//! test was built with is put where the cache would restore it, so the
//! `cargo install` step is skipped as on a warm runner. An expression, an
//! `if:` or a `uses:` this file does not model fails the test rather than
//! being guessed.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{git_commit, git_init, have_tool, Workspace};
use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check_jsonschema(schema: &str, files: &[PathBuf]) -> (i32, String) {
    common::tool_output(
        Command::new("check-jsonschema")
            .args(["--builtin-schema", schema])
            .args(files),
    )
}

#[test]
fn action_yml_and_the_example_workflows_match_githubs_schemas() {
    if !have_tool(
        "check-jsonschema",
        "python3 -m pip install check-jsonschema",
    ) {
        return;
    }
    let root = Path::new(ROOT);
    let (code, out) = check_jsonschema("vendor.github-actions", &[root.join("action.yml")]);
    assert_eq!(code, 0, "action.yml:\n{out}");

    let mut workflows: Vec<PathBuf> = std::fs::read_dir(root.join("examples/github-actions"))
        .expect("examples/github-actions")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    assert!(
        !workflows.is_empty(),
        "no workflow in examples/github-actions"
    );
    let (code, out) = check_jsonschema("vendor.github-workflows", &workflows);
    assert_eq!(code, 0, "{workflows:?}:\n{out}");

    // The check can fail: an action that is not composite, docker or node
    // is refused.
    let tmp = tempfile::tempdir().expect("temp dir");
    let broken = tmp.path().join("action.yml");
    let text = std::fs::read_to_string(root.join("action.yml")).expect("action.yml");
    assert!(text.contains("using: composite"));
    std::fs::write(&broken, text.replace("using: composite", "using: compost")).expect("write");
    let (code, out) = check_jsonschema("vendor.github-actions", &[broken]);
    assert_ne!(code, 0, "a broken action.yml passed:\n{out}");
}

/// One step as the runner saw it.
#[derive(Debug)]
struct Step {
    id: String,
    /// `None`: skipped by its `if:`.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// One run of the action's steps.
struct ActionRun {
    steps: Vec<Step>,
    /// Every step's job summary, concatenated as the runner shows them.
    summary: String,
    /// The action's `outputs:` resolved.
    outputs: BTreeMap<String, String>,
    /// Where the cache step put the binary.
    binary: Option<PathBuf>,
    tool_cache: PathBuf,
}

impl ActionRun {
    fn step(&self, id: &str) -> &Step {
        self.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("step {id} did not run: {:#?}", self.steps))
    }

    fn output(&self, key: &str) -> &str {
        self.outputs.get(key).map(String::as_str).unwrap_or("")
    }
}

/// A runner for `action.yml`: a job's workspace (a Git repository holding
/// the bundled `jobs.d`) and the runner's own temp dirs.
struct Runner {
    ws: Workspace,
    repo: git2::Repository,
    tmp: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let ws = Workspace::new().with_bundled_jobs();
        let repo = git_init(ws.path());
        Runner {
            ws,
            repo,
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Runs the action's steps in order with these inputs and extra
    /// environment (e.g. `GITHUB_BASE_REF`), stopping at the first failing
    /// step as a runner does.
    fn run(&self, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> ActionRun {
        let action: Value = serde_yaml::from_str(
            &std::fs::read_to_string(Path::new(ROOT).join("action.yml")).expect("action.yml"),
        )
        .expect("action.yml is YAML");
        assert_eq!(action["runs"]["using"].as_str(), Some("composite"));

        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let declared = action["inputs"].as_mapping().expect("inputs");
        for (name, spec) in declared {
            let name = name.as_str().expect("input name");
            let default = spec["default"].as_str().unwrap_or("").to_string();
            values.insert(format!("inputs.{name}"), default);
        }
        for (name, value) in inputs {
            let key = format!("inputs.{name}");
            assert!(
                values.contains_key(&key),
                "action.yml declares no input {name}"
            );
            values.insert(key, value.to_string());
        }
        values.insert("github.action_path".into(), ROOT.into());
        values.insert("github.action_repository".into(), "acme/nfcron".into());
        values.insert("runner.os".into(), "Linux".into());
        values.insert("runner.arch".into(), "X64".into());

        let home = self.tmp.path().join("home");
        let tool_cache = self.tmp.path().join("toolcache");
        let files = self.tmp.path().join("files");
        for dir in [&home, &tool_cache, &files] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        let mut path_entries: Vec<String> = Vec::new();
        let system_path = std::env::var("PATH").unwrap_or_default();
        let mut summary = String::new();
        let mut steps = Vec::new();
        let mut binary = None;

        for (n, step) in action["runs"]["steps"]
            .as_sequence()
            .expect("steps")
            .iter()
            .enumerate()
        {
            let id = step["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("step{n}"));
            if let Some(cond) = step["if"].as_str() {
                if !condition(cond, &values) {
                    steps.push(Step {
                        id,
                        code: None,
                        stdout: String::new(),
                        stderr: String::new(),
                    });
                    continue;
                }
            }
            if let Some(uses) = step["uses"].as_str() {
                assert!(
                    uses.starts_with("actions/cache@"),
                    "this test models only actions/cache, not {uses}"
                );
                // A cache hit: what was saved under `path` is back.
                let dir = PathBuf::from(expand(
                    step["with"]["path"].as_str().expect("path"),
                    &values,
                ));
                expand(step["with"]["key"].as_str().expect("key"), &values);
                std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
                let bin = dir.join("bin/nfcron");
                std::fs::copy(env!("CARGO_BIN_EXE_nfcron"), &bin).expect("place nfcron");
                binary = Some(bin);
                values.insert(format!("steps.{id}.outputs.cache-hit"), "true".into());
                steps.push(Step {
                    id,
                    code: Some(0),
                    stdout: String::new(),
                    stderr: String::new(),
                });
                continue;
            }
            assert_eq!(step["shell"].as_str(), Some("bash"), "step {id}");
            let script = step["run"].as_str().expect("run");
            assert!(
                !script.contains("${{"),
                "step {id}: an expression inside `run:` is pasted into the script unescaped; pass it through `env:`"
            );
            let script_file = files.join(format!("{id}.sh"));
            std::fs::write(&script_file, script).expect("write script");
            let output = files.join(format!("{id}.output"));
            let step_summary = files.join(format!("{id}.summary"));
            let github_path = files.join(format!("{id}.path"));
            let github_env = files.join(format!("{id}.env"));
            for f in [&output, &step_summary, &github_path, &github_env] {
                std::fs::write(f, "").expect("touch");
            }
            let mut path = path_entries.clone();
            path.reverse();
            path.push(system_path.clone());

            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script_file)
                .current_dir(self.ws.path())
                .env_clear()
                .env("PATH", path.join(":"))
                .env("HOME", &home)
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", self.ws.path())
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_STEP_SUMMARY", &step_summary)
                .env("GITHUB_PATH", &github_path)
                .env("GITHUB_ENV", &github_env)
                .env("RUNNER_OS", "Linux")
                .env("RUNNER_TEMP", self.tmp.path())
                .env("RUNNER_TOOL_CACHE", &tool_cache);
            for (k, v) in env {
                cmd.env(k, v);
            }
            if let Some(vars) = step["env"].as_mapping() {
                for (k, v) in vars {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .expect("scalar")
                            .trim()
                            .to_string(),
                    };
                    cmd.env(k.as_str().expect("env name"), expand(&v, &values));
                }
            }
            let out = cmd.output().expect("run bash");
            let code = out.status.code().unwrap_or(-1);
            for (k, v) in read_outputs(&output) {
                values.insert(format!("steps.{id}.outputs.{k}"), v);
            }
            summary.push_str(&std::fs::read_to_string(&step_summary).expect("summary"));
            path_entries.extend(
                std::fs::read_to_string(&github_path)
                    .expect("path file")
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
            steps.push(Step {
                id,
                code: Some(code),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
            if code != 0 {
                break;
            }
        }

        let mut outputs = BTreeMap::new();
        for (name, spec) in action["outputs"].as_mapping().expect("outputs") {
            let value = expand(spec["value"].as_str().expect("value"), &values);
            outputs.insert(name.as_str().expect("output name").to_string(), value);
        }
        ActionRun {
            steps,
            summary,
            outputs,
            binary,
            tool_cache,
        }
    }
}

/// The value of one expression this test models: a name from `values`
/// (inputs, `github.*`, `runner.*`, step outputs). A step output nobody
/// wrote is empty, as on GitHub; any other name fails the test.
fn lookup(expr: &str, values: &BTreeMap<String, String>) -> String {
    if let Some(v) = values.get(expr) {
        return v.clone();
    }
    assert!(
        expr.starts_with("steps.") && expr.contains(".outputs."),
        "action.yml uses `${{{{ {expr} }}}}`, which this test does not model"
    );
    String::new()
}

/// `text` with each `${{ expr }}` replaced by its value.
fn expand(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let len = rest[start..].find("}}").expect("an expression's end");
        out.push_str(&lookup(rest[start + 3..start + len].trim(), values));
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// A step's `if:`: only `NAME == 'x'` and `NAME != 'x'` are modelled.
fn condition(cond: &str, values: &BTreeMap<String, String>) -> bool {
    let cond = cond.trim();
    let cond = cond
        .strip_prefix("${{")
        .and_then(|c| c.strip_suffix("}}"))
        .unwrap_or(cond)
        .trim();
    let (left, right, equal) = if let Some((l, r)) = cond.split_once("!=") {
        (l, r, false)
    } else if let Some((l, r)) = cond.split_once("==") {
        (l, r, true)
    } else {
        panic!("this test does not model the condition `{cond}`")
    };
    let right = right
        .trim()
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .unwrap_or_else(|| panic!("this test does not model the condition `{cond}`"));
    (lookup(left.trim(), values) == right) == equal
}

/// A `GITHUB_OUTPUT` file: `key=value` lines and `key<<DELIMITER` blocks.
fn read_outputs(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("output file");
    let mut lines = text.lines();
    let mut outputs = Vec::new();
    while let Some(line) = lines.next() {
        if let Some((key, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            outputs.push((key.to_string(), value.join("\n")));
        } else if let Some((key, value)) = line.split_once('=') {
            outputs.push((key.to_string(), value.to_string()));
        } else if !line.is_empty() {
            panic!("a GITHUB_OUTPUT line the runner would refuse: {line:?}");
        }
    }
    outputs
}

#[test]
fn validate_on_the_bundled_manifests_runs_the_cached_binary_and_outputs_exit_code_0() {
    let runner = Runner::new();
    git_commit(&runner.repo, &[], "manifests");
    let run = runner.run(&[("command", "validate")], &[]);

    let resolve = run.step("resolve");
    assert_eq!(resolve.code, Some(0), "{resolve:#?}");
    // The cache hit skipped the build; the binary is in the tool cache,
    // under a key made of this source's digest.
    assert_eq!(run.step("install").code, None, "{:#?}", run.steps);
    let binary = run.binary.as_ref().expect("the cache step ran");
    let key = binary
        .strip_prefix(run.tool_cache.join("nfcron"))
        .unwrap_or_else(|_| panic!("{binary:?} is not in the tool cache"))
        .components()
        .next()
        .expect("key")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    assert!(
        key.len() == 20
            && key.starts_with("src-")
            && key[4..].chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );

    let step = run.step("run");
    assert_eq!(step.code, Some(0), "{step:#?}");
    assert!(!step.stdout.contains("::error"), "{step:#?}");
    assert_eq!(step.stderr, "", "nothing to warn about: {step:#?}");
    assert_eq!(run.output("exit-code"), "0", "{step:#?}");
    assert_eq!(run.output("changes"), "false");
}

#[test]
fn a_broken_manifest_fails_the_step_with_an_error_annotation_on_its_file() {
    let runner = Runner::new();
    let broken = std::fs::read_to_string(runner.ws.path().join("jobs.d/db-backup.yaml"))
        .expect("db-backup")
        .replace("15 0,6,12,18 * * *", "15 0,6,12,25 * * *");
    git_commit(
        &runner.repo,
        &[("jobs.d/db-backup.yaml", Some(&broken))],
        "a bad hour",
    );
    let run = runner.run(&[("command", "validate")], &[]);

    let step = run.step("run");
    assert_eq!(step.code, Some(1), "{step:#?}");
    let error = step
        .stdout
        .lines()
        .find(|l| l.starts_with("::error file=jobs.d/db-backup.yaml,"))
        .unwrap_or_else(|| panic!("no ::error on jobs.d/db-backup.yaml: {step:#?}"));
    assert!(error.contains(",line=16,"), "{error}");
    assert_eq!(run.output("exit-code"), "1", "{step:#?}");
    assert_eq!(run.output("changes"), "false");
}

/// A repository whose previous commit ran Cache Warmer every 30 minutes;
/// returns that commit.
fn with_a_changed_schedule(runner: &Runner) -> String {
    let path = runner.ws.path().join("jobs.d/cache-warmer.yaml");
    let now = std::fs::read_to_string(&path).expect("cache-warmer");
    let before = now.replace("\"*/15 * * * *\"", "\"*/30 * * * *\"");
    assert_ne!(before, now);
    let base = git_commit(
        &runner.repo,
        &[("jobs.d/cache-warmer.yaml", Some(&before))],
        "every 30 minutes",
    );
    git_commit(
        &runner.repo,
        &[("jobs.d/cache-warmer.yaml", Some(&now))],
        "every 15 minutes",
    );
    base
}

fn assert_planned_one_update(run: &ActionRun) {
    let step = run.step("run");
    assert_eq!(step.code, Some(0), "changes are not a failure: {step:#?}");
    let notices: Vec<&str> = step
        .stdout
        .lines()
        .filter(|l| l.starts_with("::notice "))
        .collect();
    assert_eq!(notices.len(), 1, "{step:#?}");
    assert!(
        notices[0].starts_with(
            "::notice file=jobs.d/cache-warmer.yaml,title=nfcron update::would update acme-platform/cache-warmer: schedule"
        ),
        "{}",
        notices[0]
    );
    assert!(run.summary.contains("### nfcron plan"), "{}", run.summary);
    assert!(
        run.summary
            .contains("**Plan: 0 to create, 1 to update, 0 to delete, 4 unchanged, 0 invalid.**"),
        "{}",
        run.summary
    );
    assert!(
        run.summary
            .contains("| ~ update | `acme-platform/cache-warmer` | `jobs.d/cache-warmer.yaml` |"),
        "{}",
        run.summary
    );
    assert!(
        run.summary
            .contains("! schedule: \"*/30 * * * *\" -> \"*/15 * * * *\""),
        "{}",
        run.summary
    );
    assert_eq!(run.output("exit-code"), "2", "{step:#?}");
    assert_eq!(run.output("changes"), "true");
}

#[test]
fn plan_against_a_base_commit_annotates_the_change_and_writes_the_plan_to_the_summary() {
    let runner = Runner::new();
    let base = with_a_changed_schedule(&runner);
    let run = runner.run(&[("command", "plan"), ("base", &base)], &[]);
    assert_planned_one_update(&run);
}

#[test]
fn plan_on_a_pull_request_defaults_base_to_the_base_branch_from_origin() {
    let runner = Runner::new();
    let base = with_a_changed_schedule(&runner);
    runner
        .repo
        .reference(
            "refs/remotes/origin/release",
            git2::Oid::from_str(&base).expect("oid"),
            false,
            "the pull request's base branch as actions/checkout fetches it",
        )
        .expect("origin/release");
    let run = runner.run(&[("command", "plan")], &[("GITHUB_BASE_REF", "release")]);
    assert_planned_one_update(&run);
}

#[test]
fn an_unknown_command_fails_the_first_step_with_an_action_error() {
    let runner = Runner::new();
    git_commit(&runner.repo, &[], "manifests");
    let run = runner.run(&[("command", "destroy")], &[]);

    let resolve = run.step("resolve");
    assert_eq!(resolve.code, Some(1), "{resolve:#?}");
    assert!(
        resolve.stdout.contains(
            "::error title=nfcron action::command must be validate, plan or apply, not 'destroy'"
        ),
        "{resolve:#?}"
    );
    assert_eq!(
        run.steps.len(),
        1,
        "nothing runs after a failed step: {:#?}",
        run.steps
    );
    assert_eq!(run.output("exit-code"), "");
}
