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

/// Answers derived by hand from the model's text, independent of the oracle too: member
/// `m` holds `role` on `scope` (`s1` or `all`) with the add-on products listed (`-`: none)
/// and asks `permission` on `instance` (`-`: the workspace).
const HAND_WRITTEN: &str = "
    source_admin    s1   -          source.read               s1     allowed
    source_admin    s1   -          source.update             s1     allowed
    source_admin    s1   -          source.delete             s1     allowed
    source_admin    s1   -          source.update             s2     no_covering_grant
    source_admin    s1   -          source.create             -      no_covering_grant
    source_admin    s1   -          destination.create        s1     allowed
    source_admin    s1   -          destination.create        s2     no_covering_grant
    source_admin    s1   -          destination.create        d1     not_registered
    source_admin    s1   -          destination.delete        d1     allowed
    source_admin    s1   -          destination.read          d2     no_covering_grant
    source_admin    s1   -          source.read               ghost  not_registered
    source_admin    s1   -          warehouse.read            wh     no_covering_grant
    source_admin    s1   -          workspace.manage_access   -      no_covering_grant
    source_admin    s1   -          workspace.read            -      member
    source_admin    all  -          source.create             -      allowed
    source_admin    all  -          destination.update        d2     allowed
    source_admin    all  -          workspace.manage_access   -      no_covering_grant
    source_read     s1   -          destination.read          d1     allowed
    source_read     s1   -          destination.update        d1     no_covering_grant
    source_read     all  -          source.read               s2     allowed
    source_read     all  -          source.update             s2     no_covering_grant
    source_read     all  -          destination.create        s1     no_covering_grant
    warehouse_read  all  -          warehouse.read            wh     allowed
    warehouse_read  all  -          warehouse.create          -      no_covering_grant
    warehouse_admin all  -          warehouse.create          -      allowed
    warehouse_admin all  -          warehouse.delete          wh     allowed
    warehouse_admin all  -          source.read               s1     no_covering_grant
    protocols_read  all  protocols  tracking_plan.read        tp     allowed
    protocols_read  all  -          tracking_plan.read        tp     product_not_enabled
    protocols_read  all  protocols  tracking_plan.update      tp     no_covering_grant
    protocols_admin all  protocols  tracking_plan.create      -      allowed
    protocols_admin all  personas   tracking_plan.create      -      product_not_enabled
    personas_read   all  personas   trait.read                tr     allowed
    personas_read   all  personas   audience.update           au     no_covering_grant
    personas_read   all  personas   personas.read_settings    -      allowed
    personas_user   all  personas   audience.create           -      allowed
    personas_user   all  personas   personas.update_settings  -      no_covering_grant
    personas_admin  all  personas   personas.update_settings  -      allowed
    personas_admin  all  protocols  trait.delete              tr     product_not_enabled
    personas_admin  all  personas   audience.read             ghost  not_registered
";

#[test]
fn hand_written_rows_of_the_table_agree_with_the_engine_and_the_oracle() {
    let mut rows = 0;
    for line in HAND_WRITTEN.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [role, scope, add_ons, permission, instance, answer] = fields[..] else {
            panic!("six fields: {line}");
        };
        let role = oracle::role_of(role).name;
        let (spec, scope) = match scope {
            "all" => (Spec::All, RefScope::All),
            id => (
                Spec::One("source", id),
                RefScope::One("source".into(), id.into()),
            ),
        };
        let add_ons: Vec<&'static str> = ADD_ONS
            .iter()
            .copied()
            .filter(|p| add_ons.split(',').any(|a| a == *p))
            .collect();
        let instance = (instance != "-").then_some(instance);
        let twin = world(Some(&(role, scope)), &add_ons);
        let want = match answer {
            "allowed" => Decision::AllowedByGrant(twin.fixture.grant_of(role, spec)),
            "member" => Decision::AllowedByMembership(Membership::Member),
            "no_covering_grant" => Decision::Denied(DenialReason::NoCoveringGrant),
            "product_not_enabled" => Decision::Denied(DenialReason::ProductNotEnabled),
            "not_registered" => Decision::Denied(DenialReason::ResourceNotRegistered),
            other => panic!("unknown answer `{other}`"),
        };
        assert_eq!(
            twin.fixture.decide(MEMBER, permission, instance),
            want,
            "{line}"
        );
        twin.assert_agrees_on(MEMBER, permission, instance);
        rows += 1;
    }
    assert_eq!(rows, 40);
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
