//! Flags, environment and defaults resolved once into plain structs; the
//! commands see these, never clap's types.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{self, Cli, Command};
use crate::reconcile;
use crate::render::Colour;
use crate::secret::Token;

/// How `reconcile` prints its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    Markdown,
    /// GitHub Actions workflow commands, then the text plan.
    Github,
}

/// How `import` and `schedule` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticsFormat {
    Text,
    Json,
}

/// How `validate` prints its diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateFormat {
    Text,
    Json,
    /// GitHub Actions workflow commands.
    Github,
}

#[derive(Debug)]
pub struct ValidateSettings {
    pub path: PathBuf,
    pub output: ValidateFormat,
    pub project: Option<String>,
    pub require_env: bool,
    /// `--allow-unknown-fields` / `NFCRON_ALLOW_UNKNOWN_FIELDS`.
    pub allow_unknown_fields: bool,
    pub colour: Colour,
}

/// Where manifests come from.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    Dir(PathBuf),
    Git(crate::source::git::GitSource),
}

/// `nfcron watch`, resolved.
#[derive(Debug)]
pub struct WatchSettings {
    pub source: SourceSettings,
    /// `--notify`, `--github-status`.
    pub notify: crate::notifications::Config,
    /// What every run applies with (`dry_run` off; `refresh` off outside
    /// drift sweeps).
    pub reconcile: reconcile::Config,
    pub debounce: Duration,
    /// Git poll interval (plus up to 10% jitter).
    pub interval: Duration,
    pub resync: Duration,
    /// Zero: no drift sweeps.
    pub drift_interval: Duration,
    /// Percent of the hourly request limit drift sweeps may spend.
    pub drift_budget: u8,
    pub listen: Option<std::net::SocketAddr>,
    pub listener: crate::server::Limits,
    pub shutdown_timeout: Duration,
    /// `--failover-check`: replicas' leadership check (PostgreSQL state).
    pub failover_check: Duration,
    /// `/healthz` fails when a run is still for longer than this.
    pub stall_timeout: Duration,
    pub api: ApiSettings,
    /// `--log-format json`: the banner is a JSON line too.
    pub log_json: bool,
}

#[derive(Debug)]
pub struct ReconcileSettings {
    pub source: SourceSettings,
    /// `--notify`, `--github-status`.
    pub notify: crate::notifications::Config,
    /// `--base REF`: plan HEAD against REF in the current Git work tree.
    pub base: Option<String>,
    pub output: OutputFormat,
    pub detailed_exitcode: bool,
    /// `--dry-run`, `--prune`, `--state`, `--refresh`, ...: the run's.
    pub reconcile: reconcile::Config,
    pub api: ApiSettings,
    pub colour: Colour,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub url: String,
    /// From `--token-file` or `NORTHFLANK_API_TOKEN`; `None` means offline.
    pub token: Option<Token>,
    /// `--token-file`: `watch` reads it again before each run (and when it
    /// changes), so that a rotated secret is picked up without a restart.
    pub token_file: Option<PathBuf>,
    pub timeout: Duration,
    pub retry_max_time: Duration,
}

#[derive(Debug)]
pub struct ImportSettings {
    pub project: String,
    pub team: Option<String>,
    pub out: PathBuf,
    pub jobs: Vec<String>,
    pub state_path: PathBuf,
    /// `--state-namespace`.
    pub state_namespace: String,
    pub force: bool,
    pub all_fields: bool,
    /// Extra spec paths kept out of the state in clear (`--sensitive`).
    pub sensitive: Vec<String>,
    pub output: DiagnosticsFormat,
    pub api: ApiSettings,
}

/// `nfcron schedule`.
#[derive(Debug)]
pub struct ScheduleSettings {
    pub expr: String,
    /// `None`: now.
    pub after: Option<jiff::Timestamp>,
    pub count: usize,
    pub output: DiagnosticsFormat,
}

#[derive(Debug)]
pub enum Settings {
    Validate(ValidateSettings),
    Reconcile(ReconcileSettings),
    Import(ImportSettings),
    Watch(WatchSettings),
    Schema,
    Schedule(ScheduleSettings),
    Completions(Shell),
    Man,
    State(StateSettings),
}

/// The shell `nfcron completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `nfcron state ...`, resolved.
#[derive(Debug)]
pub enum StateSettings {
    List {
        state: PathBuf,
        namespace: String,
        output: DiagnosticsFormat,
    },
    Migrate {
        from: PathBuf,
        to: PathBuf,
        namespace: String,
    },
    Unlock {
        state: PathBuf,
        namespace: String,
        force: bool,
    },
}

