//! MigrateLegacyRoles against the real server: every row of the model's legacy table,
//! unions, products, re-runs, dry runs, rejected rows, and the access that results.

use accessd::proto::{self, LegacyRole};

use crate::harness::*;

fn row(ws: &str, user: &str, legacy_role: LegacyRole, source: &str) -> proto::LegacyAssignment {
    proto::LegacyAssignment {
        workspace_id: ws.into(),
        user_id: user.into(),
        legacy_role: legacy_role.into(),
        source_id: source.into(),
    }
}

#[expect(clippy::unwrap_used, reason = "a failed call fails the test")]
async fn migrate(
    server: &TestServer,
    assignments: Vec<proto::LegacyAssignment>,
    dry_run: bool,
) -> proto::MigrateLegacyRolesResponse {
    server
        .admin()
        .migrate_legacy_roles(proto::MigrateLegacyRolesRequest {
            assignments,
            dry_run,
        })
        .await
        .unwrap()
        .into_inner()
}

/// The report as text rows: `workspace user owner|member|- [grant, ...]`.
fn report(response: &proto::MigrateLegacyRolesResponse) -> Vec<String> {
    response
        .changed
        .iter()
        .map(|user| {
            let membership = match user.membership_set() {
                proto::Membership::Owner => "owner",
                proto::Membership::Member => "member",
                proto::Membership::Unspecified => "-",
            };
            let grants: Vec<String> = user.grants_added.iter().map(grant_text).collect();
            assert!(user.grants_added.iter().all(|g| g.user_id == user.user_id));
            format!(
                "{} {} {membership} [{}]",
                user.workspace_id,
                user.user_id,
                grants.join(", ")
            )
        })
        .collect()
}

fn rejected(response: &proto::MigrateLegacyRolesResponse) -> Vec<(u32, String)> {
    response
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect()
}

/// `acme`, owned by olivia, without Protocols: sources `ios` and `web` with one
/// destination each, a third source `android`, and a warehouse.
async fn acme(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &[]).await;
    for source in ["ios", "web", "android"] {
        register(server, "acme", "source", source, "").await;
    }
    register(server, "acme", "destination", "ios-amplitude", "ios").await;
    register(server, "acme", "destination", "web-mixpanel", "web").await;
    register(server, "acme", "warehouse", "snowflake", "").await;
}

async fn can(server: &TestServer, user: &str, permission: &str, on: Option<(&str, &str)>) -> bool {
    allowed(
        server,
        "acme",
        user,
        permission,
        on.and_then(|(ty, id)| res(ty, id)),
    )
    .await
}

#[tokio::test]
async fn every_row_of_the_legacy_table_becomes_its_new_membership_and_grants() {
    let server = TestServer::start().await;
    acme(&server).await;
    let before = server.revision().await;
    let response = migrate(
        &server,
        vec![
            row("acme", "olivia", LegacyRole::WorkspaceOwner, ""),
            row("acme", "owen", LegacyRole::WorkspaceOwner, ""),
            row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
        ],
        false,
    )
    .await;
    assert!(response.rejected.is_empty(), "{:?}", response.rejected);
    assert!(!response.dry_run);
    assert_eq!(
        report(&response),
        [
            "acme cole member [source_admin@source/ios]",
            "acme owen owner []",
            "acme rita member [source_read@all, warehouse_read@all]",
        ]
    );
    let (revision, team) = team(&server, "acme").await;
    assert_eq!(response.revision, revision);
    assert!(revision > before);
    assert_eq!(
        team,
        [
            "cole member [source_admin@source/ios]",
            "olivia owner []",
            "owen owner []",
            "rita member [source_read@all, warehouse_read@all]",
        ]
    );
}

