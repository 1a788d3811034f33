//! `nfcron import` against the fake API: manifests out, secrets as
//! placeholders, and a reconcile afterwards that plans nothing.

use crate::common;
use crate::fake;

use common::{Run, Workspace};
use fake::{Fake, TOKEN};
use serde_json::{json, Value};

const DB: &str = "postgres://report:Imp0rt-S3cret@db/sales";
const CONF: &str = "c2VjcmV0LWZpbGUtY29udGVudA==";

/// Jobs made in Northflank by some other means than this workspace.
fn live_jobs(fake: &Fake) {
    let elsewhere = Workspace::new();
    elsewhere.write(
        "jobs.d/report.yaml",
        format!(
            "kind: CronJob\nproject: acme\nspec:\n  name: Nightly Report\n  description: Sales report, nightly.\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 2\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: ghcr.io/acme/report:1.4\n    docker:\n      configType: customCommand\n      customCommand: \"report --home $$HOME\"\n  runtimeEnvironment:\n    DATABASE_URL: \"{DB}\"\n  runtimeFiles:\n    /etc/report.conf:\n      data: \"{CONF}\"\n      encoding: base64\n  healthChecks:\n    - protocol: TCP\n      type: livenessProbe\n      port: 5432\n      initialDelaySeconds: 5\n      periodSeconds: 30\n      timeoutSeconds: 2\n      failureThreshold: 3\n"
        ),
    );
    elsewhere.write(
        "jobs.d/cleanup.yaml",
        "kind: CronJob\nproject: acme\nspec:\n  name: Cleanup\n  billing:\n    deploymentPlan: nf-compute-10\n  backoffLimit: 0\n  schedule: \"@daily\"\n  concurrencyPolicy: allow\n  suspended: true\n",
    );
    let run = elsewhere.nfcron_env(
        &["reconcile", "--state", "other/state.json"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    fake.add_manual_job("acme", "One Off");
    fake.clear_log();
}

fn import(ws: &Workspace, fake: &Fake, args: &[&str]) -> Run {
    let mut full = vec!["import", "--project", "acme", "--output", "json"];
    full.extend_from_slice(args);
    ws.nfcron_env(
        &full,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

#[test]
fn import_then_reconcile_plans_nothing_and_no_file_holds_a_secret() {
    let fake = Fake::spawn(0);
    live_jobs(&fake);
    let ws = Workspace::new();
    let run = import(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        report["imported"],
        json!([
            {"project": "acme", "id": "cleanup", "file": "jobs.d/cleanup.yaml", "variables": []},
            {"project": "acme", "id": "nightly-report", "file": "jobs.d/nightly-report.yaml",
             "variables": ["NIGHTLY_REPORT_DATABASE_URL", "NIGHTLY_REPORT_ETC_REPORT_CONF"]},
        ])
    );
    assert_eq!(
        report["skipped"],
        json!([{"project": "acme", "id": "one-off", "reason": "manual job"}])
    );
    assert!(
        run.stderr.contains("one-off: a manual job"),
        "{}",
        run.stderr
    );
    // list + 5 reads per cron job
    assert_eq!(fake.requests().len(), 1 + 2 * 5);
    assert!(fake.requests().iter().all(|r| r.method == "GET"));

    let manifest =
        std::fs::read_to_string(ws.path().join("jobs.d/nightly-report.yaml")).expect("manifest");
    assert!(
        manifest.contains("${NIGHTLY_REPORT_DATABASE_URL}"),
        "{manifest}"
    );
    assert!(
        manifest.contains("$$HOME"),
        "a literal $ survives interpolation: {manifest}"
    );
    let env_example =
        std::fs::read_to_string(ws.path().join("jobs.d/.env.example")).expect(".env.example");
    assert!(
        env_example.contains("NIGHTLY_REPORT_DATABASE_URL=\n")
            && env_example.contains("NIGHTLY_REPORT_ETC_REPORT_CONF=\n"),
        "{env_example}"
    );
    let state = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    for artefact in [&manifest, &env_example, &state, &run.stdout, &run.stderr] {
        for secret in [DB, CONF, "Imp0rt-S3cret", TOKEN] {
            assert!(
                !artefact.contains(secret),
                "{secret} leaked into:\n{artefact}"
            );
        }
    }
    // The imported manifests validate.
    assert_eq!(
        ws.nfcron(&["validate", "--require-env"]).code,
        1,
        "variables unset: required"
    );
    let vars = [
        ("NIGHTLY_REPORT_DATABASE_URL", DB),
        ("NIGHTLY_REPORT_ETC_REPORT_CONF", CONF),
    ];
    let valid = ws.nfcron_env(&["validate", "--require-env"], &vars);
    assert_eq!(
        valid.code, 0,
        "{}\n{}\n{manifest}",
        valid.stdout, valid.stderr
    );

    // Reconcile with the variables set to the live values: nothing to do.
    fake.clear_log();
    let mut env = vec![
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    env.extend_from_slice(&vars);
    let run = ws.nfcron_env(
        &["reconcile", "--output", "json", "--detailed-exitcode"],
        &env,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary = &run.json()["summary"];
    assert_eq!(
        (
            summary["unchanged"].as_u64(),
            summary["api_requests"].as_u64()
        ),
        (Some(2), Some(0)),
        "{summary}"
    );
    assert_eq!(fake.requests(), vec![], "zero writes, zero reads");
    // And the live jobs agree on every field they have.
    let run = ws.nfcron_env(
        &[
            "reconcile",
            "--output",
            "json",
            "--refresh",
            "--detailed-exitcode",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["drift"], 0);
}

#[test]
fn existing_files_are_kept_unless_forced_and_jobs_can_be_picked() {
    let fake = Fake::spawn(0);
    live_jobs(&fake);
    let ws = Workspace::new();
    ws.write("jobs.d/cleanup.yaml", "# mine\n");
    let run = import(&ws, &fake, &["--job", "cleanup"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.json()["skipped"],
        json!([{"project": "acme", "id": "cleanup", "reason": "file exists (use --force)"}])
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("jobs.d/cleanup.yaml")).expect("file"),
        "# mine\n"
    );
    assert!(
        !ws.path().join("jobs.d/nightly-report.yaml").exists(),
        "--job picks"
    );

    let run = import(&ws, &fake, &["--job", "cleanup", "--force"]);
    assert_eq!(run.json()["imported"][0]["id"], "cleanup");
    let text = std::fs::read_to_string(ws.path().join("jobs.d/cleanup.yaml")).expect("file");
    assert!(text.contains("suspended: true"), "{text}");
    assert!(
        !text.contains("disabledCI"),
        "server defaults are left out: {text}"
    );

    let run = import(&ws, &fake, &["--job", "cleanup", "--force", "--all-fields"]);
    assert_eq!(run.code, 0);
    let text = std::fs::read_to_string(ws.path().join("jobs.d/cleanup.yaml")).expect("file");
    assert!(text.contains("disabledCI: false"), "{text}");

    let run = import(&ws, &fake, &["--job", "nope"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.json()["skipped"],
        json!([{"project": "acme", "id": "nope", "reason": "not found"}])
    );
}

const INHERITED: &str = "Inher1ted-Gr0up-S3cret";
const OWN: &str = "own-Val1e";
const ECR_HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

/// Jobs on several registries, one built from Git with a newer builder,
/// and one linked to a secret group.
fn registry_jobs(fake: &Fake) {
    let elsewhere = Workspace::new();
    let base = |name: &str| {
        format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n")
    };
    let image = |name: &str, image: &str| {
        format!(
            "{}  deployment:\n    external:\n      imagePath: {image}\n",
            base(name)
        )
    };
    elsewhere.write(
        "jobs.d/linked.yaml",
        format!(
            "{}  runtimeEnvironment:\n    OWN_KEY: \"{OWN}\"\n",
            image("Linked Report", "ghcr.io/acme/report:1.4")
        ),
    );
    elsewhere.write(
        "jobs.d/lab.yaml",
        image("Lab Sync", "registry.gitlab.com/acme/tools/sync:2"),
    );
    elsewhere.write(
        "jobs.d/ecr.yaml",
        image("Etl Ecr", &format!("{ECR_HOST}/etl:7")),
    );
    elsewhere.write(
        "jobs.d/vcs.yaml",
        format!("{}  deployment:\n    vcs:\n      projectUrl: https://github.com/acme/app\n      projectType: github\n      projectBranch: main\n  buildSettings:\n    buildpack:\n      builder: HEROKU_24\n", base("From Git")),
    );
    let run = elsewhere.nfcron_env(
        &["reconcile", "--state", "other/state.json"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    fake.link_secret_group(
        "acme",
        "linked-report",
        json!({"runtimeEnvironment": {"GROUP_DB": INHERITED},
               "runtimeFiles": {"/etc/group.conf": {"data": INHERITED, "encoding": "utf-8"}}}),
    );
    fake.clear_log();
}

#[test]
fn imports_keep_registry_hosts_and_leave_inherited_values_out() {
    let fake = Fake::spawn(0);
    registry_jobs(&fake);
    let ws = Workspace::new();
    let run = import(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let read = |id: &str| {
        std::fs::read_to_string(ws.path().join(format!("jobs.d/{id}.yaml"))).expect("manifest")
    };
    let linked = read("linked-report");
    assert!(
        linked.contains("imagePath: ghcr.io/acme/report:1.4"),
        "{linked}"
    );
    assert!(
        linked.contains("OWN_KEY: ${LINKED_REPORT_OWN_KEY}"),
        "{linked}"
    );
    assert!(
        read("lab-sync").contains("imagePath: registry.gitlab.com/acme/tools/sync:2"),
        "{}",
        read("lab-sync")
    );
    let ecr = read("etl-ecr");
    assert!(
        ecr.contains("imagePath: ${ETL_ECR_REGISTRY_HOST}/etl:7"),
        "{ecr}"
    );
    assert!(
        run.stderr.contains("acme/etl-ecr") && run.stderr.contains("ETL_ECR_REGISTRY_HOST"),
        "{}",
        run.stderr
    );
    let vcs = read("from-git");
    assert!(
        vcs.contains("builder: HEROKU_24") && vcs.contains("vcs:") && !vcs.contains("internal"),
        "{vcs}"
    );
    let env_example =
        std::fs::read_to_string(ws.path().join("jobs.d/.env.example")).expect(".env.example");
    let state = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    for artefact in [&linked, &env_example, &state, &run.stdout, &run.stderr] {
        assert!(
            !artefact.contains(INHERITED)
                && !artefact.contains("GROUP_DB")
                && !artefact.contains("group.conf"),
            "an inherited value leaked into:\n{artefact}"
        );
    }
    // Environment and build arguments are read with `show=this` only.
    let queries: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| {
            r.path.ends_with("/runtime-environment") || r.path.ends_with("/build-arguments")
        })
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(queries, vec!["show=this"; 8]);

    let vars = [
        ("LINKED_REPORT_OWN_KEY", OWN),
        ("ETL_ECR_REGISTRY_HOST", ECR_HOST),
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    // In the refresh, the job recorded at import needs no read; the one
    // whose registry host was a placeholder is read once and adopted.
    common::imported_plans_nothing(&ws, &fake, &vars);
}

#[test]
fn import_sensitive_keeps_the_field_out_of_the_state_and_the_manifest() {
    const COMMAND: &str = "report --token Cust0m-Imp0rt-s3cret";
    let fake = Fake::spawn(0);
    let api = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let elsewhere = Workspace::new();
    elsewhere.write(
        "jobs.d/r.yaml",
        format!("kind: CronJob\nproject: acme\nspec:\n  name: Report\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n    docker:\n      configType: customCommand\n      customCommand: \"{COMMAND}\"\n"),
    );
    let made = elsewhere.nfcron_env(&["reconcile", "--state", "other/state.json"], &api);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let import = |ws: &Workspace, extra: &[&str]| {
        let mut args = vec!["import", "--project", "acme"];
        args.extend_from_slice(extra);
        ws.nfcron_env(&args, &api)
    };
    let state_text = |ws: &Workspace| {
        std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state")
    };

    // Without --sensitive the state holds the command (the check below can
    // fail).
    let plain = Workspace::new();
    assert_eq!(import(&plain, &[]).code, 0);
    assert!(state_text(&plain).contains("Cust0m-Imp0rt-s3cret"));

    let ws = Workspace::new();
    let run = import(&ws, &["--sensitive", "deployment.docker.customCommand"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = state_text(&ws);
    assert!(!state.contains("Cust0m-Imp0rt-s3cret"), "{state}");
    let recorded: Value = serde_json::from_str(&state).expect("state parses");
    let fp = &recorded["jobs"][0]["spec"]["deployment"]["docker"]["customCommand"];
    assert!(
        fp.as_str().is_some_and(|s| s.starts_with("(sensitive")),
        "{fp}"
    );
    assert_eq!(
        recorded["jobs"][0]["spec"]["deployment"]["docker"]["configType"],
        json!("customCommand")
    );
    // Nor is it written into the manifest: a placeholder, named in
    // .env.example, as for runtime environment values.
    const VAR: &str = "REPORT_DEPLOYMENT_DOCKER_CUSTOMCOMMAND";
    let manifest_text =
        std::fs::read_to_string(ws.path().join("jobs.d/report.yaml")).expect("manifest");
    assert!(
        !manifest_text.contains("Cust0m-Imp0rt-s3cret"),
        "{manifest_text}"
    );
    assert!(
        manifest_text.contains(&format!("${{{VAR}}}")),
        "{manifest_text}"
    );
    let example = std::fs::read_to_string(ws.path().join("jobs.d/.env.example")).expect("env");
    assert!(example.contains(&format!("{VAR}=")), "{example}");

    // A reconcile with the variable set and the same --sensitive plans
    // nothing and sends nothing.
    fake.clear_log();
    let full = [
        "reconcile",
        "--output",
        "json",
        "--sensitive",
        "deployment.docker.customCommand",
        "--detailed-exitcode",
    ];
    let mut env = api.to_vec();
    env.push((VAR, COMMAND));
    let run = ws.nfcron_env(&full, &env);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["unchanged"], 1);
    assert_eq!(fake.requests(), vec![]);
}
