//! The body of `PUT /v1/projects/{projectId}/jobs/cron`, as data.
//!
//! Everything the reference page (`put-cron-job.txt`) says about a field, its
//! type, pattern, length, bounds, enum, `oneOf` alternatives and the
//! requirements its descriptions state in prose, is written down once here.
//! The validator walks this tree, and `nfcron schema` prints it as JSON
//! Schema, so the two cannot disagree about what the API accepts.
//!
//! Patterns are the page's ECMAScript patterns, rewritten only where the
//! `regex` crate reads them differently (`\d` is ASCII here, a `[` inside a
//! class is escaped) or where ECMAScript's
//! Unicode mode (`u` flag, which editors' validators use) refuses an
//! escape (`\:` and `\@` are written `:` and `@`); each rewrite accepts
//! exactly what the page's pattern accepts.

use std::sync::LazyLock;

use regex::Regex;

use super::cron;

pub struct Schema {
    pub kind: Kind,
    pub description: &'static str,
}

pub enum Kind {
    Str(StrRule),
    Int(IntRule),
    /// Any JSON number.
    Number,
    Bool,
    Object(ObjectRule),
    /// An object with free keys (runtime environment, labels, files).
    Map(MapRule),
    Array(ArrayRule),
    /// Exactly one of the alternatives.
    OneOf(Vec<Alternative>),
    /// A string or an object (annotations).
    StrOrObject,
    /// `null` (the API's own "unset"), or the inner schema.
    Nullable(Box<Schema>),
}

#[derive(Default)]
pub struct StrRule {
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    pub pattern: Option<Pattern>,
    pub one_of: &'static [&'static str],
    /// The value is a cron schedule, checked for meaning by [`cron`].
    pub cron: bool,
}

pub struct Pattern {
    pub source: &'static str,
    pub regex: Regex,
    /// What the pattern asks for, in words, when the regex alone is cryptic.
    pub hint: Option<&'static str>,
}

impl Pattern {
    fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            regex: Regex::new(source).unwrap_or_else(|e| panic!("pattern {source} compiles: {e}")),
            hint: None,
        }
    }
}

pub struct ArrayRule {
    pub items: Box<Schema>,
    pub max_items: Option<usize>,
}

#[derive(Default)]
pub struct IntRule {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub one_of: &'static [i64],
}

pub struct ObjectRule {
    pub fields: Vec<Field>,
    pub conditionals: Vec<Conditional>,
}

pub struct Field {
    pub name: &'static str,
    pub required: bool,
    /// Values under this field are secrets: never shown, only fingerprinted.
    pub sensitive: bool,
    pub schema: Schema,
}

pub struct MapRule {
    /// What keys must look like, and the words to say it with.
    pub key: Option<(Pattern, &'static str)>,
    pub value: Box<Schema>,
}

pub struct Alternative {
    /// How the page names the alternative ("Deploy from an external image").
    pub label: &'static str,
    pub schema: Schema,
}

/// A requirement the page states in a field's description: when `when` is
/// one of `is`, the fields `require` must be present.
pub struct Conditional {
    pub when: &'static str,
    pub is: &'static [&'static str],
    pub require: &'static [&'static str],
}

impl ObjectRule {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The fields whose values are secrets (owned by `secret`, which every
/// output path goes through).
pub use crate::secret::SENSITIVE_FIELDS;

/// The official client whose request type this schema follows
/// (tests/data/northflank-js-client/VERSION; `tests/it/official_types.rs`
/// holds the two to each other).
pub const OFFICIAL_CLIENT: &str = "@northflank/js-client 0.9.5";

/// The manifest envelope's own keys.
pub const ENVELOPE_FIELDS: &[&str] = &["apiVersion", "kind", "project", "team", "spec"];
pub const API_VERSION: &str = "nfcron/v1";
pub const KIND: &str = "CronJob";

/// The PUT body.
pub static SPEC: LazyLock<Schema> = LazyLock::new(spec);

/// Whether `path` (dotted, `[i]` for array items, as `plan::leaves` writes
/// them) is a field the schema knows, rather than one sent as written
/// under `--allow-unknown-fields`.
pub fn knows(path: &str) -> bool {
    let mut schemas: Vec<&Schema> = vec![&SPEC];
    for segment in path.split('.') {
        let name = segment.split('[').next().unwrap_or(segment);
        schemas = schemas.into_iter().flat_map(|s| child(s, name)).collect();
        if schemas.is_empty() {
            return false;
        }
    }
    true
}

/// The schemas a key `name` under `schema` may have (one per `oneOf`
/// alternative that has it); array items and `null` see through.
fn child<'s>(schema: &'s Schema, name: &str) -> Vec<&'s Schema> {
    match &schema.kind {
        Kind::Object(rule) => rule.field(name).map(|f| &f.schema).into_iter().collect(),
        Kind::OneOf(alternatives) => alternatives
            .iter()
            .flat_map(|a| child(&a.schema, name))
            .collect(),
        Kind::Array(rule) => child(&rule.items, name),
        Kind::Nullable(inner) => child(inner, name),
        // Free keys: everything below is the user's.
        Kind::Map(_) | Kind::StrOrObject => vec![schema],
        _ => Vec::new(),
    }
}

