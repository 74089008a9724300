//! The connection to the leader: a lazily connecting channel (the follower starts, and
//! serves what it holds, whether the leader is up or not), sending the leader token,
//! over TLS for an `https://` leader. It is built anew when the follower's TLS files
//! change, so that a renewed client certificate is used without a restart.

use std::{path::PathBuf, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use super::{FollowError, FollowOptions};
use crate::{
    connect::{self, BearerToken, ClientTls},
    proto::replication_service_client::ReplicationServiceClient,
};

/// How long to wait for the leader to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message accepted from the leader: a change group's messages are about
/// 1 MiB; a snapshot's chunks of 1,000 records are smaller still.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The replication client, sending the leader token.
pub type LeaderClient = ReplicationServiceClient<InterceptedService<Channel, BearerToken>>;

/// The connection to the leader.
pub struct Leader {
    address: String,
    tls: ClientTls,
    token: BearerToken,
    channel: Arc<ArcSwap<Channel>>,
}

impl Leader {
    /// The connection `options` describe; nothing is connected until a call is made.
    pub fn new(options: &FollowOptions) -> Result<Arc<Self>, FollowError> {
        let token =
            BearerToken::new(options.leader_token.as_deref()).map_err(|_| FollowError::Token)?;
        let channel = channel(&options.leader, &options.leader_tls)?;
        Ok(Arc::new(Self {
            address: options.leader.clone(),
            tls: options.leader_tls.clone(),
            token,
            channel: Arc::new(ArcSwap::from_pointee(channel)),
        }))
    }

    /// The channel, as it is at each call, for calls forwarded to the leader as they
    /// came.
    pub fn channel(&self) -> Arc<ArcSwap<Channel>> {
        Arc::clone(&self.channel)
    }

    /// A replication client over the channel as it is now.
    pub fn client(&self) -> LeaderClient {
        let channel = Channel::clone(&self.channel.load());
        ReplicationServiceClient::with_interceptor(channel, self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The TLS files read, to watch for a change.
    pub fn tls_files(&self) -> Vec<PathBuf> {
        [&self.tls.ca, &self.tls.cert, &self.tls.key]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Reads the TLS files again: calls from now on connect with them, calls in flight
    /// finish on the connection they have.
    pub fn reload(&self) -> Result<(), FollowError> {
        self.channel
            .store(Arc::new(channel(&self.address, &self.tls)?));
        Ok(())
    }
}

fn channel(address: &str, tls: &ClientTls) -> Result<Channel, FollowError> {
    let target = connect::endpoint(address, tls)
        .map_err(|e| FollowError::Leader(e.to_string()))?
        .configured(|endpoint| {
            endpoint
                .connect_timeout(CONNECT_TIMEOUT)
                // A leader that vanishes without closing the connection is noticed.
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true)
                .tcp_nodelay(true)
        });
    Ok(target.connect_lazy())
}
