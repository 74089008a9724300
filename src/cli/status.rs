//! `accessd status`: where a server stands: a leader's revision, or a follower's
//! progress behind its leader.

use serde::Serialize;

use super::{CliError, args::AdminOptions, client, output};
use crate::proto::{self, replication_service_client::ReplicationServiceClient};

/// The status, as printed.
#[derive(Debug, Serialize)]
struct StatusView {
    role: String,
    revision: u64,
    serving: bool,
    history_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    leader: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    state: String,
    selection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader_revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lag_revisions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    millis_since_leader_heard: Option<u64>,
}

impl From<proto::ReplicationStatus> for StatusView {
    fn from(s: proto::ReplicationStatus) -> Self {
        let follower = s.role == "follower";
        Self {
            role: s.role,
            revision: s.revision,
            serving: s.serving,
            history_id: s.history_id,
            leader: s.leader,
            state: s.state,
            selection: s.selection,
            leader_revision: follower.then_some(s.leader_revision),
            lag_revisions: follower.then_some(s.lag_revisions),
            // u64::MAX: never heard from.
            millis_since_leader_heard: (follower && s.millis_since_leader_heard != u64::MAX)
                .then_some(s.millis_since_leader_heard),
        }
    }
}

/// Runs `accessd status`.
pub async fn status(options: AdminOptions) -> Result<(), CliError> {
    let token = client::bearer(&options.token)?;
    let channel = client::channel(&options.server).await?;
    let answer = ReplicationServiceClient::with_interceptor(channel, token)
        .get_replication_status(proto::GetReplicationStatusRequest {})
        .await?
        .into_inner();
    let view = StatusView::from(answer);
    output::print(options.output, &view, |v| {
        let mut lines = vec![
            ("role", v.role.clone()),
            ("revision", v.revision.to_string()),
            ("serving", if v.serving { "yes" } else { "no" }.to_owned()),
            ("history", v.history_id.clone()),
            ("selection", v.selection.clone()),
        ];
        if !v.leader.is_empty() {
            lines.push(("leader", v.leader.clone()));
            lines.push(("state", v.state.clone()));
            if let Some(revision) = v.leader_revision {
                lines.push(("leader revision", revision.to_string()));
            }
            if let Some(lag) = v.lag_revisions {
                lines.push(("behind by", format!("{lag} revisions")));
            }
            lines.push((
                "last heard",
                v.millis_since_leader_heard
                    .map_or_else(|| "never".to_owned(), |ms| format!("{ms} ms ago")),
            ));
        }
        let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        lines
            .iter()
            .map(|(key, value)| format!("{key:width$}  {value}\n"))
            .collect()
    })
}