// ---- builders: they keep the tree below close to the page's layout ----

fn s(description: &'static str) -> StrBuilder {
    StrBuilder(StrRule::default(), description)
}

struct StrBuilder(StrRule, &'static str);

impl StrBuilder {
    fn len(mut self, min: usize, max: usize) -> Self {
        self.0.min_len = Some(min);
        self.0.max_len = Some(max);
        self
    }
    fn max_len(mut self, max: usize) -> Self {
        self.0.max_len = Some(max);
        self
    }
    fn pattern(mut self, source: &'static str) -> Self {
        self.0.pattern = Some(Pattern::new(source));
        self
    }
    fn hint(mut self, words: &'static str) -> Self {
        if let Some(p) = &mut self.0.pattern {
            p.hint = Some(words);
        }
        self
    }
    fn one_of(mut self, values: &'static [&'static str]) -> Self {
        self.0.one_of = values;
        self
    }
    fn cron(mut self) -> Self {
        self.0.cron = true;
        self.0.pattern = Some(Pattern::new(cron::API_PATTERN));
        self
    }
    fn done(self) -> Schema {
        Schema {
            kind: Kind::Str(self.0),
            description: self.1,
        }
    }
}

fn int(
    description: &'static str,
    min: Option<i64>,
    max: Option<i64>,
    one_of: &'static [i64],
) -> Schema {
    Schema {
        kind: Kind::Int(IntRule { min, max, one_of }),
        description,
    }
}

fn nullable(inner: Schema) -> Schema {
    Schema {
        description: inner.description,
        kind: Kind::Nullable(Box::new(inner)),
    }
}

fn boolean(description: &'static str) -> Schema {
    Schema {
        kind: Kind::Bool,
        description,
    }
}

fn object(description: &'static str, fields: Vec<Field>) -> Schema {
    object_with(description, fields, Vec::new())
}

fn object_with(
    description: &'static str,
    fields: Vec<Field>,
    conditionals: Vec<Conditional>,
) -> Schema {
    Schema {
        kind: Kind::Object(ObjectRule {
            fields,
            conditionals,
        }),
        description,
    }
}

fn array(description: &'static str, items: Schema) -> Schema {
    Schema {
        kind: Kind::Array(ArrayRule {
            items: Box::new(items),
            max_items: None,
        }),
        description,
    }
}

fn array_max(description: &'static str, items: Schema, max: usize) -> Schema {
    Schema {
        kind: Kind::Array(ArrayRule {
            items: Box::new(items),
            max_items: Some(max),
        }),
        description,
    }
}

fn map(
    description: &'static str,
    key: Option<(&'static str, &'static str)>,
    value: Schema,
) -> Schema {
    Schema {
        kind: Kind::Map(MapRule {
            key: key.map(|(p, words)| (Pattern::new(p), words)),
            value: Box::new(value),
        }),
        description,
    }
}

fn one_of(description: &'static str, alternatives: Vec<(&'static str, Schema)>) -> Schema {
    Schema {
        kind: Kind::OneOf(
            alternatives
                .into_iter()
                .map(|(label, schema)| Alternative { label, schema })
                .collect(),
        ),
        description,
    }
}

fn req(name: &'static str, schema: Schema) -> Field {
    Field {
        name,
        required: true,
        sensitive: false,
        schema,
    }
}

fn opt(name: &'static str, schema: Schema) -> Field {
    Field {
        name,
        required: false,
        sensitive: false,
        schema,
    }
}

fn secret(name: &'static str, schema: Schema) -> Field {
    Field {
        sensitive: true,
        ..opt(name, schema)
    }
}

// ---- the page ----

