//! `nfcron completions`, `nfcron man` and `nfcron --version`, through the
//! real binary.

use crate::common;

use std::process::Command;

use common::Workspace;

/// The subcommands `nfcron --help` lists (so a new one is checked too).
fn subcommands(ws: &Workspace) -> Vec<String> {
    let help = ws.nfcron(&["--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    let names: Vec<String> = help
        .stdout
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    for expected in ["validate", "reconcile", "watch", "completions", "man"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn bash_completion_parses_and_completes_every_subcommand() {
    let ws = Workspace::new();
    let names = subcommands(&ws);
    let run = ws.nfcron(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let script = ws.write("nfcron.bash", &run.stdout);
    for name in &names {
        assert!(
            run.stdout.contains(name.as_str()),
            "`{name}` is not in the script"
        );
    }
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Loaded, it completes `nfcron <TAB>` to the subcommands and
    // `nfcron reconcile --out<TAB>` to the flag.
    let complete = |words: &str, cword: usize| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _nfcron nfcron; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let offered = complete("nfcron ''", 1);
    for name in &names {
        assert!(
            offered.lines().any(|l| l == name),
            "`{name}` not offered: {offered}"
        );
    }
    // After a subcommand, its own flags.
    let offered = complete("nfcron reconcile --out", 2);
    for flag in ["--output", "--dry-run", "--detailed-exitcode"] {
        assert!(offered.lines().any(|l| l == flag), "{flag}: {offered}");
    }
    assert!(
        !offered.lines().any(|l| l == "--listen"),
        "watch's flag: {offered}"
    );

    for shell in ["zsh", "fish"] {
        let run = ws.nfcron(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for name in &names {
            assert!(run.stdout.contains(name.as_str()), "{shell}: `{name}`");
        }
        if have(shell) {
            let script = ws.write(&format!("nfcron.{shell}"), &run.stdout);
            let check = Command::new(shell)
                .arg("-n")
                .arg(&script)
                .output()
                .expect(shell);
            assert!(check.status.success(), "{shell} -n");
        }
    }
    let bad = ws.nfcron(&["completions", "tcsh"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("bash"), "{}", bad.stderr);
}

#[test]
fn man_page_is_roff_and_names_every_subcommand_and_flag() {
    let ws = Workspace::new();
    let names = subcommands(&ws);
    let run = ws.nfcron(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(".TH"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")));
    for name in &names {
        assert!(
            run.stdout
                .contains(&format!(".SH \"NFCRON {}\"", name.to_uppercase())),
            "no section for `{name}`"
        );
    }
    // Subcommand flags are documented (roff escapes the hyphens).
    for flag in ["detailed", "dry", "output", "listen"] {
        assert!(run.stdout.contains(flag), "`{flag}` missing");
    }
    // `man` renders it without complaint when it is installed.
    if have("groff") {
        let page = ws.write("nfcron.1", &run.stdout);
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output()
            .expect("groff");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
    }
}

#[test]
fn version_names_the_commit_of_head() {
    let ws = Workspace::new();
    let run = ws.nfcron(&["--version"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // What build.rs would have found now (the binary is rebuilt when HEAD
    // moves).
    let expected = match std::env::var("NFCRON_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8(o.stdout)
                    .expect("utf-8")
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "unknown".into()),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        assert_eq!(expected.len(), 40, "CI runs in a clone: HEAD is known");
    }
    assert_eq!(
        run.stdout.trim(),
        format!("nfcron {} (commit {expected})", env!("CARGO_PKG_VERSION"))
    );
    // Subcommands say the same.
    let sub = ws.nfcron(&["validate", "--version"]);
    assert_eq!(
        sub.stdout.trim(),
        format!("nfcron-validate {}", &run.stdout.trim()["nfcron ".len()..])
    );
}
