//! The deployment pieces parse and say what the README says they do.

use serde_json::Value;

fn yaml_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .expect(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

#[test]
fn the_kubernetes_sidecar_is_wired_as_documented() {
    let docs = yaml_docs("examples/kubernetes/nfcron.yaml");
    let kinds: Vec<&str> = docs
        .iter()
        .map(|d| d["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Deployment", "Service"]);
    let deployment = &docs[1];
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/path"],
        "/metrics"
    );
    let container = &pod["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg"))
        .collect();
    assert_eq!(args[0], "watch");
    assert!(args.iter().any(|a| a.starts_with("--git=")), "{args:?}");
    assert!(
        args.iter()
            .any(|a| a.starts_with("--state=/var/lib/nfcron/state/")),
        "{args:?}"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let secret_env: Vec<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"].is_object())
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        secret_env,
        [
            "NORTHFLANK_API_TOKEN",
            "NFCRON_WEBHOOK_SECRET",
            "NFCRON_GIT_TOKEN"
        ]
    );
    assert_eq!(
        container["volumeMounts"][0]["mountPath"],
        "/var/lib/nfcron/state"
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
}

#[test]
fn the_actions_workflow_plans_pull_requests_and_applies_main() {
    let docs = yaml_docs("examples/github-actions/plan.yml");
    let workflow = &docs[0];
    // Each job's steps that use nfcron's action, as their `with.command`.
    let commands = |job: &str| -> Vec<String> {
        workflow["jobs"][job]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|step| {
                step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("acme/nfcron@"))
            })
            .map(|step| {
                step["with"]["command"]
                    .as_str()
                    .expect("command")
                    .to_string()
            })
            .collect()
    };
    assert!(workflow["jobs"]["plan"]["if"]
        .as_str()
        .expect("if")
        .contains("pull_request"));
    assert_eq!(commands("plan"), ["validate", "plan"]);
    let apply = &workflow["jobs"]["apply"];
    assert!(apply["if"]
        .as_str()
        .expect("if")
        .contains("refs/heads/main"));
    assert_eq!(commands("apply"), ["apply"]);
    // State in a database, not in an evicted and raced build cache.
    let steps = apply["steps"].to_string();
    assert!(steps.contains("NFCRON_STATE"), "{steps}");
    assert!(!steps.contains("actions/cache"), "{steps}");
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_nfcron_as_entrypoint() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/Dockerfile"),
    )
    .expect("Dockerfile");
    assert_eq!(text.lines().filter(|l| l.starts_with("FROM ")).count(), 2);
    assert!(text.contains("USER 10001"));
    assert!(text.contains("ENTRYPOINT [\"nfcron\"]"));
    // The image builds what CI tested: the release profile, with the
    // lockfile (no version resolved anew), the binary alone.
    let build = text
        .lines()
        .find_map(|l| l.strip_prefix("RUN cargo build"))
        .expect("build step");
    assert_eq!(build.trim(), "--release --locked --bin nfcron");
}
