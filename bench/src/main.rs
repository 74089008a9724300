//! `accessd-bench`, the load generator of `BENCHMARKS.md`: `run` drives accessd against a
//! no-op floor, `scale` drives accessd at two sizes, `replication` a leader and its
//! follower, `soak` a long mixed load with accessd's memory sampled, `records` writes a
//! data set for `accessd import`. It knows accessd only as a gRPC server, through
//! `accessd::proto`.

mod address;
mod args;
mod catalog;
mod dataset;
mod driver;
mod floor;
mod load;
mod mix;
mod process;
mod records;
mod replication;
mod report;
mod rng;
mod run;
mod scale;
mod soak;
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
        Command::Records(args) => records::write(&args),
        Command::Run(args) => {
            // Read before pinning: once pinned, this process sees one core.
            let machine = process::machine();
            pin(args.no_pin, args.client_core, args.server_core).and_then(|pinning| {
                client_runtime().and_then(|rt| rt.block_on(run::run(*args, &machine, pinning)))
            })
        }
        Command::Replication(args) => {
            // Pinned only for its Check runs, by `replication` itself: its lag runs and
            // the bootstrap need every core.
            let machine = process::machine();
            client_runtime().and_then(|rt| rt.block_on(replication::replicate(*args, &machine)))
        }
        Command::Soak(args) => {
            // Not pinned: the soak judges memory, not speed, and shares the cores.
            let machine = process::machine();
            client_runtime().and_then(|rt| rt.block_on(soak::soak(*args, &machine)))
        }
        Command::Scale(args) => {
            let machine = process::machine();
            pin(args.no_pin, args.client_core, args.server_core).and_then(|pinning| {
                client_runtime().and_then(|rt| rt.block_on(scale::scale(*args, &machine, pinning)))
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

/// Pins this process to `client_core` when the machine has two cores or more and
/// `taskset` runs, and says which cores the load generator and the servers get. Called
/// before the runtime exists, so that every worker thread inherits it.
fn pin(no_pin: bool, client_core: usize, server_core: usize) -> Result<Option<Pinning>, String> {
    if no_pin || process::cores() < 2 || !process::taskset_available() {
        return Ok(None);
    }
    process::pin_self(client_core)?;
    Ok(Some(Pinning {
        client_core,
        server_core,
    }))
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
