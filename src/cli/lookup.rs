//! `accessd lookup resources|subjects`: every page of a lookup.

use serde::Serialize;

use super::{
    CliError,
    args::{LookupCommand, LookupResourcesArgs, LookupSubjectsArgs},
    client::{self, next_page, resource_ref},
    output::{self, DecisionView, Table},
};
use crate::proto;

/// An instance a user holds the permission on.
#[derive(Debug, Serialize)]
struct ResourceView {
    r#type: String,
    id: String,
}

/// A user who holds the permission, and what gives it to them.
#[derive(Debug, Serialize)]
struct SubjectView {
    user_id: String,
    #[serde(flatten)]
    decision: DecisionView,
}

/// Runs `accessd lookup ...`.
pub async fn run(command: LookupCommand) -> Result<(), CliError> {
    match command {
        LookupCommand::Resources(args) => resources(args).await,
        LookupCommand::Subjects(args) => subjects(args).await,
    }
}

async fn resources(args: LookupResourcesArgs) -> Result<(), CliError> {
    let mut access = client::access(&args.options.server, &args.options.token).await?;
    let mut request = proto::LookupResourcesRequest {
        workspace_id: args.workspace,
        user_id: args.user,
        permission: args.permission,
        page_size: args.page.page_size,
        page_token: String::new(),
        at_least_revision: args.options.at_least_revision,
    };
    let mut found = Vec::new();
    loop {
        let page = access.lookup_resources(request.clone()).await?.into_inner();
        found.extend(page.resources.into_iter().map(|r| ResourceView {
            r#type: r.r#type,
            id: r.id,
        }));
        match next_page(&request.page_token, page.next_page_token)? {
            Some(token) => request.page_token = token,
            None => break,
        }
    }
    output::print(args.options.output, &found, |found| {
        let mut table = Table::new(&["TYPE", "ID"]);
        for resource in found {
            table.push(vec![resource.r#type.clone(), resource.id.clone()]);
        }
        table.render()
    })
}

async fn subjects(args: LookupSubjectsArgs) -> Result<(), CliError> {
    let mut access = client::access(&args.options.server, &args.options.token).await?;
    let mut request = proto::LookupSubjectsRequest {
        workspace_id: args.workspace,
        permission: args.permission,
        resource: args.resource.as_ref().map(resource_ref),
        page_size: args.page.page_size,
        page_token: String::new(),
        at_least_revision: args.options.at_least_revision,
    };
    let mut found = Vec::new();
    loop {
        let page = access.lookup_subjects(request.clone()).await?.into_inner();
        found.extend(page.subjects.into_iter().map(|s| SubjectView {
            decision: DecisionView::from(&s.decision.unwrap_or_default()),
            user_id: s.user_id,
        }));
        match next_page(&request.page_token, page.next_page_token)? {
            Some(token) => request.page_token = token,
            None => break,
        }
    }
    output::print(args.options.output, &found, |found| {
        let mut table = Table::new(&["USER", "BASIS", "ROLE", "SCOPE"]);
        for subject in found {
            let grant = subject.decision.grant.as_ref();
            table.push(vec![
                subject.user_id.clone(),
                subject.decision.basis.clone(),
                grant.map(|g| g.role.clone()).unwrap_or_default(),
                grant.map(|g| g.scope.to_string()).unwrap_or_default(),
            ]);
        }
        table.render()
    })
}
