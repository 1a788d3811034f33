//! The command line, as clap types. Nothing here travels past
//! [`settings`](crate::settings), which resolves it into plain structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "nfcron",
    // `0.1.0 (commit <sha>)`: build.rs records the commit.
    version = env!("NFCRON_VERSION"),
    about = "Keeps Northflank cron jobs in step with manifests kept in Git",
    propagate_version = true
)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (error, warn, info, debug, trace,
    /// or a tracing filter); RUST_LOG is read when this is not given.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log line format on stderr: text, or json (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against the API's reference without sending anything.
    Validate(ValidateArgs),
    /// Plan against the last-applied state and PUT only what changed.
    Reconcile(ReconcileArgs),
    /// Write manifests for the cron jobs already live in a project.
    Import(ImportArgs),
    /// Run as a sidecar: reconcile on file edits, Git pushes and timers;
    /// serve health, readiness, metrics and a webhook.
    Watch(WatchArgs),
    /// Print the JSON Schema of the manifest format (for editors).
    Schema,
    /// Judge a cron schedule as Northflank and Kubernetes will, and list
    /// its next run times (UTC). Exit 0 when valid, 1 when not.
    Schedule(ScheduleArgs),
    /// Print a shell completion script: `nfcron completions bash >
    /// /etc/bash_completion.d/nfcron`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `nfcron man | man -l -`.
    Man,
    /// List, move or unlock the last-applied state.
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The recorded jobs (applied time, revision) and the specs the API
    /// refused.
    List(StateListArgs),
    /// Copy records, rejections and the key (so fingerprints stay) from one
    /// state to another that holds none.
    Migrate(StateMigrateArgs),
    /// Remove a state file's lock whose holder is gone.
    Unlock(StateUnlockArgs),
}

/// Where the last-applied state is (every command that reads or writes it).
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The last-applied state: a file, or a PostgreSQL URL
    /// (postgres://user@host/db?sslmode=verify-full).
    #[arg(
        long,
        env = "NFCRON_STATE",
        hide_env_values = true,
        value_name = "PATH|URL",
        default_value = ".nfcron/state.json"
    )]
    pub state: PathBuf,

    /// With a `postgres://` --state: which namespace of the database holds
    /// this repository's (or environment's) state.
    #[arg(
        long,
        env = "NFCRON_STATE_NAMESPACE",
        value_name = "NAME",
        default_value = "default"
    )]
    pub state_namespace: String,
}

#[derive(Debug, Args)]
pub struct StateListArgs {
    #[command(flatten)]
    pub at: StateArgs,

    /// text, or json.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct StateMigrateArgs {
    /// The state to copy: a file, or a PostgreSQL URL.
    #[arg(long, value_name = "PATH|URL")]
    pub from: PathBuf,

    /// Where to copy it: a file, or a PostgreSQL URL; must hold no state.
    #[arg(long, value_name = "PATH|URL")]
    pub to: PathBuf,

    /// The namespace, for a `postgres://` side.
    #[arg(
        long,
        env = "NFCRON_STATE_NAMESPACE",
        value_name = "NAME",
        default_value = "default"
    )]
    pub state_namespace: String,
}

#[derive(Debug, Args)]
pub struct StateUnlockArgs {
    #[command(flatten)]
    pub at: StateArgs,

    /// Required: removing a lock is for when its holder is gone.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The schedule, quoted: '0 3 * * *'.
    #[arg(value_name = "EXPR", allow_hyphen_values = true)]
    pub expr: String,

    /// List the runs after this time (RFC 3339, such as
    /// 2026-11-28T16:07:30Z); default: now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub after: Option<jiff::Timestamp>,

