//! `nfcron schema` against the request schema the official CLI ships
//! (`@northflank/cli`, tests/data/northflank-cli/), keyword by keyword.
//! Every difference left is on [`ALLOWED`] with its reason; a new
//! difference, or an allowed one that went away, fails the test.
//!
//! Read as equal before comparing: annotations (`description`, `example`,
//! `default`, `format`, `title`), an empty `properties`, and our
//! `anyOf: [{pattern: P}, {pattern: <a ${VAR} reference>}]`, which is
//! `pattern: P` for an editor that cannot resolve `${VAR}` (`validate`
//! checks the resolved value against P itself).

use crate::common;

use std::collections::BTreeMap;

use common::Workspace;
use nfcron::render::json_schema::INTERPOLATED;
use serde_json::{Map, Value};

const ANNOTATIONS: &[&str] = &["description", "example", "default", "format", "title"];
const SUBSCHEMA: &[&str] = &[
    "items",
    "additionalProperties",
    "propertyNames",
    "if",
    "then",
];
const ALTERNATIVES: &[&str] = &["oneOf", "anyOf", "allOf"];

/// The API took this after CLI 0.9.24: `PutJobCronData` of the pinned
/// official client has it (held to our schema by tests/it/official_types.rs).
const NEWER: &str = "in PutJobCronData of @northflank/js-client 0.9.5, newer than CLI 0.9.24";

