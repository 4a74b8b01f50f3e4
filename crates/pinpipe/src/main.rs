//! The `pinpipe` binary: parses the command line, loads the configuration and runs one
//! subcommand. All logic lives in the library crates beside it; this crate only wires them up
//! and talks to the terminal.

mod cli;
mod commands;
mod config;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: the request path allocates many small objects from
/// several threads, where glibc's arenas cost measurably more (`pinpipe bench api`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The Delta kernel logs an ERROR whenever a table does not exist yet, which is
                // normal here (the first write creates it); its real errors reach pinpipe as
                // returned errors and are reported there.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,buoyant_kernel::snapshot::builder=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
