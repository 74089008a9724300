//! `accessd grant` and `accessd revoke`.

use super::{
    CliError,
    args::{GrantArgs, ScopeArgs},
    client::{self, resource_ref},
    output,
};
use crate::proto;

fn scope(scope: &ScopeArgs) -> proto::Scope {
    let kind = match &scope.resource {
        Some(resource) => proto::scope::Kind::Instance(resource_ref(resource)),
        None => proto::scope::Kind::All(proto::AllInstances {}),
    };
    proto::Scope { kind: Some(kind) }
}

/// Runs `accessd grant`.
pub async fn grant(args: GrantArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .grant(proto::GrantRequest {
            scope: Some(scope(&args.scope)),
            workspace_id: args.workspace,
            user_id: args.user,
            role: args.role,
            actor_user_id: args.actor.unwrap_or_default(),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}

/// Runs `accessd revoke`.
pub async fn revoke(args: GrantArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .revoke(proto::RevokeRequest {
            scope: Some(scope(&args.scope)),
            workspace_id: args.workspace,
            user_id: args.user,
            role: args.role,
            actor_user_id: args.actor.unwrap_or_default(),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}