const PLAN_ID: &str = r"^[A-Za-z0-9-]+$";
/// The page's image path pattern with `\:` and `\@` written `:` and `@`
/// (the same characters; ECMAScript's Unicode mode refuses the escapes).
const IMAGE_PATH: &str = r"^(?:(?:https?:\/\/)?([a-zA-Z0-9\-]+\.[a-zA-Z0-9\.\-]+)(\/v1)?)?(?:\/)?([a-zA-Z/-9\.\-_]+)(?::([a-zA-Z/-9\.\-_:]+)|@([a-zA-Z/-9\.\-_:]+))$";
/// As the page writes them: the `regex` crate reads `0-9-._` as ECMAScript
/// does (`-`, `.` and `_` literally).
const ABSOLUTE_FILE: &str = r"^\/([a-zA-Z0-9-._]+\/)*[a-zA-Z0-9-._]+$";
const ABSOLUTE_DIR: &str = r"^\/([a-zA-Z0-9-._]+\/)*[a-zA-Z0-9-._]*$";
/// The page: "Keys may only contain letters, numbers, hyphens, forward
/// slashes and dots". Underscores are allowed too: the page's own examples
/// elsewhere and every real environment (`DATABASE_URL`) use them.
const ENV_KEY: &str = r"^[A-Za-z0-9_./-]+$";
/// A Docker secret mount id, as the docs' example (`example-secret-mount_1`)
/// and BuildKit's ids spell them.
const SECRET_MOUNT_ID: &str = r"^[A-Za-z0-9_.-]+$";
const ENV_KEY_WORDS: &str = "letters, numbers, `_`, `-`, `/` and `.`";

const DEPLOY_STORAGE: &[i64] = &[
    1024, 2048, 5120, 10240, 20480, 30720, 40960, 51200, 61440, 81920, 102400, 122880, 153600,
    204800,
];
const SHM_SIZES: &[i64] = &[64, 128, 256, 512, 1024, 2048, 5120, 10240];
const BUILD_STORAGE: &[i64] = &[16384, 32768, 65536, 131072, 262144, 524288];
/// `maxItems` of `pathIgnoreRules` and `ciIgnoreFlags` in the API's request
/// schema (the one `@northflank/cli` ships; the page does not say).
const MAX_IGNORE_ITEMS: usize = 200;

fn gpu() -> Schema {
    object(
        "",
        vec![
            opt("enabled", boolean("")),
            opt(
                "configuration",
                object(
                    "",
                    vec![
                        req("gpuType", s("").done()),
                        opt("gpuCount", int("", Some(1), None, &[])),
                        opt("timesliced", boolean("")),
                    ],
                ),
            ),
        ],
    )
}

fn buildpack_runtime() -> Schema {
    object_with(
        "Allows for customization of buildpack runtime",
        vec![
            req(
                "configType",
                s("Type of buildpack run configuration")
                    .one_of(&[
                        "default",
                        "customProcess",
                        "customCommand",
                        "customEntrypointCustomCommand",
                        "originalEntrypointCustomCommand",
                    ])
                    .done(),
            ),
            opt(
                "customProcess",
                s("Custom process which should be run. Required in case where `configType` is `customProcess`").done(),
            ),
            opt(
                "customEntrypoint",
                s("Custom entrypoint which should be run. Required in case where `configType` is `customEntrypointCustomCommand`").done(),
            ),
            opt(
                "customCommand",
                s("Custom command which should be run. Required in case where `configType` is `customCommand`, `customEntrypointCustomCommand` or `originalEntrypointCustomCommand`").done(),
            ),
        ],
        vec![
            Conditional {
                when: "configType",
                is: &["customProcess"],
                require: &["customProcess"],
            },
            Conditional {
                when: "configType",
                is: &["customEntrypointCustomCommand"],
                require: &["customEntrypoint"],
            },
            Conditional {
                when: "configType",
                is: &["customCommand", "customEntrypointCustomCommand", "originalEntrypointCustomCommand"],
                require: &["customCommand"],
            },
        ],
    )
}

