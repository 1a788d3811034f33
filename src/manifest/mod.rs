//! Manifest files -> job manifests and diagnostics.
//!
//! A file holds one or more YAML documents; each document is one job:
//! `apiVersion` (optional, `nfcron/v1`), `kind: CronJob`, `project`, `team`
//! (optional), and `spec`, the PUT body verbatim. Loading never stops at a
//! problem: every document of every file is checked, and a broken one is
//! reported and counted as invalid while the others load.

pub mod cron;
pub mod diagnostic;
pub mod interpolate;
pub mod mask;
pub mod schema;
pub mod validate;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::source::{ReadProblem, SourceFile, MAX_FILE_BYTES};
use diagnostic::{Code, Diagnostic};
use validate::{Checker, Lookup};
use yaml::{Node, Span, Value};

/// A job's identity in Northflank: the project (and team, for team-scoped
/// routes) and the id the API derives from the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey {
    pub team: Option<String>,
    pub project: String,
    pub id: String,
}

/// `team/project/id` as shown in text plans and logs, with control
/// characters escaped: the name pattern's `\s` lets a newline or a carriage
/// return into an id, which printed raw would forge a log or plan line.
impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |part: &str| crate::source::display_bytes(part.as_bytes());
        if let Some(team) = &self.team {
            write!(f, "{}/", shown(team))?;
        }
        write!(f, "{}/{}", shown(&self.project), shown(&self.id))
    }
}

/// The id Northflank gives a job called `name`, exactly as the reference
/// page (and API_NOTES) derive it: ASCII letters lower-cased, each space
/// (U+0020) turned into a hyphen, everything else kept as it is. The name
/// pattern also lets a tab or another whitespace character separate words;
/// the API keeps those in the id, and so does nfcron, so that the id it
/// computes is the one the API returns.
///
/// ```
/// assert_eq!(nfcron::manifest::job_id("Example Job"), "example-job");
/// // Names that differ only in case or space/hyphen collide on one id.
/// assert_eq!(nfcron::manifest::job_id("example-job"), "example-job");
/// // Only spaces become hyphens.
/// assert_eq!(nfcron::manifest::job_id("Nightly\tReport"), "nightly\treport");
/// ```
pub fn job_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == ' ' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// A job's PUT body, secrets included, as compact JSON text: sent as it
/// is, parsed where a caller needs the tree ([`Body::value`]). Text rather
/// than a tree keeps 10,000 jobs in a few MB. Never formatted: `Debug`
/// shows its size only.
#[derive(Clone)]
pub struct Body(Arc<RawValue>);

impl Body {
    pub fn of(value: &Json) -> Body {
        Body(Arc::from(
            serde_json::value::to_raw_value(value).expect("JSON values serialise"),
        ))
    }

    /// The body as a tree (parsed on each call).
    pub fn value(&self) -> Json {
        serde_json::from_str(self.0.get()).expect("a Body holds JSON")
    }

    /// The text, for the request.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.0.get().len())
    }
}

/// One document of a manifest file.
#[derive(Debug, Clone)]
pub struct JobManifest {
    pub file: String,
    /// Where the job's name (or, lacking one, the document) starts.
    pub line: u32,
    /// The span of the `spec.name` value, when there is one.
    pub name_span: Option<Span>,
    /// Known when the name and project are.
    pub key: Option<JobKey>,
    pub name: Option<String>,
    /// The PUT body with `${VAR}` references resolved.
    pub spec: Body,
    /// `spec.schedule`, when it is a string.
    pub schedule: Option<String>,
    /// `spec.suspended` is `true`: the schedule does not run.
    pub suspended: bool,
    /// Variables the spec references that are unset with no default: the
    /// job cannot be applied until they are set.
    pub missing_env: Vec<String>,
    /// No error diagnostic points into this document.
    pub valid: bool,
    /// The first error, one line, for plans that list invalid jobs.
    pub problem: Option<String>,
}

