//! One module per subcommand; [`run`] loads the configuration and dispatches.

mod bench;
mod config;
mod log;
mod serve;
mod source;
mod up;

use figment::value::Value;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{Loaded, Overrides, load};

/// Loads the configuration (with the flags that override it) and runs the subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = overrides(&cli.global);
    match &cli.command {
        Command::Source(s) => {
            if let Some(url) = &s.source_url {
                overrides.values.push(("source.url", Value::from(url.clone())));
            }
        }
        Command::Serve(s) => {
            if let Some(listen) = &s.listen {
                overrides.values.push(("api.listen", Value::from(listen.clone())));
            }
        }
        _ => {}
    }
    let loaded = load(&overrides)?;
    match cli.command {
        Command::Up(args) => up::run(&loaded, args).await,
        Command::Source(args) => source::run(&loaded, args.command).await,
        Command::Serve(_) => serve::run(&loaded).await,
        Command::Log(cmd) => log::run(&loaded, cmd).await,
        Command::Config => config::run(&loaded),
        Command::Bench(cmd) => bench::run(&loaded, cmd).await,
    }
}

fn overrides(g: &GlobalArgs) -> Overrides {
    let mut o = Overrides { file: g.config.clone(), values: Vec::new() };
    if let Some(d) = &g.data_dir {
        o.values.push(("data_dir", Value::from(d.display().to_string())));
    }
    if let Some(p) = &g.prefix {
        o.values.push(("prefix", Value::from(p.clone())));
    }
    o
}

/// Opens the configured source database.
async fn open_source(loaded: &Loaded) -> anyhow::Result<Box<dyn pinpipe_source::SourceStore>> {
    Ok(loaded.resolved.source.open().await?)
}

/// Opens the embedded log for writing (this process owns it).
fn open_log(loaded: &Loaded) -> anyhow::Result<std::sync::Arc<pinpipe_log::embedded::EmbeddedLog>> {
    let log = pinpipe_log::embedded::EmbeddedLog::open(&loaded.resolved.log)?;
    Ok(std::sync::Arc::new(log))
}
