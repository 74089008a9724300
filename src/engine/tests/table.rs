//! The whole permissions table of the model: every permission, for every kind of subject,
//! on every kind of instance, with each add-on product enabled or not, decided by the
//! engine and compared with the reference model, reason included.

use std::collections::BTreeSet;

use super::{
    Fixture, OWNER, Spec, Twin,
    oracle::{self, ADD_ONS, AllowedTo, Expected, Op, PERMISSIONS, ROLES, RefScope, TYPES},
};
use crate::model::{Catalog, Decision, DenialReason, Membership, catalog::Target};

/// The member whose grants vary.
const MEMBER: &str = "m";
/// A user who is neither owner nor member.
const STRANGER: &str = "stranger";
/// Every instance id of the table's workspace, of every type, and one never registered.
const IDS: &[&str] = &["s1", "s2", "d1", "d2", "wh", "tp", "au", "tr", "ghost"];

/// The four combinations of add-on products.
fn product_sets() -> Vec<Vec<&'static str>> {
    vec![
        vec![],
        vec!["protocols"],
        vec!["personas"],
        ADD_ONS.to_vec(),
    ]
}

/// The grants a member may hold alone: none, then each role at each scope it accepts
/// (one source `s1`, or all).
fn subjects() -> Vec<Option<(&'static str, RefScope)>> {
    let mut subjects = vec![None];
    for role in ROLES {
        if let Some(ty) = role.one {
            subjects.push(Some((
                role.name,
                RefScope::One(ty.to_owned(), "s1".to_owned()),
            )));
        }
        subjects.push(Some((role.name, RefScope::All)));
    }
    subjects
}

/// Sources `s1`, `s2` with destinations `d1`, `d2`, a warehouse, a tracking plan, an
/// audience and a trait; member `m` holding `grant`; then the products set to `add_ons`
/// (grants are made with every product enabled, so disabled products keep theirs).
fn world(grant: Option<&(&'static str, RefScope)>, add_ons: &[&'static str]) -> Twin {
    let mut twin = Twin::new(ADD_ONS);
    let register = |ty: &'static str, id: &str, parent: Option<&str>| Op::Register {
        ty,
        id: id.to_owned(),
        parent: parent.map(str::to_owned),
    };
    let mut ops = vec![
        register("source", "s1", None),
        register("source", "s2", None),
        register("destination", "d1", Some("s1")),
        register("destination", "d2", Some("s2")),
        register("warehouse", "wh", None),
        register("tracking_plan", "tp", None),
        register("audience", "au", None),
        register("trait", "tr", None),
        Op::SetMembership {
            user: MEMBER.to_owned(),
            owner: false,
        },
    ];
    if let Some((role, scope)) = grant {
        ops.push(Op::Grant {
            user: MEMBER.to_owned(),
            role,
            scope: scope.clone(),
        });
    }
    ops.push(Op::SetProducts {
        add_ons: add_ons.to_vec(),
    });
    for op in &ops {
        twin.run(op).expect("setting up the table's workspace");
    }
    twin
}

/// The kind of an answer, to show the table exercised every outcome.
fn outcome(decision: &Decision) -> String {
    match decision {
        Decision::AllowedByMembership(membership) => format!("membership {membership:?}"),
        Decision::AllowedByGrant(_) => "grant".to_owned(),
        Decision::Denied(reason) => format!("denied {reason:?}"),
    }
}

#[test]
fn every_row_of_the_permissions_table_is_decided_as_the_model_says() {
    let mut outcomes = BTreeSet::new();
    let mut asked = 0;
    for add_ons in product_sets() {
        for grant in subjects() {
            let twin = world(grant.as_ref(), &add_ons);
            twin.assert_agrees(&[OWNER, MEMBER, STRANGER], IDS);
            for decision in twin.decisions(&[OWNER, MEMBER, STRANGER], IDS) {
                outcomes.insert(outcome(&decision));
                asked += 1;
            }
        }
    }
    assert_eq!(
        outcomes.len(),
        7,
        "every kind of answer occurs: {outcomes:?}"
    );
    assert!(asked > 20_000, "{asked} checks");
}

#[test]
fn every_check_in_an_unknown_workspace_is_denied_as_not_a_member() {
    let fixture = Fixture::missing(Catalog::built_in());
    for (user, permission, instance) in oracle::questions(&[OWNER, MEMBER], IDS) {
        assert_eq!(
            oracle::expected(None, &user, permission, instance.as_deref()),
            Expected::Denied(DenialReason::NotAMember)
        );
        assert_eq!(
            fixture.decide(&user, permission, instance.as_deref()),
            Decision::Denied(DenialReason::NotAMember),
            "{user} {permission} {instance:?}"
        );
    }
}