fn docker_runtime() -> Schema {
    object_with(
        "Allows for customization of docker runtime",
        vec![
            req(
                "configType",
                s("Type of entrypoint & command override configuration")
                    .one_of(&["default", "customEntrypoint", "customCommand", "customEntrypointCustomCommand"])
                    .done(),
            ),
            opt(
                "customEntrypoint",
                s("Custom entrypoint which should be used. Required in case where `configType` is `customEntrypoint` or `customEntrypointCustomCommand`").done(),
            ),
            opt(
                "customCommand",
                s("Custom command which should be used. Required in case where `configType` is `customCommand` or `customEntrypointCustomCommand`").done(),
            ),
        ],
        vec![
            Conditional {
                when: "configType",
                is: &["customEntrypoint", "customEntrypointCustomCommand"],
                require: &["customEntrypoint"],
            },
            Conditional {
                when: "configType",
                is: &["customCommand", "customEntrypointCustomCommand"],
                require: &["customCommand"],
            },
        ],
    )
}

/// The fields every `deployment` alternative but "choose later" shares.
fn deployment_common() -> Vec<Field> {
    vec![
        opt("buildpack", buildpack_runtime()),
        opt("docker", docker_runtime()),
        opt(
            "storage",
            object(
                "",
                vec![
                    opt("useHdbStorage", boolean("")),
                    opt("usePdSsdStorage", boolean("")),
                    opt(
                        "ephemeralStorage",
                        object(
                            "",
                            vec![opt(
                                "storageSize",
                                int("Ephemeral storage per container in MB", Some(1024), Some(204800), DEPLOY_STORAGE),
                            )],
                        ),
                    ),
                    opt(
                        "shmSize",
                        int(
                            "Configures the amount of available memory-backed disk space available to /dev/shm",
                            Some(64),
                            Some(10240),
                            SHM_SIZES,
                        ),
                    ),
                ],
            ),
        ),
        opt("gpu", gpu()),
        opt(
            "gracePeriodSeconds",
            int(
                "The maximum amount of time the process has to shut down after receiving a SIGTERM signal before it is forcefully shut down SIGKILL by the system.",
                Some(15),
                Some(600),
                &[],
            ),
        ),
        opt(
            "metadata",
            object(
                "Allow setting custom labels and annotations for workloads.",
                vec![
                    opt(
                        "labels",
                        map("Specify custom labels for the workload.", None, s("").done()),
                    ),
                    opt(
                        "annotations",
                        map(
                            "Specify custom annotations for the workload as string or object.",
                            None,
                            Schema {
                                kind: Kind::StrOrObject,
                                description: "",
                            },
                        ),
                    ),
                ],
            ),
        ),
    ]
}

fn deployment_with(discriminator: Field) -> Schema {
    let mut fields = deployment_common();
    fields.push(discriminator);
    object("", fields)
}

/// Deploy what Northflank builds from a Git repository.
fn vcs_source() -> Field {
    req(
        "vcs",
        object_with(
            "",
            vec![
                req(
                    "projectUrl",
                    s("URL of the Git repo to build.")
                        .pattern(r"^(https:\/\/)?((www(\.[a-zA-Z0-9\-]{2,})+\.)?[a-zA-Z0-9\-]{2,})(\.([a-zA-Z0-9\-]{2,}))+(\/([a-zA-Z0-9\-._]{2,}))+?$")
                        .hint("a repository URL such as `https://github.com/acme/app`")
                        .done(),
                ),
                req(
                    "projectType",
                    s("The VCS provider to use.")
                        .one_of(&["bitbucket", "gitlab", "github", "self-hosted", "azure"])
                        .done(),
                ),
                opt(
                    "selfHostedVcsId",
                    s("If projectType is self-hosted, the ID of the self-hosted vcs to use.")
                        .pattern(r"^([A-Za-z0-9-]+\/[A-Za-z0-9-]+)|([0-9a-f]{24})$")
                        .done(),
                ),
                opt(
                    "accountLogin",
                    s("By default, if you have multiple version control accounts of the same provider linked, Northflank will pick a linked account that has access to the repository. If `accountLogin` is provided, Northflank will instead use your linked account with that login name.").done(),
                ),
                opt(
                    "vcsLinkId",
                    s("By default, if you have multiple version control accounts of the same provider linked, Northflank will pick a linked account that has access to the repository. If `vcsLinkId` is provided, Northflank will instead use your linked account with that ID.")
                        .len(24, 24)
                        .done(),
                ),
                req("projectBranch", s("The name of the branch to use.").done()),
            ],
            vec![Conditional {
                when: "projectType",
                is: &["self-hosted"],
                require: &["selfHostedVcsId"],
            }],
        ),
    )
}