/// Everything read from a source.
#[derive(Debug, Default)]
pub struct Catalog {
    pub files: usize,
    pub jobs: Vec<JobManifest>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Catalog {
    pub fn valid(&self) -> usize {
        self.jobs.iter().filter(|j| j.valid).count()
    }

    pub fn invalid(&self) -> usize {
        self.jobs.len() - self.valid()
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Files that could not be read or parsed: the jobs in them are unknown.
    pub fn unreadable_files(&self) -> usize {
        let mut files: Vec<&str> = self
            .diagnostics
            .iter()
            .filter(|d| matches!(d.code, Code::Yaml | Code::Io | Code::FileTooLarge))
            .map(|d| d.file.as_str())
            .collect();
        files.dedup();
        files.len()
    }
}

pub struct LoadOptions<'a> {
    /// `--project` / `NFCRON_PROJECT`: the project of manifests that name none.
    pub default_project: Option<&'a str>,
    /// Unset variables are errors rather than warnings.
    pub require_env: bool,
    pub lookup: Lookup<'a>,
    /// `--allow-unknown-fields`: a field the schema does not know, and that
    /// is no misspelling of one it knows, is a warning and sent as written.
    pub allow_unknown_fields: bool,
}

/// Reads, checks and identifies every job in `files`.
pub fn load(files: &[SourceFile], options: &LoadOptions<'_>) -> Catalog {
    // Files are independent until duplicates are looked for: read them on
    // every core, in contiguous chunks so that order is kept.
    let parts = crate::parallel::map_chunks(files, 64, |part| {
        let mut catalog = Catalog::default();
        for file in part {
            load_file(file, options, &mut catalog);
        }
        catalog
    });
    let mut catalog = Catalog {
        files: files.len(),
        ..Catalog::default()
    };
    for part in parts {
        catalog.jobs.extend(part.jobs);
        catalog.diagnostics.extend(part.diagnostics);
    }
    mark_duplicates(&mut catalog);
    catalog
}

fn load_file(file: &SourceFile, options: &LoadOptions<'_>, catalog: &mut Catalog) {
    let whole_file = |code, message: String| Diagnostic {
        file: file.path.clone(),
        ..Diagnostic::error(code, Span::file_start(), "", message)
    };
    let text = match &file.content {
        Ok(text) => text,
        Err(problem) => {
            let d = match problem {
                ReadProblem::TooLarge { bytes } => whole_file(
                    Code::FileTooLarge,
                    format!("file is {bytes} bytes; manifests are limited to {MAX_FILE_BYTES} bytes (1 MiB)"),
                ),
                ReadProblem::Io(why) => whole_file(Code::Io, format!("cannot read: {why}")),
            };
            let mut job = JobManifest::broken(&file.path, 1);
            job.problem = Some(d.one_line());
            catalog.diagnostics.push(d);
            catalog.jobs.push(job);
            return;
        }
    };
    let parsed = yaml::parse(text);
    for document in parsed.documents.iter().filter(|d| !d.is_empty()) {
        let (job, diagnostics) = load_document(&file.path, &document.root, options);
        catalog.jobs.push(job);
        catalog.diagnostics.extend(diagnostics);
    }
    if let Some(error) = parsed.error {
        let d = Diagnostic {
            file: file.path.clone(),
            ..Diagnostic::error(
                Code::Yaml,
                Span {
                    start: error.pos,
                    width: 1,
                },
                "",
                format!("invalid YAML: {}", error.message),
            )
        };
        let mut job = JobManifest::broken(&file.path, error.pos.line);
        job.problem = Some(d.one_line());
        catalog.diagnostics.push(d);
        catalog.jobs.push(job);
    }
}

impl JobManifest {
    fn broken(file: &str, line: u32) -> JobManifest {
        JobManifest {
            file: file.to_string(),
            line,
            name_span: None,
            key: None,
            name: None,
            spec: Body::of(&Json::Null),
            schedule: None,
            suspended: false,
            missing_env: Vec::new(),
            valid: false,
            problem: None,
        }
    }
}

fn load_document(
    file: &str,
    root: &Node,
    options: &LoadOptions<'_>,
) -> (JobManifest, Vec<Diagnostic>) {
    let mut checker = Checker::new(options.lookup, options.require_env)
        .allowing_unknown_fields(options.allow_unknown_fields);
    let mut job = JobManifest::broken(file, root.span.start.line);
    envelope(root, options, &mut checker, &mut job);
    let mut diagnostics = checker.diagnostics;
    for d in &mut diagnostics {
        d.file = file.to_string();
    }
    job.missing_env = checker.missing_env;
    job.valid = !diagnostics.iter().any(Diagnostic::is_error);
    job.problem = diagnostics
        .iter()
        .find(|d| d.is_error())
        .map(Diagnostic::one_line);
    (job, diagnostics)
}

/// The manifest's own keys, then the spec.
fn envelope(
    root: &Node,
    options: &LoadOptions<'_>,
    checker: &mut Checker<'_>,
    job: &mut JobManifest,
) {
    let Value::Map(entries) = &root.value else {
        checker.error(
            Code::Type,
            root.span,
            "",
            format!(
                "expected a manifest (a mapping with `kind` and `spec`), found {}",
                root.value.type_name()
            ),
        );
        return;
    };
    unknown_envelope_fields(entries, checker);
    // Where a missing key is reported: the manifest's first key.
    let start = entries.first().map(|(k, _)| k.span).unwrap_or(root.span);
    api_version_and_kind(root, start, checker);
    let team = resource_id(root, "team", Code::Type, checker).unwrap_or(None);
    let project = match resource_id(root, "project", Code::Project, checker) {
        Ok(Some(project)) => Some(project),
        Ok(None) => options.default_project.map(str::to_string).or_else(|| {
            let message =
                "no project: set `project:` in the manifest, or pass --project / NFCRON_PROJECT"
                    .to_string();
            checker.error(Code::Project, start, "project", message);
            None
        }),
        Err(()) => None,
    };
    let Some((spec_key, spec)) = entries.iter().find(|(k, _)| k.name == "spec") else {
        let message = "missing required field `spec`".to_string();
        checker.error(Code::Required, start, "spec", message);
        return;
    };
    read_spec(spec_key, spec, checker, job);
    if let (Some(name), Some(project)) = (&job.name, project) {
        job.key = Some(JobKey {
            team,
            project,
            id: job_id(name),
        });
    }
}

fn unknown_envelope_fields(entries: &[(yaml::Key, Node)], checker: &mut Checker<'_>) {
    for (key, _) in entries {
        if !schema::ENVELOPE_FIELDS.contains(&key.name.as_str()) {
            let message = validate::unknown_field(&key.name, schema::ENVELOPE_FIELDS);
            let path = validate::join("", &key.name);
            checker.error(Code::UnknownField, key.span, &path, message);
        }
    }
}

/// `apiVersion` may be left out; `kind` may not.
fn api_version_and_kind(root: &Node, start: Span, checker: &mut Checker<'_>) {
    if let Some(v) = root.get("apiVersion") {
        if v.as_str() != Some(schema::API_VERSION) {
            let message = format!("`apiVersion` must be `{}`", schema::API_VERSION);
            checker.error(Code::ApiVersion, v.span, "apiVersion", message);
        }
    }
    match root.get("kind") {
        None => {
            let message = format!("missing `kind: {}`", schema::KIND);
            checker.error(Code::Kind, start, "kind", message);
        }
        Some(v) if v.as_str() != Some(schema::KIND) => {
            let message = format!("`kind` must be `{}`", schema::KIND);
            checker.error(Code::Kind, v.span, "kind", message);
        }
        Some(_) => {}
    }
}

/// The id under `field` (`team` or `project`): `Ok(None)` where it is
/// absent or null; anything but an id is reported under `code`.
fn resource_id(
    root: &Node,
    field: &str,
    code: Code,
    checker: &mut Checker<'_>,
) -> Result<Option<String>, ()> {
    let Some(v) = root.get(field) else {
        return Ok(None);
    };
    if let Value::Null = v.value {
        return Ok(None);
    }
    match v.as_str() {
        Some(id) if is_resource_id(id) => Ok(Some(id.to_string())),
        _ => {
            let message =
                format!("`{field}` must be a {field} id: lower-case letters, digits and hyphens");
            checker.error(code, v.span, field, message);
            Err(())
        }
    }
}

/// Checks the spec against the schema and keeps what the job is known by.
fn read_spec(spec_key: &yaml::Key, spec: &Node, checker: &mut Checker<'_>, job: &mut JobManifest) {
    let body = checker.check(spec, &schema::SPEC, "spec", spec_key.span, false);
    if let Some(name_node) = spec.get("name") {
        job.line = name_node.span.start.line;
        job.name_span = Some(name_node.span);
    }
    let text = |field| body.get(field).and_then(Json::as_str).map(str::to_string);
    job.name = text("name");
    job.schedule = text("schedule");
    job.suspended = body.get("suspended") == Some(&Json::Bool(true));
    job.spec = Body::of(&body);
}

/// Project and team ids, as Northflank forms them from names.
fn is_resource_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Two jobs with one id in one project would overwrite each other: both are
/// invalid, and each names the other's place.
fn mark_duplicates(catalog: &mut Catalog) {
    let mut by_key: BTreeMap<&JobKey, Vec<usize>> = BTreeMap::new();
    for (i, job) in catalog.jobs.iter().enumerate() {
        if let Some(key) = &job.key {
            by_key.entry(key).or_default().push(i);
        }
    }
    let groups: Vec<Vec<usize>> = by_key.into_values().filter(|v| v.len() > 1).collect();
    for group in groups {
        for &i in &group {
            let job = &catalog.jobs[i];
            let others: Vec<String> = group
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| format!("{}:{}", catalog.jobs[j].file, catalog.jobs[j].line))
                .collect();
            let key = job.key.as_ref().expect("grouped by key");
            let span = job.name_span.unwrap_or(Span {
                start: yaml::Pos {
                    line: job.line,
                    column: 1,
                },
                width: 1,
            });
            let d = Diagnostic {
                file: job.file.clone(),
                ..Diagnostic::error(
                    Code::DuplicateId,
                    span,
                    "spec.name",
                    format!(
                        "job id `{}` in project `{}` is also defined at {} (ids ignore case and turn spaces into hyphens)",
                        key.id,
                        key.project,
                        others.join(", ")
                    ),
                )
            };
            catalog.jobs[i].problem.get_or_insert_with(|| d.one_line());
            catalog.diagnostics.push(d);
            catalog.jobs[i].valid = false;
        }
    }
    // Keep diagnostics in file order, then position, as a reader expects.
    let order: BTreeMap<&str, usize> = catalog
        .jobs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, j)| (j.file.as_str(), i))
        .collect();
    let mut keyed: Vec<(usize, Diagnostic)> = catalog
        .diagnostics
        .drain(..)
        .map(|d| (order.get(d.file.as_str()).copied().unwrap_or(usize::MAX), d))
        .collect();
    keyed.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.pos.cmp(&y.pos)));
    catalog.diagnostics = keyed.into_iter().map(|(_, d)| d).collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_gives_back_the_tree_it_was_made_from_floats_included() {
        // Digests and fingerprints are taken of the tree a body gives
        // back: a number that came back one bit off would show an
        // unchanged job as changed (serde_json's default float parsing
        // can be; `float_roundtrip` is on for this).
        let mut bits = 0x9e37_79b9_7f4a_7c15_u64;
        let mut floats = vec![0.9968248478393177, 0.1, -0.0, 5e-324, f64::MAX, 1e21];
        for _ in 0..20_000 {
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            floats.push(f64::from_bits(bits));
        }
        let keyed = crate::secret::Keyed::new([7; crate::secret::KEY_LEN]);
        for f in floats.into_iter().filter(|f| f.is_finite()) {
            let tree =
                json!({"name": "a", "internalCacheStorage": f, "runtimeEnvironment": {"N": [f]}});
            let back = Body::of(&tree).value();
            assert_eq!(back, tree, "{f:e}");
            assert_eq!(keyed.digest(&back), keyed.digest(&tree));
        }
    }

    #[test]
    fn a_body_never_formats_its_text() {
        let body = Body::of(&json!({"runtimeEnvironment": {"PASSWORD": "hunter2"}}));
        let shown = format!(
            "{body:?} {:?}",
            JobManifest {
                spec: body.clone(),
                ..JobManifest::broken("a.yaml", 1)
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Body(45 bytes)"), "{shown}");
    }

    /// Envelopes with every problem the envelope check reports, and the
    /// YAML events a document, an alias and a collection end make.
    const ENVELOPES: &[&str] = &[
        "[1, 2]\n",
        "apiVersion: nfcron/v2\nkind: Job\nteam: Acme\nproject: p_q\nextra: 1\nspec:\n  name: a\n  schedule: '5 3 * * *'\n",
        "project: p\nspec:\n  name: a\n",
        "kind: CronJob\nteam: null\nproject: null\nspec:\n  name: a\n",
        "kind: CronJob\nteam: 3\nproject: [p]\n",
        "kind: CronJob\nproject: p\n",
        "kind: CronJob\nproject: p\nspec: &s\n  name: a\nother: *s\n",
        "kind: CronJob\nproject: p\nspec:\n  name: *nope\n",
        "kind: CronJob\nproject: p\nspec:\n  runtimeEnvironment: &e {A: x}\n  description: *e\n",
        "---\nkind: CronJob\nproject: p\nspec: {name: b, schedule: '5 3 * * *'}\n---\nkind: CronJob\nspec: {name: c}\n",
    ];

    fn envelope_diagnostics(default_project: Option<&str>) -> String {
        let files: Vec<SourceFile> = ENVELOPES
            .iter()
            .enumerate()
            .map(|(i, text)| SourceFile {
                path: format!("{i}.yaml"),
                content: Ok(text.to_string()),
            })
            .collect();
        let lookup = |_: &str| None;
        let catalog = load(
            &files,
            &LoadOptions {
                default_project,
                require_env: false,
                lookup: &lookup,
                allow_unknown_fields: false,
            },
        );
        let mut out = String::new();
        for d in &catalog.diagnostics {
            out.push_str(&format!(
                "{}:{}:{} {:?} {:?} {} {:?}: {}\n",
                d.file,
                d.pos.line,
                d.pos.column,
                d.severity,
                d.code,
                d.path,
                d.sensitive,
                d.message
            ));
        }
        for j in &catalog.jobs {
            out.push_str(&format!("{:?} {} {:?}\n", j.key, j.valid, j.name));
        }
        out
    }

    /// Every diagnostic, its place and words, and the key each job gets;
    /// the snapshot was taken before `envelope` and `Builder::event` were
    /// split.
    #[test]
    fn envelope_problems_read_as_their_snapshot() {
        let out = envelope_diagnostics(None) + "=====\n" + &envelope_diagnostics(Some("dflt"));
        insta::assert_snapshot!("envelope_diagnostics", out);
    }
}