/// Hand-derived answers from the model's text, independent of the oracle too.
#[test]
fn hand_written_rows_of_the_table_agree_with_the_engine_and_the_oracle() {
    use DenialReason::{NoCoveringGrant, ProductNotEnabled, ResourceNotRegistered};
    type Row = (
        &'static str,            // role
        Spec<'static>,           // its scope
        &'static [&'static str], // add-on products
        &'static str,            // permission
        Option<&'static str>,    // instance
        Option<DenialReason>,    // None: allowed by the grant
    );
    let one_s1 = Spec::One("source", "s1");
    let rows: &[Row] = &[
        ("source_admin", one_s1, &[], "source.read", Some("s1"), None),
        (
            "source_admin",
            one_s1,
            &[],
            "source.update",
            Some("s1"),
            None,
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "source.delete",
            Some("s1"),
            None,
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "source.update",
            Some("s2"),
            Some(NoCoveringGrant),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "source.create",
            None,
            Some(NoCoveringGrant),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "destination.create",
            Some("s1"),
            None,
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "destination.create",
            Some("s2"),
            Some(NoCoveringGrant),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "destination.create",
            Some("d1"),
            Some(ResourceNotRegistered),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "destination.delete",
            Some("d1"),
            None,
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "destination.read",
            Some("d2"),
            Some(NoCoveringGrant),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "source.read",
            Some("ghost"),
            Some(ResourceNotRegistered),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "warehouse.read",
            Some("wh"),
            Some(NoCoveringGrant),
        ),
        (
            "source_admin",
            one_s1,
            &[],
            "workspace.manage_access",
            None,
            Some(NoCoveringGrant),
        ),
        ("source_admin", Spec::All, &[], "source.create", None, None),
        (
            "source_admin",
            Spec::All,
            &[],
            "destination.update",
            Some("d2"),
            None,
        ),
        (
            "source_admin",
            Spec::All,
            &[],
            "workspace.manage_access",
            None,
            Some(NoCoveringGrant),
        ),
        (
            "source_read",
            one_s1,
            &[],
            "destination.read",
            Some("d1"),
            None,
        ),
        (
            "source_read",
            one_s1,
            &[],
            "destination.update",
            Some("d1"),
            Some(NoCoveringGrant),
        ),
        (
            "source_read",
            Spec::All,
            &[],
            "source.read",
            Some("s2"),
            None,
        ),
        (
            "source_read",
            Spec::All,
            &[],
            "source.update",
            Some("s2"),
            Some(NoCoveringGrant),
        ),
        (
            "source_read",
            Spec::All,
            &[],
            "destination.create",
            Some("s1"),
            Some(NoCoveringGrant),
        ),
        (
            "warehouse_read",
            Spec::All,
            &[],
            "warehouse.read",
            Some("wh"),
            None,
        ),
        (
            "warehouse_read",
            Spec::All,
            &[],
            "warehouse.create",
            None,
            Some(NoCoveringGrant),
        ),
        (
            "warehouse_admin",
            Spec::All,
            &[],
            "warehouse.create",
            None,
            None,
        ),
        (
            "warehouse_admin",
            Spec::All,
            &[],
            "warehouse.delete",
            Some("wh"),
            None,
        ),
        (
            "protocols_read",
            Spec::All,
            &["protocols"],
            "tracking_plan.read",
            Some("tp"),
            None,
        ),
        (
            "protocols_read",
            Spec::All,
            &[],
            "tracking_plan.read",
            Some("tp"),
            Some(ProductNotEnabled),
        ),
        (
            "protocols_admin",
            Spec::All,
            &["protocols"],
            "tracking_plan.create",
            None,
            None,
        ),
        (
            "protocols_admin",
            Spec::All,
            &["personas"],
            "tracking_plan.create",
            None,
            Some(ProductNotEnabled),
        ),
        (
            "personas_read",
            Spec::All,
            &["personas"],
            "trait.read",
            Some("tr"),
            None,
        ),
        (
            "personas_read",
            Spec::All,
            &["personas"],
            "audience.update",
            Some("au"),
            Some(NoCoveringGrant),
        ),
        (
            "personas_read",
            Spec::All,
            &["personas"],
            "personas.read_settings",
            None,
            None,
        ),
        (
            "personas_user",
            Spec::All,
            &["personas"],
            "audience.create",
            None,
            None,
        ),
        (
            "personas_user",
            Spec::All,
            &["personas"],
            "personas.update_settings",
            None,
            Some(NoCoveringGrant),
        ),
        (
            "personas_admin",
            Spec::All,
            &["personas"],
            "personas.update_settings",
            None,
            None,
        ),
        (
            "personas_admin",
            Spec::All,
            &["protocols"],
            "trait.delete",
            Some("tr"),
            Some(ProductNotEnabled),
        ),
    ];
    for &(role, spec, add_ons, permission, instance, denial) in rows {
        let scope = match spec {
            Spec::All => RefScope::All,
            Spec::One(ty, id) => RefScope::One(ty.to_owned(), id.to_owned()),
        };
        let twin = world(Some(&(role, scope.clone())), add_ons);
        let decision = twin.fixture.decide(MEMBER, permission, instance);
        let want = match denial {
            None => Decision::AllowedByGrant(twin.fixture.grant_of(role, spec)),
            Some(reason) => Decision::Denied(reason),
        };
        assert_eq!(
            decision, want,
            "{role} {spec:?} {add_ons:?} {permission} {instance:?}"
        );
        twin.assert_agrees_on(MEMBER, permission, instance);
    }
}