    /// How many run times to list.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub count: u16,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The latest `--after`: run times are looked for up to five years past
/// it, and the calendar ends with the year 9999.
const LATEST_AFTER: &str = "9994-12-31T23:59:59Z";

/// An RFC 3339 time such as `2026-11-28T16:07:30Z`, no later than
/// [`LATEST_AFTER`]. The date library's own message is not shown: it speaks
/// of its internals (Unix seconds ranges), not of the input.
pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, String> {
    let latest: jiff::Timestamp = LATEST_AFTER.parse().expect("a valid time");
    let too_late = || {
        format!("`{s}` is later than {LATEST_AFTER}: run times are looked for up to five years ahead, and the calendar ends with the year 9999")
    };
    match s.parse::<jiff::Timestamp>() {
        Ok(t) if t <= latest => Ok(t),
        Ok(_) => Err(too_late()),
        // A year at the very end of the range may not convert at all.
        Err(_) if s.get(..4).and_then(|y| y.parse::<u32>().ok()) >= Some(9994) => Err(too_late()),
        Err(_) => Err(format!(
            "`{s}` is not an RFC 3339 time such as 2026-11-28T16:07:30Z"
        )),
    }
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// A manifest file, or a directory walked recursively for *.yaml / *.yml.
    #[arg(default_value = "jobs.d")]
    pub path: PathBuf,

    /// Show what would change; send no writes, take no lock, write no state.
    #[arg(long)]
    pub dry_run: bool,

    /// Exit 2 when the run succeeded and there were changes (pending in a
    /// dry-run, applied otherwise).
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,

    /// Read live state for every unchanged managed job and report drift.
    #[arg(long)]
    pub refresh: bool,

    /// What to do about drift: report it (warn), re-PUT the manifest
    /// (correct), or read nothing (off).
    #[arg(long, value_enum, default_value_t = DriftArg::Warn)]
    pub drift: DriftArg,

    /// GET requests one run may spend on live state; jobs beyond it are
    /// reported as drift unknown.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_reads: u64,

    /// Send again the jobs the API refused for good (a 4xx) although their
    /// manifests have not changed since.
    #[arg(long)]
    pub retry_rejected: bool,

    /// With --dry-run, inside a Git work tree: plan the manifests at HEAD
    /// against those at REF (e.g. origin/main). Offline: no token, no state.
    #[arg(long, value_name = "REF", requires = "dry_run")]
    pub base: Option<String>,

    #[command(flatten)]
    pub apply: ApplyArgs,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// What applying needs, shared by `reconcile` and `watch`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Project of manifests that do not name one.
    #[arg(
        long,
        env = "NFCRON_PROJECT",
        hide_env_values = true,
        value_name = "ID"
    )]
    pub project: Option<String>,

    #[command(flatten)]
    pub state: StateArgs,

    /// Jobs applied at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// A further spec field to treat as a secret (dotted path, e.g.
    /// deployment.docker.customCommand). Repeatable.
    #[arg(long = "sensitive", value_name = "PATH")]
    pub sensitive: Vec<String>,

    /// Send fields the schema does not know (the API may be newer than this
    /// nfcron) as written, with a warning; misspellings of known fields
    /// stay errors.
    #[arg(long, env = "NFCRON_ALLOW_UNKNOWN_FIELDS")]
    pub allow_unknown_fields: bool,

    /// Delete jobs that nfcron applied before and no manifest names now.
    #[arg(long)]
    pub prune: bool,

    /// With --prune, allow deleting every managed job when no manifest is found.
    #[arg(long)]
    pub allow_empty: bool,

    /// With --prune, refuse (and delete nothing) above this many deletions.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_deletions: usize,
}

