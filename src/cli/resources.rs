//! `accessd resources register|delete`.

use super::{
    CliError,
    args::{DeleteResourceArgs, RegisterArgs, ResourcesCommand},
    client::{self, resource_ref},
    output,
};
use crate::proto;

/// Runs `accessd resources ...`.
pub async fn run(command: ResourcesCommand) -> Result<(), CliError> {
    match command {
        ResourcesCommand::Register(args) => register(args).await,
        ResourcesCommand::Delete(args) => delete(args).await,
    }
}

async fn register(args: RegisterArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .register_resource(proto::RegisterResourceRequest {
            workspace_id: args.workspace,
            resource: Some(resource_ref(&args.resource)),
            parent_id: args.parent.unwrap_or_default(),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}

async fn delete(args: DeleteResourceArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .delete_resource(proto::DeleteResourceRequest {
            workspace_id: args.workspace,
            resource: Some(resource_ref(&args.resource)),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}
