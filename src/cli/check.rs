//! `accessd check`: one decision, printed with what decided it and its revision.

use std::process::ExitCode;

use serde::Serialize;

use super::{
    CliError, EXIT_DENIED,
    args::CheckArgs,
    client::{self, resource_ref},
    output::{self, DecisionView, Table},
};
use crate::proto;

/// A decision and the revision it was made at.
#[derive(Debug, Serialize)]
struct CheckView {
    #[serde(flatten)]
    decision: DecisionView,
    revision: u64,
}

/// Runs `accessd check`: exit status 0 whatever the decision, or 3 on denial with
/// `--exit-code`.
pub async fn check(args: CheckArgs) -> Result<ExitCode, CliError> {
    let mut access = client::access(&args.options.server, &args.options.token).await?;
    let response = access
        .check(proto::CheckRequest {
            workspace_id: args.workspace,
            user_id: args.user,
            permission: args.permission,
            resource: args.resource.as_ref().map(resource_ref),
            at_least_revision: args.options.at_least_revision,
        })
        .await?
        .into_inner();
    let view = CheckView {
        decision: DecisionView::from(&response.decision.unwrap_or_default()),
        revision: response.revision,
    };
    output::print(args.options.output, &view, |v| {
        let mut table = Table::new(&["DECISION", "BASIS", "REVISION", "EXPLANATION"]);
        table.push(vec![
            if v.decision.allowed {
                "allowed"
            } else {
                "denied"
            }
            .to_owned(),
            v.decision.basis.clone(),
            v.revision.to_string(),
            v.decision.explanation.clone(),
        ]);
        table.render()
    })?;
    Ok(if args.exit_code && !view.decision.allowed {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    })
}
