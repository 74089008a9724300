//! Named callers: each needs its token, may call only within its scopes and its
//! workspaces, and may name an acting user only if its entry says so.

use std::sync::Arc;

use accessd::{
    api::callers::{Callers, digest_hex, token_digest},
    proto::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
        replication_service_client::ReplicationServiceClient,
    },
    server::ServeOptions,
};
use arc_swap::ArcSwap;
use tonic::{Code, transport::Channel};

use crate::harness::*;

fn entry(name: &str, rest: &str) -> String {
    format!(
        "[[caller]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n{rest}\n",
        digest_hex(&token_digest(&format!("token-of-{name}")))
    )
}

fn token(name: &str) -> String {
    format!("token-of-{name}")
}

/// A server whose callers are: `control` (admin, may name actors), `orders` (check,
/// bound to acme), `auditor` (check), `ops` (admin, bound to acme), `sidecar`
/// (replicate); with workspaces acme and globex.
async fn server() -> TestServer {
    let file = [
        entry("control", "scopes = [\"admin\"]\nmay_name_actor = true"),
        entry("orders", "scopes = [\"check\"]\nworkspaces = [\"acme\"]"),
        entry("auditor", "scopes = [\"check\"]"),
        entry("ops", "scopes = [\"admin\"]\nworkspaces = [\"acme\"]"),
        entry("sidecar", "scopes = [\"replicate\"]"),
    ]
    .concat();
    let callers = Arc::new(ArcSwap::from_pointee(Callers::parse(&file).unwrap()));
    let server = TestServer::start_with_options(ServeOptions {
        callers: Some(callers),
        ..ServeOptions::default()
    })
    .await;
    for ws in ["acme", "globex"] {
        server
            .admin()
            .create_workspace(with_token(
                &token("control"),
                proto::CreateWorkspaceRequest {
                    workspace_id: ws.into(),
                    owner_user_id: "olivia".into(),
                    products: vec![],
                },
            ))
            .await
            .unwrap();
    }
    server
}

fn access(channel: &Channel) -> AccessServiceClient<Channel> {
    AccessServiceClient::new(channel.clone())
}

fn admin(channel: &Channel) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(channel.clone())
}

fn read(ws: &str) -> proto::CheckRequest {
    check_req(ws, "olivia", "workspace.read", None)
}

