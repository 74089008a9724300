//! `at_least_revision` on every read: answered at that revision or a later one, after
//! waiting for a write that makes it, or DEADLINE_EXCEEDED naming both revisions just
//! before the caller's deadline (or the cap, without one).

use std::{
    future::Future,
    time::{Duration, Instant},
};

use accessd::{api::MAX_REVISION_WAIT, proto};
use tonic::{Code, Request};

use crate::harness::*;

use super::acme;

/// A revision no write in these tests comes near.
const FAR_FUTURE: u64 = 1_000_000;

/// Runs `write` a moment from now: the read started beside it is then already waiting
/// when the write lands, which is what these tests are about (they would pass without
/// the wait, only without exercising it).
async fn after_a_moment<T>(write: impl Future<Output = T>) -> T {
    tokio::time::sleep(Duration::from_millis(100)).await;
    write.await
}

fn check_at(
    resource: Option<proto::ResourceRef>,
    permission: &str,
    at_least_revision: u64,
) -> proto::CheckRequest {
    proto::CheckRequest {
        at_least_revision,
        ..check_req("acme", "sam", permission, resource)
    }
}

#[tokio::test]
async fn a_check_carrying_the_revision_a_write_returned_is_answered_at_it_or_later() {
    let server = TestServer::start().await;
    acme(&server).await;
    let written = grant(&server, "acme", "sam", "source_admin", one("source", "web")).await;
    let answer = server
        .access()
        .check(check_at(
            res("source", "web"),
            "source.update",
            written.revision,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.revision >= written.revision);
    assert!(answer.decision.unwrap().allowed);
}

#[tokio::test]
async fn a_revision_never_reached_fails_before_the_deadline_naming_both_revisions() {
    let server = TestServer::start().await;
    acme(&server).await;
    let applied = server.revision().await;
    let mut request = Request::new(check_at(None, "workspace.read", FAR_FUTURE));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = expect_error(
        server.access().check(request).await,
        Code::DeadlineExceeded,
        "at_least_revision",
    );
    let waited = started.elapsed();
    assert!(
        status.message().contains(&format!(
            "revision {FAR_FUTURE} not reached within the deadline: this server has applied \
             revision {applied}"
        )),
        "{}",
        status.message()
    );
    // It waited for the revision, and answered before the cap of calls without a deadline.
    assert!(
        waited >= Duration::from_millis(200) && waited < MAX_REVISION_WAIT,
        "answered after {waited:?}"
    );
}

#[tokio::test]
async fn a_check_waiting_for_the_next_revision_is_answered_once_a_write_makes_it() {
    let server = TestServer::start().await;
    acme(&server).await;
    let next = server.revision().await + 1;
    let mut access = server.access();
    let (answer, written) = tokio::join!(
        access.check(check_at(res("source", "web"), "source.update", next)),
        after_a_moment(grant(
            &server,
            "acme",
            "sam",
            "source_admin",
            one("source", "web")
        )),
    );
    let answer = answer.unwrap().into_inner();
    assert_eq!(written.revision, next);
    assert!(answer.revision >= next);
    // Decided on the data after the wait, not on the snapshot from before it.
    assert!(answer.decision.unwrap().allowed);
}

#[tokio::test]
async fn a_batch_waits_for_the_highest_revision_any_of_its_items_names() {
    let server = TestServer::start().await;
    acme(&server).await;
    let next = server.revision().await + 1;
    let mut access = server.access();
    let batch = proto::BatchCheckRequest {
        checks: vec![
            check_at(None, "workspace.read", 0),
            check_at(res("source", "web"), "source.update", next),
        ],
        at_least_revision: 0,
    };
    let (answer, _) = tokio::join!(
        access.batch_check(batch),
        after_a_moment(grant(
            &server,
            "acme",
            "sam",
            "source_admin",
            one("source", "web")
        )),
    );
    let answer = answer.unwrap().into_inner();
    assert!(answer.revision >= next);
    let allowed: Vec<bool> = answer.decisions.iter().map(|d| d.allowed).collect();
    assert_eq!(allowed, [true, true]);
}

#[tokio::test]
async fn list_access_waits_for_its_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let next = server.revision().await + 1;
    let mut access = server.access();
    let (page, _) = tokio::join!(
        access.list_access(proto::ListAccessRequest {
            at_least_revision: next,
            ..list_req("acme")
        }),
        after_a_moment(add_member(&server, "acme", "nora")),
    );
    let page = page.unwrap().into_inner();
    assert!(page.revision >= next);
    assert!(
        page.entries.iter().any(|entry| entry.user_id == "nora"),
        "{:?}",
        table(&page.entries)
    );
}

#[tokio::test]
async fn lookup_resources_waits_for_its_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let next = server.revision().await + 1;
    let mut access = server.access();
    let (page, _) = tokio::join!(
        access.lookup_resources(proto::LookupResourcesRequest {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            permission: "source.update".into(),
            at_least_revision: next,
            ..Default::default()
        }),
        after_a_moment(grant(
            &server,
            "acme",
            "sam",
            "source_admin",
            one("source", "web")
        )),
    );
    let page = page.unwrap().into_inner();
    assert!(page.revision >= next);
    let ids: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["web"]);
}

#[tokio::test]
async fn lookup_subjects_waits_for_its_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let next = server.revision().await + 1;
    let mut access = server.access();
    let (page, _) = tokio::join!(
        access.lookup_subjects(proto::LookupSubjectsRequest {
            workspace_id: "acme".into(),
            permission: "source.update".into(),
            resource: res("source", "web"),
            at_least_revision: next,
            ..Default::default()
        }),
        after_a_moment(grant(
            &server,
            "acme",
            "sam",
            "source_admin",
            one("source", "web")
        )),
    );
    let page = page.unwrap().into_inner();
    assert!(page.revision >= next);
    let users: Vec<&str> = page.subjects.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(users, ["olivia", "sam"]);
}

#[tokio::test]
async fn without_a_deadline_a_read_waits_at_most_the_cap() {
    let server = TestServer::start().await;
    acme(&server).await;
    let started = Instant::now();
    let status = expect_error(
        server
            .access()
            .check(check_at(None, "workspace.read", FAR_FUTURE))
            .await,
        Code::DeadlineExceeded,
        "at_least_revision",
    );
    assert!(
        started.elapsed() >= MAX_REVISION_WAIT,
        "answered after {:?}: {}",
        started.elapsed(),
        status.message()
    );
}
