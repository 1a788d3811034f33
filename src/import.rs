//! Live jobs -> manifests (`nfcron import`): the way in for a team whose
//! jobs already run in Northflank.
//!
//! Pure: given a job's spec in PUT shape, [`manifest_for`] writes the
//! manifest text with every secret replaced by a `${VAR}` placeholder and
//! every literal `$` escaped, and says which variables (and their live
//! values, for the caller to verify with, never to print) it introduced.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use crate::manifest::schema::{API_VERSION, KIND, SENSITIVE_FIELDS};

/// Fields the API fills when a PUT leaves them out, with the value it
/// fills: left out of imported manifests unless `--all-fields`.
fn server_defaults() -> [(&'static str, Json); 9] {
    [
        ("suspended", json!(false)),
        ("disabledCI", json!(false)),
        ("tags", json!([])),
        ("description", json!("")),
        ("runtimeEnvironment", json!({})),
        ("runtimeFiles", json!({})),
        ("buildArguments", json!({})),
        ("buildFiles", json!({})),
        ("healthChecks", json!([])),
    ]
}

/// One imported job's manifest.
#[derive(Debug, Clone)]
pub struct Imported {
    pub text: String,
    /// The spec the manifest holds, with live values where placeholders
    /// stand: what loading it with the variables set must give back.
    pub spec: Json,
    /// Placeholder names, in order, with the live value each stands for.
    pub variables: Vec<(String, Json)>,
    /// The placeholder standing for the external image's registry host,
    /// when the API does not say it (its value is not known here).
    pub registry_host: Option<String>,
}

/// `NIGHTLY_REPORT_DATABASE_URL` for job `nightly-report`, key `DATABASE_URL`.
pub fn variable_name(job_id: &str, key: &str) -> String {
    let raw = format!("{job_id}_{key}");
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        };
        if !(c == '_' && (name.is_empty() || name.ends_with('_'))) {
            name.push(c);
        }
    }
    let name = name.trim_end_matches('_').to_string();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// What the manifest is written from.
pub struct Source<'a> {
    pub team: Option<&'a str>,
    pub project: &'a str,
    pub id: &'a str,
    /// The job's spec in PUT shape.
    pub live: &'a Json,
    /// Set when the external image's registry provider has no fixed host:
    /// the image is then written as `${<ID>_REGISTRY_HOST}/<path>`.
    pub host_unknown: bool,
}

/// Builds the manifest for a live job. `sensitive` are the extra
/// `--sensitive` paths (dotted, relative to `spec`): a string value there
/// becomes a placeholder too.
pub fn manifest_for(
    source: &Source<'_>,
    all_fields: bool,
    sensitive: &[String],
    header: &str,
) -> Imported {
    let id = source.id;
    let mut spec = source.live.clone();
    if let (false, Json::Object(fields)) = (all_fields, &mut spec) {
        for (name, default) in server_defaults() {
            if fields.get(name) == Some(&default) {
                fields.remove(name);
            }
        }
    }
    let mut written = escape_dollars(&spec);
    let mut variables = Variables::default();
    variables.secret_fields(&mut written, &spec, id);
    variables.sensitive_paths(&mut written, &spec, id, sensitive);
    let registry_host = match source.host_unknown {
        true => host_placeholder(&mut written, id),
        false => None,
    };
    Imported {
        text: document(source, written, header),
        spec,
        variables: variables.values,
        registry_host,
    }
}

/// The placeholders written so far, with the live value each stands for,
/// and how often each name was wanted (a second gets a suffix).
#[derive(Default)]
struct Variables {
    values: Vec<(String, Json)>,
    taken: BTreeMap<String, usize>,
}

