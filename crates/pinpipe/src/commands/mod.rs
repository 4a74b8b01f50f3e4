//! One module per subcommand; [`run`] loads the configuration and dispatches.

mod batch;
mod bench;
mod cluster;
mod config;
mod emulate;
mod log;
mod schedule;
mod serve;
mod sink;
mod source;
mod stream;
mod up;

use pinpipe_log::open::Access;

use crate::cli::{Cli, Command};
use crate::config::{Loaded, load};

/// Loads the configuration (with the flags that override it) and runs the subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = cli.global.overrides();
    cli.command.flags(&mut overrides);
    let loaded = load(&overrides)?;
    match cli.command {
        Command::Up(args) => up::run(&loaded, args).await,
        Command::Source(args) => source::run(&loaded, args.command).await,
        Command::Serve(_) => serve::run(&loaded).await,
        Command::Log(cmd) => log::run(&loaded, cmd).await,
        Command::Emulate(args) => emulate::run(&loaded, args).await,
        Command::Sink(args) => sink::run(&loaded, args).await,
        Command::Batch(args) => batch::run(&loaded, args).await,
        Command::Stream(args) => stream::run(&loaded, args).await,
        Command::Schedule(args) => schedule::run(&loaded, args).await,
        Command::Runs(args) => schedule::runs(&loaded, &args),
        Command::Cluster(cmd) => cluster::run(cmd).await,
        Command::Config => config::run(&loaded),
        Command::Bench(cmd) => bench::run(&loaded, cmd).await,
    }
}

/// Opens the configured source database.
async fn open_source(loaded: &Loaded) -> anyhow::Result<Box<dyn pinpipe_source::SourceStore>> {
    Ok(loaded.resolved.source.open().await?)
}

/// Opens where topics and streams live.
async fn open_logs(loaded: &Loaded, access: Access) -> anyhow::Result<pinpipe_log::Logs> {
    Ok(pinpipe_log::open::logs(&loaded.resolved.log, access).await?)
}

/// Opens where topics live (only that).
async fn open_topics(loaded: &Loaded, access: Access) -> anyhow::Result<std::sync::Arc<dyn pinpipe_log::OffsetLog>> {
    Ok(pinpipe_log::open::topics(&loaded.resolved.log, access).await?)
}

/// Opens where streams live (only that).
async fn open_streams(loaded: &Loaded, access: Access) -> anyhow::Result<std::sync::Arc<dyn pinpipe_log::Log>> {
    Ok(pinpipe_log::open::streams(&loaded.resolved.log, access).await?)
}

/// A token cancelled on Ctrl-C or SIGTERM.
fn stop_on_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        serve::shutdown_signal().await;
        t.cancel();
    });
    token
}
