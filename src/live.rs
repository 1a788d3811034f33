//! Live state: what Northflank has for a job, in the PUT body's shape.
//!
//! The API returns a job in a different shape than it takes (settings
//! nested under `settings.cron`, the concurrency policy capitalised, build
//! settings under `vcsData`, ports renamed in health checks) and spreads it
//! over several calls. [`to_spec`] maps the GET shape back, as a pure
//! function; [`drift`] compares a recorded spec with it on the fields the
//! record set, and only those: server-filled defaults, read-only fields and
//! spelling the API introduces are never drift.
//!
//! Some fields cannot be read back at all ([`UNOBSERVABLE`]), nor can the
//! registry host of an external image (the read gives the path without it
//! and a `registryProvider`: [`to_spec_for`] compares them with
//! [`registry::same_image`]); drift on what cannot be read is unknowable
//! and is never reported. Environment and build arguments are read with
//! `show=this` (the job's own values; see `api::Client::get_job_part`).

use serde_json::{json, Map, Value as Json};

use crate::api::ApiError;
use crate::manifest::schema;
use crate::manifest::JobKey;
use crate::plan;
use crate::registry;
use crate::remote::Api;
use crate::secret::{self, Keyed};

/// Spec paths no GET returns (API_NOTES.md). Prefix match.
pub const UNOBSERVABLE: &[&str] = &[
    "runOnSourceChange",
    "billing.buildPlan",
    "billing.gpu",
    "deployment.gpu",
    "deployment.gracePeriodSeconds",
    "deployment.metadata",
    "deployment.external.credentials",
    "deployment.vcs.accountLogin",
    "deployment.vcs.vcsLinkId",
    // Of `buildSettings` only the Dockerfile's path, work dir and engine
    // come back (in `vcsData` and `buildEngineConfiguration`).
    "buildSettings.storage",
    "buildSettings.dockerfile.useCache",
    "buildSettings.dockerfile.buildkit",
    // `buildEngineConfiguration.buildpack` has no build context.
    "buildSettings.buildpack.buildContext",
    // The job's GET has no `infrastructure`, `stageId` or secret mounts, and
    // its `deployment.storage` only the ephemeral and /dev/shm sizes.
    "infrastructure",
    "stageId",
    "dockerSecretMounts",
    "deployment.storage.useHdbStorage",
    "deployment.storage.usePdSsdStorage",
];

/// Fields whose server default is documented: a live value other than the
/// default is drift even when the manifest never set the field (a job
/// suspended in the UI).
pub const KNOWN_DEFAULTS: &[(&str, bool)] = &[("suspended", false)];

pub fn is_unobservable(path: &str) -> bool {
    UNOBSERVABLE.iter().any(|p| {
        path == *p || path.starts_with(&format!("{p}.")) || path.starts_with(&format!("{p}["))
    })
}

/// The sub-resources a spec's fields live in, beyond `GET .../jobs/{id}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parts {
    pub deployment: bool,
    pub runtime_environment: bool,
    pub health_checks: bool,
    pub build_arguments: bool,
}

impl Parts {
    /// Only what `spec` sets: every read is one request of the budget.
    pub fn needed_by(spec: &Json) -> Parts {
        let has = |k: &str| spec.get(k).is_some();
        let deployment = spec.get("deployment");
        Parts {
            deployment: deployment
                .is_some_and(|d| d.get("external").is_some() || d.get("internal").is_some()),
            runtime_environment: has("runtimeEnvironment") || has("runtimeFiles"),
            health_checks: has("healthChecks"),
            build_arguments: has("buildArguments") || has("buildFiles"),
        }
    }

    pub fn all() -> Parts {
        Parts {
            deployment: true,
            runtime_environment: true,
            health_checks: true,
            build_arguments: true,
        }
    }

    /// Requests a read with these parts costs.
    pub fn cost(&self) -> u64 {
        1 + [
            self.deployment,
            self.runtime_environment,
            self.health_checks,
            self.build_arguments,
        ]
        .iter()
        .filter(|b| **b)
        .count() as u64
    }
}

/// The raw bodies of one job's reads.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub job: Json,
    pub deployment: Option<Json>,
    pub runtime_environment: Option<Json>,
    pub health_checks: Option<Json>,
    pub build_arguments: Option<Json>,
}

