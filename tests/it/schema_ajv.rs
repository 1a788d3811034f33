//! `nfcron schema` compiles in ajv's strict mode with Unicode regular
//! expressions, as editors' tooling runs it (tests/data/ajv-strict.cjs:
//! `strict: true`, so strictRequired and strictTypes too, and every
//! complaint ajv would only log is a failure). ajv is the one .ci/run
//! installs under .ci/node; without it the test fails under CI=true and
//! says it skipped otherwise.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Workspace;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether ajv and node are here; `false` (with a note) only outside CI.
fn ajv_available() -> bool {
    let ajv = root().join(".ci/node/node_modules/ajv/package.json");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ajv.exists() && node {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    let missing = if node {
        "ajv (.ci/node/node_modules/ajv)"
    } else {
        "node"
    };
    assert!(
        !ci,
        "{missing} is missing: .ci/run installs ajv with `npm ci --prefix .ci/node`; under CI=true this test does not skip"
    );
    eprintln!("SKIPPED: {missing} is missing; run `npm ci --prefix .ci/node` to run this test");
    false
}

/// Runs the strict compile on `schema`: (exit code, stdout, stderr).
fn ajv_compile(schema: &str) -> (i32, String, String) {
    let script = root().join("tests/data/ajv-strict.cjs");
    let mut child = Command::new("node")
        .arg(Path::new(&script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(schema.as_bytes())
        .expect("write the schema");
    let out = child.wait_with_output().expect("node finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ajv_compiles_the_schema_in_strict_mode_with_unicode_regexes() {
    if !ajv_available() {
        return;
    }
    let run = Workspace::new().nfcron(&["schema"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (code, stdout, stderr) = ajv_compile(&run.stdout);
    assert_eq!((code, stdout.trim()), (0, "compiled"), "ajv: {stderr}");
}

/// The check refuses what it must: the two faults issue 11 found.
#[test]
fn ajv_strict_compile_refuses_identity_escapes_and_undeclared_required() {
    if !ajv_available() {
        return;
    }
    let escape = r#"{"type": "string", "pattern": "^a\\:b$"}"#;
    let (code, _, stderr) = ajv_compile(escape);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Invalid escape"), "{stderr}");

    let required = r#"{"type": "object", "properties": {"a": {"type": "string"}},
        "if": {"properties": {"a": {"enum": ["x"]}}, "required": ["a"]},
        "then": {"required": ["b"]}}"#;
    let (code, _, stderr) = ajv_compile(required);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("strictRequired"), "{stderr}");
}
