//! Hostile and random input never panics the loader or the renderers:
//! arbitrary bytes, token soup that is almost YAML, and arbitrary
//! well-formed YAML in a manifest's envelope. Fixed seeds: a failure
//! reproduces.

use nfcron::manifest::{self, LoadOptions};
use nfcron::render::{diagnostics, Colour};
use nfcron::source::{self, SourceFile};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{json, Value};

fn config(seed: u64) -> Config {
    Config {
        cases: 300,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Loads `files` and renders every report, as `nfcron validate` does.
fn validate(files: &[SourceFile]) -> manifest::Catalog {
    let lookup = |name: &str| (name == "SET").then(|| "value".to_string());
    let catalog = manifest::load(
        files,
        &LoadOptions {
            default_project: Some("p"),
            require_env: false,
            lookup: &lookup,
        },
    );
    let text = diagnostics::text(&catalog, files, Colour(true));
    assert!(text.ends_with(" invalid\n"));
    let json: Value =
        serde_json::from_str(&diagnostics::json(&catalog)).expect("the JSON report parses");
    assert_eq!(json["jobs"].as_u64(), Some(catalog.jobs.len() as u64));
    catalog
}

fn one_file(text: String) -> Vec<SourceFile> {
    vec![SourceFile {
        path: "jobs.d/x.yaml".into(),
        content: Ok(text),
    }]
}

const TOKENS: &[&str] = &[
    "kind: CronJob\n",
    "project: p\n",
    "spec:\n",
    "  name: Job A\n",
    "  schedule: \"0 3 * * *\"\n",
    "name:",
    "key:",
    " ",
    "  ",
    "\n",
    "\t",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "&a ",
    "*a",
    "*b",
    "!!str ",
    "!!int ",
    "!custom ",
    "---\n",
    "...\n",
    "\"q\\u00e9\"",
    "'s''s'",
    "|\n",
    ">-\n",
    "? ",
    "${SET}",
    "${UNSET}",
    "${",
    "$$",
    "#c\n",
    "é",
    "😀",
    "\u{feff}",
    "%YAML 1.2\n",
    "<<: *a\n",
    "~",
    "0x1F",
    "1e999",
    "-0",
    ".nan",
    "deployment:",
    "external:",
    "imagePath:",
    "healthChecks:",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.concat())
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::String),
        prop::sample::select(vec![
            "name",
            "schedule",
            "0 3 * * *",
            "nginx:1",
            "forbid",
            "HTTP",
            "${SET}"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-zA-Z]{1,12}",
                    prop::sample::select(vec![
                        "name",
                        "billing",
                        "deployment",
                        "external",
                        "vcs",
                        "internal",
                        "docker",
                        "configType",
                        "healthChecks",
                        "runtimeEnvironment",
                        "buildSettings",
                        "schedule",
                        "backoffLimit",
                        "concurrencyPolicy",
                        "buildSHA",
                    ])
                    .prop_map(String::from),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(1))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("x.yaml"), &bytes).expect("write");
        let files = source::dir::read(dir.path());
        let catalog = validate(&files);
        prop_assert_eq!(catalog.files, 1);
    }
}

proptest! {
    #![proptest_config(config(2))]
    #[test]
    fn almost_yaml_never_panics(text in token_soup()) {
        let catalog = validate(&one_file(text));
        // Every document that failed carries at least one error.
        for job in catalog.jobs.iter().filter(|j| !j.valid) {
            prop_assert!(catalog.diagnostics.iter().any(|d| d.is_error() && d.file == job.file));
        }
    }
}

proptest! {
    #![proptest_config(config(3))]
    #[test]
    fn arbitrary_yaml_in_an_envelope_never_panics(spec in any_json(), root in any_json()) {
        let manifest = json!({"kind": "CronJob", "project": "p", "spec": spec});
        let text = format!(
            "{}---\n{}",
            serde_yaml::to_string(&manifest).expect("yaml"),
            serde_yaml::to_string(&root).expect("yaml")
        );
        validate(&one_file(text));
    }
}
