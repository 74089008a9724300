//! `accessd members add|set|remove`. `add` and `set` are the same call (SetMembership):
//! `add` reads better for a new user, `set` for changing an existing one.

use super::{
    CliError,
    args::{MemberArgs, MembersCommand, RemoveMemberArgs},
    client, output,
};
use crate::proto;

/// Runs `accessd members ...`.
pub async fn run(command: MembersCommand) -> Result<(), CliError> {
    match command {
        MembersCommand::Add(args) | MembersCommand::Set(args) => set(args).await,
        MembersCommand::Remove(args) => remove(args).await,
    }
}

async fn set(args: MemberArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let membership = if args.owner {
        proto::Membership::Owner
    } else {
        proto::Membership::Member
    };
    let response = admin
        .set_membership(proto::SetMembershipRequest {
            workspace_id: args.workspace,
            user_id: args.user,
            membership: membership.into(),
            actor_user_id: args.actor.unwrap_or_default(),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}

async fn remove(args: RemoveMemberArgs) -> Result<(), CliError> {
    let mut admin = client::admin(&args.options.server, &args.options.token).await?;
    let response = admin
        .remove_member(proto::RemoveMemberRequest {
            workspace_id: args.workspace,
            user_id: args.user,
            actor_user_id: args.actor.unwrap_or_default(),
        })
        .await?
        .into_inner();
    output::print_write(args.options.output, &response)
}
