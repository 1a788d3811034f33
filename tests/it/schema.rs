//! `nfcron schema` and `nfcron validate` must agree: the schema is printed
//! from the same tree the validator walks, and this test holds them to it
//! through an independent JSON Schema validator, on a hand-written corpus
//! and on random mutations of a valid manifest.
//!
//! Left out, because a schema cannot say them: what a cron schedule means,
//! duplicate ids across files, `${VAR}` resolution, and the project coming
//! from a flag.

use crate::common;

use common::Workspace;
use nfcron::manifest::diagnostic::Code;
use nfcron::manifest::{self, LoadOptions};
use nfcron::source::SourceFile;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde::Deserialize;
use serde_json::{json, Value};

const OUTSIDE_A_SCHEMA: &[Code] = &[Code::Cron, Code::DuplicateId, Code::EnvMissing];

fn schema_validator() -> jsonschema::Validator {
    let ws = Workspace::new();
    let run = ws.nfcron(&["schema"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    jsonschema::draft7::new(&run.json()).expect("nfcron schema is a valid draft-07 schema")
}

/// validate's verdict on each document of `text`, ignoring what a schema
/// cannot express. Each document is one JSON line, so a diagnostic belongs
/// to the job on its line.
fn validate_verdicts(text: &str) -> Vec<bool> {
    let files = [SourceFile {
        path: "corpus.yaml".into(),
        content: Ok(text.to_string()),
    }];
    let lookup = |_: &str| None;
    let catalog = manifest::load(
        &files,
        &LoadOptions {
            default_project: None,
            require_env: false,
            lookup: &lookup,
            allow_unknown_fields: false,
        },
    );
    assert!(
        !catalog.diagnostics.iter().any(|d| d.code == Code::Yaml),
        "corpus must parse: {:?}",
        catalog.diagnostics
    );
    catalog
        .jobs
        .iter()
        .map(|job| {
            !catalog.diagnostics.iter().any(|d| {
                d.is_error() && d.pos.line == job.line && !OUTSIDE_A_SCHEMA.contains(&d.code)
            })
        })
        .collect()
}

#[test]
fn schema_and_validate_agree_on_the_corpus() {
    let validator = schema_validator();
    let text = include_str!("../corpus/cases.yaml");
    let documents: Vec<(String, Value)> = text
        .split("\n---\n")
        .skip(1)
        .map(|doc| {
            let comment = doc
                .lines()
                .next()
                .expect("comment")
                .trim_start_matches("# ")
                .to_string();
            let value: Value = serde_yaml::from_str(doc).expect("corpus document parses");
            (comment, value)
        })
        .collect();
    let ours = validate_verdicts(text);
    assert_eq!(ours.len(), documents.len());
    let mut disagreements = Vec::new();
    for ((comment, value), ours) in documents.iter().zip(ours) {
        let theirs = validator.is_valid(value);
        let expected = comment.starts_with("valid");
        if ours != expected || theirs != expected {
            disagreements.push(format!(
                "{comment}: validate says {ours}, schema says {theirs}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn the_bundled_jobs_are_valid_under_the_schema() {
    let validator = schema_validator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.d");
    for entry in std::fs::read_dir(dir).expect("jobs.d") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).expect("parses");
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
    }
}

fn base() -> Value {
    json!({"kind": "CronJob", "project": "acme", "spec": {
        "name": "Prop Job", "billing": {"deploymentPlan": "nf-compute-20"}, "backoffLimit": 1,
        "schedule": "0 3 * * *", "concurrencyPolicy": "forbid",
        "deployment": {"external": {"imagePath": "nginx:1.27"}, "docker": {"configType": "default"}},
        "healthChecks": [{"protocol": "HTTP", "type": "livenessProbe", "path": "/h", "port": 80,
            "initialDelaySeconds": 1, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 1}]
    }})
}

/// Paths that a mutation may set, removing or replacing what is there.
const PATHS: &[&str] = &[
    "spec.name",
    "spec.description",
    "spec.tags",
    "spec.billing",
    "spec.billing.deploymentPlan",
    "spec.billing.buildPlan",
    "spec.backoffLimit",
    "spec.runOnSourceChange",
    "spec.activeDeadlineSeconds",
    "spec.deployment",
    "spec.deployment.external",
    "spec.deployment.external.imagePath",
    "spec.deployment.internal",
    "spec.deployment.vcs",
    "spec.deployment.docker",
    "spec.deployment.docker.configType",
    "spec.deployment.docker.customCommand",
    "spec.deployment.storage",
    "spec.deployment.gracePeriodSeconds",
    "spec.buildSettings",
    "spec.runtimeEnvironment",
    "spec.buildArguments",
    "spec.buildConfiguration",
    "spec.runtimeFiles",
    "spec.healthChecks",
    "spec.healthChecks.0",
    "spec.healthChecks.0.protocol",
    "spec.healthChecks.0.port",
    "spec.healthChecks.0.path",
    "spec.suspended",
    "spec.concurrencyPolicy",
    "spec.unknown",
    "team",
];

fn values() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!(null))),
        Just(Some(json!(true))),
        (-2i64..700).prop_map(|n| Some(json!(n))),
        prop::sample::select(vec![
            "",
            "a",
            "ab",
            "abc",
            "Nightly Report",
            "bad_name",
            "nginx",
            "nginx:1",
            "forbid",
            "Forbid",
            "HTTP",
            "CMD",
            "TCP",
            "customCommand",
            "default",
            "/",
            "/healthz",
            "healthz",
            "latest",
            "kaniko",
            "nf-compute-20",
            "a b",
            "https://github.com/acme/app",
        ])
        .prop_map(|s| Some(json!(s))),
        Just(Some(json!([]))),
        Just(Some(json!(["a", "b-c"]))),
        Just(Some(json!({}))),
        Just(Some(json!({"configType": "customCommand"}))),
        Just(Some(json!({"imagePath": "nginx:1"}))),
        Just(Some(json!({"A_B": "x", "bad key": "y"}))),
        Just(Some(json!({"PORT": 8080, "FLAG": true}))),
        Just(Some(json!({"PORT": "8080"}))),
        Just(Some(
            json!({"pathIgnoreRules": ["*.md"], "ciIgnoreFlags": ["[skip ci]"]})
        )),
        Just(Some(json!({"/etc/a": {"data": "x"}}))),
        Just(Some(json!({"external": {"imagePath": "nginx:1"}}))),
        Just(Some(
            json!({"dockerfile": {"dockerFilePath": "/Dockerfile", "dockerWorkDir": "/"}})
        )),
        Just(Some(
            json!({"projectUrl": "https://github.com/a/bb", "projectType": "github", "projectBranch": "main"})
        )),
    ]
}

