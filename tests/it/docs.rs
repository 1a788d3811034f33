//! The documentation held to the code: every subcommand and every long flag
//! of the clap definition appears in `docs/commands.md` under its command's
//! heading, README.md and ARCHITECTURE.md stay short enough to read, and
//! every relative Markdown link points at a file (and heading) that exists.
//! Plain files only: no binary is run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

const README_MAX: usize = 20 * 1024;
const ARCHITECTURE_MAX: usize = 15 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The text under the `## ` heading that starts with `title`, up to the
/// next `## ` heading.
fn section<'a>(doc: &'a str, title: &str) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        if let Some(heading) = line.strip_prefix("## ") {
            if let Some(start) = start {
                return Some(&doc[start..offset]);
            }
            let heading = heading.trim();
            if heading.starts_with(title)
                && heading[title.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == ' ' || c == '`')
            {
                start = Some(offset);
            }
        }
        offset += line.len();
    }
    start.map(|s| &doc[s..])
}

/// Whether `text` names `word` on its own: `--state` is not found in
/// `--state-namespace`, nor `nfcron man` in `nfcron manifest`.
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let joins =
            |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
        !joins(before) && !joins(after)
    })
}

/// Every long flag of `cmd` and of its subcommands, but clap's own
/// `--help` and `--version`.
fn long_flags(cmd: &clap::Command, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            if long != "help" && long != "version" {
                out.push(format!("--{long}"));
            }
        }
    }
    for sub in cmd.get_subcommands() {
        long_flags(sub, out);
    }
}

#[test]
fn every_subcommand_and_long_flag_is_documented_in_commands_md() {
    let doc = read(&root().join("docs/commands.md"));
    let cli = nfcron::cli::Cli::command();
    let mut missing = Vec::new();

    let global = section(&doc, "Global flags").unwrap_or("");
    if global.is_empty() {
        missing.push("a `## Global flags` section".to_string());
    }
    let mut flags = Vec::new();
    for arg in cli.get_arguments() {
        if let Some(long) = arg.get_long() {
            if long != "help" && long != "version" {
                flags.push(format!("--{long}"));
            }
        }
    }
    for flag in flags {
        if !mentions(global, &flag) {
            missing.push(format!("global flag {flag} under `## Global flags`"));
        }
    }

    let mut commands = 0;
    for sub in cli.get_subcommands() {
        commands += 1;
        let name = format!("nfcron {}", sub.get_name());
        let Some(text) = section(&doc, &format!("`{name}")) else {
            missing.push(format!("a `## `{name}`` section"));
            continue;
        };
        for nested in sub.get_subcommands() {
            let nested = format!("{name} {}", nested.get_name());
            if !mentions(text, &nested) {
                missing.push(format!("`{nested}` under `## `{name}``"));
            }
        }
        let mut flags = Vec::new();
        long_flags(sub, &mut flags);
        for flag in flags {
            if !mentions(text, &flag) {
                missing.push(format!("{flag} under `## `{name}``"));
            }
        }
    }
    assert!(
        commands >= 9,
        "the clap definition lists {commands} subcommands"
    );
    assert!(
        missing.is_empty(),
        "docs/commands.md does not document:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn readme_and_architecture_stay_within_their_sizes() {
    let readme = read(&root().join("README.md"));
    assert!(
        readme.len() <= README_MAX,
        "README.md is {} bytes, over {README_MAX}: move reference into docs/",
        readme.len()
    );
    for command in ["cargo run --release -- reconcile --dry-run", "cargo test"] {
        assert!(
            readme.contains(command),
            "README.md does not show `{command}`"
        );
    }
    let architecture = read(&root().join("ARCHITECTURE.md"));
    assert!(
        architecture.len() <= ARCHITECTURE_MAX,
        "ARCHITECTURE.md is {} bytes, over {ARCHITECTURE_MAX}",
        architecture.len()
    );
}

/// The anchors GitHub gives a file's headings: lower-cased, punctuation
/// dropped, spaces as hyphens, `-1`, `-2`, ... on repeats.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for line in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// The targets of inline links `[text](target)` outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            targets.push(rest[..end].to_string());
            rest = &rest[end + 1..];
        }
    }
    targets
}

#[test]
fn relative_links_in_the_docs_resolve() {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(
        docs.iter().any(|p| p.ends_with("docs/commands.md")),
        "docs/commands.md is missing"
    );
    files.extend(docs);

    let mut broken = Vec::new();
    for file in &files {
        let text = read(file);
        let shown = file.strip_prefix(&root).unwrap_or(file).display();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a file has a parent").join(path)
            };
            if !linked.exists() {
                broken.push(format!("{shown}: ({target}): no file {}", linked.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                if linked.extension().is_some_and(|e| e == "md")
                    && !anchors(&read(&linked)).contains(anchor)
                {
                    broken.push(format!("{shown}: ({target}): no heading #{anchor}"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}
