//! nfcron and its fake API against the types of the official client,
//! pinned in tests/data/northflank-js-client/ (VERSION, the extract of
//! `dist/esm/api-client.d.ts`, and `extract.sh`, which makes it again).
//!
//! - `nfcron schema`'s `spec` follows `PutJobCronData` field by field:
//!   names, required or optional, enum values, nullability, types. Every
//!   difference left is on [`ALLOWED`] with its reason; a new difference,
//!   or an allowed one that went away, fails the test.
//! - The fake answers every read in the shape of its `GetJob*Result` type:
//!   no field the type lacks, none it requires missing.
//!
//! To follow a newer client: write its version into VERSION, run
//! `tests/data/northflank-js-client/extract.sh`, then
//! `cargo test --test it official_types::`; the failures list what changed.

use crate::common;
use crate::fake;
use crate::support::ts_types;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use common::Workspace;
use fake::{Fake, TOKEN};
use serde_json::{json, Value};
use ts_types::{alternatives, Ty};

const EXTRACT: &str = include_str!("../data/northflank-js-client/api-client.extract.d.ts");
const VERSION: &str = include_str!("../data/northflank-js-client/VERSION");

/// `pointer kind` -> why nfcron differs from the official request type.
const ALLOWED: &[(&str, &str)] = &[
    (
        "/schedule required",
        "nfcron manages cron jobs: a job without a schedule never runs; the reference page and CLI 0.9.24 require it",
    ),
    (
        "/schedule nullable",
        "`null` would clear the schedule of a cron job nfcron exists to schedule",
    ),
    (
        "/concurrencyPolicy required",
        "the reference page and CLI 0.9.24 require it; an explicit policy keeps the server's default out of drift",
    ),
    (
        "/deployment/internal/buildSHA type",
        "the type says `string | 'latest'`; the reference page: a 40-character commit SHA or `latest`",
    ),
];

