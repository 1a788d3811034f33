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
            allow_unknown_fields: false,
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

/// Fewer cases for generators whose inputs are large: the whole file still
/// runs in CI in bounded time.
fn heavy_config(seed: u64, cases: u32) -> Config {
    Config {
        cases,
        ..config(seed)
    }
}

/// Bytes of every key and string in a tree.
fn tree_bytes(node: &manifest::yaml::Node) -> usize {
    use manifest::yaml::Value as Y;
    match &node.value {
        Y::Str(s) => s.len(),
        Y::Seq(items) => items.iter().map(tree_bytes).sum(),
        Y::Map(entries) => entries
            .iter()
            .map(|(k, v)| k.name.len() + tree_bytes(v))
            .sum(),
        _ => 0,
    }
}

/// Anchors of random sizes, aliased a random number of times, sometimes
/// nested (an anchor holding aliases of another).
fn alias_file() -> impl Strategy<Value = String> {
    (
        1usize..40_000,
        0usize..3_000,
        0usize..20,
        any::<bool>(),
        prop::collection::vec(0usize..3, 0..4),
    )
        .prop_map(|(scalar, aliases, nested, block, layers)| {
            let mut text = format!("a0: &a0 {}\n", "s".repeat(scalar));
            let mut last = "a0".to_string();
            for (i, width) in layers.iter().enumerate() {
                let name = format!("l{i}");
                let items = vec![format!("*{last}"); width + 2].join(", ");
                text.push_str(&format!("{name}: &{name} [{items}]\n"));
                last = name;
            }
            text.push_str("many:\n");
            for _ in 0..aliases {
                text.push_str(&format!("  - *{last}\n"));
            }
            if block {
                text.push_str("blk: &blk\n  k: v\n");
                for i in 0..nested {
                    text.push_str(&format!("n{i}: *blk\n"));
                }
            }
            text
        })
}

proptest! {
    #![proptest_config(heavy_config(4, 40))]
    #[test]
    fn alias_expansion_stays_within_its_byte_budget(text in alias_file()) {
        let parsed = manifest::yaml::parse(&text);
        let built: usize = parsed.documents.iter().map(|d| tree_bytes(&d.root)).sum();
        let budget = manifest::yaml::alias_byte_budget(text.len());
        // What was not in the text came from aliases, within the budget.
        prop_assert!(built <= text.len() + budget, "{built} bytes built from {}", text.len());
        if let Some(error) = &parsed.error {
            prop_assert!(error.message.contains("alias"), "{}", error.message);
        }
        validate(&one_file(text));
    }
}

proptest! {
    #![proptest_config(heavy_config(5, 12))]
    #[test]
    fn documents_per_file_are_capped(
        count in 0usize..14_000,
        kind in prop::sample::select(vec!["--- ~\n", "--- {}\n", "---\nkind: CronJob\n", "--- []\n"]),
    ) {
        let text = kind.repeat(count);
        let catalog = validate(&one_file(text));
        let capped = count > manifest::yaml::MAX_DOCUMENTS;
        prop_assert!(catalog.jobs.len() <= manifest::yaml::MAX_DOCUMENTS + 1);
        prop_assert_eq!(
            capped,
            catalog.diagnostics.iter().any(|d| d.code.as_str() == "yaml" && d.message.contains("documents")),
        );
    }
}

proptest! {
    #![proptest_config(config(6))]
    #[test]
    fn masking_any_text_never_panics(text in "\\PC{0,400}", raw in prop::collection::vec(any::<u8>(), 0..400)) {
        for t in [text, String::from_utf8_lossy(&raw).into_owned()] {
            let masks = manifest::mask::masks(&t);
            prop_assert_eq!(masks.len(), t.lines().count());
            for (line, m) in t.lines().zip(masks) {
                let _ = m.mask.apply(line);
                let _ = m.secret().apply(line);
            }
        }
    }
}

const SECRET: &str = "s3cr3t-v4lue";

/// Edits that break a manifest's YAML without moving a secret out of its
/// field: the broken line, wherever it is, must not show the secret.
const BREAKERS: &[&str] = &[
    "\t", "\"", "'", "{", "[", "}", "]", ": ", "&a ", "*a", "|", "? ", ",", "\\", "%",
];

fn secret_manifest() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        format!("kind: CronJob\nproject: p\nspec:\n  name: Job A\n  runtimeEnvironment:\n    DB_PASSWORD: {SECRET}\n    OTHER: \"{SECRET}\"\n  schedule: \"0 3 * * *\"\n"),
        format!("kind: CronJob\nproject: p\nspec:\n  name: Job A\n  buildArguments: {{A: {SECRET}, B: '{SECRET}'}}\n"),
        format!("kind: CronJob\nproject: p\nspec:\n  runtimeFiles:\n    /etc/x:\n      data: |\n        {SECRET}\n        {SECRET}\n      encoding: utf-8\n  name: Job A\n"),
        format!("kind: CronJob\nproject: p\nspec:\n  buildFiles:\n    - {SECRET}\n    - k: {SECRET}\n"),
    ])
}

proptest! {
    #![proptest_config(config(7))]
    #[test]
    fn a_broken_line_in_a_secret_field_never_shows_the_secret(
        text in secret_manifest(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(BREAKERS)), 1..4),
    ) {
        let mut text = text;
        for (at, token) in edits {
            // Only after `spec:`, and never inside a word: a split key is
            // another field, and a split secret is not shown whole anyway.
            let start = text.find("spec:").expect("spec") + 6;
            let mut i = start + at.index(text.len() - start);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            if text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                && text[i..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
            {
                continue;
            }
            // Glued to a key's `:` (`{A:&a  value}`), the value becomes
            // part of the key, and keys of secret maps are shown by design.
            if text[..i].ends_with(':') {
                continue;
            }
            text.insert_str(i, token);
        }
        // Keys of secret maps are shown by design: an edit that makes the
        // secret a key (`{A: ,s3cr3t}`) is out of this property's reach.
        fn is_key(node: &manifest::yaml::Node) -> bool {
            use manifest::yaml::Value as Y;
            match &node.value {
                Y::Seq(items) => items.iter().any(is_key),
                Y::Map(entries) => entries.iter().any(|(k, v)| k.name.contains(SECRET) || is_key(v)),
                _ => false,
            }
        }
        let parsed = manifest::yaml::parse(&text);
        prop_assume!(!parsed.documents.iter().any(|d| is_key(&d.root)));
        let files = one_file(text.clone());
        let catalog = validate(&files);
        let report = diagnostics::text(&catalog, &files, Colour(false));
        prop_assert!(!report.contains(SECRET), "{}\n---\n{}", text, report);
        prop_assert!(!diagnostics::json(&catalog).contains(SECRET));
    }
}