#[derive(Debug)]
pub struct Global {
    pub log_filter: Option<String>,
    pub log_json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the token file {path}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {0} is empty")]
    EmptyTokenFile(PathBuf),
    #[error("the token file {0} is larger than 16 KiB; a token is one short line. Is it the right file?")]
    TokenFileTooLarge(PathBuf),
    #[error(transparent)]
    Token(#[from] crate::api::TokenProblem),
    #[error(transparent)]
    ApiUrl(#[from] crate::api::ConfigError),
    #[error("--listen `{0}` is not an address such as 127.0.0.1:8484 (or `off`)")]
    Listen(String),
    #[error(transparent)]
    GitUrl(#[from] crate::source::git::GitUrlError),
    #[error(transparent)]
    Notify(#[from] crate::notifications::deliver::TargetError),
    #[error(transparent)]
    GithubStatus(#[from] crate::notifications::github::ConfigError),
    #[error("--verify-signatures (or NFCRON_VERIFY_SIGNATURES) checks the signatures of Git commits: it needs --git URL")]
    VerifyWithoutGit,
    #[error(transparent)]
    Signers(#[from] crate::source::verify::LoadError),
    #[error("--state-namespace: {0}")]
    Namespace(String),
}

/// The longest `--state-namespace`: it is part of the tables' primary keys,
/// whose index entries PostgreSQL bounds (about 2,700 bytes).
pub const MAX_NAMESPACE: usize = 200;

/// A namespace: 1 to [`MAX_NAMESPACE`] characters, no control character
/// (it is shown in messages and log lines as it is). Checked before any
/// connection or lock; a refused one is shown escaped and cut.
fn namespace(raw: String) -> Result<String, SettingsError> {
    let refuse = |why: String| Err(SettingsError::Namespace(why));
    if raw.is_empty() {
        return refuse("a namespace cannot be empty".into());
    }
    let length = raw.chars().count();
    if length > MAX_NAMESPACE {
        return refuse(format!(
            "a namespace is at most {MAX_NAMESPACE} characters; this one has {length}"
        ));
    }
    if raw.chars().any(char::is_control) {
        let shown: String = raw.chars().flat_map(char::escape_debug).collect();
        return refuse(format!(
            "a namespace holds no control characters: \"{shown}\""
        ));
    }
    Ok(raw)
}

pub fn resolve(cli: Cli) -> Result<(Global, Settings), SettingsError> {
    let global = Global {
        log_filter: cli.log_level.or_else(|| std::env::var("RUST_LOG").ok()),
        log_json: cli.log_format == cli::LogFormat::Json,
    };
    let colour = Colour::detect(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let settings = match cli.command {
        Command::Validate(args) => Settings::Validate(validate(args, colour)),
        Command::Import(args) => Settings::Import(import(args)?),
        Command::Watch(args) => Settings::Watch(watch(args, global.log_json)?),
        Command::Reconcile(args) => Settings::Reconcile(reconcile(args, colour)?),
        Command::Schema => Settings::Schema,
        Command::Completions(args) => Settings::Completions(match args.shell {
            cli::ShellArg::Bash => Shell::Bash,
            cli::ShellArg::Zsh => Shell::Zsh,
            cli::ShellArg::Fish => Shell::Fish,
        }),
        Command::Man => Settings::Man,
        Command::State(command) => Settings::State(state(command)?),
        Command::Schedule(args) => Settings::Schedule(ScheduleSettings {
            expr: args.expr,
            after: args.after,
            count: usize::from(args.count),
            output: diagnostics_format(args.output),
        }),
    };
    Ok((global, settings))
}

fn validate(args: cli::ValidateArgs, colour: Colour) -> ValidateSettings {
    ValidateSettings {
        path: args.path,
        output: match args.output {
            cli::ValidateOutput::Text => ValidateFormat::Text,
            cli::ValidateOutput::Json => ValidateFormat::Json,
            cli::ValidateOutput::Github => ValidateFormat::Github,
        },
        project: args.project.filter(|p| !p.is_empty()),
        require_env: args.require_env,
        allow_unknown_fields: args.allow_unknown_fields,
        colour,
    }
}

fn import(args: cli::ImportArgs) -> Result<ImportSettings, SettingsError> {
    Ok(ImportSettings {
        api: api(args.api)?,
        project: args.project,
        team: args.team,
        out: args.out,
        jobs: args.jobs,
        state_path: args.state.state,
        state_namespace: namespace(args.state.state_namespace)?,
        force: args.force,
        all_fields: args.all_fields,
        sensitive: args.sensitive,
        output: diagnostics_format(args.output),
    })
}

fn reconcile(args: cli::ReconcileArgs, colour: Colour) -> Result<ReconcileSettings, SettingsError> {
    let api = api(args.api)?;
    let notify = notify(args.notify, args.source.git.as_deref(), api.token.as_ref())?;
    let fetched = args.source.git.is_some();
    let source = source(args.path, args.source)?;
    let config = reconcile::Config {
        dry_run: args.dry_run,
        refresh: args.refresh,
        max_reads: args.max_reads,
        retry_rejected: args.retry_rejected,
        ..reconcile_config(args.apply, args.drift, fetched)?
    };
    Ok(ReconcileSettings {
        api,
        notify,
        source,
        reconcile: config,
        base: args.base,
        output: match args.output {
            cli::PlanOutput::Text => OutputFormat::Text,
            cli::PlanOutput::Json => OutputFormat::Json,
            cli::PlanOutput::Markdown => OutputFormat::Markdown,
            cli::PlanOutput::Github => OutputFormat::Github,
        },
        detailed_exitcode: args.detailed_exitcode,
        colour,
    })
}

fn watch(args: cli::WatchArgs, log_json: bool) -> Result<WatchSettings, SettingsError> {
    let api = api(args.api)?;
    let notify = notify(args.notify, args.source.git.as_deref(), api.token.as_ref())?;
    let fetched = args.source.git.is_some();
    let source = source(args.path, args.source)?;
    Ok(WatchSettings {
        log_json,
        api,
        notify,
        source,
        // Drift sweeps turn `refresh` on and set their own read budget,
        // run by run.
        reconcile: reconcile_config(args.apply, args.drift, fetched)?,
        debounce: args.debounce,
        interval: args.interval,
        resync: args.resync,
        drift_interval: args.drift_interval,
        drift_budget: args.drift_budget,
        listen: match args.listen.as_str() {
            "off" => None,
            addr => Some(
                addr.parse()
                    .map_err(|_| SettingsError::Listen(addr.to_string()))?,
            ),
        },
        shutdown_timeout: args.shutdown_timeout,
        failover_check: args.failover_check,
        stall_timeout: args.stall_timeout,
        listener: crate::server::Limits {
            max_connections: args.listen_max_connections as usize,
            header_timeout: args.listen_header_timeout,
            body_timeout: args.listen_body_timeout,
        },
    })
}

/// What `reconcile` and `watch` share: an applying run of the flags in
/// `args`, reading live state only to adopt jobs the state lacks.
fn reconcile_config(
    args: cli::ApplyArgs,
    drift: cli::DriftArg,
    fetched: bool,
) -> Result<reconcile::Config, SettingsError> {
    Ok(reconcile::Config {
        dry_run: false,
        plan: crate::plan::Options {
            prune: args.prune,
            allow_empty: args.allow_empty,
            max_deletions: args.max_deletions,
        },
        default_project: args.project.filter(|p| !p.is_empty()),
        state_path: args.state.state,
        state_namespace: namespace(args.state.state_namespace)?,
        concurrency: usize::from(args.concurrency),
        sensitive: args.sensitive,
        refresh: false,
        drift: drift_mode(drift),
        max_reads: reconcile::DEFAULT_MAX_READS,
        fetched,
        retry_rejected: false,
        allow_unknown_fields: args.allow_unknown_fields,
    })
}

fn state(command: cli::StateCommand) -> Result<StateSettings, SettingsError> {
    Ok(match command {
        cli::StateCommand::List(args) => StateSettings::List {
            state: args.at.state,
            namespace: namespace(args.at.state_namespace)?,
            output: diagnostics_format(args.output),
        },
        cli::StateCommand::Migrate(args) => StateSettings::Migrate {
            from: args.from,
            to: args.to,
            namespace: namespace(args.state_namespace)?,
        },
        cli::StateCommand::Unlock(args) => StateSettings::Unlock {
            state: args.at.state,
            namespace: namespace(args.at.state_namespace)?,
            force: args.force,
        },
    })
}

fn diagnostics_format(output: cli::Output) -> DiagnosticsFormat {
    match output {
        cli::Output::Text => DiagnosticsFormat::Text,
        cli::Output::Json => DiagnosticsFormat::Json,
    }
}

fn drift_mode(arg: cli::DriftArg) -> crate::plan::DriftMode {
    match arg {
        cli::DriftArg::Warn => crate::plan::DriftMode::Warn,
        cli::DriftArg::Correct => crate::plan::DriftMode::Correct,
        cli::DriftArg::Off => crate::plan::DriftMode::Off,
    }
}

/// Receivers and GitHub statuses; a receiver's URL is checked here, so a
/// bad one stops the command before anything runs.
fn notify(
    args: cli::NotifyArgs,
    git_url: Option<&str>,
    api_token: Option<&Token>,
) -> Result<crate::notifications::Config, SettingsError> {
    use crate::notifications::{deliver, deliver::Target, github};
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let listed = match args.notify.is_empty() {
        true => env("NFCRON_NOTIFY").map_or_else(Vec::new, |l| deliver::split_list(&l)),
        false => args.notify,
    };
    let targets = listed
        .iter()
        .enumerate()
        .map(|(i, raw)| Target::parse(i + 1, raw))
        .collect::<Result<Vec<_>, _>>()?;
    let github = match args.github_status {
        true => Some(github::Config::resolve(args.github_repo, env, git_url)?),
        false => None,
    };
    let secret = env("NFCRON_NOTIFY_SECRET").and_then(|s| Token::new(&s));
    let hidden = [
        api_token,
        secret.as_ref(),
        github.as_ref().map(|g| &g.token),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    Ok(crate::notifications::Config {
        targets,
        secret,
        github,
        commit: env("GITHUB_SHA"),
        hidden,
    })
}

fn source(path: PathBuf, args: cli::SourceArgs) -> Result<SourceSettings, SettingsError> {
    // Read once, at start: a file that cannot be used stops the command
    // before anything is fetched or applied.
    let signers = match (&args.verify_signatures, &args.git) {
        (None, _) => None,
        (Some(_), None) => return Err(SettingsError::VerifyWithoutGit),
        (Some(file), Some(_)) => Some(std::sync::Arc::new(crate::source::verify::Signers::load(
            file,
        )?)),
    };
    Ok(match args.git {
        None => SourceSettings::Dir(path),
        Some(url) => SourceSettings::Git(crate::source::git::GitSource {
            signers,
            // Refused here, like the API URL, in every command and mode.
            url: crate::source::git::check_url(&url).map(|()| url)?,
            branch: args.branch,
            subdir: args.git_path,
            cache: args.git_cache,
            timeout: args.git_timeout,
            auth: crate::source::git::GitAuth {
                token: std::env::var("NFCRON_GIT_TOKEN")
                    .ok()
                    .and_then(|t| Token::new(&t)),
                ssh_key: args.ssh_key,
                known_hosts: args.known_hosts,
                ssh_key_passphrase_file: args.ssh_key_passphrase_file,
            },
        }),
    })
}

/// The URL is checked here, token or not, so that a bad one is refused
/// the same way in every command and mode.
fn api(args: cli::ApiArgs) -> Result<ApiSettings, SettingsError> {
    crate::api::check_base_url(&args.api_url)?;
    Ok(ApiSettings {
        url: args.api_url,
        token: token(args.token_file.clone())?,
        token_file: args.token_file,
        timeout: args.timeout,
        retry_max_time: args.retry_max_time,
    })
}

impl ApiSettings {
    /// The token `--token-file` holds now; `None` without `--token-file`.
    pub fn reread_token(&self) -> Option<Result<Token, SettingsError>> {
        let path = self.token_file.clone()?;
        Some(token(Some(path)).and_then(|t| {
            t.ok_or_else(|| {
                SettingsError::EmptyTokenFile(self.token_file.clone().unwrap_or_default())
            })
        }))
    }

    /// The API client, when there is a token to use.
    pub fn client(&self) -> Result<Option<crate::api::Client>, crate::api::ConfigError> {
        let Some(token) = self.token.clone() else {
            return Ok(None);
        };
        crate::api::Client::new(crate::api::ClientConfig {
            base_url: self.url.clone(),
            token,
            timeout: self.timeout,
            retry: crate::api::RetryPolicy {
                max_time: self.retry_max_time,
                ..crate::api::RetryPolicy::default()
            },
        })
        .map(Some)
    }
}

/// `--token-file` wins over `NORTHFLANK_API_TOKEN`. The environment is read
/// here, not by clap, so that `--help` can never print the token. Surrounding
/// whitespace (a secret mount's trailing newline) is trimmed; anything else a
/// header cannot carry is refused, naming the source, never the token.
fn token(file: Option<PathBuf>) -> Result<Option<Token>, SettingsError> {
    const ENV: &str = "NORTHFLANK_API_TOKEN";
    let token = match file {
        Some(path) => {
            // Bounded: `--token-file /dev/zero` must not read forever.
            const MAX: u64 = 16 * 1024;
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| {
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX + 1), &mut bytes)
                })
                .map_err(|source| SettingsError::TokenFile {
                    path: path.clone(),
                    source,
                })?;
            if bytes.len() as u64 > MAX {
                return Err(SettingsError::TokenFileTooLarge(path));
            }
            let from = || format!("--token-file {}", path.display());
            let raw = String::from_utf8(bytes)
                .map_err(|_| crate::api::TokenProblem::NotUtf8 { from: from() })?;
            let token = Token::new(&raw).ok_or(SettingsError::EmptyTokenFile(path.clone()))?;
            crate::api::check_token(token.expose(), &from())?;
            token
        }
        None => match std::env::var(ENV) {
            Ok(raw) => match Token::new(&raw) {
                Some(token) => {
                    crate::api::check_token(token.expose(), ENV)?;
                    token
                }
                None => return Ok(None),
            },
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(crate::api::TokenProblem::NotUtf8 { from: ENV.into() }.into())
            }
        },
    };
    Ok(Some(token))
}
