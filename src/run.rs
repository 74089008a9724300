//! Running the subcommands: telemetry, catalog, store, listener, signals.

use std::{error::Error, sync::Arc};

use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::{
    config::{Cli, Command, LogFormat, ServeArgs},
    model::Catalog,
    server::{ServeOptions, serve},
    store::{Store, StoreConfig},
};

type BoxError = Box<dyn Error + Send + Sync>;

/// Runs one subcommand to completion.
pub async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Serve(args) => run_server(args).await,
        Command::Roles(args) => {
            let catalog = load_catalog(args.roles.as_deref())?;
            print!("{}", crate::model::catalog_text::render(&catalog));
            Ok(())
        }
    }
}

/// Loads the catalog from `path`, or the built-in one.
pub fn load_catalog(path: Option<&std::path::Path>) -> Result<Catalog, BoxError> {
    match path {
        None => Ok(Catalog::built_in()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read role catalog `{}`: {e}", path.display()))?;
            Catalog::parse(&text)
                .map_err(|e| format!("role catalog `{}`: {e}", path.display()).into())
        }
    }
}

fn init_telemetry(format: LogFormat) {
    let filter = EnvFilter::try_from_env("ACCESSD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run_server(args: ServeArgs) -> Result<(), BoxError> {
    init_telemetry(args.log_format);
    let catalog = Arc::new(load_catalog(args.roles.as_deref())?);
    let config = StoreConfig {
        cache_bytes: args.cache_mb.saturating_mul(1024 * 1024),
    };
    let data_dir = args.data_dir.clone();
    let store =
        tokio::task::spawn_blocking(move || Store::open(&data_dir, catalog, &config)).await??;
    let store = Arc::new(store);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let options = ServeOptions {
        admin_token: args.admin_token,
    };
    serve(listener, Arc::clone(&store), options, shutdown_signal()).await?;
    tokio::task::spawn_blocking(move || store.close()).await?;
    info!("stopped; database flushed");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