/// Deploy an image from a registry.
fn external_source() -> Field {
    req(
        "external",
        object(
            "",
            vec![
                req(
                    "imagePath",
                    s("Image to be deployed. When not deploying from Dockerhub the URL must be specified.")
                        .pattern(IMAGE_PATH)
                        .hint("an image reference with a tag or digest, such as `nginx:1.27` or `ghcr.io/acme/app@sha256:...`")
                        .done(),
                ),
                opt(
                    "credentials",
                    s("ID of the saved credentials to use to access this external image.")
                        .pattern(PLAN_ID)
                        .done(),
                ),
            ],
        ),
    )
}

/// Deploy what a build service built.
fn internal_source() -> Field {
    req(
        "internal",
        object(
            "",
            vec![
                opt(
                    "id",
                    s("ID of the build service to deploy")
                        .len(3, 54)
                        .pattern(r"^[a-zA-Z](-?[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*)?$")
                        .done(),
                ),
                opt("branch", s("Branch to deploy").done()),
                opt(
                    "buildSHA",
                    one_of(
                        "Commit SHA to deploy, or 'latest' to deploy the most recent commit",
                        vec![
                            (
                                "a commit SHA (40 characters)",
                                s("A commit sha.").len(40, 40).done(),
                            ),
                            ("`latest`", s("Latest commit.").one_of(&["latest"]).done()),
                        ],
                    ),
                ),
                opt(
                    "buildId",
                    s("ID of the build that should be deployed").done(),
                ),
            ],
        ),
    )
}

fn deployment() -> Schema {
    one_of(
        "Where to deploy the job from.",
        vec![
            (
                "deploy from version control (`vcs`)",
                deployment_with(vcs_source()),
            ),
            (
                "deploy from an external image (`external`)",
                deployment_with(external_source()),
            ),
            (
                "deploy from a build service (`internal`)",
                deployment_with(internal_source()),
            ),
            ("choose later (`{}`)", object("Choose later", Vec::new())),
        ],
    )
}

fn build_storage() -> Field {
    opt(
        "storage",
        object(
            "",
            vec![opt(
                "ephemeralStorage",
                object(
                    "",
                    vec![opt(
                        "storageSize",
                        int(
                            "Ephemeral storage per build in MB",
                            Some(16384),
                            Some(65536),
                            BUILD_STORAGE,
                        ),
                    )],
                ),
            )],
        ),
    )
}

fn build_configuration() -> Schema {
    object(
        "",
        vec![
            opt(
                "pathIgnoreRules",
                array_max(
                    "An array of path ignore rules. A commit will only be built if a file has been changed that does not match any of the ignore rules. Path ignore rules follow `.gitignore` syntax.",
                    s("A path ignore rule, following `.gitignore` syntax. For example, `*.md` will ignore all files ending with `.md`.").max_len(260).done(),
                    MAX_IGNORE_ITEMS,
                ),
            ),
            opt(
                "isAllowList",
                boolean("If `true`, the functionality of `pathIgnoreRules` will be inverted. A commit will only be built if a file has been changed that matches one or more of the rules in `pathIgnoreRules`."),
            ),
            opt(
                "ciIgnoreFlagsEnabled",
                boolean("If `true`, enables commit ignore flags. If a commit message contains one or more of the flags in `ciIgnoreFlags`, that commit will not be built."),
            ),
            opt(
                "ciIgnoreFlags",
                array_max(
                    "An array of commit ignore flags. If a commit message contains one or more of these flags, that commit will not be built.",
                    s("A commit ignore flag.").max_len(72).done(),
                    MAX_IGNORE_ITEMS,
                ),
            ),
            opt(
                "dockerfileTarget",
                s("If your Dockerfile contains multiple build stages, you can specify the target stage by entering its name here.").done(),
            ),
            opt(
                "dockerCredentials",
                array("", s("The ID of the docker credentials to use.").pattern(PLAN_ID).done()),
            ),
            opt("includeGitFolder", boolean("Include .git folder inside the build context")),
            opt(
                "fullGitClone",
                boolean("Include the entire git history as part of the .git folder. Only relevant if \"includeGitFolder\" is set."),
            ),
            opt("enableGitLfs", boolean("Enable Git LFS support for the build")),
            build_storage(),
        ],
    )
}

