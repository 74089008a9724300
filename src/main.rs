//! The `accessd` binary: parse the command line and run the chosen subcommand.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = accessd::config::Cli::parse();
    match accessd::run::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("accessd: {err}");
            ExitCode::FAILURE
        }
    }
}

// glibc's malloc fragments under the many small, long-lived allocations of the
// in-memory state; mimalloc keeps both allocation time and resident memory down.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