/// Reads a job and the parts asked for; `None` when the job is gone (404).
pub async fn read(client: &impl Api, key: &JobKey, parts: Parts) -> Result<Option<Raw>, ApiError> {
    let Some(job) = client.get_job(key).await? else {
        return Ok(None);
    };
    let part = |on: bool, what: &'static str| async move {
        match on {
            true => client.get_job_part(key, what).await,
            false => Ok(None),
        }
    };
    Ok(Some(Raw {
        job,
        deployment: part(parts.deployment, "deployment").await?,
        runtime_environment: part(parts.runtime_environment, "runtime-environment").await?,
        health_checks: part(parts.health_checks, "health-checks").await?,
        build_arguments: part(parts.build_arguments, "build-arguments").await?,
    }))
}

/// [`to_spec`], with the external image written as `want` writes it when
/// it is the same image: the read has no registry host, so a manifest's
/// `ghcr.io/acme/app:1` is compared with `acme/app:1` at `github`.
pub fn to_spec_for(raw: &Raw, want: &Json) -> Json {
    let mut spec = to_spec(raw);
    let wanted = want
        .pointer("/deployment/external/imagePath")
        .and_then(Json::as_str);
    if let (Some(wanted), Some((path, provider))) = (wanted, external_image(raw)) {
        if registry::same_image(wanted, path, provider) {
            insert_path(
                &mut spec,
                &["deployment", "external", "imagePath"],
                json!(wanted),
            );
        }
    }
    spec
}

/// The live external image's path (without host) and registry provider.
pub fn external_image(raw: &Raw) -> Option<(&str, &str)> {
    let external = raw.deployment.as_ref()?.get("external")?;
    Some((
        external.get("imagePath")?.as_str()?,
        external.get("registryProvider")?.as_str()?,
    ))
}

fn insert_path(spec: &mut Json, path: &[&str], value: Json) {
    if let Json::Object(map) = spec {
        insert(map, path, value);
    }
}

/// The GET shape(s) mapped back to the PUT body's shape. Fields the API did
/// not return (or returned as `null`) are absent. An external image whose
/// provider has one fixed host gets it back; any other keeps the path the
/// read gives (no host).
pub fn to_spec(raw: &Raw) -> Json {
    let job = &raw.job;
    let mut spec = Map::new();
    job_fields(&mut spec, job);
    if let Some(vcs) = job.get("vcsData") {
        vcs_fields(&mut spec, job, vcs);
    }
    if let Some(bp) = job.pointer("/buildEngineConfiguration/buildpack") {
        put(&mut spec, &["buildSettings", "buildpack"], Some(bp));
    }
    if let Some(d) = &raw.deployment {
        deployment_fields(&mut spec, raw, d);
    }
    if let Some(r) = &raw.runtime_environment {
        put(
            &mut spec,
            &["runtimeEnvironment"],
            r.get("runtimeEnvironment"),
        );
        put(&mut spec, &["runtimeFiles"], r.get("runtimeFiles"));
    }
    if let Some(b) = &raw.build_arguments {
        put(&mut spec, &["buildArguments"], b.get("buildArguments"));
        put(&mut spec, &["buildFiles"], b.get("buildFiles"));
    }
    if let Some(h) = &raw.health_checks {
        put(&mut spec, &["healthChecks"], Some(&health_checks(h)));
    }
    Json::Object(spec)
}

/// Sets `path` to `value`, unless the API did not return it (or returned
/// `null`).
fn put(spec: &mut Map<String, Json>, path: &[&str], value: Option<&Json>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        insert(spec, path, v.clone());
    }
}

/// What the job's own read gives.
fn job_fields(spec: &mut Map<String, Json>, job: &Json) {
    put(spec, &["name"], job.get("name"));
    put(spec, &["description"], job.get("description"));
    put(spec, &["tags"], job.get("tags"));
    put(
        spec,
        &["billing", "deploymentPlan"],
        job.pointer("/billing/deploymentPlan"),
    );
    put(
        spec,
        &["backoffLimit"],
        job.pointer("/settings/backoffLimit"),
    );
    put(
        spec,
        &["activeDeadlineSeconds"],
        job.pointer("/settings/activeDeadlineSeconds"),
    );
    put(spec, &["schedule"], job.pointer("/settings/cron/schedule"));
    let policy = job
        .pointer("/settings/cron/concurrencyPolicy")
        .and_then(Json::as_str)
        .map(|p| json!(p.to_ascii_lowercase()));
    put(spec, &["concurrencyPolicy"], policy.as_ref());
    put(spec, &["suspended"], job.get("suspended"));
    put(spec, &["disabledCI"], job.get("disabledCI"));
    put(spec, &["buildConfiguration"], job.get("buildConfiguration"));
    for k in ["docker", "buildpack", "storage"] {
        put(
            spec,
            &["deployment", k],
            job.get("deployment").and_then(|d| d.get(k)),
        );
    }
}