#[test]
fn the_oracle_and_the_built_in_catalog_describe_the_same_table() {
    let catalog = Catalog::built_in();
    let names: BTreeSet<&str> = catalog
        .permissions()
        .map(|(_, p)| p.name.as_str())
        .collect();
    let rows: BTreeSet<&str> = PERMISSIONS.iter().map(|row| row.permission).collect();
    assert_eq!(names, rows, "the catalog's permissions are the model's");
    for row in PERMISSIONS {
        let id = catalog.permission_id(row.permission).expect("permission");
        let permission = catalog.permission(id).expect("permission");
        assert_eq!(
            catalog.product_name(permission.product),
            row.product,
            "{}",
            row.permission
        );
        let names = match permission.target {
            Target::Workspace => None,
            Target::Instance(ty) => Some(catalog.type_name(ty)),
        };
        assert_eq!(names, row.names, "what `{}` names", row.permission);
        assert_eq!(
            permission.every_member,
            matches!(row.allowed_to, AllowedTo::EveryMember),
            "{}",
            row.permission
        );
        let holders: BTreeSet<&str> = catalog
            .roles()
            .filter(|(_, role)| role.allows(id))
            .map(|(_, role)| role.name.as_str())
            .collect();
        let want: BTreeSet<&str> = match row.allowed_to {
            AllowedTo::Roles(roles) => roles.iter().copied().collect(),
            AllowedTo::EveryMember | AllowedTo::Owners => BTreeSet::new(),
        };
        assert_eq!(holders, want, "the roles allowing `{}`", row.permission);
    }
    assert_eq!(catalog.roles().count(), ROLES.len());
    for expected in ROLES {
        let role = catalog
            .role(catalog.role_id(expected.name).expect("role"))
            .expect("role");
        assert_eq!(
            catalog.product_name(role.product),
            expected.product,
            "{}",
            expected.name
        );
        assert_eq!(
            role.scope_type.map(|ty| catalog.type_name(ty)),
            expected.one,
            "{}",
            expected.name
        );
        assert!(role.accepts_all, "{} accepts all instances", expected.name);
    }
    for (name, product, parent) in TYPES {
        let ty = catalog.type_id(name).expect("type");
        let resource_type = catalog.resource_type(ty).expect("type");
        assert_eq!(
            catalog.product_name(resource_type.product),
            *product,
            "{name}"
        );
        assert_eq!(
            resource_type.parent.map(|p| catalog.type_name(p)),
            *parent,
            "{name}"
        );
    }
    assert_eq!(
        catalog.always_enabled(),
        Fixture::missing(catalog.clone()).products(&["connections"]),
        "only connections is always enabled"
    );
}

#[test]
fn owners_hold_every_permission_and_members_only_workspace_read_without_grants() {
    let twin = world(None, ADD_ONS);
    for row in PERMISSIONS {
        let instance = row.names.map(|ty| match ty {
            "source" => "s1",
            "destination" => "d1",
            "warehouse" => "wh",
            "tracking_plan" => "tp",
            "audience" => "au",
            _ => "tr",
        });
        assert_eq!(
            twin.fixture.decide(OWNER, row.permission, instance),
            Decision::AllowedByMembership(Membership::Owner),
            "{}",
            row.permission
        );
        let want = if row.permission == "workspace.read" {
            Decision::AllowedByMembership(Membership::Member)
        } else {
            Decision::Denied(DenialReason::NoCoveringGrant)
        };
        assert_eq!(
            twin.fixture.decide(MEMBER, row.permission, instance),
            want,
            "{}",
            row.permission
        );
    }
}
