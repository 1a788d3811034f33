//! The command line, as clap types. Nothing here travels past
//! [`settings`](crate::settings), which resolves it into plain structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "nfcron",
    version,
    about = "Keeps Northflank cron jobs in step with manifests kept in Git",
    propagate_version = true
)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (error, warn, info, debug, trace,
    /// or a tracing filter); RUST_LOG is read when this is not given.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against the API's reference without sending anything.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the manifest format (for editors).
    Schema,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A manifest file, or a directory walked recursively for *.yaml / *.yml.
    #[arg(default_value = "jobs.d")]
    pub path: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Project of manifests that do not name one.
    #[arg(long, env = "NFCRON_PROJECT", value_name = "ID")]
    pub project: Option<String>,

    /// Treat `${VAR}` references to unset variables as errors, not warnings.
    #[arg(long)]
    pub require_env: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}