/// A job built from version control: its repository, and the Dockerfile
/// unless it builds with a buildpack.
fn vcs_fields(spec: &mut Map<String, Json>, job: &Json, vcs: &Json) {
    for k in [
        "projectUrl",
        "projectType",
        "selfHostedVcsId",
        "projectBranch",
    ] {
        put(spec, &["deployment", "vcs", k], vcs.get(k));
    }
    let engine = job
        .pointer("/buildEngineConfiguration/buildEngine")
        .and_then(Json::as_str);
    if engine != Some("buildpack") {
        put(
            spec,
            &["buildSettings", "dockerfile", "dockerFilePath"],
            vcs.get("dockerFilePath"),
        );
        put(
            spec,
            &["buildSettings", "dockerfile", "dockerWorkDir"],
            vcs.get("dockerWorkDir"),
        );
        put(
            spec,
            &["buildSettings", "dockerfile", "buildEngine"],
            engine.map(|e| json!(e)).as_ref(),
        );
    }
}

/// What `GET .../deployment` (`d`) gives.
fn deployment_fields(spec: &mut Map<String, Json>, raw: &Raw, d: &Json) {
    for k in ["docker", "buildpack", "storage"] {
        put(spec, &["deployment", k], d.get(k));
    }
    let image = external_image(raw)
        .map(|(path, provider)| json!(registry::restore(path, provider).unwrap_or(path.into())));
    put(
        spec,
        &["deployment", "external", "imagePath"],
        image.as_ref(),
    );
    // A VCS job's deployment reads back as its own build (`internal`);
    // the PUT takes one of `vcs` and `internal`, and `vcs` says it.
    if let Some(internal) = d
        .get("internal")
        .filter(|_| raw.job.get("vcsData").is_none())
    {
        put(
            spec,
            &["deployment", "internal", "id"],
            internal.get("nfObjectId").or_else(|| internal.get("id")),
        );
        for k in ["branch", "buildId", "buildSHA"] {
            put(spec, &["deployment", "internal", k], internal.get(k));
        }
    }
}

/// `GET .../health-checks` in the PUT's shape: `port` from `httpPort` or
/// `tcpSocketPort`. Both may be there, the unused one `null`; so may
/// `path` and `cmd`.
fn health_checks(read: &Json) -> Json {
    let checks = read
        .get("healthChecks")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut check| {
            if let Some(o) = check.as_object_mut() {
                let http = o.remove("httpPort").filter(|p| !p.is_null());
                let tcp = o.remove("tcpSocketPort").filter(|p| !p.is_null());
                o.retain(|_, v| !v.is_null());
                if let Some(port) = http.or(tcp) {
                    o.insert("port".into(), port);
                }
            }
            check
        })
        .collect();
    Json::Array(checks)
}