#[tokio::test]
async fn a_migrated_read_only_user_reads_everything_and_changes_nothing() {
    let server = TestServer::start().await;
    acme(&server).await;
    migrate(
        &server,
        vec![row("acme", "rita", LegacyRole::WorkspaceReadOnly, "")],
        false,
    )
    .await;
    for (permission, on) in [
        ("workspace.read", None),
        ("source.read", Some(("source", "ios"))),
        ("source.read", Some(("source", "android"))),
        ("destination.read", Some(("destination", "web-mixpanel"))),
        ("warehouse.read", Some(("warehouse", "snowflake"))),
    ] {
        assert!(can(&server, "rita", permission, on).await, "{permission}");
    }
    for (permission, on) in [
        ("source.update", Some(("source", "ios"))),
        ("source.delete", Some(("source", "ios"))),
        ("source.create", None),
        ("destination.update", Some(("destination", "web-mixpanel"))),
        ("destination.create", Some(("source", "web"))),
        ("warehouse.update", Some(("warehouse", "snowflake"))),
        ("warehouse.create", None),
        ("workspace.manage_access", None),
        ("workspace.update", None),
    ] {
        assert!(!can(&server, "rita", permission, on).await, "{permission}");
    }
    // Sources registered after the migration are covered too: the grant is all-scope.
    register(&server, "acme", "source", "android-tv", "").await;
    assert!(
        can(
            &server,
            "rita",
            "source.read",
            Some(("source", "android-tv"))
        )
        .await
    );
}

