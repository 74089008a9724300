//! What the bench copies from accessd rather than importing it, checked against accessd
//! itself: the names of its built-in catalog, its BatchCheck limit, its records format.

use std::collections::BTreeSet;

use accessd::{
    cli::records::RecordLine,
    model::{
        Catalog,
        catalog::{ScopeKind, Target as AccessdTarget},
    },
};

use crate::{
    catalog::{self, PERMISSIONS, ROLES, Target},
    dataset::{Dataset, Sizes},
    records::write_lines,
    run::MAX_BATCH_CHECKS,
};

#[test]
fn the_bench_catalog_names_what_the_built_in_catalog_of_accessd_holds_in_its_order() {
    let built_in = Catalog::built_in();
    let products: Vec<(&str, bool)> = built_in
        .products()
        .map(|(_, p)| (p.name.as_str(), p.always_enabled))
        .collect();
    assert_eq!(
        products,
        [
            (catalog::CONNECTIONS, true),
            (catalog::PROTOCOLS, false),
            (catalog::PERSONAS, false)
        ]
    );
    let types: Vec<(&str, Option<&str>)> = built_in
        .resource_types()
        .map(|(_, t)| (t.name.as_str(), t.parent.map(|p| built_in.type_name(p))))
        .collect();
    assert_eq!(
        types,
        [
            (catalog::SOURCE, None),
            (catalog::DESTINATION, Some(catalog::SOURCE)),
            (catalog::WAREHOUSE, None),
            (catalog::TRACKING_PLAN, None),
            (catalog::AUDIENCE, None),
            (catalog::TRAIT, None),
        ]
    );

    let theirs: Vec<(&str, &str, Option<&str>, bool)> = built_in
        .permissions()
        .map(|(_, p)| {
            let target = match p.target {
                AccessdTarget::Workspace => None,
                AccessdTarget::Instance(ty) => Some(built_in.type_name(ty)),
            };
            let product = built_in.product_name(p.product);
            (p.name.as_str(), product, target, p.every_member)
        })
        .collect();
    let ours: Vec<(&str, &str, Option<&str>, bool)> = PERMISSIONS
        .iter()
        .map(|p| {
            let target = match p.target {
                Target::Workspace => None,
                Target::Instance(ty) => Some(ty),
            };
            (p.name, p.product, target, p.every_member)
        })
        .collect();
    assert_eq!(ours, theirs);

    let theirs: Vec<(&str, &str, BTreeSet<&str>, bool)> = built_in
        .roles()
        .map(|(_, role)| {
            let allows = built_in
                .permissions()
                .filter(|(id, _)| role.allows(*id))
                .map(|(_, p)| p.name.as_str())
                .collect();
            let product = built_in.product_name(role.product);
            (
                role.name.as_str(),
                product,
                allows,
                role.accepts(ScopeKind::All),
            )
        })
        .collect();
    let ours: Vec<(&str, &str, BTreeSet<&str>, bool)> = ROLES
        .iter()
        .map(|role| {
            let allows = role.permissions.iter().copied().collect();
            (role.name, role.product, allows, true)
        })
        .collect();
    assert_eq!(ours, theirs);

    // The data set grants these two on one source each.
    for name in [catalog::SOURCE_READ, catalog::SOURCE_ADMIN] {
        let role = built_in.role_id(name).and_then(|id| built_in.role(id));
        let scope_type = role
            .and_then(|r| r.scope_type)
            .map(|t| built_in.type_name(t));
        assert_eq!(scope_type, Some(catalog::SOURCE), "{name}");
    }
}

#[test]
fn the_batch_limit_is_the_one_accessd_enforces() {
    assert_eq!(MAX_BATCH_CHECKS, accessd::api::MAX_BATCH_CHECKS);
}

#[test]
fn every_record_of_the_data_set_is_one_line_that_accessd_import_reads_back() {
    let data = Dataset::generate(
        3,
        Sizes {
            workspaces: 6,
            members: 8,
            sources: 4,
            grant_pool: 0,
        },
    );
    let mut out = Vec::new();
    let written = write_lines(&data, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(written, data.counts().records());
    assert_eq!(lines.len(), written);
    for (line, record) in lines.iter().zip(data.records()) {
        let parsed = RecordLine::parse(line).unwrap().into_record().unwrap();
        assert_eq!(parsed, record, "{line}");
    }
    assert!(
        lines[0].starts_with(r#"{"workspace":{"id":"ws_"#),
        "{}",
        lines[0]
    );
}