/// Where manifests come from when not a local PATH.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read manifests from this Git repository (https://, ssh://, file://
    /// or a local path; http:// only to a loopback address) instead of PATH.
    #[arg(long, value_name = "URL")]
    pub git: Option<String>,

    /// Branch to follow (default: the remote's HEAD).
    #[arg(long, value_name = "BRANCH", requires = "git")]
    pub branch: Option<String>,

    /// Where the manifests are in the repository (`./`, a trailing `/` and
    /// `a/../b` are normalised); must be a directory at the fetched revision.
    #[arg(long, value_name = "DIR", default_value = "jobs.d")]
    pub git_path: String,

    /// Local cache of the repository.
    #[arg(long, value_name = "DIR", default_value = ".nfcron/git")]
    pub git_cache: PathBuf,

    /// SSH private key for ssh:// remotes (HTTPS uses NFCRON_GIT_TOKEN).
    #[arg(long, value_name = "PATH")]
    pub ssh_key: Option<PathBuf>,

    /// Host keys SSH remotes must present (no trust on first use).
    #[arg(long, value_name = "PATH")]
    pub known_hosts: Option<PathBuf>,

    /// Time limit to connect to the Git remote, and for each read or write
    /// of a transfer that has stalled (HTTP and SSH); more than zero.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_interval)]
    pub git_timeout: std::time::Duration,
    /// File holding the --ssh-key's passphrase (one trailing newline is
    /// ignored; never logged).
    #[arg(long, value_name = "PATH", requires = "ssh_key")]
    pub ssh_key_passphrase_file: Option<PathBuf>,

    /// Apply a Git revision only if its tip commit carries a valid
    /// signature by a key FILE lists: an OpenSSH allowed-signers file (the
    /// key listed for the committer's email) or an armored OpenPGP public
    /// keyring. With --git only.
    #[arg(long, value_name = "FILE", env = "NFCRON_VERIFY_SIGNATURES")]
    pub verify_signatures: Option<PathBuf>,
}

/// Whom to tell what a run did (shared by `reconcile` and `watch`).
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Send each run's events (applied, failed, rejected, drift, invalid,
    /// prune_blocked) to URL: https:// (JSON, signed with
    /// NFCRON_NOTIFY_SECRET), http:// to loopback, or slack+https:// (a
    /// Slack incoming webhook). Repeatable. Without it, NFCRON_NOTIFY: URLs
    /// separated by commas (a comma inside a URL stays part of it).
    #[arg(long = "notify", value_name = "URL")]
    pub notify: Vec<String>,

    /// After each applying run on a commit, set a GitHub commit status
    /// `nfcron/<project>` on it (token: GITHUB_TOKEN; API: GITHUB_API_URL).
    #[arg(long)]
    pub github_status: bool,

    /// The repository of --github-status (default: GITHUB_REPOSITORY, else
    /// the --git URL when it is on github.com).
    #[arg(long, value_name = "OWNER/NAME", requires = "github_status")]
    pub github_repo: Option<String>,
}

