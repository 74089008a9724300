//! `accessd callers`: the entries of a callers file, made locally: a new caller with a
//! fresh random token, or the digest of a token read from standard input (never from the
//! command line, where `ps` would show it).

use std::io::Read as _;

use clap::{Args, Subcommand};

use super::CliError;
use crate::api::callers::{digest_hex, token_digest};

/// The subcommands of `accessd callers`.
#[derive(Debug, Clone, Subcommand)]
pub enum CallersCommand {
    /// Make a caller: prints its new token (give it to the caller) and the entry to add
    /// to the callers file.
    New(NewCallerArgs),
    /// Print the SHA-256 of the token read from standard input, for `token_sha256`.
    Hash,
}

/// Settings of `accessd callers new`.
#[derive(Debug, Clone, Args)]
pub struct NewCallerArgs {
    /// The caller's name, as logs and the audit trail show it.
    pub name: String,
    /// Its scopes: `check`, `replicate`, `admin`, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub scopes: Vec<String>,
    /// The only workspaces it may name, comma-separated; all if omitted.
    #[arg(long, value_delimiter = ',')]
    pub workspaces: Option<Vec<String>>,
    /// It may name an acting user (`actor_user_id`).
    #[arg(long)]
    pub may_name_actor: bool,
}

/// Runs `accessd callers`.
pub fn run(command: CallersCommand) -> Result<(), CliError> {
    match command {
        CallersCommand::Hash => {
            let mut token = String::new();
            std::io::stdin()
                .read_to_string(&mut token)
                .map_err(|e| CliError::Input(format!("cannot read the token: {e}")))?;
            let token = token.trim_end_matches(['\n', '\r']);
            if token.is_empty() {
                return Err(CliError::Input("no token on standard input".into()));
            }
            println!("{}", digest_hex(&token_digest(token)));
            Ok(())
        }
        CallersCommand::New(args) => {
            let mut bytes = [0_u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| CliError::Input(format!("no randomness for a token: {e}")))?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let list = |items: &[String]| {
                items
                    .iter()
                    .map(|i| format!("{i:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut entry = format!(
                "[[caller]]\nname = {:?}\ntoken_sha256 = \"{}\"\nscopes = [{}]\n",
                args.name,
                digest_hex(&token_digest(&token)),
                list(&args.scopes)
            );
            if let Some(workspaces) = &args.workspaces {
                entry.push_str(&format!("workspaces = [{}]\n", list(workspaces)));
            }
            if args.may_name_actor {
                entry.push_str("may_name_actor = true\n");
            }
            // The entry is checked as the server will read it.
            crate::api::callers::Callers::parse(&entry)
                .map_err(|e| CliError::Input(e.to_string()))?;
            eprintln!(
                "token of `{}` (shown once; give it to the caller):",
                args.name
            );
            eprintln!("{token}");
            print!("{entry}");
            Ok(())
        }
    }
}
