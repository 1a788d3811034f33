//! nfcron keeps Northflank cron jobs in step with manifests kept in Git.
//!
//! The modules are the pipeline: `source` (where manifests come from) ->
//! `manifest` (YAML to checked job specs) -> `render` (what people and
//! machines read). `cli` and `settings` parse and resolve the command line;
//! `commands` runs one subcommand each. See ARCHITECTURE.md.

pub mod api;
pub mod apply;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod errors;
pub mod import;
pub mod live;
pub mod manifest;
pub mod metrics;
pub mod net;
pub mod notifications;
pub mod parallel;
pub mod plan;
pub mod reconcile;
pub mod registry;
pub mod remote;
pub mod render;
pub mod secret;
pub mod server;
pub mod settings;
pub mod source;
pub mod state;
pub mod status;
pub mod store;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

/// How a run ended; the process exit code. Documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything asked for succeeded.
    Success = 0,
    /// 1: any error: invalid manifest, failed job, bad flags, I/O.
    Failure = 1,
    /// 2: success with changes (pending or applied), only when asked for
    /// with `--detailed-exitcode`.
    Changes = 2,
}

/// Errors that end a command. Problems with manifests are not errors but
/// diagnostics: they are reported and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(transparent)]
    Reconcile(#[from] reconcile::ReconcileError),
    #[error(transparent)]
    ApiConfig(#[from] api::ConfigError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Api(#[from] api::ApiError),
    #[error(transparent)]
    Git(#[from] source::git::GitError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `args`, runs the command, and says how it ended. Output goes to
/// stdout, diagnostics and errors to stderr.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitStatus {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitStatus::Success
                }
                _ => ExitStatus::Failure,
            };
        }
    };
    let json = cli.log_format == cli::LogFormat::Json;
    let github = github_output(&cli);
    let (global, settings) = match settings::resolve(cli) {
        Ok(resolved) => resolved,
        Err(e) => {
            report_error(&Error::from(e), json, github);
            return ExitStatus::Failure;
        }
    };
    // The sidecar reports what it did at info; one-shot commands keep
    // stderr for warnings and errors.
    let default_level = match &settings {
        settings::Settings::Watch(_) => "info",
        _ => "warn",
    };
    init_logging(
        global.log_filter.as_deref(),
        default_level,
        global.log_json,
        github,
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match &settings {
        settings::Settings::Validate(s) => commands::validate::run(s, &mut out),
        settings::Settings::Reconcile(s) => commands::reconcile::run(s, &mut out),
        settings::Settings::Import(s) => commands::import::run(s, &mut out),
        settings::Settings::Watch(s) => commands::watch::run(s),
        settings::Settings::Schema => commands::schema::run(&mut out),
        settings::Settings::Schedule(s) => commands::schedule::run(s, &mut out),
        settings::Settings::Completions(shell) => commands::completions::run(*shell, &mut out),
        settings::Settings::Man => commands::man::run(&mut out),
        settings::Settings::State(s) => commands::state::run(s, &mut out),
    };
    let _ = out.flush();
    match result {
        Ok(status) => status,
        Err(e) => {
            report_error(&e, global.log_json, github);
            ExitStatus::Failure
        }
    }
}

/// Whether stdout carries GitHub workflow commands: then nothing else the
/// process writes, on stdout or stderr, may read as one.
fn github_output(cli: &cli::Cli) -> bool {
    match &cli.command {
        cli::Command::Validate(args) => args.output == cli::ValidateOutput::Github,
        cli::Command::Reconcile(args) => args.output == cli::PlanOutput::Github,
        _ => false,
    }
}

/// stderr, through `render::github::inert` when stdout is GitHub workflow
/// commands. A log event and an error report are each one `write`, so
/// every line is judged whole.
struct Stderr {
    github: bool,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.github {
            let text = render::github::inert(&String::from_utf8_lossy(buf));
            std::io::stderr().write_all(text.as_bytes())?;
        } else {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `error: ...` then one `caused by: ...` per source; under
/// `--log-format json` one object shaped as the log events, with the causes
/// in `causes`, so that every stderr line is JSON.
fn report_error(e: &dyn std::error::Error, json: bool, github: bool) {
    let mut stderr = Stderr { github };
    if json {
        let mut causes = Vec::new();
        let mut source = e.source();
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        let line = serde_json::json!({
            "timestamp": jiff::Timestamp::now().to_string(),
            "level": "ERROR",
            "message": e.to_string(),
            "causes": causes,
            "target": "nfcron",
        });
        let _ = stderr.write_all(format!("{line}\n").as_bytes());
        return;
    }
    let mut text = format!("error: {e}\n");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!("  caused by: {cause}\n"));
        source = cause.source();
    }
    let _ = stderr.write_all(text.as_bytes());
}

fn init_logging(filter: Option<&str>, default_level: &str, json: bool, github: bool) {
    // Other crates' logs stay at warn unless a filter names them: their
    // trace output is not ours to vouch for.
    let filter = match filter {
        Some(f) if !f.contains('=') && !f.contains(',') => format!("warn,nfcron={f}"),
        Some(f) => f.to_string(),
        None => format!("warn,nfcron={default_level}"),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The PostgreSQL client logs each statement with its parameters at
    // debug level, and one of them is the namespace's HMAC key: never
    // below info, whatever the filter says (these override its
    // directives for the same targets).
    let filter = ["tokio_postgres=info", "postgres=info"]
        .into_iter()
        .fold(filter, |f, d| {
            f.add_directive(d.parse().expect("a valid directive"))
        });
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour && !json)
        .with_writer(move || Stderr { github });
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