/// How to reach the Northflank API (shared by every command that does).
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Northflank API base URL.
    #[arg(
        long,
        env = "NORTHFLANK_API_URL",
        hide_env_values = true,
        value_name = "URL",
        default_value = "https://api.northflank.com"
    )]
    pub api_url: String,

    /// Read the API token from this file (trailing newline trimmed) instead
    /// of NORTHFLANK_API_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Time limit of each API request (500ms, 30s, 1m); more than zero.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_interval)]
    pub timeout: std::time::Duration,

    /// No retry starts later than this after a request's first attempt
    /// (0s: never retry).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub retry_max_time: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The project whose cron jobs to import.
    #[arg(
        long,
        env = "NFCRON_PROJECT",
        hide_env_values = true,
        value_name = "ID"
    )]
    pub project: String,

    /// The team, for team-scoped routes.
    #[arg(long, value_name = "ID")]
    pub team: Option<String>,

    /// Where to write the manifests.
    #[arg(long, value_name = "DIR", default_value = "jobs.d")]
    pub out: PathBuf,

    /// Import only this job (by id). Repeatable.
    #[arg(long = "job", value_name = "ID")]
    pub jobs: Vec<String>,

    /// Where the imported jobs are recorded.
    #[command(flatten)]
    pub state: StateArgs,

    /// Overwrite manifest files that exist.
    #[arg(long)]
    pub force: bool,

    /// Keep fields equal to the API's defaults.
    #[arg(long)]
    pub all_fields: bool,

    /// A further spec field to treat as a secret (dotted path, e.g.
    /// deployment.docker.customCommand): a ${VAR} placeholder in the
    /// manifest, a fingerprint in the state. Repeatable.
    #[arg(long = "sensitive", value_name = "PATH")]
    pub sensitive: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A manifests directory to watch (ignored with --git).
    #[arg(default_value = "jobs.d")]
    pub path: PathBuf,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub apply: ApplyArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,

    /// Quiet time after a file event before reading (editors write in bursts).
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    pub debounce: std::time::Duration,

    /// Git poll interval (plus up to 10% jitter).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Full re-plan against state, to catch anything missed.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_interval)]
    pub resync: std::time::Duration,

    /// Drift sweep interval; 0 turns sweeps off.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration_or_zero)]
    pub drift_interval: std::time::Duration,

    /// Percent of the hourly request limit drift sweeps may spend.
    #[arg(long, value_name = "PERCENT", default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub drift_budget: u8,

    /// What to do about drift found by sweeps.
    #[arg(long, value_enum, default_value_t = DriftArg::Warn)]
    pub drift: DriftArg,

    /// Address of the health, metrics and webhook listener, or `off`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8484")]
    pub listen: String,

    /// How long a run in progress may take to finish after SIGTERM.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,

    /// With a `postgres://` state, replicas on one namespace elect a
    /// leader: how often a standby tries to take over and the leader
    /// checks its session (and collects webhooks standbys relayed).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval)]
    pub failover_check: std::time::Duration,

    /// /healthz fails when a run has made no progress (no API answer, no
    /// step of its own) for this long: a hung read, a silent Git server.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_interval)]
    pub stall_timeout: std::time::Duration,

    /// Connections the listener serves at once; beyond it, a small lane
    /// serves probes only.
    #[arg(long, hide = true, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub listen_max_connections: u32,

    /// Time for a request head, and for an idle keep-alive connection.
    #[arg(long, hide = true, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    pub listen_header_timeout: std::time::Duration,

    /// Time for a webhook body.
    #[arg(long, hide = true, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    pub listen_body_timeout: std::time::Duration,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// A duration that must not be zero: a zero interval would busy-loop, and a
/// zero request timeout could never let a request complete.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!(
            "`{s}` is zero; give a positive duration such as 500ms, 90s or 10m"
        ));
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration, or `0` for "off".
pub fn parse_duration_or_zero(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftArg {
    Warn,
    Correct,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
    Markdown,
    /// GitHub Actions workflow commands (annotations), then the text plan.
    Github,
}

/// `500ms`, `90s`, `10m`, `1h`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration such as 500ms, 90s, 10m or 1h ({e})"))
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A manifest file, or a directory walked recursively for *.yaml / *.yml.
    #[arg(default_value = "jobs.d")]
    pub path: PathBuf,

    /// Output format (github: one workflow command per diagnostic, for
    /// annotations on a pull request).
    #[arg(long, value_enum, default_value_t = ValidateOutput::Text)]
    pub output: ValidateOutput,

    /// Project of manifests that do not name one.
    #[arg(
        long,
        env = "NFCRON_PROJECT",
        hide_env_values = true,
        value_name = "ID"
    )]
    pub project: Option<String>,

    /// Treat `${VAR}` references to unset variables as errors, not warnings.
    #[arg(long)]
    pub require_env: bool,

    /// Accept fields the schema does not know (the API may be newer than
    /// this nfcron) with a warning; misspellings of known fields stay errors.
    #[arg(long, env = "NFCRON_ALLOW_UNKNOWN_FIELDS")]
    pub allow_unknown_fields: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// `validate --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    Text,
    Json,
    /// GitHub Actions workflow commands (annotations).
    Github,
}
