//! `accessd-bench`: the load generator of issue 4. `run` builds a seeded data set through
//! accessd's AdminService, drives Check, BatchCheck and Grant over gRPC against accessd
//! and against a no-op floor server (`floor`, this binary again), and reports throughput
//! and latency with accessd as ratios to the floor. See `BENCHMARKS.md`.

mod args;
mod dataset;
mod driver;
mod floor;
mod load;
mod mix;
mod process;
mod report;
mod rng;
mod run;
#[cfg(test)]
mod tests;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    args::{Cli, Command},
    run::Pinning,
};

// The same allocator as accessd's: the floor must differ from accessd only in what its
// handlers do, and the allocator is part of what every call costs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Floor(args) => server_runtime().and_then(|rt| rt.block_on(floor::run(args))),
        Command::Run(args) => {
            // Read before pinning: once pinned, this process sees one core.
            let machine = process::machine();
            let pinning = (!args.no_pin && process::cores() >= 2 && process::taskset_available())
                .then_some(Pinning {
                    client_core: args.client_core,
                    server_core: args.server_core,
                });
            // Pin before the runtime exists, so that every worker thread inherits it.
            let pinned = match pinning {
                Some(p) => process::pin_self(p.client_core).map(|()| pinning),
                None => Ok(None),
            };
            pinned.and_then(|pinning| {
                client_runtime().and_then(|rt| rt.block_on(run::run(*args, &machine, pinning)))
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("accessd-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime accessd itself uses (`#[tokio::main]`): multi-threaded, one worker per
/// core this process may use. The floor runs on it so that it differs from accessd only
/// in what its handlers do.
fn server_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The load generator's runtime: one thread, as it has one core. Measured here it costs
/// a third less CPU per call than a one-worker multi-threaded runtime, so the client's
/// core saturates later than the server's.
fn client_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
