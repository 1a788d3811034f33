//! `nfcron completions SHELL`: a completion script for the shell, on
//! stdout, generated from the clap definition (clap_complete), so that it
//! never lags behind the flags.

use std::io::Write;

use clap::CommandFactory;

use crate::settings::Shell;
use crate::{Error, ExitStatus};

pub fn run(shell: Shell, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::cli::Cli::command(),
        "nfcron",
        &mut script,
    );
    out.write_all(&script).map_err(Error::Output)?;
    Ok(ExitStatus::Success)
}
