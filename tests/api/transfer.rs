//! Bulk import and export: export then import into an empty server reproduces it.

use accessd::proto::{self, record::Kind};

use crate::harness::*;

async fn export_all(server: &TestServer) -> (Vec<proto::Record>, u64) {
    let mut stream = server
        .admin()
        .export(proto::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (mut records, mut revision) = (Vec::new(), 0);
    while let Some(chunk) = stream.message().await.unwrap() {
        revision = chunk.revision;
        records.extend(chunk.records);
    }
    (records, revision)
}

async fn import(
    server: &TestServer,
    records: Vec<proto::Record>,
    chunk: usize,
) -> proto::ImportProgress {
    let chunks = import_chunks(&records, chunk);
    import_to_end(server.admin().import(tokio_stream::iter(chunks)).await)
        .await
        .unwrap()
}

fn grant_record(ws: &str, user: &str, role: &str, scope: Option<proto::Scope>) -> proto::Record {
    proto::Record {
        kind: Some(Kind::Grant(proto::GrantRecord {
            workspace_id: ws.into(),
            user_id: user.into(),
            role: role.into(),
            scope,
        })),
    }
}

#[tokio::test]
async fn export_then_import_into_an_empty_server_reproduces_it() {
    let source = TestServer::start().await;
    create_workspace(&source, "acme", "olivia", &["protocols"]).await;
    create_workspace(&source, "globex", "gina", &["personas"]).await;
    for user in ["sam", "ria", "zed"] {
        add_member(&source, "acme", user).await;
    }
    add_member(&source, "globex", "sam").await;
    register(&source, "acme", "source", "ios-prod", "").await;
    register(&source, "acme", "destination", "amplitude", "ios-prod").await;
    register(&source, "acme", "warehouse", "bq", "").await;
    grant(
        &source,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    grant(&source, "acme", "ria", "source_read", all()).await;
    grant(&source, "acme", "ria", "protocols_read", all()).await;
    grant(&source, "globex", "sam", "personas_user", all()).await;
    let (records, _) = export_all(&source).await;
    assert_eq!(records.len(), 2 + 3 + 3 + 1 + 4, "{records:#?}");

    let target = TestServer::start().await;
    let report = import(&target, records.clone(), 5).await;
    assert_eq!(report.rejected_count, 0, "{report:?}");
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(report.batches, 1, "one batch, one revision");
    assert_eq!(report.revision, 1);
    let (again, revision) = export_all(&target).await;
    assert_eq!(again, records);
    assert_eq!(revision, 1);
    assert!(
        allowed(
            &target,
            "acme",
            "sam",
            "destination.update",
            res("destination", "amplitude")
        )
        .await
    );

    // Importing the same records again changes nothing.
    let report = import(&target, records, 1000).await;
    assert_eq!((report.applied, report.batches, report.revision), (0, 0, 1));
}

#[tokio::test]
async fn import_reports_rejected_records_and_applies_the_rest() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "sam").await;
    let records = vec![
        grant_record("acme", "sam", "warehouse_read", all()),
        grant_record("acme", "sam", "no_such_role", all()),
        grant_record("acme", "nobody", "warehouse_read", all()),
        grant_record("acme", "sam", "warehouse_admin", one("warehouse", "bq")),
        grant_record("acme", "sam", "warehouse_read", one("source", "x")),
        proto::Record { kind: None },
        grant_record("acme", "sam", "source_read", all()),
    ];
    let report = import(&server, records, 2).await;
    assert_eq!(report.applied, 2);
    let reasons: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(reasons[0], (1, "`grant.role`: unknown role `no_such_role`"));
    assert!(
        reasons[1].1.contains("`nobody` is not a member"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, 2);
    assert!(reasons[2].1.contains("all-instances scope"), "{reasons:?}");
    assert!(reasons[3].1.contains("all-instances scope"), "{reasons:?}");
    assert_eq!(reasons[4].0, 5);
    assert!(
        reasons[4].1.starts_with("`record`: is empty"),
        "{reasons:?}"
    );
    assert!(
        !allowed(
            &server,
            "acme",
            "sam",
            "warehouse.read",
            res("warehouse", "bq")
        )
        .await
    );
    register(&server, "acme", "warehouse", "bq", "").await;
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "warehouse.read",
            res("warehouse", "bq")
        )
        .await
    );
    assert!(!allowed(&server, "acme", "sam", "source.read", res("source", "x")).await);
}

#[tokio::test]
async fn grants_of_a_disabled_product_survive_export_and_import() {
    let source = TestServer::start().await;
    create_workspace(&source, "acme", "olivia", &["protocols"]).await;
    add_member(&source, "acme", "sam").await;
    grant(&source, "acme", "sam", "protocols_read", all()).await;
    source
        .admin()
        .set_products(proto::SetProductsRequest {
            workspace_id: "acme".into(),
            products: vec![],
        })
        .await
        .unwrap();
    let (records, _) = export_all(&source).await;

    let target = TestServer::start().await;
    let report = import(&target, records.clone(), 100).await;
    assert_eq!(report.rejected_count, 0, "{report:?}");
    assert_eq!(export_all(&target).await.0, records);
    assert!(
        !allowed(
            &target,
            "acme",
            "sam",
            "tracking_plan.read",
            res("tracking_plan", "tp")
        )
        .await
    );
    target
        .admin()
        .set_products(proto::SetProductsRequest {
            workspace_id: "acme".into(),
            products: vec!["protocols".into()],
        })
        .await
        .unwrap();
    register(&target, "acme", "tracking_plan", "tp", "").await;
    assert!(
        allowed(
            &target,
            "acme",
            "sam",
            "tracking_plan.read",
            res("tracking_plan", "tp")
        )
        .await
    );
}

