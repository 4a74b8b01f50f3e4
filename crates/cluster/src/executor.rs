//! `pinpipe cluster executor`: Ballista's executor with pinpipe's codec, so it runs the batch
//! job's cleaning tasks. It opens the input store itself: credentials come from its own
//! environment (the AWS default chain), never from the job.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

use crate::plan::codec;
use crate::{Error, Result, SchedulerAddr};

/// An executor's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// The scheduler to join.
    pub scheduler: SchedulerAddr,
    /// Address to listen on.
    pub bind_host: IpAddr,
    /// Host name the scheduler and other executors reach this one by (default: the bind address).
    pub external_host: Option<String>,
    /// Port of the Arrow Flight service that hands out task output.
    pub flight_port: u16,
    /// Port of the gRPC service the scheduler sends tasks to.
    pub grpc_port: u16,
    /// Tasks run at once (default: the cores).
    pub slots: usize,
    /// Where task output waits to be fetched (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    /// How often it tells the scheduler it is alive.
    pub heartbeat: Duration,
}

impl ExecutorConfig {
    /// Checks the settings without touching anything.
    pub fn validate(&self) -> Result<()> {
        if self.slots == 0 {
            return Err(Error::Config("--slots must be at least 1".into()));
        }
        if self.flight_port == 0 || self.grpc_port == 0 || self.flight_port == self.grpc_port {
            return Err(Error::Config("--port and --grpc-port must be two different ports from 1 to 65535".into()));
        }
        if self.heartbeat.is_zero() {
            return Err(Error::Config("the heartbeat interval must be at least 1s".into()));
        }
        Ok(())
    }

    fn ballista(&self) -> ExecutorProcessConfig {
        ExecutorProcessConfig {
            bind_host: self.bind_host.to_string(),
            external_host: self.external_host.clone(),
            port: self.flight_port,
            grpc_port: self.grpc_port,
            scheduler_host: self.scheduler.host.clone(),
            scheduler_port: self.scheduler.port,
            scheduler_connect_timeout_seconds: 10,
            vcores: self.slots,
            work_dir: self.work_dir.as_ref().map(|d| d.display().to_string()),
            print_thread_info: false,
            executor_heartbeat_interval_seconds: self.heartbeat.as_secs().max(1),
            override_logical_codec: Some(codec()),
            override_physical_codec: Some(codec()),
            override_runtime_producer: Some(runtime_producer(self.work_dir.clone())),
            ..ExecutorProcessConfig::default()
        }
    }
}

/// Ballista's runtime for a task (temporary files in the work directory) with the stores of
/// [`crate::stores`]: Ballista sizes its memory pool on top of it.
fn runtime_producer(work_dir: Option<std::path::PathBuf>) -> ballista_core::RuntimeProducer {
    Arc::new(move |_| {
        let mut b = RuntimeEnvBuilder::new().with_object_store_registry(crate::stores::registry());
        if let Some(dir) = &work_dir {
            b = b.with_temp_file_path(dir);
        }
        Ok(Arc::new(b.build()?))
    })
}

/// Runs the executor until the process ends.
pub async fn run(config: &ExecutorConfig) -> Result<()> {
    config.validate()?;
    if let Some(dir) = &config.work_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    tracing::info!(scheduler = %config.scheduler, slots = config.slots, "Ballista executor with pinpipe's plans");
    start_executor_process(Arc::new(config.ballista())).await?;
    Ok(())
}