/// Build with a Dockerfile.
fn dockerfile_build() -> Schema {
    object(
        "Build from a Dockerfile",
        vec![
            build_storage(),
            req(
                "dockerfile",
                object(
                    "",
                    vec![
                        opt(
                            "buildEngine",
                            s("Build engine to use. Defaults to recommended build engine `buildkit`")
                                .one_of(&["kaniko", "buildkit"])
                                .done(),
                        ),
                        req("dockerFilePath", s("The file path of the Dockerfile.").pattern(ABSOLUTE_FILE).done()),
                        req(
                            "dockerWorkDir",
                            s("The working directory of the Dockerfile.").pattern(ABSOLUTE_DIR).done(),
                        ),
                        opt(
                            "useCache",
                            boolean("DEPRECATED: This field will be removed in the near future and currently has no effect."),
                        ),
                        opt("buildkit", buildkit()),
                    ],
                ),
            ),
        ],
    )
}

/// BuildKit's cache.
fn buildkit() -> Schema {
    object(
        "",
        vec![
            opt(
                "useCache",
                boolean("Use persistent storage to cache build layers."),
            ),
            opt(
                "cacheStorageSize",
                int(
                    "The amount of persistent storage available to each build in MB.",
                    Some(1),
                    None,
                    &[],
                ),
            ),
            opt(
                "useInternalCache",
                boolean("DEPRECATED: This field will be removed in the near future."),
            ),
            opt(
                "internalCacheStorage",
                Schema {
                    kind: Kind::Number,
                    description: "",
                },
            ),
        ],
    )
}

/// Build with Cloud Native Buildpacks.
fn buildpack_build() -> Schema {
    object(
        "Build from a Buildpack",
        vec![
            build_storage(),
            req(
                "buildpack",
                object(
                    "",
                    vec![
                        opt(
                            "builder",
                            s("Buildpack stack to use. Defaults to recommended stack `HEROKU_24`.")
                                .one_of(&[
                                    "HEROKU_24",
                                    "HEROKU_22",
                                    "HEROKU_22_CLASSIC",
                                    "HEROKU_20",
                                    "HEROKU_18",
                                    "GOOGLE_22",
                                    "GOOGLE_V1",
                                    "CNB_ALPINE",
                                    "CNB_BIONIC",
                                    "PAKETO_JAMMY_TINY",
                                    "PAKETO_JAMMY_BASE",
                                    "PAKETO_JAMMY_FULL",
                                    "PAKETO_TINY",
                                    "PAKETO_BASE",
                                    "PAKETO_FULL",
                                ])
                                .done(),
                        ),
                        opt(
                            "buildpackLocators",
                            array(
                                "Array of custom Buildpacks to use.",
                                s("Url or registry identifier of custom Buildpack.").done(),
                            ),
                        ),
                        opt("buildContext", s("The working directory to build in.").pattern(ABSOLUTE_DIR).done()),
                        opt("useCache", boolean("Should build dependencies be cached?")),
                    ],
                ),
            ),
        ],
    )
}

fn build_settings() -> Schema {
    one_of(
        "Build engine",
        vec![
            ("build from a Dockerfile (`dockerfile`)", dockerfile_build()),
            ("build from a Buildpack (`buildpack`)", buildpack_build()),
        ],
    )
}

/// Variables by name (an environment, build arguments).
fn variables(description: &'static str) -> Schema {
    map(
        description,
        Some((ENV_KEY, ENV_KEY_WORDS)),
        s("A value; the API takes strings only (quote numbers and booleans).").done(),
    )
}

fn files(description: &'static str) -> Schema {
    map(
        description,
        Some((r"^/", "an absolute path (starting with `/`)")),
        file_content(),
    )
}

fn file_content() -> Schema {
    object(
        "",
        vec![
            req(
                "data",
                s("The file's content, encoded as `encoding` says.").done(),
            ),
            opt(
                "encoding",
                s("How `data` is encoded (`utf-8`, `base64`).").done(),
            ),
        ],
    )
}

/// Docker secret mounts: files keyed by a mount identifier (the ID a
/// Dockerfile's `RUN --mount=type=secret,id=...` names), not by a path.
fn secret_mounts() -> Schema {
    map(
        "Docker secret mount contents as JSON object, encrypted at rest. Must be a valid Docker secret mount identifier",
        Some((SECRET_MOUNT_ID, "letters, numbers, `_`, `-` and `.`")),
        file_content(),
    )
}

