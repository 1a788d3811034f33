//! `--output github`: GitHub Actions workflow commands from `validate` and
//! `reconcile --dry-run`, read back the way the runner reads them (unescaped
//! properties and message) and compared with the JSON reports.

use crate::common;
use crate::fake;

use common::Workspace;
use fake::{Fake, TOKEN};
use serde_json::Value;

/// One workflow command as the runner parses it.
#[derive(Debug, PartialEq)]
struct Command {
    name: String,
    properties: Vec<(String, String)>,
    message: String,
}

impl Command {
    fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The runner's `ActionCommand.TryParse` unescaping: `%25` last.
fn unescape(s: &str, property: bool) -> String {
    let mut s = s.replace("%0D", "\r").replace("%0A", "\n");
    if property {
        s = s.replace("%3A", ":").replace("%2C", ",");
    }
    s.replace("%25", "%")
}

/// Every `::name props::message` line of `stdout`.
fn commands(stdout: &str) -> Vec<Command> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("::"))
        .map(|rest| {
            let (head, message) = rest.split_once("::").expect("`::` after the command");
            let (name, props) = head.split_once(' ').unwrap_or((head, ""));
            let properties = props
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("key=value");
                    (k.to_string(), unescape(v, true))
                })
                .collect();
            Command {
                name: name.to_string(),
                properties,
                message: unescape(message, false),
            }
        })
        .collect()
}

const GOOD: &str = "kind: CronJob\nproject: acme\nspec:\n  name: NAME\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n  runtimeEnvironment:\n    DATABASE_URL: \"${NFCRON_TEST_DB}\"\n";

fn good(name: &str) -> String {
    GOOD.replace("NAME", name)
}

/// Files whose names hold every character a property must escape, and
/// problems whose messages hold a newline.
fn nasty_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", good("Fine"));
    ws.write(
        "jobs.d/a,line=9:b%41.yaml",
        good("Comma").replace("0 3 * * *", "61 3 * * *"),
    );
    ws.write(
        "jobs.d/new\nline.yaml",
        good("Newline").replace(
            "  backoffLimit: 1\n",
            "  backoffLimit: 1\n  \"bad\\nkey\": 1\n",
        ),
    );
    ws.write(
        "jobs.d/env.yaml",
        good("Env").replace("${NFCRON_TEST_DB}", "${NFCRON_UNSET_VAR}"),
    );
    ws
}

const SECRET: &str = "postgres://u:hunter2-s3cret@db";