fn set(doc: &mut Value, path: &str, value: Option<Value>) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = doc;
    for part in &parts[..parts.len() - 1] {
        node = match node {
            Value::Object(m) => match m.get_mut(*part) {
                Some(v) => v,
                None => return,
            },
            Value::Array(a) => match part.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    let last = parts[parts.len() - 1];
    match (node, value) {
        (Value::Object(m), Some(v)) => {
            m.insert(last.to_string(), v);
        }
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Array(a), Some(v)) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = v;
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(Config { cases: 400, rng_seed: RngSeed::Fixed(0x6e66_6372_6f6e), failure_persistence: None, ..Config::default() })]

    #[test]
    fn schema_and_validate_agree_on_random_mutations(
        mutations in prop::collection::vec((prop::sample::select(PATHS), values()), 1..4)
    ) {
        let validator = schema_validator_cached();
        let mut doc = base();
        for (path, value) in mutations {
            set(&mut doc, path, value);
        }
        let text = format!("---\n{}\n", serde_json::to_string(&doc).expect("json"));
        let ours = validate_verdicts(&text)[0];
        let theirs = validator.is_valid(&doc);
        prop_assert_eq!(ours, theirs, "document: {}", doc);
    }
}

fn schema_validator_cached() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(schema_validator)
}

#[test]
fn the_committed_schema_file_is_current() {
    let ws = Workspace::new();
    let printed = ws.nfcron(&["schema"]).stdout;
    let committed = include_str!("../../examples/nfcron.schema.json");
    assert!(
        printed == committed,
        "examples/nfcron.schema.json is stale: run `cargo run -- schema > examples/nfcron.schema.json`"
    );
}
