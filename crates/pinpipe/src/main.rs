//! The `pinpipe` binary: parses the command line, loads the configuration and runs one
//! subcommand. All logic lives in the library crates beside it; this crate only wires them up
//! and talks to the terminal.

mod cli;
mod commands;
mod config;
mod console;
mod metrics;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: the request path allocates many small objects from
/// several threads, where glibc's arenas cost measurably more (`pinpipe bench api`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(&cli.global);
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

/// Log lines on stderr: the level from `-v`/`-q` (or `RUST_LOG`), as text or JSON.
fn init_logging(global: &cli::GlobalArgs) {
    let level =
        if global.log_quiet { "error" } else { ["warn", "info", "debug", "trace"][usize::from(global.verbose.min(3))] };
    // The Delta kernel logs an ERROR whenever a table does not exist yet, which is normal here
    // (the first write creates it); its real errors reach pinpipe as returned errors and are
    // reported there.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},buoyant_kernel::snapshot::builder=off"))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if global.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