/// `pointer keyword` -> why the difference is right.
const ALLOWED: &[(&str, &str)] = &[
    // Patterns: the same strings, written for the regex crate and for
    // ECMAScript's Unicode mode.
    (
        "/properties/schedule pattern",
        "`\\d` written `[0-9]`: ECMAScript's `\\d` is ASCII, the regex crate's is Unicode",
    ),
    (
        "/properties/description pattern",
        "`[` inside the class written `\\[`: the regex crate reads a bare `[` there as a nested class",
    ),
    (
        "/properties/deployment/oneOf/1/properties/external/properties/imagePath pattern",
        "`\\:` and `\\@` written `:` and `@`: ECMAScript's Unicode mode refuses those escapes",
    ),
    // Stricter than the CLI, from the reference page's own words.
    (
        "/properties/runtimeEnvironment propertyNames",
        "the page: keys may only contain letters, numbers, hyphens, forward slashes and dots (and `_`)",
    ),
    (
        "/properties/buildArguments propertyNames",
        "the page: keys may only contain letters, numbers, hyphens, forward slashes and dots (and `_`)",
    ),
    (
        "/properties/runtimeFiles propertyNames",
        "the page: file path must be absolute",
    ),
    (
        "/properties/buildFiles propertyNames",
        "the page: file path must be absolute",
    ),
    (
        "/properties/deployment/oneOf/0/properties/buildpack allOf",
        "the page: customProcess/customEntrypoint/customCommand required for their configType",
    ),
    (
        "/properties/deployment/oneOf/1/properties/buildpack allOf",
        "the page: customProcess/customEntrypoint/customCommand required for their configType",
    ),
    (
        "/properties/deployment/oneOf/2/properties/buildpack allOf",
        "the page: customProcess/customEntrypoint/customCommand required for their configType",
    ),
    (
        "/properties/deployment/oneOf/0/properties/docker allOf",
        "the page: customEntrypoint/customCommand required for their configType",
    ),
    (
        "/properties/deployment/oneOf/1/properties/docker allOf",
        "the page: customEntrypoint/customCommand required for their configType",
    ),
    (
        "/properties/deployment/oneOf/2/properties/docker allOf",
        "the page: customEntrypoint/customCommand required for their configType",
    ),
    (
        "/properties/deployment/oneOf/0/properties/vcs allOf",
        "the page: selfHostedVcsId is the VCS to use when projectType is self-hosted",
    ),
    (
        "/properties/healthChecks/items allOf",
        "the page: path and port required for HTTP, cmd for CMD; port for TCP (nothing to connect to without one)",
    ),
    // Newer than the CLI's schema: the official client's request type.
    (
        "/properties/activeDeadlineSeconds anyOf",
        NEWER,
    ),
    (
        "/properties/activeDeadlineSeconds minimum",
        NEWER,
    ),
    (
        "/properties/activeDeadlineSeconds type",
        NEWER,
    ),
    (
        "/properties/billing/properties/gpu/properties/configuration/properties/gpuCount schema",
        NEWER,
    ),
    (
        "/properties/buildConfiguration/properties/enableGitLfs schema",
        NEWER,
    ),
    (
        "/properties/buildSettings/oneOf/0/properties/dockerfile/properties/buildkit/properties/cacheStorageSize schema",
        NEWER,
    ),
    (
        "/properties/buildSettings/oneOf/0/properties/dockerfile/properties/buildkit/properties/useCache schema",
        NEWER,
    ),
    (
        "/properties/buildSettings/oneOf/1/properties/buildpack/properties/builder enum",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/0/properties/gpu/properties/configuration/properties/gpuCount schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/0/properties/storage/properties/useHdbStorage schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/0/properties/storage/properties/usePdSsdStorage schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/1/properties/gpu/properties/configuration/properties/gpuCount schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/1/properties/storage/properties/useHdbStorage schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/1/properties/storage/properties/usePdSsdStorage schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/2/properties/gpu/properties/configuration/properties/gpuCount schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/2/properties/storage/properties/useHdbStorage schema",
        NEWER,
    ),
    (
        "/properties/deployment/oneOf/2/properties/storage/properties/usePdSsdStorage schema",
        NEWER,
    ),
    (
        "/properties/dockerSecretMounts schema",
        NEWER,
    ),
    (
        "/properties/infrastructure schema",
        NEWER,
    ),
    (
        "/properties/stageId schema",
        NEWER,
    ),
    // Looser than the CLI, where the CLI's rule cannot be what the API means.
    (
        "/properties/deployment/oneOf/0/properties/metadata/properties/labels/additionalProperties schema",
        "CLI: no keys at all, so no label could ever be set; the page documents labels as an object for custom labels",
    ),
    (
        "/properties/deployment/oneOf/1/properties/metadata/properties/labels/additionalProperties schema",
        "CLI: no keys at all, so no label could ever be set; the page documents labels as an object for custom labels",
    ),
    (
        "/properties/deployment/oneOf/2/properties/metadata/properties/labels/additionalProperties schema",
        "CLI: no keys at all, so no label could ever be set; the page documents labels as an object for custom labels",
    ),
    (
        "/properties/deployment/oneOf/0/properties/metadata/properties/annotations/additionalProperties schema",
        "CLI: no keys at all; the page documents annotations as string or object values",
    ),
    (
        "/properties/deployment/oneOf/1/properties/metadata/properties/annotations/additionalProperties schema",
        "CLI: no keys at all; the page documents annotations as string or object values",
    ),
    (
        "/properties/deployment/oneOf/2/properties/metadata/properties/annotations/additionalProperties schema",
        "CLI: no keys at all; the page documents annotations as string or object values",
    ),
];

fn normalise(schema: &Map<String, Value>, ours: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in schema {
        if ANNOTATIONS.contains(&k.as_str()) {
            continue;
        }
        if k == "properties" && v.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        if ours && k == "anyOf" {
            if let Some([first, second]) = v.as_array().map(Vec::as_slice) {
                if second == &serde_json::json!({"pattern": INTERPOLATED}) {
                    if let Some(p) = first.get("pattern") {
                        out.insert("pattern".into(), p.clone());
                        continue;
                    }
                }
            }
        }
        out.insert(k.clone(), v.clone());
    }
    out
}

