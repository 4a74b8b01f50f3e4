//! `pinpipe cluster scheduler`: Ballista's scheduler with pinpipe's codec, so the jobs of
//! `batch --cluster` can be planned and their tasks sent to executors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig as BallistaConfig;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::SessionConfig;

use crate::plan::codec;
use crate::{Error, Result};

/// A scheduler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Address to listen on (gRPC for clients and executors).
    pub bind: SocketAddr,
    /// Host name executors and clients reach this scheduler by (default: the bind address).
    pub external_host: Option<String>,
    /// An executor silent for this long is lost: its tasks run again elsewhere.
    pub executor_timeout: Duration,
}

impl SchedulerConfig {
    /// Checks the settings without touching anything.
    pub fn validate(&self) -> Result<()> {
        if self.executor_timeout < Duration::from_secs(2) {
            return Err(Error::Config(format!(
                "--executor-timeout {:?} is shorter than two heartbeats; use 2s or more",
                self.executor_timeout
            )));
        }
        if self.bind.port() == 0 {
            return Err(Error::Config("the scheduler needs a fixed port (executors and jobs connect to it)".into()));
        }
        Ok(())
    }

    fn ballista(&self) -> BallistaConfig {
        BallistaConfig {
            bind_host: self.bind.ip().to_string(),
            bind_port: self.bind.port(),
            external_host: self.external_host.clone().unwrap_or_else(|| self.bind.ip().to_string()),
            executor_timeout_seconds: self.executor_timeout.as_secs().max(2),
            expire_dead_executor_interval_seconds: (self.executor_timeout.as_secs() / 2).max(1),
            override_logical_codec: Some(codec()),
            override_physical_codec: Some(codec()),
            override_session_builder: Some(Arc::new(session_builder)),
            ..BallistaConfig::default()
        }
    }
}

/// Ballista's session for planning a job, with the stores of [`crate::stores`] (it lists the
/// files of the scans it plans).
fn session_builder(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
        .with_object_store_registry(crate::stores::registry())
        .build_arc()?;
    Ok(SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime).build())
}

/// Runs the scheduler until the process ends.
pub async fn run(config: &SchedulerConfig) -> Result<()> {
    config.validate()?;
    let c = config.ballista();
    let cluster = BallistaCluster::new_from_config(&c).await?;
    tracing::info!(bind = %config.bind, "Ballista scheduler with pinpipe's plans");
    ballista_scheduler::scheduler_process::start_server(cluster, config.bind, Arc::new(c)).await?;
    Ok(())
}
