//! Hostile input through the real binary: each gets a clear, located error,
//! and the valid manifests beside it still validate.

use crate::common;

use common::Workspace;

const VALID: &str = "kind: CronJob\nproject: acme\nspec:\n  name: Fine Job\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n";

fn validate(ws: &Workspace) -> Vec<(String, String, String)> {
    let run = ws.nfcron(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report = run.json();
    assert_eq!(
        report["valid"], 1,
        "the valid manifest is still valid: {report:#}"
    );
    report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["file"].as_str().expect("file").to_string(),
                d["code"].as_str().expect("code").to_string(),
                d["message"].as_str().expect("message").to_string(),
            )
        })
        .collect()
}

fn one(ws: &Workspace) -> (String, String, String) {
    let mut found = validate(ws);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn billion_laughs() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", VALID);
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    ws.write("jobs.d/bomb.yaml", bomb);
    let (file, code, message) = one(&ws);
    assert_eq!((file.as_str(), code.as_str()), ("jobs.d/bomb.yaml", "yaml"));
    assert!(message.contains("alias bomb"), "{message}");
}

#[test]
fn deeply_nested_document() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", VALID);
    ws.write(
        "jobs.d/deep.yaml",
        format!("spec: {}{}\n", "[".repeat(50_000), "]".repeat(50_000)),
    );
    let (file, code, message) = one(&ws);
    assert_eq!((file.as_str(), code.as_str()), ("jobs.d/deep.yaml", "yaml"));
    assert!(
        message.contains("nesting") || message.contains("recursion"),
        "{message}"
    );
}

#[test]
fn ten_megabyte_file() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", VALID);
    ws.write(
        "jobs.d/huge.yaml",
        format!("# {}\n", "x".repeat(10 * 1024 * 1024)),
    );
    let (file, code, message) = one(&ws);
    assert_eq!(
        (file.as_str(), code.as_str()),
        ("jobs.d/huge.yaml", "file-too-large")
    );
    assert!(message.contains("1 MiB"), "{message}");
}

#[test]
fn symlink_loop() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", VALID);
    std::os::unix::fs::symlink("../jobs.d", ws.path().join("jobs.d/again")).expect("symlink");
    std::os::unix::fs::symlink("self.yaml", ws.path().join("jobs.d/self.yaml")).expect("symlink");
    let found = validate(&ws);
    let codes: Vec<(&str, &str)> = found
        .iter()
        .map(|(f, c, _)| (f.as_str(), c.as_str()))
        .collect();
    assert_eq!(codes, [("jobs.d/again", "io"), ("jobs.d/self.yaml", "io")]);
    assert!(
        found
            .iter()
            .all(|(_, _, m)| m.contains("symlink loop") || m.contains("loop")),
        "{found:#?}"
    );
}
