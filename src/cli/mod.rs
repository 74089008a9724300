//! The operator's command line: every subcommand but `serve`, `roles`, `restore` and
//! `verify` is a client of a running server, calling it through the generated clients
//! and printing the answer as a table or as JSON. It decides nothing itself: the
//! server's answers are printed.

pub mod args;
mod audit;
mod backup;
mod backup_file;
pub mod callers;
mod check;
mod client;
mod error;
mod export;
mod grants;
mod import;
mod list;
mod lookup;
mod members;
mod migrate;
pub mod output;
pub mod records;
mod resources;
pub mod restore;
mod status;
pub mod verify;
mod workspaces;

use std::process::ExitCode;

pub use args::ClientCommand;
pub use error::CliError;

/// The exit status of a command that ran but whose answer is a no: a denied check with
/// `--exit-code`, or a migration that rejected some rows. Errors exit with 1, bad usage
/// with 2.
pub const EXIT_DENIED: u8 = 3;

/// Runs one client subcommand against the server it names.
pub async fn run(command: ClientCommand) -> Result<ExitCode, CliError> {
    let done = |()| ExitCode::SUCCESS;
    match command {
        ClientCommand::Check(args) => check::check(args).await,
        ClientCommand::Grant(args) => grants::grant(args).await.map(done),
        ClientCommand::Revoke(args) => grants::revoke(args).await.map(done),
        ClientCommand::Members(command) => members::run(command).await.map(done),
        ClientCommand::Resources(command) => resources::run(command).await.map(done),
        ClientCommand::Workspaces(command) => workspaces::run(command).await.map(done),
        ClientCommand::List(args) => list::list(args).await.map(done),
        ClientCommand::Lookup(command) => lookup::run(command).await.map(done),
        ClientCommand::MigrateLegacy(args) => migrate::migrate(args).await,
        ClientCommand::Export(args) => export::export(args).await.map(done),
        ClientCommand::Import(args) => import::import(args).await,
        ClientCommand::Status(options) => status::status(options).await.map(done),
        ClientCommand::Audit(args) => audit::audit(args).await.map(done),
        ClientCommand::Backup(args) => backup::backup(args).await.map(done),
    }
}