#[tokio::test]
async fn a_call_without_a_callers_token_is_unauthenticated_and_health_stays_open() {
    let server = server().await;
    let c = &server.channel;
    for status in [
        access(c).check(read("acme")).await.unwrap_err(),
        access(c)
            .check(with_token("token-of-nobody", read("acme")))
            .await
            .unwrap_err(),
        admin(c)
            .delete_workspace(proto::DeleteWorkspaceRequest {
                workspace_id: "acme".into(),
            })
            .await
            .unwrap_err(),
        ReplicationServiceClient::new(c.clone())
            .get_replication_status(proto::GetReplicationStatusRequest {})
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let health = tonic_health::pb::health_client::HealthClient::new(c.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);
}

#[tokio::test]
async fn a_caller_outside_its_scopes_is_permission_denied() {
    let server = server().await;
    let c = &server.channel;
    let answer = access(c)
        .check(with_token(&token("auditor"), read("globex")))
        .await
        .unwrap();
    assert!(answer.into_inner().decision.unwrap().allowed);
    let refused = admin(c)
        .delete_workspace(with_token(
            &token("auditor"),
            proto::DeleteWorkspaceRequest {
                workspace_id: "globex".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("caller `auditor`") && refused.message().contains("`admin`"),
        "{}",
        refused.message()
    );
    let replication = ReplicationServiceClient::new(c.clone());
    let refused = replication
        .clone()
        .watch(with_token(
            &token("auditor"),
            proto::WatchRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // A replica's caller may follow, and may not check.
    replication
        .clone()
        .watch(with_token(
            &token("sidecar"),
            proto::WatchRequest::default(),
        ))
        .await
        .unwrap();
    let refused = access(c)
        .check(with_token(&token("sidecar"), read("acme")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_caller_bound_to_workspaces_cannot_reach_another_nor_learn_whether_it_exists() {
    let server = server().await;
    let c = &server.channel;
    access(c)
        .check(with_token(&token("orders"), read("acme")))
        .await
        .unwrap();
    let existing = access(c)
        .check(with_token(&token("orders"), read("globex")))
        .await
        .unwrap_err();
    let missing = access(c)
        .check(with_token(&token("orders"), read("nowhere")))
        .await
        .unwrap_err();
    assert_eq!(existing.code(), Code::PermissionDenied);
    assert_eq!(missing.code(), Code::PermissionDenied);
    assert_eq!(
        existing.message().replace("globex", "X"),
        missing.message().replace("nowhere", "X"),
        "the same refusal whether the workspace exists or not"
    );
    let batch = access(c)
        .batch_check(with_token(
            &token("orders"),
            proto::BatchCheckRequest {
                checks: vec![read("acme"), read("globex")],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(batch.code(), Code::PermissionDenied);
    assert!(
        batch.message().contains("`checks[1].workspace_id`"),
        "{}",
        batch.message()
    );
    let list = access(c)
        .list_access(with_token(&token("orders"), list_req("globex")))
        .await
        .unwrap_err();
    assert_eq!(list.code(), Code::PermissionDenied);
    // An admin bound to acme writes there only, and exports nothing else.
    let refused = admin(c)
        .delete_workspace(with_token(
            &token("ops"),
            proto::DeleteWorkspaceRequest {
                workspace_id: "globex".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let everything = admin(c)
        .export(with_token(&token("ops"), proto::ExportRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(everything.code(), Code::PermissionDenied);
    admin(c)
        .export(with_token(
            &token("ops"),
            proto::ExportRequest {
                workspace_id: "acme".into(),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn only_a_caller_allowed_to_may_name_an_acting_user() {
    let server = server().await;
    let c = &server.channel;
    let member = |caller: &str| {
        with_token(
            &token(caller),
            proto::SetMembershipRequest {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                membership: proto::Membership::Member.into(),
                actor_user_id: "olivia".into(),
            },
        )
    };
    let refused = admin(c).set_membership(member("ops")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("`actor_user_id`"),
        "{}",
        refused.message()
    );
    admin(c).set_membership(member("control")).await.unwrap();
}

/// Every line of the server's change log, as JSON.
fn logged(server: &TestServer) -> Vec<serde_json::Value> {
    let dir = server.data_dir.path().join("change_log");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|name| {
            std::fs::read_to_string(dir.join(name))
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_change_records_its_caller_and_acting_user() {
    let server = server().await;
    let c = &server.channel;
    admin(c)
        .set_membership(with_token(
            &token("control"),
            proto::SetMembershipRequest {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                membership: proto::Membership::Member.into(),
                actor_user_id: "olivia".into(),
            },
        ))
        .await
        .unwrap();
    let record = proto::Record {
        kind: Some(proto::record::Kind::Member(proto::MemberRecord {
            workspace_id: "globex".into(),
            user_id: "rita".into(),
            membership: proto::Membership::Member.into(),
        })),
    };
    import_to_end(
        admin(c)
            .import(with_token(
                &token("control"),
                tokio_stream::iter(import_chunks(&[record], 1)),
            ))
            .await,
    )
    .await
    .unwrap();
    let lines = logged(&server);
    let authors: Vec<(String, Option<String>, Option<String>)> = lines
        .iter()
        .map(|line| {
            (
                line["command"].as_str().unwrap().to_owned(),
                line["caller"].as_str().map(str::to_owned),
                line["actor"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let by_control = Some("control".to_owned());
    assert_eq!(
        authors,
        [
            ("create_workspace".to_owned(), by_control.clone(), None),
            ("create_workspace".to_owned(), by_control.clone(), None),
            (
                "set_membership".to_owned(),
                by_control.clone(),
                Some("olivia".to_owned())
            ),
            ("batch".to_owned(), by_control, None),
        ]
    );
}

#[tokio::test]
async fn the_audit_trail_lists_changes_by_workspace_user_and_caller_a_page_at_a_time() {
    use accessd::proto::audit_service_client::AuditServiceClient;
    let server = server().await;
    let c = &server.channel;
    admin(c)
        .set_membership(with_token(
            &token("control"),
            proto::SetMembershipRequest {
                workspace_id: "acme".into(),
                user_id: "sam".into(),
                membership: proto::Membership::Member.into(),
                actor_user_id: "olivia".into(),
            },
        ))
        .await
        .unwrap();
    let audit = AuditServiceClient::new(c.clone());
    let list = |caller: &str, request: proto::ListChangesRequest| {
        let mut audit = audit.clone();
        let request = with_token(&token(caller), request);
        async move { audit.list_changes(request).await }
    };
    let revisions = |page: &proto::ListChangesResponse| -> Vec<u64> {
        page.entries.iter().map(|e| e.revision).collect()
    };
    let all = list("control", proto::ListChangesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revisions(&all), [1, 2, 3]);
    assert_eq!((all.oldest_revision, all.more), (1, false));
    assert!(all.entries.iter().all(|e| e.caller == "control"));
    let globex = list(
        "control",
        proto::ListChangesRequest {
            workspace_id: "globex".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(revisions(&globex), [2]);
    let sam = list(
        "control",
        proto::ListChangesRequest {
            user_id: "sam".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(revisions(&sam), [3]);
    assert_eq!(sam.entries[0].actor_user_id, "olivia");
    let nobody = list(
        "control",
        proto::ListChangesRequest {
            caller: "orders".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert!(nobody.entries.is_empty());
    // A page at a time.
    let first = list(
        "control",
        proto::ListChangesRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!((revisions(&first), first.more), (vec![1, 2], true));
    let rest = list(
        "control",
        proto::ListChangesRequest {
            page_size: 2,
            after_revision: first.next_after_revision,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!((revisions(&rest), rest.more), (vec![3], false));
    // The trail is for admins, and an admin bound to acme reads acme's only.
    let refused = list("auditor", proto::ListChangesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let bound = list("ops", proto::ListChangesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bound.code(), Code::PermissionDenied);
    let acme = list(
        "ops",
        proto::ListChangesRequest {
            workspace_id: "acme".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(revisions(&acme), [1, 3]);
}