#[test]
fn validate_prints_one_command_per_diagnostic_escaped_as_github_reads_them() {
    let ws = nasty_workspace();
    let env = [("NFCRON_TEST_DB", SECRET)];
    let json = ws.nfcron_env(&["validate", "--output", "json"], &env);
    let gh = ws.nfcron_env(&["validate", "--output", "github"], &env);
    assert_eq!(gh.code, 1, "exit code as with json: {}", gh.stderr);
    assert_eq!(json.code, gh.code);
    assert!(!gh.stdout.contains(SECRET) && !gh.stderr.contains(SECRET));

    let expected = json.json()["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .clone();
    assert!(
        expected.len() >= 3,
        "the corpus has problems: {}",
        json.stdout
    );
    let got = commands(&gh.stdout);
    assert_eq!(
        got.len(),
        expected.len(),
        "one command per diagnostic:\n{}",
        gh.stdout
    );
    for (c, d) in got.iter().zip(&expected) {
        assert_eq!(c.name, d["severity"].as_str().unwrap(), "{c:?}");
        assert_eq!(c.get("file"), d["file"].as_str(), "{c:?}");
        assert_eq!(c.get("line"), Some(d["line"].to_string().as_str()), "{c:?}");
        assert_eq!(
            c.get("col"),
            Some(d["column"].to_string().as_str()),
            "{c:?}"
        );
        assert_eq!(
            c.get("title").map(str::to_string),
            Some(format!("nfcron {}", d["code"].as_str().unwrap())),
            "{c:?}"
        );
        assert_eq!(c.message, d["message"].as_str().unwrap(), "{c:?}");
    }
    // Each command is one line: nothing a name or message holds starts a
    // line of its own, and every line is a command or the summary.
    let lines: Vec<&str> = gh.stdout.lines().collect();
    assert_eq!(lines.len(), got.len() + 1, "{}", gh.stdout);
    assert!(
        lines.last().unwrap().starts_with("4 files, 4 jobs:"),
        "{}",
        gh.stdout
    );
    let comma = got
        .iter()
        .find(|c| c.get("file") == Some("jobs.d/a,line=9:b%41.yaml"))
        .expect("the comma file is annotated");
    assert_eq!(comma.get("title"), Some("nfcron cron"));
    assert!(
        gh.stdout.contains("file=jobs.d/a%2Cline=9%3Ab%2541.yaml,"),
        "{}",
        gh.stdout
    );
    assert!(
        got.iter().any(|c| c.message.contains('\n')),
        "a message with a newline travels escaped: {}",
        gh.stdout
    );
    assert!(
        got.iter()
            .any(|c| c.name == "warning" && c.get("title") == Some("nfcron env-missing")),
        "warnings are ::warning: {}",
        gh.stdout
    );

    // Clean manifests: no command, exit 0.
    let clean = Workspace::new();
    clean.write("jobs.d/ok.yaml", good("Fine"));
    let run = clean.nfcron_env(&["validate", "--output", "github"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(commands(&run.stdout).is_empty(), "{}", run.stdout);
}

#[test]
fn a_dry_run_plan_adds_a_notice_per_changed_job_and_keeps_its_exit_code() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", good("Job A"));
    ws.write("jobs.d/b,c:d%.yaml", good("Job B"));
    ws.write("jobs.d/c.yaml", good("Job C"));
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
        ("NFCRON_TEST_DB", SECRET),
    ];
    let applied = ws.nfcron_env(&["reconcile"], &env);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    fake.clear_log();

    // One update, one delete, one unchanged, one create; a broken file.
    ws.write(
        "jobs.d/a.yaml",
        good("Job A").replace("0 3 * * *", "30 4 * * *"),
    );
    std::fs::remove_file(ws.path().join("jobs.d/c.yaml")).unwrap();
    ws.write("jobs.d/e.yaml", good("Job E"));
    let args = [
        "reconcile",
        "--dry-run",
        "--prune",
        "--detailed-exitcode",
        "--output",
    ];
    let gh = ws.nfcron_env(&[&args[..], &["github"]].concat(), &env);
    let json = ws.nfcron_env(&[&args[..], &["json"]].concat(), &env);
    assert_eq!(gh.code, 2, "changes pending: {}{}", gh.stdout, gh.stderr);
    assert_eq!(json.code, gh.code);
    assert_eq!(
        fake.requests().iter().filter(|r| r.method != "GET").count(),
        0,
        "a dry-run writes nothing"
    );
    assert!(!gh.stdout.contains(SECRET) && !gh.stderr.contains(SECRET));

    let report = json.json();
    let notices: Vec<Command> = commands(&gh.stdout)
        .into_iter()
        .filter(|c| c.name == "notice")
        .collect();
    let changed: Vec<&Value> = report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| ["create", "update", "delete"].contains(&j["action"].as_str().unwrap()))
        .collect();
    assert_eq!(changed.len(), 3, "{}", json.stdout);
    assert_eq!(notices.len(), changed.len(), "{}", gh.stdout);
    for (n, j) in notices.iter().zip(&changed) {
        let action = j["action"].as_str().unwrap();
        assert_eq!(n.get("title"), Some(format!("nfcron {action}").as_str()));
        assert_eq!(n.get("file"), j["file"].as_str(), "{n:?}");
        assert!(
            n.message.starts_with(&format!(
                "would {action} acme/{}",
                j["id"].as_str().unwrap()
            )),
            "{n:?}"
        );
    }
    let update = notices
        .iter()
        .find(|n| n.get("title") == Some("nfcron update"))
        .unwrap();
    assert!(update.message.contains(": schedule"), "{update:?}");
    // The human plan follows for the log.
    assert!(
        gh.stdout
            .contains("Plan: 1 to create, 1 to update, 1 to delete, 1 unchanged, 0 invalid."),
        "{}",
        gh.stdout
    );

    // A broken manifest: its diagnostic is an ::error, exit 1 as with text.
    ws.write(
        "jobs.d/e.yaml",
        good("Job E").replace("0 3 * * *", "61 3 * * *"),
    );
    let gh = ws.nfcron_env(&["reconcile", "--dry-run", "--output", "github"], &env);
    assert_eq!(gh.code, 1, "{}{}", gh.stdout, gh.stderr);
    let errors: Vec<Command> = commands(&gh.stdout)
        .into_iter()
        .filter(|c| c.name == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{}", gh.stdout);
    assert_eq!(errors[0].get("file"), Some("jobs.d/e.yaml"));
    assert_eq!(errors[0].get("title"), Some("nfcron cron"));
    assert!(errors[0].get("line").is_some_and(|l| l != "0"));
}

/// Every line GitHub's runner would act on, as it reads its input: split at
/// `\n` and `\r`; a command when, after leading whitespace, the line is
/// `::name ...::...`, or when it holds `##[name]` anywhere (legacy form).
fn runner_commands(text: &str) -> Vec<&str> {
    text.split(['\n', '\r'])
        .filter(|line| {
            let v2 = line
                .trim_start()
                .strip_prefix("::")
                .is_some_and(|rest| rest.contains("::"));
            let v1 = line.find("##[").is_some_and(|at| line[at..].contains(']'));
            v2 || v1
        })
        .collect()
}

/// The commands nfcron means: one annotation per line, at the line's start.
fn intended(line: &str) -> bool {
    ["::notice ", "::error ", "::warning "]
        .iter()
        .any(|p| line.starts_with(p))
        && line.contains("title=nfcron ")
}

fn hostile(name: &str, description: &str, command: &str) -> String {
    good(name).replace(
        "  backoffLimit: 1\n",
        &format!(
            "  description: {}\n  backoffLimit: 1\n",
            serde_json::to_string(description).unwrap()
        ),
    )
    .replace(
        "      imagePath: nginx:1.27\n",
        &format!(
            "      imagePath: nginx:1.27\n    docker:\n      configType: customCommand\n      customCommand: {}\n",
            serde_json::to_string(command).unwrap()
        ),
    )
}

/// Asserts stdout holds exactly `annotations` commands, all meant, and
/// stderr none.
fn assert_only_intended(run: &common::Run, annotations: usize) {
    let out = runner_commands(&run.stdout);
    let forged: Vec<&&str> = out.iter().filter(|l| !intended(l)).collect();
    assert!(
        forged.is_empty(),
        "forged on stdout: {forged:#?}\n{}",
        run.stdout
    );
    assert_eq!(out.len(), annotations, "{}", run.stdout);
    let err = runner_commands(&run.stderr);
    assert!(err.is_empty(), "forged on stderr: {err:#?}\n{}", run.stderr);
}

#[test]
fn hostile_plans_files_values_and_api_messages_issue_no_unintended_command() {
    let ws = Workspace::new();
    let repo = common::git_init(ws.path());
    let file = "jobs.d/x##[add-matcher]y.yaml";
    let before = hostile(
        "Hostile",
        "one\n::stop-commands::abc\n  ::warning::w\nthree",
        "echo ##[add-mask]x",
    );
    common::git_commit(&repo, &[(file, Some(&before))], "hostile");
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
        ("NFCRON_TEST_DB", SECRET),
    ];
    let applied = ws.nfcron_env(&["reconcile", "--output", "github"], &env);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert_only_intended(&applied, 1);

    // Only the lines around the unchanged `::stop-commands::` line change.
    let after = hostile(
        "Hostile",
        "ONE\n::stop-commands::abc\n  ::warning::w\nTHREE\r::error::cr",
        "echo ##[add-mask]y",
    );
    ws.write(file, &after);
    let args = [
        "reconcile",
        "--dry-run",
        "--output",
        "github",
        "--log-level",
        "trace",
    ];
    let plan = ws.nfcron_env(&args, &env);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("stop-commands::abc"),
        "{}",
        plan.stdout
    );
    assert_only_intended(&plan, 1);

    common::git_commit(&repo, &[(file, Some(&after))], "more");
    let base = ws.nfcron_env(&[&args[..], &["--base", "HEAD~1"]].concat(), &env);
    assert_eq!(base.code, 0, "{}{}", base.stdout, base.stderr);
    assert!(base.stdout.contains("add-mask"), "{}", base.stdout);
    assert_only_intended(&base, 1);

    // The API quotes the body back (with `##[` in it), refusing it, then
    // failing it: both messages reach stdout and the logs on stderr.
    for status in [422, 500] {
        fake.inject(fake::FaultRule {
            method: Some(hyper::Method::PUT),
            fault: fake::Fault::Echo { status },
            times: 20,
            after: 0,
        });
        let run = ws.nfcron_env(
            &[
                "reconcile",
                "--output",
                "github",
                "--log-level",
                "debug",
                "--retry-max-time",
                "1s",
            ],
            &env,
        );
        fake.clear_faults();
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("add-mask") || run.stderr.contains("add-mask"),
            "{}{}",
            run.stdout,
            run.stderr
        );
        assert_only_intended(&run, 1);
    }
}