#[tokio::test]
async fn a_new_workspace_record_needs_an_owner() {
    let server = TestServer::start().await;
    let records = vec![proto::Record {
        kind: Some(Kind::Workspace(proto::WorkspaceRecord {
            workspace_id: "acme".into(),
            products: vec![],
            owner_user_ids: vec![],
        })),
    }];
    let report = import(&server, records, 10).await;
    assert_eq!(report.rejected_count, 1);
    assert!(
        report.rejected[0]
            .reason
            .contains("needs at least one owner")
    );
    assert!(!allowed(&server, "acme", "anyone", "workspace.read", None).await);
}

fn workspace_record(ws: &str, products: &[&str], owners: &[&str]) -> proto::Record {
    proto::Record {
        kind: Some(Kind::Workspace(proto::WorkspaceRecord {
            workspace_id: ws.into(),
            products: products.iter().map(|p| (*p).to_owned()).collect(),
            owner_user_ids: owners.iter().map(|u| (*u).to_owned()).collect(),
        })),
    }
}

/// Whether sam, holding `protocols_read` on every tracking plan, may read `tp`: true
/// exactly while acme has `protocols` enabled.
async fn sam_reads_the_tracking_plan(server: &TestServer) -> bool {
    allowed(
        server,
        "acme",
        "sam",
        "tracking_plan.read",
        res("tracking_plan", "tp"),
    )
    .await
}

/// acme, owned by olivia, with `protocols` enabled and sam reading its tracking plan.
async fn acme_with_protocols(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &["protocols"]).await;
    add_member(server, "acme", "sam").await;
    register(server, "acme", "tracking_plan", "tp", "").await;
    grant(server, "acme", "sam", "protocols_read", all()).await;
    assert!(sam_reads_the_tracking_plan(server).await);
}

#[tokio::test]
async fn a_workspace_record_without_owners_is_refused_for_an_existing_and_a_new_workspace() {
    let server = TestServer::start().await;
    acme_with_protocols(&server).await;
    let revision = server.revision().await;
    let records = vec![
        workspace_record("acme", &[], &[]),
        workspace_record("acme", &["connections"], &[]),
        workspace_record("newco", &[], &[]),
    ];
    let report = import(&server, records, 10).await;
    let reasons: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                0,
                "`workspace.owner_user_ids`: is empty: workspace `acme` needs at least one \
                 owner (owners not listed are kept)"
            ),
            (
                1,
                "`workspace.owner_user_ids`: is empty: workspace `acme` needs at least one \
                 owner (owners not listed are kept)"
            ),
            (
                2,
                "`workspace.owner_user_ids`: is empty: workspace `newco` needs at least one \
                 owner (owners not listed are kept)"
            ),
        ]
    );
    assert_eq!((report.applied, report.rejected_count), (0, 3));
    assert_eq!(server.revision().await, revision, "nothing was applied");
    assert!(sam_reads_the_tracking_plan(&server).await);
    assert!(!allowed(&server, "newco", "anyone", "workspace.read", None).await);
}

#[tokio::test]
async fn a_workspace_record_listing_no_product_is_refused_for_a_workspace_with_add_ons() {
    let server = TestServer::start().await;
    acme_with_protocols(&server).await;
    create_workspace(&server, "plain", "gina", &[]).await;
    let records = vec![
        workspace_record("acme", &[], &["olivia"]),
        // Without add-ons, listing none changes nothing; a new workspace gets none.
        workspace_record("plain", &[], &["gina"]),
        workspace_record("newco", &[], &["nina"]),
    ];
    let report = import(&server, records, 10).await;
    let reasons: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [(
            0,
            "`workspace.products`: lists no product, and workspace `acme` has add-ons \
             enabled (`protocols`): list every product it should have (`connections` alone \
             disables every add-on)"
        )]
    );
    assert_eq!((report.applied, report.unchanged), (1, 1), "{report:?}");
    assert!(sam_reads_the_tracking_plan(&server).await);
    assert!(allowed(&server, "newco", "nina", "workspace.read", None).await);

    // Listing `connections` alone asks for every add-on to go.
    let report = import(
        &server,
        vec![workspace_record("acme", &["connections"], &["olivia"])],
        10,
    )
    .await;
    assert_eq!(
        (report.applied, report.rejected_count),
        (1, 0),
        "{report:?}"
    );
    assert!(!sam_reads_the_tracking_plan(&server).await);
}

#[tokio::test]
async fn a_workspace_record_adds_the_owners_it_lists_and_keeps_the_others() {
    let server = TestServer::start().await;
    acme_with_protocols(&server).await;
    let report = import(
        &server,
        vec![workspace_record(
            "acme",
            &["connections", "protocols"],
            &["zoe"],
        )],
        10,
    )
    .await;
    assert_eq!(
        (report.applied, report.rejected_count),
        (1, 0),
        "{report:?}"
    );
    let (records, _) = export_all(&server).await;
    let Some(Kind::Workspace(acme)) = &records[0].kind else {
        panic!("{records:#?}");
    };
    assert_eq!(acme.owner_user_ids, ["olivia", "zoe"]);
    assert!(sam_reads_the_tracking_plan(&server).await);
}
