//! Flags, environment and defaults resolved once into plain structs; the
//! commands see these, never clap's types.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::{self, Cli, Command};
use crate::render::Colour;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug)]
pub struct ValidateSettings {
    pub path: PathBuf,
    pub output: OutputFormat,
    pub project: Option<String>,
    pub require_env: bool,
    pub colour: Colour,
}

#[derive(Debug)]
pub enum Settings {
    Validate(ValidateSettings),
    Schema,
}

#[derive(Debug)]
pub struct Global {
    pub log_filter: Option<String>,
}

pub fn resolve(cli: Cli) -> (Global, Settings) {
    let global = Global {
        log_filter: cli.log_level.or_else(|| std::env::var("RUST_LOG").ok()),
    };
    let settings = match cli.command {
        Command::Validate(args) => Settings::Validate(ValidateSettings {
            path: args.path,
            output: output(args.output),
            project: args.project.filter(|p| !p.is_empty()),
            require_env: args.require_env,
            colour: Colour::detect(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ),
        }),
        Command::Schema => Settings::Schema,
    };
    (global, settings)
}

fn output(o: cli::Output) -> OutputFormat {
    match o {
        cli::Output::Text => OutputFormat::Text,
        cli::Output::Json => OutputFormat::Json,
    }
}