#[tokio::test]
async fn read_only_users_get_protocols_read_only_in_workspaces_with_protocols() {
    let server = TestServer::start().await;
    acme(&server).await;
    create_workspace(&server, "tracked", "olivia", &["protocols"]).await;
    register(&server, "tracked", "tracking_plan", "checkout", "").await;
    let response = migrate(
        &server,
        vec![
            row("tracked", "rita", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
        ],
        false,
    )
    .await;
    assert_eq!(
        report(&response),
        [
            "acme rita member [source_read@all, warehouse_read@all]",
            "tracked rita member [source_read@all, warehouse_read@all, protocols_read@all]",
        ]
    );
    let plan = res("tracking_plan", "checkout");
    assert!(
        allowed(
            &server,
            "tracked",
            "rita",
            "tracking_plan.read",
            plan.clone()
        )
        .await
    );
    assert!(!allowed(&server, "tracked", "rita", "tracking_plan.update", plan).await);
    assert!(!allowed(&server, "tracked", "rita", "tracking_plan.create", None).await);
}

#[tokio::test]
async fn a_migrated_collaborator_edits_their_source_only_and_cannot_invite_users() {
    let server = TestServer::start().await;
    acme(&server).await;
    migrate(
        &server,
        vec![row("acme", "cole", LegacyRole::SourceCollaborator, "ios")],
        false,
    )
    .await;
    for (permission, on) in [
        ("source.read", Some(("source", "ios"))),
        ("source.update", Some(("source", "ios"))),
        ("source.delete", Some(("source", "ios"))),
        ("destination.read", Some(("destination", "ios-amplitude"))),
        ("destination.update", Some(("destination", "ios-amplitude"))),
        ("destination.delete", Some(("destination", "ios-amplitude"))),
        ("destination.create", Some(("source", "ios"))),
    ] {
        assert!(can(&server, "cole", permission, on).await, "{permission}");
    }
    for (permission, on) in [
        ("source.read", Some(("source", "web"))),
        ("source.update", Some(("source", "web"))),
        ("destination.update", Some(("destination", "web-mixpanel"))),
        ("destination.create", Some(("source", "web"))),
        ("source.create", None),
        ("warehouse.read", Some(("warehouse", "snowflake"))),
        ("workspace.manage_access", None),
    ] {
        assert!(!can(&server, "cole", permission, on).await, "{permission}");
    }
    let invite = server
        .admin()
        .set_membership(proto::SetMembershipRequest {
            actor_user_id: "cole".into(),
            ..membership_req("acme", "newcomer", proto::Membership::Member)
        })
        .await;
    expect_error(invite, tonic::Code::PermissionDenied, "actor_user_id");
}

#[tokio::test]
async fn a_collaborator_on_several_sources_gets_one_source_admin_grant_for_each() {
    let server = TestServer::start().await;
    acme(&server).await;
    let response = migrate(
        &server,
        vec![
            row("acme", "cole", LegacyRole::SourceCollaborator, "web"),
            row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
            row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
        ],
        false,
    )
    .await;
    assert_eq!(
        report(&response),
        ["acme cole member [source_admin@source/ios, source_admin@source/web]"]
    );
    assert!(can(&server, "cole", "source.update", Some(("source", "ios"))).await);
    assert!(can(&server, "cole", "source.update", Some(("source", "web"))).await);
    assert!(
        !can(
            &server,
            "cole",
            "source.update",
            Some(("source", "android"))
        )
        .await
    );
    assert!(!can(&server, "cole", "source.create", None).await);
}

#[tokio::test]
async fn a_user_with_several_legacy_roles_gets_the_union() {
    let server = TestServer::start().await;
    acme(&server).await;
    let response = migrate(
        &server,
        vec![
            row("acme", "mia", LegacyRole::SourceCollaborator, "ios"),
            row("acme", "oscar", LegacyRole::SourceCollaborator, "web"),
            row("acme", "mia", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "oscar", LegacyRole::WorkspaceOwner, ""),
        ],
        false,
    )
    .await;
    assert_eq!(
        report(&response),
        [
            "acme mia member [source_admin@source/ios, source_read@all, warehouse_read@all]",
            "acme oscar owner []",
        ]
    );
    assert!(can(&server, "mia", "source.update", Some(("source", "ios"))).await);
    assert!(can(&server, "mia", "source.read", Some(("source", "web"))).await);
    assert!(!can(&server, "mia", "source.update", Some(("source", "web"))).await);
    assert!(
        can(
            &server,
            "mia",
            "warehouse.read",
            Some(("warehouse", "snowflake"))
        )
        .await
    );
    assert!(!can(&server, "mia", "workspace.manage_access", None).await);
    assert!(can(&server, "oscar", "workspace.manage_access", None).await);
}

#[tokio::test]
async fn existing_owners_are_never_demoted_and_held_grants_are_not_reported_again() {
    let server = TestServer::start().await;
    acme(&server).await;
    add_member(&server, "acme", "rita").await;
    grant(&server, "acme", "rita", "source_read", all()).await;
    let response = migrate(
        &server,
        vec![
            row("acme", "olivia", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "olivia", LegacyRole::SourceCollaborator, "ios"),
            row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
        ],
        false,
    )
    .await;
    assert_eq!(report(&response), ["acme rita - [warehouse_read@all]"]);
    let (_, team) = team(&server, "acme").await;
    assert_eq!(
        team,
        [
            "olivia owner []",
            "rita member [source_read@all, warehouse_read@all]"
        ]
    );
}

#[tokio::test]
async fn a_second_run_reports_no_change_and_writes_no_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let rows = vec![
        row("acme", "olivia", LegacyRole::WorkspaceOwner, ""),
        row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
        row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
        row("acme", "cole", LegacyRole::SourceCollaborator, "web"),
    ];
    let first = migrate(&server, rows.clone(), false).await;
    assert_eq!(first.changed.len(), 2);
    let (revision, team_before) = team(&server, "acme").await;
    assert_eq!(first.revision, revision);

    let second = migrate(&server, rows, false).await;
    assert!(second.changed.is_empty(), "{:?}", report(&second));
    assert!(second.rejected.is_empty());
    assert_eq!(second.revision, revision);
    assert_eq!(server.revision().await, revision);
    assert_eq!(team(&server, "acme").await, (revision, team_before));
}

