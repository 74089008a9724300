//! BatchCheck: answers in request order at one revision, its size limit, and an invalid
//! item failing the whole call.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use proto::DenialReason;

use super::acme;

#[tokio::test]
async fn batch_check_answers_in_request_order_at_one_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let written = grant(&server, "acme", "sam", "warehouse_read", all()).await;
    let checks = vec![
        check_req("acme", "sam", "warehouse.read", res("warehouse", "wh")),
        check_req("acme", "sam", "warehouse.update", res("warehouse", "wh")),
        check_req("acme", "olivia", "warehouse.create", None),
        check_req("nowhere", "sam", "workspace.read", None),
        check_req("acme", "rita", "workspace.read", None),
        check_req("acme", "olivia", "source.read", res("source", "unknown")),
    ];
    let answer = server
        .access()
        .batch_check(proto::BatchCheckRequest {
            checks,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revision, written.revision);
    let summary: Vec<(bool, Option<DenialReason>)> = answer
        .decisions
        .iter()
        .map(|d| (d.allowed, denial(d)))
        .collect();
    assert_eq!(
        summary,
        [
            (true, None),
            (false, Some(DenialReason::NoCoveringGrant)),
            (true, None),
            (false, Some(DenialReason::NotAMember)),
            (true, None),
            (false, Some(DenialReason::ResourceNotRegistered)),
        ]
    );
    assert!(answer.decisions.iter().all(|d| !d.explanation.is_empty()));

    let empty = server
        .access()
        .batch_check(proto::BatchCheckRequest {
            checks: vec![],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.decisions.is_empty());
    assert_eq!(empty.revision, written.revision);
}

#[tokio::test]
async fn batch_check_takes_1000_checks_and_refuses_1001() {
    let server = TestServer::start().await;
    acme(&server).await;
    grant(&server, "acme", "sam", "source_read", one("source", "web")).await;
    // Alternate an allowed and a denied check so that order is visible in the answer.
    let checks: Vec<proto::CheckRequest> = (0..1000)
        .map(|i| {
            let source = if i % 2 == 0 { "web" } else { "ios-prod" };
            check_req("acme", "sam", "source.read", res("source", source))
        })
        .collect();
    let answer = server
        .access()
        .batch_check(proto::BatchCheckRequest {
            checks: checks.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.decisions.len(), 1000);
    for (i, decision) in answer.decisions.iter().enumerate() {
        assert_eq!(decision.allowed, i % 2 == 0, "decision {i}");
    }

    let mut too_many = checks;
    too_many.push(check_req("acme", "sam", "workspace.read", None));
    let status = expect_error(
        server
            .access()
            .batch_check(proto::BatchCheckRequest {
                checks: too_many,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "checks",
    );
    assert!(status.message().contains("1001"), "{}", status.message());
}

#[tokio::test]
async fn an_invalid_batch_item_fails_the_whole_call_naming_its_index() {
    let server = TestServer::start().await;
    acme(&server).await;
    let valid = check_req("acme", "sam", "workspace.read", None);
    let cases = [
        (
            check_req("acme", "", "workspace.read", None),
            "checks[2].user_id",
        ),
        (
            check_req("acme", "sam", "source.fly", None),
            "checks[2].permission",
        ),
        (
            check_req("ac me", "sam", "workspace.read", None),
            "checks[2].workspace_id",
        ),
        (
            check_req("acme", "sam", "source.read", None),
            "checks[2].resource",
        ),
        (
            check_req("acme", "sam", "source.read", res("warehouse", "wh")),
            "checks[2].resource.type",
        ),
    ];
    for (invalid, field) in cases {
        let checks = vec![valid.clone(), valid.clone(), invalid, valid.clone()];
        let result = server
            .access()
            .batch_check(proto::BatchCheckRequest {
                checks,
                ..Default::default()
            })
            .await;
        expect_error(result, Code::InvalidArgument, field);
    }
}
