//! `pinpipe schedule` and `pinpipe runs` with the real batch job: a run triggered now writes its
//! results and is listed; a failing batch is retried with the configured delay and the exit code
//! says so; a run in progress (its lock held by another process) refuses a second trigger;
//! misuse gets a message.

use serde_json::Value;

use crate::harness::Workdir;

fn history(w: &Workdir) -> Vec<Value> {
    w.ok(&["runs", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp_millis()
}

#[test]
fn trigger_now_runs_the_batch_job_and_the_history_lists_it() {
    let w = Workdir::new();
    assert!(w.ok(&["runs"]).starts_with("no runs yet"));
    let out = w.ok(&["schedule", "--trigger-now"]);
    assert!(out.contains("succeeded"), "{out}");
    let runs = history(&w);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let r = &runs[0];
    assert_eq!(
        (r["trigger"].as_str(), r["attempt"].as_u64(), r["outcome"].as_str()),
        (Some("manual"), Some(1), Some("success"))
    );
    assert_eq!(
        r["logical_date"].as_str().unwrap(),
        &r["run_id"].as_str().unwrap()["manual__".len().."manual__".len() + 10]
    );
    // The output folder is the batch job's run folder, with its results.
    let folder = w.path().join(r["output"].as_str().unwrap());
    assert!(folder.join("summary.json").is_file() && folder.join("report.html").is_file(), "{}", folder.display());
    assert!(ms(&r["start"]) <= ms(&r["end"]));
    let table = w.ok(&["runs"]);
    assert!(table.contains(r["run_id"].as_str().unwrap()) && table.contains("success"), "{table}");
}

#[test]
fn a_failing_batch_is_retried_with_the_delay_and_the_exit_code_says_so() {
    let w = Workdir::new();
    // A store that cannot be opened: a regular file where the directory should be.
    let file = w.path().join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let url = format!("file://{}", file.display());
    let r = w.run_with(
        &["schedule", "--trigger-now", "--retries", "3", "--retry-delay", "300ms"],
        &[("PINPIPE_STORE__URL", &url)],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("failed after 4 attempts"), "{}", r.stderr);
    let runs = history(&w);
    assert_eq!(runs.iter().map(|r| r["attempt"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(
        runs.iter().all(|r| r["outcome"] == "failed" && r["error"].as_str().unwrap().contains("not-a-directory")),
        "{runs:?}"
    );
    assert!(runs.iter().all(|r| r["run_id"] == runs[0]["run_id"]));
    for pair in runs.windows(2) {
        let gap = ms(&pair[1]["start"]) - ms(&pair[0]["end"]);
        assert!(gap >= 300, "attempts only {gap} ms apart");
    }
    assert_eq!(w.ok(&["runs", "--limit", "2", "--json"]).lines().count(), 2);
}

#[test]
fn a_run_in_progress_refuses_a_second_trigger() {
    let w = Workdir::new();
    // Another process's run holds the lock.
    let dir = w.path().join(".pinpipe/schedule");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join("run.lock")).unwrap();
    lock.try_lock().unwrap();
    let err = w.fails(&["schedule", "--trigger-now"], &[]);
    assert!(err.contains("already in progress"), "{err}");
    assert!(history(&w).is_empty());
    drop(lock);
    w.ok(&["schedule", "--trigger-now"]);
    assert_eq!(history(&w).len(), 1);
}

#[test]
fn misuse_gets_a_message_and_a_failing_exit_code() {
    let w = Workdir::new();
    let err = w.fails(&["schedule", "--cron", "every day"], &[]);
    assert!(err.contains("schedule.cron") && err.contains("@daily"), "{err}");
    let err = w.fails(&["schedule", "--retry-delay", "soon"], &[]);
    assert!(err.contains("schedule.retry_delay"), "{err}");
    let r = w.run(&["runs", "--limit", "many"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// Loads `deploy/airflow` with Airflow's own `DagBag` and reports the DAG's schedule, policy,
/// task and the task's command rendered for a run.
const DAG_CHECK: &str = r#"
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("pinpipe_batch")
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dags)}
if dag is not None:
    t = dag.get_task("batch")
    out.update(
        schedule=str(getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)),
        catchup=dag.catchup,
        max_active_runs=dag.max_active_runs,
        tasks=[x.task_id for x in dag.tasks],
        retries=t.retries,
        retry_delay_s=t.retry_delay.total_seconds(),
        command=t.render_template(t.bash_command, {"ds": "2026-11-24", "run_id": "scheduled__2026-11-24T00:00:00+00:00"}),
    )
print(json.dumps(out))
"#;

/// The Airflow DAG has the scheduler's schedule and policy, loads without import errors in
/// Airflow's DagBag (the Python of a virtualenv with apache-airflow, named by
/// `TEST_PINPIPE_AIRFLOW_PYTHON`, which `.ci/run` installs), and the command it renders runs
/// the real batch job.
#[test]
fn the_airflow_dag_loads_in_airflow_with_the_schedulers_policy() {
    let Some(python) = pinpipe_testkit::service_url("TEST_PINPIPE_AIRFLOW_PYTHON") else { return };
    let dags = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/airflow");
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&python)
        .args(["-c", DAG_CHECK])
        .arg(&dags)
        .env("AIRFLOW_HOME", home.path())
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("PINPIPE_BIN", env!("CARGO_BIN_EXE_pinpipe"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["errors"], serde_json::json!({}), "import errors: {v}");
    assert_eq!(v["dag_ids"], serde_json::json!(["pinpipe_batch"]));
    assert_eq!(v["schedule"], "@daily");
    assert_eq!((v["catchup"].as_bool(), v["max_active_runs"].as_u64()), (Some(false), Some(1)));
    assert_eq!(v["tasks"], serde_json::json!(["batch"]));
    assert_eq!((v["retries"].as_u64(), v["retry_delay_s"].as_f64()), (Some(3), Some(120.0)));
    // The same policy as `pinpipe schedule`'s defaults.
    let config = pinpipe_schedule::ScheduleConfig::default();
    assert_eq!((config.cron.as_str(), config.retries, config.retry_delay.as_str()), ("@daily", 3, "2m"));
    // The rendered command runs the batch job for the run's date.
    let command = v["command"].as_str().unwrap();
    assert!(command.contains("batch --quiet --date 2026-11-24 --run-id"), "{command}");
    let w = Workdir::new();
    let run = std::process::Command::new("sh").args(["-c", command]).current_dir(w.path()).output().unwrap();
    assert!(run.status.success(), "{command}: {}", String::from_utf8_lossy(&run.stderr));
    let folders: Vec<String> = std::fs::read_dir(w.path().join(".pinpipe/results"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(folders.len(), 1);
    assert!(folders[0].starts_with("2026-11-24_airflow-scheduled-2026-11-24T"), "{folders:?}");
}
