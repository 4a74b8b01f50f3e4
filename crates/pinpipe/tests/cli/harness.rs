//! Runs the real `pinpipe` binary in a temporary working directory with a clean environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pinpipe_model::Post;

/// A temporary working directory to run pinpipe in.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

/// What a finished run printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `pinpipe` command in this directory, with no `PINPIPE_*` variables inherited.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pinpipe"));
        c.args(args).current_dir(self.path());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PINPIPE_") {
                c.env_remove(k);
            }
        }
        c
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let Output { status, stdout, stderr } = c.output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "pinpipe {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Runs and expects failure with exit code 1 and a single `error:` line first.
    pub fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let r = self.run_with(args, env);
        assert_eq!(r.code, 1, "pinpipe {args:?} should fail with 1:\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
        for l in r.stderr.lines().skip(1) {
            assert!(l.starts_with("  caused by: "), "extra output line {l:?} in\n{}", r.stderr);
        }
        r.stderr
    }

    /// `pinpipe source export` parsed.
    pub fn export(&self, extra: &[&str]) -> Vec<Post> {
        let mut args = vec!["source"];
        args.extend_from_slice(extra);
        args.push("export");
        self.ok(&args).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// The real classic CSV files kept in the repository (`data/db_data`).
pub fn db_data() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/db_data");
    assert!(p.join("user_data.csv").is_file(), "real CSV data not found at {}", p.display());
    p
}