fn compare(cli: &Value, ours: &Value, at: &str, out: &mut BTreeMap<String, String>) {
    let (Some(cli), Some(ours)) = (cli.as_object(), ours.as_object()) else {
        if cli != ours {
            out.insert(format!("{at} schema"), format!("CLI {cli}, ours {ours}"));
        }
        return;
    };
    let (cli, ours) = (normalise(cli, false), normalise(ours, true));
    let mut keys: Vec<&String> = cli.keys().chain(ours.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let here = format!("{at} {key}");
        let (c, o) = (cli.get(key), ours.get(key));
        match (key.as_str(), c, o) {
            (_, Some(c), None) => {
                out.insert(here, format!("only the CLI: {c}"));
            }
            (_, None, Some(o)) => {
                out.insert(here, format!("only ours: {o}"));
            }
            ("properties", Some(c), Some(o)) => {
                let (c, o) = (c.as_object().expect("map"), o.as_object().expect("map"));
                let mut names: Vec<&String> = c.keys().chain(o.keys()).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let path = format!("{at}/properties/{name}");
                    match (c.get(name), o.get(name)) {
                        (Some(c), Some(o)) => compare(c, o, &path, out),
                        (c, _) => {
                            let side = if c.is_some() { "the CLI" } else { "ours" };
                            out.insert(format!("{path} schema"), format!("only in {side}"));
                        }
                    }
                }
            }
            (k, Some(c), Some(o)) if SUBSCHEMA.contains(&k) => {
                compare(c, o, &format!("{at}/{k}"), out)
            }
            (k, Some(Value::Array(c)), Some(Value::Array(o)))
                if ALTERNATIVES.contains(&k) && c.len() == o.len() =>
            {
                for (i, (c, o)) in c.iter().zip(o).enumerate() {
                    compare(c, o, &format!("{at}/{k}/{i}"), out);
                }
            }
            ("required", Some(Value::Array(c)), Some(Value::Array(o))) => {
                let (mut c, mut o) = (c.clone(), o.clone());
                c.sort_by_key(ToString::to_string);
                o.sort_by_key(ToString::to_string);
                if c != o {
                    out.insert(here, format!("CLI {c:?}, ours {o:?}"));
                }
            }
            (_, Some(c), Some(o)) if c != o => {
                out.insert(here, format!("CLI {c}, ours {o}"));
            }
            _ => {}
        }
    }
}

#[test]
fn our_schema_matches_the_official_cli_request_schema_but_for_justified_differences() {
    let cli: Value = serde_json::from_str(include_str!(
        "../data/northflank-cli/cron-job-body.schema.json"
    ))
    .expect("the CLI's schema parses");
    let run = Workspace::new().nfcron(&["schema"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ours = run.json()["properties"]["spec"].clone();
    let mut found = BTreeMap::new();
    compare(&cli, &ours, "", &mut found);

    let (unexpected, stale) = common::unjustified(&found, ALLOWED);
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "differences from the CLI's schema that nobody justified:\n{}\n\nallowed differences that no longer exist: {stale:?}",
        unexpected.join("\n")
    );
}

/// The comparison sees what it must: the gaps issue 11 found, put back,
/// are differences.
#[test]
fn the_comparison_finds_the_gaps_it_guards() {
    let cli: Value = serde_json::from_str(include_str!(
        "../data/northflank-cli/cron-job-body.schema.json"
    ))
    .expect("the CLI's schema parses");
    let mut loose = cli.clone();
    let props = &mut loose["properties"];
    props["backoffLimit"]
        .as_object_mut()
        .expect("object")
        .remove("minimum");
    props["buildConfiguration"]["properties"]["pathIgnoreRules"]
        .as_object_mut()
        .expect("object")
        .remove("maxItems");
    props["runtimeEnvironment"]["additionalProperties"]["type"] =
        serde_json::json!(["string", "number", "boolean"]);
    let mut found = BTreeMap::new();
    compare(&cli, &loose, "", &mut found);
    let keys: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "/properties/backoffLimit minimum",
            "/properties/buildConfiguration/properties/pathIgnoreRules maxItems",
            "/properties/runtimeEnvironment/additionalProperties type",
        ]
    );
}
