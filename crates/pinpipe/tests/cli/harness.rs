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

/// A `pinpipe serve` child process; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// Everything it printed on stdout so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `pinpipe serve --listen 127.0.0.1:0` in `w` with extra environment variables.
    pub fn start(w: &Workdir, env: &[(&str, &str)]) -> Server {
        Self::start_under(w, env, &[])
    }

    /// Like [`start`](Self::start), run by `wrapper` (e.g. `prlimit --nofile=256`) when given.
    pub fn start_under(w: &Workdir, env: &[(&str, &str)], wrapper: &[&str]) -> Server {
        use std::io::BufRead;
        let mut cmd = w.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        if let Some((program, args)) = wrapper.split_first() {
            let mut wrapped = Command::new(program);
            wrapped.args(args).arg(cmd.get_program()).args(cmd.get_args()).current_dir(w.path());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            cmd = wrapped;
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|r| r.split(['/', ' ']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("serve printed {first:?}"));
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(first));
        let sink = std::sync::Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Server { child, addr, stdout }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> (i32, String) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        // Let the reader thread take the last lines.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let out = self.stdout.lock().unwrap().clone();
        (code, out)
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
