//! wrk (Debian's `wrk`), the independent load generator beside our own: the same scenarios
//! against the same server, each request's body from a Lua script wrk loads. Used by
//! `pinpipe bench api` when `wrk` is on the `PATH`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// Whether `wrk` can be run here.
pub fn available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

/// One wrk scenario: `method path` with `body` (as `content_type`), `connections` keep-alive
/// connections on `threads` threads for `duration`.
pub struct Scenario<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Path.
    pub path: &'a str,
    /// Body and its content type, for a POST.
    pub body: Option<(&'a str, &'a [u8])>,
    /// Connections.
    pub connections: usize,
    /// wrk threads (1 leaves a core to the server on a 2-core machine).
    pub threads: usize,
    /// How long.
    pub duration: Duration,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Requests per second.
    pub rate: f64,
    /// Responses that were not 2xx/3xx, and socket errors.
    pub errors: u64,
}

/// Lua string literal of `bytes` (decimal escapes: any byte is safe).
fn lua_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03}")),
        }
    }
    s.push('"');
    s
}

/// Runs `scenario` against `addr`; `scratch` holds the script.
pub fn run(addr: SocketAddr, scenario: &Scenario<'_>, scratch: &std::path::Path) -> anyhow::Result<Measured> {
    let script = scratch.join("wrk-scenario.lua");
    let mut lua = format!("wrk.method = {}\n", lua_string(scenario.method.as_bytes()));
    if let Some((content_type, body)) = scenario.body {
        lua.push_str(&format!("wrk.headers[\"Content-Type\"] = {}\n", lua_string(content_type.as_bytes())));
        lua.push_str(&format!("wrk.body = {}\n", lua_string(body)));
    }
    std::fs::write(&script, lua).with_context(|| format!("writing {}", script.display()))?;
    let out = Command::new("wrk")
        .arg(format!("-t{}", scenario.threads.max(1)))
        .arg(format!("-c{}", scenario.connections.max(scenario.threads.max(1))))
        .arg(format!("-d{}s", scenario.duration.as_secs().max(1)))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}{}", scenario.path))
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    parse(&text)
}

/// Reads wrk's report: `Requests/sec:`, and the non-2xx and socket error lines.
fn parse(text: &str) -> anyhow::Result<Measured> {
    let field = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(str::trim));
    let rate = field("Requests/sec:")
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk's report: {text}"))?;
    let mut errors = field("Non-2xx or 3xx responses:").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    if let Some(socket) = field("Socket errors:") {
        // "connect 0, read 0, write 0, timeout 0"
        errors += socket.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
    }
    Ok(Measured { rate, errors })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_wrk_reports() {
        let report = "Running 5s test @ http://127.0.0.1:1/healthz\n  1 threads and 64 connections\n  \
                      Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   761.48us  \
                      257.82us   6.34ms   81.44%\n  421012 requests in 5.00s, 51.39MB read\n  Socket errors: \
                      connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  \
                      84193.12\nTransfer/sec:     10.28MB\n";
        let m = parse(report).unwrap();
        assert!((m.rate - 84193.12).abs() < 1e-6);
        assert_eq!(m.errors, 7);
        assert!(parse("nothing").is_err());
    }

    #[test]
    fn lua_strings_carry_any_byte() {
        assert_eq!(lua_string(b"a\"b\\c\n\xff"), "\"a\\\"b\\\\c\\010\\255\"");
    }
}
