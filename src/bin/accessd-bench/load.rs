//! Loading the data set into a server. Today one way: every write its own AdminService
//! call, many in flight at once so that the server group-commits them. A bulk import
//! is the other way to come: add a `LoadMethod` variant that streams `Dataset::phases`
//! (or the same records) to it; `run` and the report stay as they are.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use accessd::api::pb::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::dataset::{Dataset, Write};

/// How the data set is written to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMethod {
    /// One AdminService call per write (`CreateWorkspace`, `SetMembership`,
    /// `RegisterResource`, `Grant`), `concurrency` of them in flight.
    Rpc {
        /// Writes in flight.
        concurrency: usize,
    },
}

/// What loading did.
#[derive(Debug, Clone, Copy)]
pub struct LoadOutcome {
    /// Writes acknowledged.
    pub writes: usize,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

/// The most time one write may take before the load is abandoned.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes the data set to the server behind `channels`. Any refused write fails the
/// load: the expected answers of the checks assume every write took effect.
pub async fn load(
    method: LoadMethod,
    channels: &[Channel],
    data: &Dataset,
) -> Result<LoadOutcome, String> {
    let started = Instant::now();
    let LoadMethod::Rpc { concurrency } = method;
    let mut writes = 0;
    for phase in data.phases() {
        writes += phase.len();
        load_phase(channels, Arc::new(phase), concurrency.max(1)).await?;
    }
    Ok(LoadOutcome {
        writes,
        elapsed: started.elapsed(),
    })
}

async fn load_phase(
    channels: &[Channel],
    phase: Arc<Vec<Write>>,
    concurrency: usize,
) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency.min(phase.len()) {
        let channel = channels
            .get(worker % channels.len().max(1))
            .cloned()
            .ok_or("no connection to load through")?;
        let (phase, next) = (Arc::clone(&phase), Arc::clone(&next));
        tasks.spawn(async move {
            let mut client = AdminServiceClient::new(channel);
            // Each write is taken once, so the loop ends after at most `phase.len()` turns.
            while let Some(write) = phase.get(next.fetch_add(1, Ordering::Relaxed)) {
                let call = send(&mut client, write.clone());
                match tokio::time::timeout(WRITE_TIMEOUT, call).await {
                    Ok(Ok(())) => {}
                    Ok(Err(status)) => return Err(format!("{write:?}: {status}")),
                    Err(_) => return Err(format!("{write:?}: no answer in {WRITE_TIMEOUT:?}")),
                }
            }
            Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| format!("a load task failed: {e}"))??;
    }
    Ok(())
}

async fn send(client: &mut AdminServiceClient<Channel>, write: Write) -> Result<(), tonic::Status> {
    match write {
        Write::CreateWorkspace(request) => client.create_workspace(request).await.map(drop),
        Write::SetMembership(request) => client.set_membership(request).await.map(drop),
        Write::RegisterResource(request) => client.register_resource(request).await.map(drop),
        Write::Grant(request) => client.grant(request).await.map(drop),
    }
}