/// Where `ours` (a JSON Schema node of `nfcron schema`) and `ts` (the
/// official type) disagree, keyed `pointer kind`.
fn compare(ts: &Ty, ours: &Value, at: &str, out: &mut BTreeMap<String, String>) {
    let all = alternatives(ts);
    let ts_null = all.contains(&&Ty::Null);
    let rest: Vec<&Ty> = all.into_iter().filter(|t| **t != Ty::Null).collect();
    let (ours, ours_null) = match ours.get("anyOf").and_then(Value::as_array) {
        Some(a) if a.len() == 2 && a[1] == json!({"type": "null"}) => (&a[0], true),
        _ => (ours, false),
    };
    if ts_null != ours_null {
        out.insert(
            format!("{at} nullable"),
            format!("official {ts_null}, ours {ours_null}"),
        );
    }
    let ours_type = ours.get("type").and_then(Value::as_str);
    let mismatch = |out: &mut BTreeMap<String, String>| {
        out.insert(
            format!("{at} type"),
            format!("official {rest:?}, ours {ours}"),
        );
    };
    let objects: Vec<&Vec<ts_types::Member>> = rest
        .iter()
        .filter_map(|t| match t {
            Ty::Object(m) => Some(m),
            _ => None,
        })
        .collect();
    match rest.as_slice() {
        [Ty::Any] => {}
        lits if lits.iter().all(|t| matches!(t, Ty::Literal(_))) => {
            let mut official: Vec<String> = lits
                .iter()
                .filter_map(|t| match t {
                    Ty::Literal(l) => Some(l.clone()),
                    _ => None,
                })
                .collect();
            let mut mine: Vec<String> = ours["enum"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            official.sort();
            mine.sort();
            if official != mine || ours_type != Some("string") {
                out.insert(
                    format!("{at} enum"),
                    format!("official {official:?}, ours {mine:?}"),
                );
            }
        }
        [Ty::String] if ours_type == Some("string") => {}
        [Ty::Boolean] if ours_type == Some("boolean") => {}
        [Ty::Number] if matches!(ours_type, Some("integer" | "number")) => {}
        [Ty::Array(item)] if ours_type == Some("array") => {
            compare(item, &ours["items"], &format!("{at}[]"), out)
        }
        [Ty::Object(members)] if ours_type == Some("object") => {
            members_compare(members, ours, at, out)
        }
        _ if !objects.is_empty() => {
            // Alternatives, in the same order; the official `| any` is
            // nfcron's "choose later" (`{}`).
            let theirs_any = rest.contains(&&Ty::Any);
            let mine = ours["oneOf"].as_array().cloned().unwrap_or_default();
            let mine_objects: Vec<&Value> = mine
                .iter()
                .filter(|m| m["properties"].as_object().is_none_or(|p| !p.is_empty()))
                .collect();
            let mine_empty = mine.len() - mine_objects.len();
            if objects.len() != mine_objects.len() || (theirs_any != (mine_empty == 1)) {
                mismatch(out);
                return;
            }
            for (members, mine) in objects.iter().zip(mine_objects) {
                members_compare(members, mine, at, out);
            }
        }
        _ => mismatch(out),
    }
}

fn members_compare(
    members: &[ts_types::Member],
    ours: &Value,
    at: &str,
    out: &mut BTreeMap<String, String>,
) {
    let props = ours["properties"].as_object().cloned().unwrap_or_default();
    let required: Vec<&str> = ours["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for m in members {
        let path = format!("{at}/{}", m.name);
        let Some(mine) = props.get(&m.name) else {
            out.insert(format!("{path} field"), "only in the official type".into());
            continue;
        };
        if m.optional == required.contains(&m.name.as_str()) {
            out.insert(
                format!("{path} required"),
                format!(
                    "official optional {}, ours required {}",
                    m.optional, !m.optional
                ),
            );
        }
        compare(&m.ty, mine, &path, out);
    }
    for name in props
        .keys()
        .filter(|k| !members.iter().any(|m| &m.name == *k))
    {
        out.insert(format!("{at}/{name} field"), "only ours".into());
    }
}

fn official(name: &str) -> Ty {
    ts_types::parse(EXTRACT)
        .remove(name)
        .unwrap_or_else(|| panic!("{name} in the extract"))
}

fn our_spec() -> Value {
    let run = Workspace::new().nfcron(&["schema"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["properties"]["spec"].clone()
}

#[test]
fn our_schema_follows_the_pinned_official_request_type_but_for_justified_differences() {
    assert!(
        EXTRACT.contains(&format!("@northflank/js-client@{}", VERSION.trim())),
        "the extract is of the pinned version: run extract.sh"
    );
    let mut found = BTreeMap::new();
    compare(&official("PutJobCronData"), &our_spec(), "", &mut found);
    let (unexpected, stale) = common::unjustified(&found, ALLOWED);
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "differences from PutJobCronData ({}) nobody justified:\n{}\n\nallowed differences that no longer exist: {stale:?}",
        VERSION.trim(),
        unexpected.join("\n")
    );
}

/// The comparison sees what it guards: a field, an enum value and a
/// nullability taken away from ours are differences.
#[test]
fn the_official_type_comparison_finds_what_it_guards() {
    let mut ours = our_spec();
    let props = ours["properties"].as_object_mut().expect("properties");
    props.remove("stageId");
    props["activeDeadlineSeconds"] = json!({"type": "integer", "minimum": 1});
    props["runOnSourceChange"]["enum"] = json!(["never", "always"]);
    let mut found = BTreeMap::new();
    compare(&official("PutJobCronData"), &ours, "", &mut found);
    for key in [
        "/stageId field",
        "/activeDeadlineSeconds nullable",
        "/runOnSourceChange enum",
    ] {
        assert!(found.contains_key(key), "{key} not found in {found:#?}");
    }
}

/// `GET path?query` on the fake, the body's `data`.
fn get(fake: &Fake, path: &str) -> Value {
    let mut stream = std::net::TcpStream::connect(fake.addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    let body: Value = serde_json::from_str(body).expect("JSON body");
    body["data"].clone()
}

/// Jobs of every shape nfcron writes: images on several registries, Git
/// builds with a Dockerfile and a buildpack, a build service, health
/// checks of each protocol, secrets own and inherited.
fn varied_jobs(fake: &Fake) -> Vec<&'static str> {
    let ws = Workspace::new();
    let head = |name: &str| {
        format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  description: A job.\n  tags: [nightly]\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: replace\n")
    };
    let checks = "  healthChecks:\n    - {protocol: HTTP, type: readinessProbe, path: /health, port: 8080, initialDelaySeconds: 5, periodSeconds: 30, timeoutSeconds: 2, failureThreshold: 3}\n    - {protocol: TCP, type: livenessProbe, port: 5432, initialDelaySeconds: 5, periodSeconds: 30, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1}\n    - {protocol: CMD, type: livenessProbe, cmd: /bin/true, initialDelaySeconds: 5, periodSeconds: 30, timeoutSeconds: 2, failureThreshold: 3}\n";
    let vcs = "  deployment:\n    vcs:\n      projectUrl: https://github.com/acme/app\n      projectType: github\n      projectBranch: main\n      accountLogin: acme-bot\n    storage:\n      useHdbStorage: true\n      ephemeralStorage:\n        storageSize: 2048\n  buildConfiguration:\n    enableGitLfs: true\n  buildArguments:\n    NPM_TOKEN: t0k3n\n";
    let files = [
        ("ghcr", format!("{}  deployment:\n    external:\n      imagePath: ghcr.io/acme/report:1.4\n      credentials: ghcr-creds\n    docker:\n      configType: customCommand\n      customCommand: run\n{checks}  runtimeEnvironment:\n    OWN: own\n  runtimeFiles:\n    /etc/own.conf:\n      data: b3du\n      encoding: base64\n", head("On GHCR"))),
        ("hub", format!("{}  suspended: true\n  activeDeadlineSeconds: null\n  deployment:\n    external:\n      imagePath: nginx:1.27\n", head("On Hub"))),
        ("private", format!("{}  deployment:\n    external:\n      imagePath: registry.acme.dev:5000/ops/cleanup:3\n", head("On Private"))),
        ("dockerfile", format!("{}{vcs}  buildSettings:\n    dockerfile:\n      buildEngine: kaniko\n      dockerFilePath: /app/Dockerfile\n      dockerWorkDir: /app\n", head("Git Dockerfile"))),
        ("buildpack", format!("{}{vcs}  buildSettings:\n    buildpack:\n      builder: HEROKU_24\n      buildContext: /app\n    storage:\n      ephemeralStorage:\n        storageSize: 16384\n", head("Git Buildpack"))),
        ("internal", format!("{}  deployment:\n    internal:\n      id: builder\n      branch: main\n      buildSHA: latest\n    buildpack:\n      configType: customProcess\n      customProcess: worker\n", head("From Service"))),
    ];
    for (file, text) in &files {
        ws.write(&format!("jobs.d/{file}.yaml"), text);
    }
    let run = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    fake.link_secret_group(
        "acme",
        "on-ghcr",
        json!({"runtimeEnvironment": {"GROUP": "g"}, "buildArguments": {"GROUP_ARG": "g"}}),
    );
    vec![
        "on-ghcr",
        "on-hub",
        "on-private",
        "git-dockerfile",
        "git-buildpack",
        "from-service",
    ]
}

#[test]
fn the_fake_answers_in_the_pinned_official_read_shapes() {
    let fake = Fake::spawn(0);
    let ids = varied_jobs(&fake);
    let types = ts_types::parse(EXTRACT);
    let ty = |name: &str| types.get(name).unwrap_or_else(|| panic!("{name}"));
    let mut problems = Vec::new();
    let mut checked = 0;
    for id in ids {
        let base = format!("/v1/projects/acme/jobs/{id}");
        let mut reads = vec![
            (base.clone(), "GetJobResult"),
            (format!("{base}/deployment"), "GetJobDeploymentResult"),
            (format!("{base}/health-checks"), "GetJobHealthchecksResult"),
        ];
        for show in ["", "?show=this", "?show=inherited", "?show=all"] {
            reads.push((
                format!("{base}/runtime-environment{show}"),
                "GetJobRuntimeenvironmentResult",
            ));
            reads.push((
                format!("{base}/build-arguments{show}"),
                "GetJobBuildargumentsResult",
            ));
        }
        for (path, name) in reads {
            ts_types::check(&get(&fake, &path), ty(name), &path, &mut problems);
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * 11);
    ts_types::check(
        &get(&fake, "/v1/projects/acme/jobs?per_page=100"),
        ty("ListJobsResult"),
        "/v1/projects/acme/jobs",
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "the fake answers outside the official types:\n{}",
        problems.join("\n")
    );
    // Inherited values come back unless `show=this` asks for the job's own.
    let env = |show: &str| {
        get(
            &fake,
            &format!("/v1/projects/acme/jobs/on-ghcr/runtime-environment{show}"),
        )["runtimeEnvironment"]
            .clone()
    };
    assert_eq!(env(""), json!({"GROUP": "g", "OWN": "own"}));
    assert_eq!(env("?show=this"), json!({"OWN": "own"}));
    assert_eq!(env("?show=inherited"), json!({"GROUP": "g"}));
    let deployment = get(&fake, "/v1/projects/acme/jobs/on-ghcr/deployment");
    assert_eq!(
        deployment["external"],
        json!({"imagePath": "acme/report:1.4", "registryProvider": "github", "privateImage": true})
    );
}

/// The shape check sees what it guards: a field the type lacks, a
/// required one missing, an enum value outside the type.
#[test]
fn the_read_shape_check_finds_what_it_guards() {
    let checks = official("GetJobHealthchecksResult");
    let good = json!({"healthChecks": [{"protocol": "TCP", "type": "livenessProbe", "tcpSocketPort": 5432, "httpPort": null,
        "initialDelaySeconds": 5, "periodSeconds": 30, "timeoutSeconds": 2, "failureThreshold": 3}]});
    let mut problems = Vec::new();
    ts_types::check(&good, &checks, "", &mut problems);
    assert_eq!(problems, Vec::<String>::new());
    let mut bad = good.clone();
    bad["healthChecks"][0]["port"] = json!(5432);
    bad["healthChecks"][0]["protocol"] = json!("tcp");
    bad["healthChecks"][0]
        .as_object_mut()
        .expect("object")
        .remove("periodSeconds");
    ts_types::check(&bad, &checks, "", &mut problems);
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

/// What the manifests `import` writes for [`varied_jobs`] need set: each
/// secret's live value, and the host of the registry the API does not name.
const IMPORT_VARIABLES: &[(&str, &str)] = &[
    ("ON_GHCR_OWN", "own"),
    ("ON_GHCR_ETC_OWN_CONF", "b3du"),
    ("GIT_DOCKERFILE_NPM_TOKEN", "t0k3n"),
    ("GIT_BUILDPACK_NPM_TOKEN", "t0k3n"),
    ("ON_PRIVATE_REGISTRY_HOST", "registry.acme.dev:5000"),
];

#[test]
fn every_shape_the_reads_give_imports_validates_and_reconciles_with_no_write() {
    let fake = Fake::spawn(0);
    varied_jobs(&fake);
    let ws = Workspace::new();
    let api = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let run = ws.nfcron_env(&["import", "--project", "acme", "--output", "json"], &api);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let imported = run.json()["imported"].as_array().map(Vec::len);
    assert_eq!(imported, Some(6), "{}", run.stdout);
    let env_example =
        std::fs::read_to_string(ws.path().join("jobs.d/.env.example")).expect(".env.example");
    let mut listed: Vec<&str> = env_example
        .lines()
        .filter_map(|l| l.strip_suffix('='))
        .collect();
    listed.sort();
    let mut expected: Vec<&str> = IMPORT_VARIABLES.iter().map(|(n, _)| *n).collect();
    expected.sort();
    assert_eq!(listed, expected, "{env_example}");
    for id in ["git-dockerfile", "git-buildpack"] {
        let text =
            std::fs::read_to_string(ws.path().join(format!("jobs.d/{id}.yaml"))).expect("manifest");
        assert!(!text.contains("internal"), "vcs with internal: {text}");
    }

    let mut env: Vec<(&str, &str)> = IMPORT_VARIABLES.to_vec();
    env.extend(api);
    common::imported_plans_nothing(&ws, &fake, &env);
}