impl Variables {
    /// Replaces every entry of the secret fields (`runtimeEnvironment`,
    /// the files...) of `written` with a placeholder; `live` holds the
    /// same spec unescaped.
    fn secret_fields(&mut self, written: &mut Json, live: &Json, id: &str) {
        let (Json::Object(fields), Json::Object(live_fields)) = (written, live) else {
            return;
        };
        for section in SENSITIVE_FIELDS {
            let (Some(Json::Object(entries)), Some(Json::Object(live_entries))) =
                (fields.get_mut(*section), live_fields.get(*section))
            else {
                continue;
            };
            for (key, value) in entries.iter_mut() {
                let name = unique(&mut self.taken, variable_name(id, key));
                let placeholder = Json::String(format!("${{{name}}}"));
                let live_value = &live_entries[key];
                match (value, live_value) {
                    // A file: only its data is secret; its encoding stays.
                    (Json::Object(file), Json::Object(live_file))
                        if live_file.contains_key("data") =>
                    {
                        file.insert("data".into(), placeholder);
                        self.values.push((name, live_file["data"].clone()));
                    }
                    (value, live_value) => {
                        *value = placeholder;
                        self.values.push((name, live_value.clone()));
                    }
                }
            }
        }
    }

    /// Replaces the string at each `--sensitive` path outside the secret
    /// fields with a placeholder.
    fn sensitive_paths(&mut self, written: &mut Json, live: &Json, id: &str, paths: &[String]) {
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            if segments
                .first()
                .is_none_or(|first| SENSITIVE_FIELDS.contains(first))
            {
                continue; // already placeholders, key by key
            }
            let (Some(Json::String(_)), Some(live_value @ Json::String(_))) =
                (at_mut(written, &segments), at(live, &segments))
            else {
                continue;
            };
            let name = unique(&mut self.taken, variable_name(id, path));
            self.values.push((name.clone(), live_value.clone()));
            if let Some(value) = at_mut(written, &segments) {
                *value = Json::String(format!("${{{name}}}"));
            }
        }
    }
}

/// The manifest's text: `header` as comments, then the envelope around
/// `spec` as YAML.
fn document(source: &Source<'_>, spec: Json, header: &str) -> String {
    let mut envelope = Map::new();
    envelope.insert("apiVersion".into(), json!(API_VERSION));
    envelope.insert("kind".into(), json!(KIND));
    if let Some(team) = source.team {
        envelope.insert("team".into(), json!(team));
    }
    envelope.insert("project".into(), json!(source.project));
    envelope.insert("spec".into(), spec);
    let yaml =
        serde_yaml::to_string(&Json::Object(envelope)).expect("JSON values serialise as YAML");
    let mut text = String::new();
    for line in header.lines() {
        text.push_str(&format!("# {line}\n"));
    }
    text.push_str(&yaml);
    text
}

/// `name`, or `name_2`, `name_3`... when it is taken already.
fn unique(taken: &mut BTreeMap<String, usize>, name: String) -> String {
    let n = taken.entry(name.clone()).or_insert(0);
    *n += 1;
    match *n {
        1 => name,
        n => format!("{name}_{n}"),
    }
}

/// Writes the external image of `written` as `${<ID>_REGISTRY_HOST}/<path>`
/// and returns the variable's name.
fn host_placeholder(written: &mut Json, id: &str) -> Option<String> {
    let Some(Json::String(path)) = at_mut(written, &["deployment", "external", "imagePath"]) else {
        return None;
    };
    let name = variable_name(id, "REGISTRY_HOST");
    *path = format!("${{{name}}}/{path}");
    Some(name)
}

/// The value at a dotted path of objects.
fn at<'a>(value: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(value, |v, k| v.get(*k))
}

fn at_mut<'a>(value: &'a mut Json, path: &[&str]) -> Option<&'a mut Json> {
    path.iter().try_fold(value, |v, k| v.get_mut(*k))
}

