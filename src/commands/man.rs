//! `nfcron man`: the manual page (roff) on stdout, generated from the clap
//! definition (clap_mangen): `nfcron(1)` with one section per subcommand,
//! its flags included. `nfcron man | man -l -` reads it.

use std::io::Write;

use clap::CommandFactory;

use crate::{Error, ExitStatus};

pub fn run(out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let cli = crate::cli::Cli::command();
    let mut page = Vec::new();
    render(&cli, &mut page).map_err(Error::Output)?;
    out.write_all(th_first(&String::from_utf8_lossy(&page)).as_bytes())
        .map_err(Error::Output)?;
    Ok(ExitStatus::Success)
}

/// The top page (name, synopsis, options, the list of subcommands,
/// version), then each subcommand's synopsis, description and options.
fn render(cli: &clap::Command, page: &mut Vec<u8>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cli.clone());
    man.render(page)?;
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("nfcron {}", sub.get_name());
        let has_options = sub.get_arguments().any(|a| !a.is_hide_set());
        let sub = sub
            .clone()
            .bin_name(name.clone())
            .display_name(name.clone());
        writeln!(page, ".SH \"{}\"", name.to_uppercase())?;
        let man = clap_mangen::Man::new(sub);
        man.render_synopsis_section(page)?;
        man.render_description_section(page)?;
        if has_options {
            man.render_options_section(page)?;
        }
    }
    Ok(())
}

/// The page with its `.TH` line first: roff (clap_mangen) opens with the
/// string definitions for quotes (`.ie`/`.el`), and `man` and tools that
/// sniff a page by its first line expect the title there. The definitions
/// still come before any text that uses them.
fn th_first(page: &str) -> String {
    let mut lines: Vec<&str> = page.lines().collect();
    if let Some(i) = lines.iter().position(|l| l.starts_with(".TH ")) {
        let th = lines.remove(i);
        lines.insert(0, th);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}