fn insert(map: &mut Map<String, Json>, path: &[&str], value: Json) {
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = map.entry((*first).to_string()).or_insert_with(|| json!({}));
            if let Json::Object(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// One field whose live value differs from the recorded one.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftField {
    pub path: String,
    pub recorded: Json,
    /// `(sensitive, changed)` for secrets; `null` where the field is gone.
    pub live: Json,
}

/// The fields `recorded` (a shown spec: secrets as fingerprints) sets that
/// differ in `live` (a spec in PUT shape, real values). `sensitive` are the
/// extra `--sensitive` paths.
pub fn drift(recorded: &Json, live: &Json, keyed: &Keyed, sensitive: &[String]) -> Vec<DriftField> {
    let shown_live = secret::redact(live, keyed, sensitive);
    let live_leaves = plan::leaves(&shown_live);
    let live_arrays = plan::arrays(&shown_live);
    let mut fields = Vec::new();
    for (path, want) in plan::leaves(recorded) {
        // `null` asks the server for its default: nothing to compare. A
        // field the schema does not know (sent under
        // `--allow-unknown-fields`) has no read nfcron knows of.
        if is_unobservable(&path) || want.is_null() || !schema::knows(&path) {
            continue;
        }
        let have = live_leaves
            .get(&path)
            .copied()
            .or_else(|| live_arrays.get(&path).copied());
        if have == Some(want) {
            continue;
        }
        let live_shown = match (secret::is_fingerprint(want), have) {
            (true, Some(_)) => json!("(sensitive, changed)"),
            (_, None) => Json::Null,
            (false, Some(have)) => have.clone(),
        };
        fields.push(DriftField {
            path,
            recorded: want.clone(),
            live: live_shown,
        });
    }
    for (path, default) in KNOWN_DEFAULTS {
        if recorded.get(*path).is_none() {
            if let Some(have) = live_leaves
                .get(*path)
                .filter(|v| v.as_bool() != Some(*default))
            {
                fields.push(DriftField {
                    path: (*path).to_string(),
                    recorded: Json::Null,
                    live: (*have).clone(),
                });
            }
        }
    }
    // Lists that grew live (a tag added in the UI) are drift too.
    for (path, want) in plan::arrays(recorded) {
        let (Some(Json::Array(have)), Json::Array(want)) = (live_arrays.get(&path).copied(), want)
        else {
            continue;
        };
        if is_unobservable(&path)
            || have.len() <= want.len()
            || fields.iter().any(|f| f.path.starts_with(&path))
        {
            continue;
        }
        fields.push(DriftField {
            path,
            recorded: Json::Array(want.clone()),
            live: Json::Array(have.clone()),
        });
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::KEY_LEN;

    fn raw(job: Json) -> Raw {
        Raw {
            job,
            ..Raw::default()
        }
    }

    /// Each GET field lands where the PUT body has it.
    #[test]
    fn maps_every_readable_field_back_to_the_put_shape() {
        let cases: Vec<(Raw, &str, Json)> = vec![
            (raw(json!({"name": "Job A"})), "/name", json!("Job A")),
            (raw(json!({"description": "d"})), "/description", json!("d")),
            (raw(json!({"tags": ["a"]})), "/tags", json!(["a"])),
            (
                raw(json!({"billing": {"deploymentPlan": "nf-compute-20"}})),
                "/billing/deploymentPlan",
                json!("nf-compute-20"),
            ),
            (
                raw(json!({"settings": {"backoffLimit": 2}})),
                "/backoffLimit",
                json!(2),
            ),
            (
                raw(json!({"settings": {"activeDeadlineSeconds": 600}})),
                "/activeDeadlineSeconds",
                json!(600),
            ),
            (
                raw(json!({"settings": {"cron": {"schedule": "0 3 * * *"}}})),
                "/schedule",
                json!("0 3 * * *"),
            ),
            (
                raw(json!({"settings": {"cron": {"concurrencyPolicy": "Forbid"}}})),
                "/concurrencyPolicy",
                json!("forbid"),
            ),
            (raw(json!({"suspended": true})), "/suspended", json!(true)),
            (
                raw(json!({"disabledCI": false})),
                "/disabledCI",
                json!(false),
            ),
            (
                raw(json!({"buildConfiguration": {"isAllowList": true}})),
                "/buildConfiguration/isAllowList",
                json!(true),
            ),
            (
                raw(json!({"deployment": {"docker": {"configType": "default"}}})),
                "/deployment/docker/configType",
                json!("default"),
            ),
            (
                raw(
                    json!({"vcsData": {"projectUrl": "https://github.com/a/b", "projectType": "github", "projectBranch": "main", "dockerFilePath": "/Dockerfile", "dockerWorkDir": "/"}}),
                ),
                "/deployment/vcs/projectBranch",
                json!("main"),
            ),
            (
                raw(
                    json!({"vcsData": {"dockerFilePath": "/app/Dockerfile", "dockerWorkDir": "/app"}, "buildEngineConfiguration": {"buildEngine": "kaniko"}}),
                ),
                "/buildSettings/dockerfile",
                json!({"dockerFilePath": "/app/Dockerfile", "dockerWorkDir": "/app", "buildEngine": "kaniko"}),
            ),
            (
                Raw {
                    deployment: Some(
                        json!({"external": {"imagePath": "nginx:1", "registryProvider": "dockerhub", "privateImage": false}}),
                    ),
                    ..raw(json!({}))
                },
                "/deployment/external",
                json!({"imagePath": "nginx:1"}),
            ),
            (
                Raw {
                    deployment: Some(
                        json!({"internal": {"nfObjectId": "builder", "branch": "main", "buildSHA": "latest", "repository": "r"}}),
                    ),
                    ..raw(json!({}))
                },
                "/deployment/internal",
                json!({"id": "builder", "branch": "main", "buildSHA": "latest"}),
            ),
            (
                Raw {
                    runtime_environment: Some(
                        json!({"runtimeEnvironment": {"A": "1"}, "runtimeFiles": {}}),
                    ),
                    ..raw(json!({}))
                },
                "/runtimeEnvironment",
                json!({"A": "1"}),
            ),
            (
                Raw {
                    build_arguments: Some(json!({"buildArguments": {"B": "2"}, "buildFiles": {}})),
                    ..raw(json!({}))
                },
                "/buildArguments",
                json!({"B": "2"}),
            ),
            (
                Raw {
                    health_checks: Some(
                        json!({"healthChecks": [{"protocol": "HTTP", "httpPort": 8080, "path": "/h"}, {"protocol": "TCP", "tcpSocketPort": 5432}]}),
                    ),
                    ..raw(json!({}))
                },
                "/healthChecks",
                json!([{"protocol": "HTTP", "port": 8080, "path": "/h"}, {"protocol": "TCP", "port": 5432}]),
            ),
        ];
        for (raw, pointer, expected) in cases {
            let spec = to_spec(&raw);
            assert_eq!(
                spec.pointer(pointer),
                Some(&expected),
                "{pointer} from {:#}",
                raw.job
            );
        }
        // Read-only fields never reach the spec.
        let spec = to_spec(&raw(
            json!({"id": "a", "appId": "/x", "createdAt": "t", "cluster": {"id": "c"}, "projectId": "p", "jobType": "cron"}),
        ));
        assert_eq!(spec, json!({}));
    }

    fn keyed() -> Keyed {
        Keyed::new([3; KEY_LEN])
    }

    #[test]
    fn drift_is_managed_fields_only() {
        let recorded = json!({"name": "A", "schedule": "0 3 * * *", "concurrencyPolicy": "forbid", "runOnSourceChange": "never"});
        let live = json!({"name": "A", "schedule": "0 3 * * *", "concurrencyPolicy": "forbid", "activeDeadlineSeconds": 3600, "suspended": false});
        assert_eq!(
            drift(&recorded, &live, &keyed(), &[]),
            vec![],
            "server defaults and unobservable fields are not drift"
        );
        let live = json!({"name": "A", "schedule": "0 4 * * *", "concurrencyPolicy": "forbid"});
        assert_eq!(
            drift(&recorded, &live, &keyed(), &[]),
            vec![DriftField {
                path: "schedule".into(),
                recorded: json!("0 3 * * *"),
                live: json!("0 4 * * *")
            }]
        );
    }

    #[test]
    fn a_suspension_the_manifest_never_set_is_drift() {
        let recorded = json!({"name": "A"});
        assert_eq!(
            drift(
                &recorded,
                &json!({"name": "A", "suspended": false}),
                &keyed(),
                &[]
            ),
            vec![]
        );
        assert_eq!(
            drift(
                &recorded,
                &json!({"name": "A", "suspended": true}),
                &keyed(),
                &[]
            ),
            vec![DriftField {
                path: "suspended".into(),
                recorded: Json::Null,
                live: json!(true)
            }]
        );
    }

    #[test]
    fn secrets_drift_by_fingerprint_only() {
        let spec = json!({"runtimeEnvironment": {"DB": "one"}});
        let recorded = secret::redact(&spec, &keyed(), &[]);
        assert_eq!(drift(&recorded, &spec, &keyed(), &[]), vec![]);
        let changed = drift(
            &recorded,
            &json!({"runtimeEnvironment": {"DB": "two"}}),
            &keyed(),
            &[],
        );
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].live, json!("(sensitive, changed)"));
        assert!(!format!("{changed:?}").contains("two"));
    }

    #[test]
    fn unknown_and_null_fields_are_never_drift() {
        let recorded =
            json!({"name": "A", "spotInstances": {"enabled": true}, "activeDeadlineSeconds": null});
        let live = json!({"name": "A", "activeDeadlineSeconds": 3600});
        assert_eq!(drift(&recorded, &live, &keyed(), &[]), vec![]);
    }

    #[test]
    fn a_longer_list_is_drift() {
        let recorded = json!({"tags": ["a"]});
        let fields = drift(&recorded, &json!({"tags": ["a", "b"]}), &keyed(), &[]);
        assert_eq!(
            fields,
            vec![DriftField {
                path: "tags".into(),
                recorded: json!(["a"]),
                live: json!(["a", "b"])
            }]
        );
    }

    #[test]
    fn parts_are_read_only_when_the_spec_needs_them() {
        assert_eq!(Parts::needed_by(&json!({"schedule": "x"})).cost(), 1);
        let p =
            Parts::needed_by(&json!({"deployment": {"external": {}}, "runtimeEnvironment": {}}));
        assert_eq!(
            (
                p.deployment,
                p.runtime_environment,
                p.health_checks,
                p.build_arguments
            ),
            (true, true, false, false)
        );
        assert_eq!(p.cost(), 3);
        assert!(
            !Parts::needed_by(&json!({"deployment": {"vcs": {}}})).deployment,
            "vcs comes with the job itself"
        );
    }
}