fn health_check() -> Schema {
    let mut fields = vec![
        req(
            "protocol",
            s("The protocol to access the health check with.")
                .one_of(&["HTTP", "CMD", "TCP"])
                .done(),
        ),
        req(
            "type",
            s("The type of health check.")
                .one_of(&["livenessProbe", "readinessProbe", "startupProbe"])
                .done(),
        ),
        opt(
            "path",
            s("The path of the health check endpoint. Required when protocol is HTTP.")
                .pattern(ABSOLUTE_FILE)
                .done(),
        ),
        opt(
            "cmd",
            s("The command to run for the health check. Required when protocol is CMD").done(),
        ),
        opt(
            "port",
            int(
                "Port number for the health check endpoint. Required when protocol is HTTP.",
                Some(1),
                None,
                &[],
            ),
        ),
    ];
    fields.extend(health_check_timing());
    object_with(
        "A health check object.",
        fields,
        vec![
            Conditional {
                when: "protocol",
                is: &["HTTP"],
                require: &["path", "port"],
            },
            Conditional {
                when: "protocol",
                is: &["CMD"],
                require: &["cmd"],
            },
            // Not in the page's prose, but a TCP check has nothing to connect
            // to without a port (it comes back as `tcpSocketPort`).
            Conditional {
                when: "protocol",
                is: &["TCP"],
                require: &["port"],
            },
        ],
    )
}

/// When and how often a health check runs, and what counts as failed.
fn health_check_timing() -> Vec<Field> {
    vec![
        req(
            "initialDelaySeconds",
            int(
                "Initial delay, in seconds, before the health check is first run.",
                Some(1),
                Some(180),
                &[],
            ),
        ),
        req(
            "periodSeconds",
            int(
                "The time between each check, in seconds.",
                Some(10),
                Some(600),
                &[],
            ),
        ),
        req(
            "timeoutSeconds",
            int(
                "The time to wait for a response before marking the health check as a failure.",
                Some(1),
                Some(60),
                &[],
            ),
        ),
        req(
            "failureThreshold",
            int(
                "The maximum number of allowed failures.",
                Some(1),
                Some(255),
                &[],
            ),
        ),
        opt(
            "successThreshold",
            int(
                "The number of successes required to mark the health check as a success.",
                Some(1),
                Some(255),
                &[],
            ),
        ),
    ]
}

fn spec() -> Schema {
    let mut fields = identity_fields();
    fields.extend(run_fields());
    fields.extend([
        opt("deployment", deployment()),
        opt(
            "disabledCI",
            boolean("Whether CI should be disabled. Only relevant for jobs deploying directly from version control."),
        ),
        opt("buildConfiguration", build_configuration()),
        opt("buildSettings", build_settings()),
    ]);
    fields.extend(secret_fields());
    fields.extend(schedule_fields());
    object(
        "The body of PUT /v1/projects/{projectId}/jobs/cron.",
        fields,
    )
}