#[tokio::test]
async fn a_dry_run_reports_what_the_real_run_does_and_writes_nothing() {
    let server = TestServer::start().await;
    acme(&server).await;
    create_workspace(&server, "tracked", "tess", &["protocols"]).await;
    let rows = vec![
        row("tracked", "rita", LegacyRole::WorkspaceReadOnly, ""),
        row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
        row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
        row("acme", "owen", LegacyRole::WorkspaceOwner, ""),
        row("ghost", "rita", LegacyRole::WorkspaceReadOnly, ""),
    ];
    let (revision, team_before) = team(&server, "acme").await;

    let dry = migrate(&server, rows.clone(), true).await;
    assert!(dry.dry_run);
    assert_eq!(dry.revision, revision);
    assert_eq!(server.revision().await, revision);
    assert_eq!(team(&server, "acme").await, (revision, team_before));
    assert!(!can(&server, "rita", "workspace.read", None).await);

    let real = migrate(&server, rows, false).await;
    assert!(!real.dry_run);
    assert!(real.revision > revision);
    assert_eq!(report(&dry), report(&real));
    assert_eq!(rejected(&dry), rejected(&real));
    assert_eq!(report(&real).len(), 4);
}

#[tokio::test]
async fn rows_that_cannot_be_migrated_are_reported_with_their_reason_and_the_rest_migrates() {
    let server = TestServer::start().await;
    acme(&server).await;
    let mut unknown_role = row("acme", "uma", LegacyRole::WorkspaceReadOnly, "");
    unknown_role.legacy_role = 42;
    let response = migrate(
        &server,
        vec![
            row("ghost", "rita", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "uma", LegacyRole::Unspecified, ""),
            unknown_role,
            row("acme", "cole", LegacyRole::SourceCollaborator, ""),
            row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
            row("acme", "cole", LegacyRole::SourceCollaborator, "segment-tv"),
            row("acme", "bad user", LegacyRole::WorkspaceOwner, ""),
            row("", "rita", LegacyRole::WorkspaceOwner, ""),
            row("acme", "owen", LegacyRole::WorkspaceOwner, "ios"),
            row("acme", "cole", LegacyRole::SourceCollaborator, "bad source"),
        ],
        false,
    )
    .await;
    assert_eq!(
        rejected(&response),
        [
            (0, "workspace `ghost` not found".to_owned()),
            (2, "`legacy_role`: is not set".to_owned()),
            (3, "`legacy_role`: unknown legacy role `42`".to_owned()),
            (
                4,
                "legacy role `source_collaborator` needs a source id".to_owned()
            ),
            (
                6,
                "source `segment-tv` is not registered in workspace `acme`".to_owned()
            ),
            (
                7,
                "`user_id`: must be printable ASCII without spaces, found ' ' at byte 3".to_owned()
            ),
            (8, "`workspace_id`: must not be empty".to_owned()),
            (
                9,
                "legacy role `workspace_owner` names no instance, got `ios`".to_owned()
            ),
            (
                10,
                "`source_id`: must be printable ASCII without spaces, found ' ' at byte 3"
                    .to_owned()
            ),
        ]
    );
    assert_eq!(
        report(&response),
        [
            "acme cole member [source_admin@source/ios]",
            "acme rita member [source_read@all, warehouse_read@all]",
        ]
    );
    assert!(!can(&server, "owen", "workspace.read", None).await);
    assert!(!can(&server, "uma", "workspace.read", None).await);
}

#[tokio::test]
async fn an_empty_batch_changes_nothing() {
    let server = TestServer::start().await;
    acme(&server).await;
    let revision = server.revision().await;
    let response = migrate(&server, Vec::new(), false).await;
    assert!(response.changed.is_empty() && response.rejected.is_empty());
    assert_eq!(response.revision, revision);
}

#[tokio::test]
async fn migrated_access_survives_a_restart() {
    let server = TestServer::start().await;
    acme(&server).await;
    migrate(
        &server,
        vec![
            row("acme", "rita", LegacyRole::WorkspaceReadOnly, ""),
            row("acme", "cole", LegacyRole::SourceCollaborator, "ios"),
        ],
        false,
    )
    .await;
    let (revision, team_before) = team(&server, "acme").await;
    let server = server.restart().await;
    assert_eq!(team(&server, "acme").await, (revision, team_before));
}
