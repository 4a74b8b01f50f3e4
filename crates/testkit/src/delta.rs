//! Reads Delta tables with an independent reader, the `deltalake` Python package (delta-rs's
//! Python build, with pyarrow), which `.ci/run` installs.

use serde_json::Value;

const READ_DELTA_PY: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for path in sys.argv[1:]:
    dt = DeltaTable(path)
    t = dt.to_pyarrow_table()
    rows = sorted(t.to_pylist(), key=lambda r: r["ind"])
    for r in rows:
        for k, v in r.items():
            if hasattr(v, "isoformat"):
                r[k] = v.isoformat()
    out[path.rstrip("/").rsplit("/", 1)[-1]] = {"version": dt.version(), "columns": t.column_names, "rows": rows}
print(json.dumps(out), flush=True)
# deltalake 1.6 with pyarrow 26 aborts in C++ at interpreter exit about half of the time
# ("terminate called without an active exception"), after the work is done: skip the finaliser.
os._exit(0)
"#;

/// Reads the tables at `paths` (local directories) with Python `deltalake`: a JSON object keyed
/// by each directory's last component, with `version`, `columns` and `rows` (sorted by `ind`,
/// timestamps as ISO-8601). `None` (test skipped) when Python `deltalake`/`pyarrow` is missing.
///
/// # Panics
/// When Python is missing but `TEST_PINPIPE_REQUIRE_SERVERS=1`, or the reader fails.
pub fn read_tables(paths: &[String]) -> Option<Value> {
    let python_ok = std::process::Command::new("python3")
        .args(["-c", "import deltalake, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        assert!(
            std::env::var("TEST_PINPIPE_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "python3 with deltalake and pyarrow is required"
        );
        eprintln!("note: python deltalake/pyarrow missing; skipping");
        return None;
    }
    let py = std::process::Command::new("python3").arg("-c").arg(READ_DELTA_PY).args(paths).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    Some(serde_json::from_slice(&py.stdout).unwrap())
}
