//! `pinpipe cluster scheduler` and `pinpipe cluster executor`: the processes of an Apache
//! Ballista cluster that `pinpipe batch --cluster` reads and cleans on.

use std::time::Duration;

use anyhow::Context;
use pinpipe_cluster::executor::ExecutorConfig;
use pinpipe_cluster::scheduler::SchedulerConfig;

use crate::cli::{ClusterCommand, ClusterExecutorArgs, ClusterSchedulerArgs};

/// Runs a cluster process until Ctrl-C or SIGTERM.
pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    let process = async {
        match cmd {
            ClusterCommand::Scheduler(a) => scheduler(a).await,
            ClusterCommand::Executor(a) => executor(a).await,
        }
    };
    tokio::select! {
        r = process => r,
        () = super::serve::shutdown_signal() => Ok(()),
    }
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim())
        .with_context(|| format!("{flag} must be a duration such as 30s or 2m, not {text:?}"))
}

async fn scheduler(a: ClusterSchedulerArgs) -> anyhow::Result<()> {
    let config = SchedulerConfig {
        bind: a.bind,
        external_host: a.external_host,
        executor_timeout: duration("--executor-timeout", &a.executor_timeout)?,
    };
    config.validate()?;
    eprintln!("pinpipe cluster scheduler listening on {} (batch --cluster df://{})", a.bind, a.bind);
    pinpipe_cluster::scheduler::run(&config).await.with_context(|| format!("the scheduler on {} stopped", a.bind))
}

async fn executor(a: ClusterExecutorArgs) -> anyhow::Result<()> {
    let scheduler = pinpipe_cluster::SchedulerAddr::parse(&a.scheduler).context("--scheduler")?;
    let config = ExecutorConfig {
        scheduler: scheduler.clone(),
        bind_host: a.bind,
        external_host: a.external_host,
        flight_port: a.port,
        grpc_port: a.grpc_port,
        slots: a.slots.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        work_dir: a.work_dir,
        heartbeat: duration("--heartbeat", &a.heartbeat)?,
    };
    config.validate()?;
    eprintln!("pinpipe cluster executor joining {scheduler} with {} slots", config.slots);
    pinpipe_cluster::executor::run(&config).await.with_context(|| format!("the executor of {scheduler} stopped"))
}
