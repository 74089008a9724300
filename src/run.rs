//! Running the subcommands: telemetry, catalog, store, listener and signals for
//! `serve`; the client subcommands are [`crate::cli`]'s.

use std::{error::Error, process::ExitCode, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use tracing::{info, warn};

use crate::{
    api::callers::Callers,
    config::{Cli, Command, ServeArgs},
    metrics::Metrics,
    model::Catalog,
    reload,
    server::{ListenAddress, ServeOptions, Tls, bind_all, serve_loading},
    store::{LoadReport, Store},
};

type BoxError = Box<dyn Error + Send + Sync>;

/// Runs one subcommand to completion; the exit status is the command's (see
/// [`crate::cli::EXIT_DENIED`]).
pub async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    match cli.command {
        Command::Serve(args) => run_server(args).await.map(|()| ExitCode::SUCCESS),
        Command::Roles(args) => {
            let catalog = load_catalog(args.roles.as_deref())?;
            crate::cli::output::print_text(&crate::model::catalog_text::render(&catalog))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Callers(command) => {
            crate::cli::callers::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore(args) => {
            let catalog = load_catalog(args.roles.as_deref())?;
            Ok(crate::cli::restore::restore(args, catalog).await?)
        }
        Command::Verify(args) => {
            let catalog = load_catalog(args.roles.as_deref())?;
            Ok(crate::cli::verify::verify(args, &catalog)?)
        }
        Command::Client(command) => Ok(crate::cli::run(command).await?),
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

async fn run_server(args: ServeArgs) -> Result<(), BoxError> {
    let telemetry = crate::telemetry::init(args.log_format, args.otlp_endpoint.as_deref())?;
    let catalog = Arc::new(load_catalog(args.roles.as_deref())?);
    let mut config = args.store_config()?;
    let metrics = args.metrics_listen.map(|address| {
        let metrics = Arc::new(Metrics::of_server());
        config.observer = metrics.write_observer();
        (address, metrics)
    });
    let shutdown = shutdown_signal()?;
    check_listeners(&args)?;
    // Listen first, then load: while a large database loads, probes get NOT_SERVING and
    // calls UNAVAILABLE instead of a refused connection.
    let listeners = bind_all(&args.listen, args.socket_mode)?;
    let callers = match &args.callers {
        Some(path) => Some(Arc::new(ArcSwap::from_pointee(Callers::load(path)?))),
        None => None,
    };
    if let (Some(callers), Some(path)) = (&callers, &args.callers) {
        info!(callers = callers.load().len(), file = %path.display(), "callers read");
        let (callers, path) = (Arc::clone(callers), path.clone());
        reload::on_change("callers file", vec![path.clone()], move || {
            let read = Callers::load(&path)?;
            let count = read.len();
            callers.store(Arc::new(read));
            Ok(format!("{count} callers"))
        })?;
    }
    let tls = match args.tls_files() {
        Some(files) => {
            let tls = Arc::new(Tls::load(files)?);
            let reloaded = Arc::clone(&tls);
            reload::on_change("TLS files", tls.files().paths(), move || {
                reloaded.reload().map_err(|e| e.to_string())?;
                Ok("new connections use them".to_owned())
            })?;
            Some(tls)
        }
        None => None,
    };
    let options = ServeOptions {
        admin_token: args.admin_token.clone(),
        callers,
        reflection: !args.no_reflection,
        drain_timeout: Duration::from_secs(args.drain_timeout),
        follow: args.follow_options(),
        limits: args.limits(),
        tls,
        health_listen: args.health_listen,
        metrics,
    };
    let data_dir = args.data_dir.clone();
    let leader = options.follow.is_none();
    let load = async move {
        let opened =
            tokio::task::spawn_blocking(move || Store::open(&data_dir, catalog, &config)).await;
        let store = Arc::new(opened.map_err(|e| e.to_string())??);
        if let Some(summary) = unknown_roles_summary(store.load_report()) {
            warn!("{summary}");
        }
        if leader {
            promote(&store)?;
        }
        Ok::<_, BoxError>(store)
    };
    let served = serve_loading(listeners, load, options, shutdown).await;
    let stopped: Result<(), BoxError> = match served {
        Ok(Some(store)) => match tokio::task::spawn_blocking(move || store.close()).await {
            Ok(()) => {
                info!("stopped; database flushed");
                Ok(())
            }
            Err(error) => Err(error.into()),
        },
        Ok(None) => {
            info!("stopped before the database was loaded");
            Ok(())
        }
        Err(error) => Err(error.into()),
    };
    // The exporter's last batch goes out over a connection this runtime drives, so the
    // blocking shutdown waits on a thread of its own.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    stopped
}

/// Refuses listeners that would let in callers the flags mean to keep out: an address
/// beyond loopback with no credentials (unless `--insecure`), and a Unix socket, which
/// carries no TLS, where a client certificate is the only credential or TLS would be
/// served nowhere.
fn check_listeners(args: &ServeArgs) -> Result<(), BoxError> {
    let tls = args.tls_files();
    let requires_certificates = tls
        .as_ref()
        .is_some_and(|files| files.requires_client_certificates());
    let tokens = args.callers.is_some() || args.admin_token.is_some();
    let unix = args
        .listen
        .iter()
        .find(|address| matches!(address, ListenAddress::Unix(_)));
    if let Some(socket) = unix {
        if requires_certificates && !tokens {
            return Err(format!(
                "refusing to listen on {socket}: a Unix socket carries no TLS, so it would \
                let in without a client certificate every process that may open it, while \
                `--tls-client-ca` is the only credential. Give callers tokens \
                (`--callers`), or listen on TCP only"
            )
            .into());
        }
        if tls.is_some()
            && args
                .listen
                .iter()
                .all(|a| !matches!(a, ListenAddress::Tcp(_)))
        {
            return Err(format!(
                "`--tls-cert` is given but the only listeners are Unix sockets, which carry \
                no TLS: add a TCP `--listen` for TLS, or drop `--tls-cert` (the socket \
                file's permissions, `--socket-mode`, decide who connects to {socket})"
            )
            .into());
        }
    }
    // Client certificates required of every connection are credentials too: only the
    // holders of one the client CA signed get a connection at all.
    if tokens || requires_certificates {
        return Ok(());
    }
    for address in args.listen.iter().filter(|address| !address.is_local()) {
        if !args.insecure {
            return Err(format!(
                "refusing to listen on {address} with no credentials: anyone who reaches \
                it could read and change every workspace. Give it a callers file \
                (`--callers`) or require client certificates (`--tls-client-ca`), or \
                listen on loopback or a Unix socket, or pass `--insecure` to accept that"
            )
            .into());
        }
        warn!(
            listen = %address,
            "INSECURE: listening beyond loopback with no credentials: anyone who reaches \
             this address may read and change every workspace"
        );
    }
    Ok(())
}

/// Checks that a follower's copy started without `--follow` may lead: a copy of every
/// workspace is the leader's data as of its revision and may take writes from there
/// (under a history of its own, so its old leader's followers bootstrap from it anew);
/// a copy of some workspaces would lead with the others missing, and is refused.
fn promote(store: &Store) -> Result<(), BoxError> {
    let Some(following) = &store.identity().following else {
        return Ok(());
    };
    if !following.selection.is_all() {
        return Err(format!(
            "the data directory holds a follower's copy of {} of the leader's workspaces, \
             not all of them: start it with `--follow`, or start a leader on another data \
             directory",
            following.selection
        )
        .into());
    }
    warn!(
        history = %following.history,
        revision = store.current().revision,
        "the data directory holds a follower's copy of every workspace: leading from it, \
         under a history of its own"
    );
    Ok(())
}

/// One line naming the stored grants of roles the catalog no longer has, which are
/// denied (and left out of every listing) until a catalog with those roles is in force.
fn unknown_roles_summary(report: &LoadReport) -> Option<String> {
    if report.unknown_roles.is_empty() {
        return None;
    }
    let mut roles: Vec<(&String, &usize)> = report.unknown_roles.iter().collect();
    roles.sort();
    let total: usize = roles.iter().map(|(_, count)| **count).sum();
    let named: Vec<String> = roles
        .iter()
        .map(|(role, count)| format!("`{role}` ({count})"))
        .collect();
    Some(format!(
        "{total} stored grant{} of {} role{} the catalog does not have {} denied: {}; \
         they apply again once a catalog with {} is in force",
        if total == 1 { "" } else { "s" },
        roles.len(),
        if roles.len() == 1 { "" } else { "s" },
        if total == 1 { "is" } else { "are" },
        named.join(", "),
        if roles.len() == 1 {
            "that role"
        } else {
            "those roles"
        },
    ))
}

/// A future that completes on SIGINT or SIGTERM. The handlers are installed before it is
/// returned, so that a signal sent as soon as the server says it serves stops it
/// gracefully rather than killing it.
fn shutdown_signal() -> Result<impl Future<Output = ()>, BoxError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let installed =
            |kind| signal(kind).map_err(|e| format!("cannot install the signal handlers: {e}"));
        let mut interrupt = installed(SignalKind::interrupt())?;
        let mut terminate = installed(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_unknown_role_with_its_count() {
        let mut report = LoadReport::default();
        assert_eq!(unknown_roles_summary(&report), None);
        report.unknown_roles.insert("warehouse_read".into(), 2);
        report.unknown_roles.insert("auditor".into(), 1);
        assert_eq!(
            unknown_roles_summary(&report).unwrap(),
            "3 stored grants of 2 roles the catalog does not have are denied: \
             `auditor` (1), `warehouse_read` (2); they apply again once a catalog with \
             those roles is in force"
        );
    }
}
