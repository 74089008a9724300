//! `accessd workspaces create|set-products|delete`.

use super::{
    CliError,
    args::{CreateWorkspaceArgs, DeleteWorkspaceArgs, SetProductsArgs, WorkspacesCommand},
    client, output,
};
use crate::proto;

/// Runs `accessd workspaces ...`.
pub async fn run(command: WorkspacesCommand) -> Result<(), CliError> {
    match command {
        WorkspacesCommand::Create(args) => create(args).await,
        WorkspacesCommand::SetProducts(args) => set_products(args).await,
        WorkspacesCommand::Delete(args) => delete(args).await,
    }
}

/// The products named, without the empty ones (`--products ''` names none).
fn products(raw: Vec<String>) -> Vec<String> {
    raw.into_iter().filter(|p| !p.is_empty()).collect()
}

async fn create(args: CreateWorkspaceArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: args.workspace,
            owner_user_id: args.owner,
            products: products(args.products),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}

async fn set_products(args: SetProductsArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .set_products(proto::SetProductsRequest {
            workspace_id: args.workspace,
            products: products(args.products),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}

async fn delete(args: DeleteWorkspaceArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .delete_workspace(proto::DeleteWorkspaceRequest {
            workspace_id: args.workspace,
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}
