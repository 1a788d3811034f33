//! What the benches share (each bench is its own target and takes this in
//! with `mod common;`): a child measured by wait4, and a live process's
//! `/proc/<pid>/status` fields.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `cmd` to its end: wall time, the child's peak RSS in KiB and its
/// exit code (-1 when a signal ended it).
// The child is reaped by wait4 (which std cannot do: it drops rusage).
#[allow(clippy::zombie_processes)]
pub fn run_measured(mut cmd: Command) -> (Duration, i64, i32) {
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn nfcron");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(reaped, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (elapsed, usage.ru_maxrss, code)
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field}"))
}