/// Every `$` in a string value becomes `$$`, so that interpolation gives
/// the live text back unchanged.
fn escape_dollars(value: &Json) -> Json {
    match value {
        Json::String(s) => Json::String(s.replace('$', "$$")),
        Json::Array(items) => Json::Array(items.iter().map(escape_dollars).collect()),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), escape_dollars(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(live: &Json) -> Source<'_> {
        Source {
            team: None,
            project: "acme",
            id: "job-a",
            live,
            host_unknown: false,
        }
    }

    #[test]
    fn an_image_host_the_api_does_not_say_becomes_a_placeholder() {
        let live =
            json!({"name": "Job A", "deployment": {"external": {"imagePath": "ops/app:$1"}}});
        let out = manifest_for(
            &Source {
                host_unknown: true,
                ..source(&live)
            },
            false,
            &[],
            "",
        );
        assert!(
            out.text
                .contains("imagePath: ${JOB_A_REGISTRY_HOST}/ops/app:$$1"),
            "{}",
            out.text
        );
        assert_eq!(out.registry_host.as_deref(), Some("JOB_A_REGISTRY_HOST"));
        let plain = manifest_for(&source(&live), false, &[], "");
        assert!(
            plain.text.contains("imagePath: ops/app:$$1"),
            "{}",
            plain.text
        );
        assert_eq!(plain.registry_host, None);
    }

    #[test]
    fn variable_names() {
        assert_eq!(
            variable_name("nightly-report", "DATABASE_URL"),
            "NIGHTLY_REPORT_DATABASE_URL"
        );
        assert_eq!(variable_name("job", "/etc/app.conf"), "JOB_ETC_APP_CONF");
        assert_eq!(variable_name("9lives", "x"), "_9LIVES_X");
    }

    #[test]
    fn secrets_become_placeholders_and_defaults_go() {
        let live = json!({"name": "Job A", "suspended": false, "tags": [], "schedule": "0 3 * * *",
            "deployment": {"docker": {"configType": "customCommand", "customCommand": "echo $HOME"}},
            "runtimeEnvironment": {"DB": "postgres://secret"},
            "runtimeFiles": {"/etc/a": {"data": "c2VjcmV0", "encoding": "base64"}}});
        let out = manifest_for(&source(&live), false, &[], "imported");
        assert!(
            !out.text.contains("postgres://secret") && !out.text.contains("c2VjcmV0"),
            "{}",
            out.text
        );
        assert!(out.text.contains("${JOB_A_DB}"), "{}", out.text);
        assert!(out.text.contains("echo $$HOME"), "{}", out.text);
        assert!(
            !out.text.contains("suspended") && !out.text.contains("tags"),
            "{}",
            out.text
        );
        assert!(
            out.text
                .starts_with("# imported\napiVersion: nfcron/v1\nkind: CronJob\nproject: acme\n"),
            "{}",
            out.text
        );
        let names: Vec<&str> = out.variables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["JOB_A_DB", "JOB_A_ETC_A"]);
        assert_eq!(out.spec.get("suspended"), None);
        let all = manifest_for(&source(&live), true, &[], "");
        assert!(all.text.contains("suspended: false"), "{}", all.text);
    }

    #[test]
    fn a_sensitive_path_becomes_a_placeholder_too() {
        let live = json!({"name": "Job A",
            "deployment": {"docker": {"configType": "customCommand", "customCommand": "run --token t0k3n-$X"}},
            "runtimeEnvironment": {"DB": "postgres://secret"}, "backoffLimit": 2});
        let sensitive: Vec<String> = [
            "deployment.docker.customCommand",
            "runtimeEnvironment.DB",
            "backoffLimit",
            "no.such.field",
        ]
        .map(String::from)
        .to_vec();
        let out = manifest_for(&source(&live), false, &sensitive, "");
        assert!(!out.text.contains("t0k3n"), "{}", out.text);
        assert!(
            out.text
                .contains("customCommand: ${JOB_A_DEPLOYMENT_DOCKER_CUSTOMCOMMAND}"),
            "{}",
            out.text
        );
        // Only strings: a number stays what it is (and is fingerprinted
        // in the state like any --sensitive value).
        assert!(out.text.contains("backoffLimit: 2"), "{}", out.text);
        assert_eq!(
            out.variables,
            [
                ("JOB_A_DB".to_string(), json!("postgres://secret")),
                (
                    "JOB_A_DEPLOYMENT_DOCKER_CUSTOMCOMMAND".to_string(),
                    json!("run --token t0k3n-$X")
                ),
            ]
        );
        assert_eq!(
            out.spec, live,
            "the spec is the live one, placeholders resolved"
        );
    }
}