/// What the job is called and how it is grouped.
fn identity_fields() -> Vec<Field> {
    vec![
        req(
            "name",
            s("The name of the job.")
                .len(3, 52)
                .pattern(r"^[a-zA-Z]((-|\s)?[a-zA-Z0-9]+((-|\s)[a-zA-Z0-9]+)*)?$")
                .hint(
                    "a letter, then words of letters and digits joined by single spaces or hyphens",
                )
                .done(),
        ),
        opt(
            "description",
            s("A description of the job.")
                .max_len(200)
                .pattern(r#"^[a-zA-Z0-9.,?\s\\/'"()\[\];`%^&*\-_:!]+$"#)
                .done(),
        ),
        opt(
            "stageId",
            s("The ID of the release flow stage the job belongs to.").done(),
        ),
        opt(
            "infrastructure",
            object(
                "",
                vec![opt(
                    "architecture",
                    s("The CPU architecture to run on.")
                        .one_of(&["x86", "arm"])
                        .done(),
                )],
            ),
        ),
        opt(
            "tags",
            array(
                "An array of previously defined tags to help identify and group the resource.",
                s("")
                    .len(1, 100)
                    .pattern(r"^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$")
                    .done(),
            ),
        ),
    ]
}

/// What a run is billed to, and how it is retried and cut short.
fn run_fields() -> Vec<Field> {
    vec![
        req(
            "billing",
            object(
                "",
                vec![
                    opt("buildPlan", s("The ID of the build plan to use.").pattern(PLAN_ID).done()),
                    req("deploymentPlan", s("The ID of the deployment plan to use.").pattern(PLAN_ID).done()),
                    opt("gpu", gpu()),
                ],
            ),
        ),
        req(
            "backoffLimit",
            int("The number of attempts to rerun a job before it is marked as failed.", Some(0), None, &[]),
        ),
        opt(
            "runOnSourceChange",
            s("Configure when the job should be run if the source image changes.")
                .one_of(&["never", "cd-promote", "always"])
                .done(),
        ),
        opt(
            "activeDeadlineSeconds",
            nullable(int(
                "The maximum amount of time, in seconds, for a job to run before it is marked as failed.",
                Some(1),
                None,
                &[],
            )),
        ),
    ]
}

/// The values nfcron never shows: environment, arguments and files.
fn secret_fields() -> Vec<Field> {
    vec![
        secret(
            "runtimeEnvironment",
            variables("An object containing the runtime environment to set for the job. Keys may only contain letters, numbers, hyphens, forward slashes and dots."),
        ),
        secret("runtimeFiles", files("Secret files as JSON object, encrypted at rest. File path must be absolute")),
        secret(
            "buildArguments",
            variables("An object containing the build arguments to set for the job. Keys may only contain letters, numbers, hyphens, forward slashes and dots."),
        ),
        secret("buildFiles", files("Secret files as JSON object, encrypted at rest. File path must be absolute")),
        secret("dockerSecretMounts", secret_mounts()),
    ]
}

/// When the job runs, and how it is checked while it does.
fn schedule_fields() -> Vec<Field> {
    vec![
        opt("healthChecks", array("An array of health checks.", health_check())),
        req("schedule", s("The cron timer scheduling when to run the job.").cron().done()),
        opt("suspended", boolean("Whether the cron's automatic scheduling is suspended")),
        req(
            "concurrencyPolicy",
            s("Whether this job should run when another instance of the job is already running. `allow` will enable multiple instances of this job to run. `forbid` will keep the current instance of the job running and stop a new instance from being run. `replace` will terminate any currently running instance of the job and start a new one.")
                .one_of(&["allow", "forbid", "replace"])
                .done(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_the_tree_builds() {
        let Kind::Object(spec) = &SPEC.kind else {
            panic!("spec is an object")
        };
        assert_eq!(spec.fields.len(), 22);
        for name in SENSITIVE_FIELDS {
            assert!(spec.field(name).expect(name).sensitive, "{name}");
        }
    }

    #[test]
    fn knows_the_fields_of_the_schema_only() {
        for known in [
            "name",
            "deployment.external.imagePath",
            "healthChecks[0].port",
            "runtimeEnvironment.ANY_KEY",
            "deployment.metadata.annotations.a.b",
            "buildSettings.buildpack.builder",
        ] {
            assert!(knows(known), "{known}");
        }
        for unknown in [
            "spotInstances",
            "billing.spotPool",
            "healthChecks[0].grpcPort",
        ] {
            assert!(!knows(unknown), "{unknown}");
        }
    }

    #[test]
    fn path_classes_read_hyphen_dot_and_underscore_literally() {
        let file = Pattern::new(ABSOLUTE_FILE);
        for ok in ["/-", "/.", "/_", "/a/b-c.d_e", "/Dockerfile"] {
            assert!(file.regex.is_match(ok), "{ok}");
        }
        for bad in ["/,", "/+", "/a//b", "/", "Dockerfile"] {
            assert!(!file.regex.is_match(bad), "{bad}");
        }
        assert!(Pattern::new(ABSOLUTE_DIR).regex.is_match("/"));
    }

    #[test]
    fn image_path_needs_a_tag_or_digest_and_reads_as_the_page_does() {
        let ours = Pattern::new(IMAGE_PATH);
        let page = Pattern::new(
            r"^(?:(?:https?:\/\/)?([a-zA-Z0-9\-]+\.[a-zA-Z0-9\.\-]+)(\/v1)?)?(?:\/)?([a-zA-Z/-9\.\-_]+)(?:\:([a-zA-Z/-9\.\-_\:]+)|\@([a-zA-Z/-9\.\-_\:]+))$",
        );
        assert!(ours.regex.is_match("nginx:latest"));
        assert!(ours.regex.is_match("ghcr.io/acme/report:v1.2"));
        assert!(!ours.regex.is_match("nginx"));
        for image in [
            "nginx:latest",
            "nginx",
            "a@b",
            "a@b:c",
            "a:b@c",
            "https://r.io/v1/a/b:1",
            "r.io/a@sha256:abc",
            "a::",
            ":a",
            "@a",
            "a:b:c",
            "a b:c",
        ] {
            assert_eq!(
                ours.regex.is_match(image),
                page.regex.is_match(image),
                "{image}"
            );
        }
    }
}
