//! Loading the data set into a server, one of two ways: every write its own AdminService
//! call, many in flight at once so that the server group-commits them; or one Import
//! stream of the data set's records over one connection, which the server applies in
//! large batches. Either way every write must take effect, or the load fails.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use accessd::proto::{self, admin_service_client::AdminServiceClient};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
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
    /// One `Import` stream of [`Dataset::records`] over the first connection, in
    /// messages of `chunk` records.
    Import {
        /// Records per message of the stream.
        chunk: usize,
    },
}

/// Records per Import message: about 250 KiB, well under the server's 4 MiB per message.
pub const IMPORT_CHUNK: usize = 2_000;

/// From this many grants on, a data set is loaded with Import unless told otherwise:
/// one call per write would take minutes.
pub const IMPORT_FROM_GRANTS: usize = 100_000;

impl LoadMethod {
    /// The way to load a data set of `grants` grants: `import` if given, else Import for
    /// a large data set and one call per write for a small one.
    pub fn choose(import: Option<bool>, grants: usize, concurrency: usize) -> Self {
        if import.unwrap_or(grants >= IMPORT_FROM_GRANTS) {
            Self::Import {
                chunk: IMPORT_CHUNK,
            }
        } else {
            Self::Rpc { concurrency }
        }
    }

    /// How it loads, for reports.
    pub fn describe(self) -> String {
        match self {
            Self::Rpc { concurrency } => {
                format!("one AdminService call per write, {concurrency} in flight")
            }
            Self::Import { chunk } => {
                format!("one Import stream over one connection, {chunk} records per message")
            }
        }
    }
}

/// What loading did.
#[derive(Debug, Clone, Copy)]
pub struct LoadOutcome {
    /// Writes (calls or records) acknowledged.
    pub writes: usize,
    /// Atomic batches the server applied them in (Import only; one per write otherwise).
    pub batches: u64,
    /// Records that changed something (Import only: the rest were already in effect).
    pub applied: Option<u64>,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

/// The most time one write may take before the load is abandoned.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most time a whole Import may take (10 million grants take about two minutes).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Rejections quoted when an Import refused records.
const QUOTED_REJECTIONS: usize = 3;

/// Writes the data set to the server behind `channels`. Any refused write fails the
/// load: the expected answers of the checks assume every write took effect.
pub async fn load(
    method: LoadMethod,
    channels: &[Channel],
    data: &Dataset,
) -> Result<LoadOutcome, String> {
    let started = Instant::now();
    match method {
        LoadMethod::Rpc { concurrency } => {
            let mut writes = 0;
            for phase in data.phases() {
                writes += phase.len();
                load_phase(channels, Arc::new(phase), concurrency.max(1)).await?;
            }
            Ok(LoadOutcome {
                writes,
                batches: writes as u64,
                applied: None,
                elapsed: started.elapsed(),
            })
        }
        LoadMethod::Import { chunk } => {
            let channel = channels.first().ok_or("no connection to load through")?;
            let call = import(channel.clone(), data, chunk.max(1));
            let response = tokio::time::timeout(IMPORT_TIMEOUT, call)
                .await
                .map_err(|_| format!("the import did not finish in {IMPORT_TIMEOUT:?}"))??;
            Ok(LoadOutcome {
                writes: usize::try_from(response.records).unwrap_or(usize::MAX),
                batches: response.batches,
                applied: Some(response.applied),
                elapsed: started.elapsed(),
            })
        }
    }
}

/// Streams the data set's records to Import, generating each message as the stream
/// asks for it (10 million grants are 22 million records: too many to hold at once).
async fn import(
    channel: Channel,
    data: &Dataset,
    chunk: usize,
) -> Result<proto::ImportProgress, String> {
    let (sender, receiver) = mpsc::channel::<proto::ImportRequest>(4);
    // The producer borrows the data set, so it runs in this task beside the call rather
    // than in a task of its own; the stream ends when it drops the sender.
    let produce = async move {
        let mut sent = 0u64;
        let mut records = Vec::with_capacity(chunk);
        for workspace in &data.workspaces {
            records.extend(workspace.records());
            while records.len() >= chunk {
                let rest = records.split_off(chunk);
                let full = std::mem::replace(&mut records, rest);
                sent += full.len() as u64;
                if sender
                    .send(proto::ImportRequest {
                        records: full,
                        first_index: 0,
                    })
                    .await
                    .is_err()
                {
                    // The call has ended early; its status says why.
                    return sent;
                }
            }
        }
        sent += records.len() as u64;
        if !records.is_empty() {
            let _ = sender
                .send(proto::ImportRequest {
                    records,
                    first_index: 0,
                })
                .await;
        }
        sent
    };
    let mut client = AdminServiceClient::new(channel);
    // The answer is the import's progress, batch by batch; the last says it is done.
    let call = async {
        let mut progress = client
            .import(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        let mut quoted = Vec::new();
        while let Some(message) = progress.message().await? {
            let room = QUOTED_REJECTIONS.saturating_sub(quoted.len());
            quoted.extend(
                message
                    .rejected
                    .iter()
                    .take(room)
                    .map(|r| format!("record {}: {}", r.index, r.reason)),
            );
            if message.done {
                return Ok((message, quoted));
            }
        }
        Err(tonic::Status::unknown(
            "the import ended before it was done",
        ))
    };
    let (sent, answer) = tokio::join!(produce, call);
    let (response, quoted) = answer.map_err(|status| format!("Import failed: {status}"))?;
    if response.rejected_count > 0 {
        return Err(format!(
            "Import rejected {} of {} records, e.g. {}",
            response.rejected_count,
            response.records,
            quoted.join("; ")
        ));
    }
    if response.records != sent {
        return Err(format!(
            "Import received {} records of the {sent} sent",
            response.records
        ));
    }
    Ok(response)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_data_sets_are_imported_unless_told_otherwise() {
        let rpc = LoadMethod::Rpc { concurrency: 8 };
        let import = LoadMethod::Import {
            chunk: IMPORT_CHUNK,
        };
        assert_eq!(LoadMethod::choose(None, 17_000, 8), rpc);
        assert_eq!(LoadMethod::choose(None, IMPORT_FROM_GRANTS, 8), import);
        assert_eq!(LoadMethod::choose(Some(true), 10, 8), import);
        assert_eq!(LoadMethod::choose(Some(false), 10_000_000, 8), rpc);
    }
}
