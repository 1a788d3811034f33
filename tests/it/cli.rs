//! Exit codes a pipeline can trust, for the command line itself.

use crate::common;

use common::Workspace;

#[test]
fn help_and_version_exit_zero() {
    let ws = Workspace::new();
    for args in [
        &["--help"][..],
        &["--version"],
        &["validate", "--help"],
        &["schema", "--help"],
    ] {
        let run = ws.nfcron(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(!run.stdout.is_empty(), "{args:?} printed nothing");
    }
    assert!(ws.nfcron(&["--version"]).stdout.starts_with("nfcron "));
}

#[test]
fn usage_errors_exit_one_not_two() {
    let ws = Workspace::new();
    for args in [
        &["frobnicate"][..],
        &["validate", "--no-such-flag"],
        &["validate", "--output", "yaml"],
        &[],
    ] {
        let run = ws.nfcron(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "{args:?} wrote to stdout: {}",
            run.stdout
        );
        assert!(!run.stderr.is_empty(), "{args:?} said nothing on stderr");
    }
}

#[test]
fn no_colour_when_not_a_terminal() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", "kind: Job\n");
    let run = ws.nfcron(&["validate"]);
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
}
