//! Runs the real `nfcron` binary in a temporary directory (ripgrep's
//! `tests/util.rs` habit): every integration test goes through the same
//! process boundary, flags and exit codes a user sees.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Copies the bundled `jobs.d` into the workspace.
    pub fn with_bundled_jobs(self) -> Workspace {
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.d");
        for entry in std::fs::read_dir(bundled).expect("jobs.d") {
            let entry = entry.expect("entry");
            let name = entry.file_name().into_string().expect("utf-8 name");
            self.write(
                &format!("jobs.d/{name}"),
                std::fs::read(entry.path()).expect("read"),
            );
        }
        self
    }

    pub fn nfcron(&self, args: &[&str]) -> Run {
        self.nfcron_env(args, &[])
    }

    pub fn nfcron_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
        cmd.args(args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("NFCRON_")
                || k.starts_with("NORTHFLANK_")
                || k.starts_with("REPORT_")
                || k == "RUST_LOG"
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run nfcron");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
