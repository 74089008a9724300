//! The model's rules about checks, each as named tests: all current and future, creating
//! instances, admin implies read, product availability, roles are additive, unregistered
//! instances and other workspaces, and the catalog as data.

use super::{
    ALL_ADD_ONS, Fixture, M, NO_GRANT, NOT_A_MEMBER, NOT_ENABLED, NOT_REGISTERED, ONE_S1, OWNER,
    Spec, WriteError, by_grant, sources, user,
};
use crate::model::{
    Catalog,
    catalog::{BUILT_IN, MAX_TYPE_DEPTH},
    table::FLAT_MAX,
};

// Rule 1: all current and future.

#[test]
fn a_grant_on_all_sources_covers_sources_and_destinations_registered_after_it() {
    let mut f = sources();
    f.give(M, "source_read", Spec::All);
    f.add("source", "s3", None);
    f.add("destination", "d3", Some("s3"));
    let all = by_grant(&f, "source_read", Spec::All);
    assert_eq!(f.decide(M, "source.read", Some("s3")), all);
    assert_eq!(f.decide(M, "destination.read", Some("d3")), all);
    assert_eq!(f.decide(M, "source.read", Some("s1")), all);
}

#[test]
fn a_grant_on_all_warehouses_covers_warehouses_registered_after_it() {
    let mut f = sources();
    f.give(M, "warehouse_admin", Spec::All);
    assert_eq!(f.decide(M, "warehouse.update", Some("wh")), NOT_REGISTERED);
    f.add("warehouse", "wh", None);
    assert_eq!(
        f.decide(M, "warehouse.update", Some("wh")),
        by_grant(&f, "warehouse_admin", Spec::All)
    );
}

#[test]
fn a_grant_on_one_source_covers_destinations_attached_after_it() {
    let mut f = sources();
    f.give(M, "source_admin", ONE_S1);
    f.add("destination", "d9", Some("s1"));
    f.add("destination", "d8", Some("s2"));
    assert_eq!(
        f.decide(M, "destination.update", Some("d9")),
        by_grant(&f, "source_admin", ONE_S1)
    );
    assert_eq!(f.decide(M, "destination.update", Some("d8")), NO_GRANT);
}

// Rule 2: creating instances.

#[test]
fn source_admin_on_one_source_cannot_create_sources() {
    let mut f = sources();
    f.give(M, "source_admin", ONE_S1);
    assert_eq!(f.decide(M, "source.create", None), NO_GRANT);
}

#[test]
fn source_admin_on_all_sources_can_create_sources() {
    let mut f = sources();
    f.give(M, "source_admin", Spec::All);
    assert_eq!(
        f.decide(M, "source.create", None),
        by_grant(&f, "source_admin", Spec::All)
    );
}

#[test]
fn destination_create_names_the_source_and_source_admin_on_that_source_allows_it() {
    let mut f = sources();
    f.give(M, "source_admin", ONE_S1);
    assert_eq!(
        f.decide(M, "destination.create", Some("s1")),
        by_grant(&f, "source_admin", ONE_S1)
    );
    assert_eq!(f.decide(M, "destination.create", Some("s2")), NO_GRANT);
    assert_eq!(
        f.decide(M, "destination.create", Some("d1")),
        NOT_REGISTERED,
        "names a source"
    );
    assert_eq!(
        f.decide(OWNER, "destination.create", Some("nope")),
        NOT_REGISTERED
    );
}

#[test]
fn creating_warehouses_plans_audiences_and_traits_needs_an_all_scope_admin_grant() {
    let mut f = sources();
    f.give(M, "warehouse_read", Spec::All);
    f.give(M, "protocols_read", Spec::All);
    f.give(M, "personas_read", Spec::All);
    for permission in [
        "warehouse.create",
        "tracking_plan.create",
        "audience.create",
        "trait.create",
    ] {
        assert_eq!(f.decide(M, permission, None), NO_GRANT, "{permission}");
        assert!(f.allowed(OWNER, permission, None), "{permission}");
    }
    f.give(M, "warehouse_admin", Spec::All);
    f.give(M, "protocols_admin", Spec::All);
    f.give(M, "personas_user", Spec::All);
    for permission in [
        "warehouse.create",
        "tracking_plan.create",
        "audience.create",
        "trait.create",
    ] {
        assert!(f.allowed(M, permission, None), "{permission}");
    }
}

// Rule 3: admin implies read.

#[test]
fn every_role_that_allows_editing_a_type_allows_reading_it() {
    /// Every product; one instance of every type; member `m` holding `role` with `spec`.
    fn holder(role: &str, spec: Spec<'_>) -> Fixture {
        let mut f = sources();
        for (ty, id) in [
            ("warehouse", "wh"),
            ("tracking_plan", "tp"),
            ("audience", "au"),
            ("trait", "tr"),
        ] {
            f.add(ty, id, None);
        }
        f.give(M, role, spec);
        f
    }
    let instance_of = |ty: &str| match ty {
        "source" => Some("s1"),
        "destination" => Some("d1"),
        "warehouse" => Some("wh"),
        "tracking_plan" => Some("tp"),
        "audience" => Some("au"),
        "trait" => Some("tr"),
        _ => None,
    };
    let catalog = Catalog::built_in();
    let mut grants: Vec<(String, Spec<'static>)> = catalog
        .roles()
        .map(|(_, r)| (r.name.clone(), Spec::All))
        .collect();
    grants.push(("source_admin".to_owned(), ONE_S1));
    let mut edits_checked = 0;
    for (role, spec) in &grants {
        let f = holder(role, *spec);
        for (_, permission) in catalog.permissions() {
            let Some((ty, action)) = permission.name.split_once('.') else {
                continue;
            };
            let edit_target = match (ty, action) {
                ("destination", "create") => Some("s1"),
                (_, "create" | "update_settings") => None,
                (_, "update" | "delete") => instance_of(ty),
                _ => continue,
            };
            if !f.allowed(M, &permission.name, edit_target) {
                continue;
            }
            let (read, target) = if ty == "personas" {
                ("personas.read_settings".to_owned(), None)
            } else {
                (format!("{ty}.read"), instance_of(ty))
            };
            assert_eq!(
                f.decide(M, &read, target),
                by_grant(&f, role, *spec),
                "`{role}` allows `{}` and so `{read}`",
                permission.name,
            );
            edits_checked += 1;
        }
    }
    // source_admin 6 (on all) + 5 (on one: no source.create), warehouse_admin 3,
    // protocols_admin 3, personas_admin 7, personas_user 6.
    assert_eq!(edits_checked, 30);
}

// Rule 4: product availability.

#[test]
fn a_disabled_product_denies_owners_too() {
    let mut f = Fixture::new(&[]);
    f.add("tracking_plan", "tp", None);
    f.add("audience", "au", None);
    for (permission, instance) in [
        ("tracking_plan.read", Some("tp")),
        ("tracking_plan.create", None),
        ("audience.read", Some("au")),
        ("trait.create", None),
        ("personas.read_settings", None),
        ("personas.update_settings", None),
    ] {
        assert_eq!(
            f.decide(OWNER, permission, instance),
            NOT_ENABLED,
            "{permission}"
        );
    }
    assert!(f.allowed(OWNER, "source.create", None));
}

#[test]
fn disabling_a_product_keeps_its_grants_and_enabling_it_restores_them() {
    let mut f = sources();
    f.add("tracking_plan", "tp", None);
    f.give(M, "protocols_read", Spec::All);
    f.give(M, "source_read", Spec::All);
    let granted = by_grant(&f, "protocols_read", Spec::All);
    assert_eq!(f.decide(M, "tracking_plan.read", Some("tp")), granted);

    let disable = f.set_products(&["personas"]);
    f.ok(&disable);
    assert_eq!(f.decide(M, "tracking_plan.read", Some("tp")), NOT_ENABLED);
    assert_eq!(
        f.decide(OWNER, "tracking_plan.read", Some("tp")),
        NOT_ENABLED
    );
    let held = &f.state().member(&user(M)).expect("member").grants;
    assert!(
        held.contains(&f.grant_of("protocols_read", Spec::All)),
        "{held:?}"
    );
    assert!(
        f.allowed(M, "source.read", Some("s1")),
        "other products are untouched"
    );

    let enable = f.set_products(ALL_ADD_ONS);
    f.ok(&enable);
    assert_eq!(f.decide(M, "tracking_plan.read", Some("tp")), granted);
}

#[test]
fn roles_of_a_disabled_product_cannot_be_granted() {
    let mut f = Fixture::new(&["protocols"]);
    f.join(M);
    for role in ["personas_admin", "personas_user", "personas_read"] {
        let command = f.grant(M, role, Spec::All, None);
        assert_eq!(
            f.exec(&command),
            Err(WriteError::ProductNotEnabled {
                role: role.to_owned(),
                product: "personas".to_owned()
            })
        );
    }
    let disable = f.set_products(&[]);
    f.ok(&disable);
    let command = f.grant(M, "protocols_read", Spec::All, None);
    assert!(matches!(
        f.exec(&command),
        Err(WriteError::ProductNotEnabled { .. })
    ));
    let command = f.grant(M, "warehouse_read", Spec::All, None);
    assert_eq!(
        f.exec(&command).map(|c| c.len()),
        Ok(1),
        "connections is always enabled"
    );
}

#[test]
fn connections_cannot_be_disabled() {
    let mut f = sources();
    let none = f.set_products(&[]);
    f.ok(&none);
    assert_eq!(f.state().products(), f.catalog.always_enabled());
    assert!(f.allowed(OWNER, "source.update", Some("s1")));
    assert!(f.allowed(M, "workspace.read", None));
}

// Rule 6: roles are additive.

#[test]
fn a_members_access_is_the_union_of_their_grants() {
    let mut f = sources();
    f.add("warehouse", "wh", None);
    f.add("tracking_plan", "tp", None);
    f.give(M, "source_read", Spec::All);
    f.give(M, "source_admin", ONE_S1);
    f.give(M, "warehouse_read", Spec::All);
    f.give(M, "protocols_admin", Spec::All);
    assert!(f.allowed(M, "source.update", Some("s1")));
    assert!(f.allowed(M, "destination.delete", Some("d1")));
    assert_eq!(f.decide(M, "source.update", Some("s2")), NO_GRANT);
    assert_eq!(
        f.decide(M, "source.read", Some("s2")),
        by_grant(&f, "source_read", Spec::All)
    );
    assert!(f.allowed(M, "destination.read", Some("d2")));
    assert!(f.allowed(M, "warehouse.read", Some("wh")));
    assert_eq!(f.decide(M, "warehouse.update", Some("wh")), NO_GRANT);
    assert!(f.allowed(M, "tracking_plan.update", Some("tp")));
    assert_eq!(f.decide(M, "source.create", None), NO_GRANT);
    assert_eq!(f.decide(M, "audience.create", None), NO_GRANT);
}

// Unregistered instances and other workspaces.

#[test]
fn checks_on_unregistered_instances_are_denied_to_owners_too() {
    let mut f = sources();
    f.give(M, "source_admin", Spec::All);
    for (permission, id) in [
        ("source.read", "nope"),
        ("source.delete", "d1"),
        ("destination.read", "s1"),
        ("destination.create", "nope"),
        ("warehouse.read", "nope"),
    ] {
        assert_eq!(
            f.decide(OWNER, permission, Some(id)),
            NOT_REGISTERED,
            "{permission} {id}"
        );
        assert_eq!(
            f.decide(M, permission, Some(id)),
            NOT_REGISTERED,
            "{permission} {id}"
        );
    }
}

#[test]
fn instances_of_another_workspace_are_not_registered_in_this_one() {
    let mut a = sources();
    a.give(M, "source_admin", Spec::All);
    let mut b = Fixture::new(ALL_ADD_ONS);
    b.join("b-member");
    assert!(a.allowed(OWNER, "source.read", Some("s1")));
    assert_eq!(b.decide(OWNER, "source.read", Some("s1")), NOT_REGISTERED);
    assert_eq!(
        b.decide(OWNER, "destination.update", Some("d1")),
        NOT_REGISTERED
    );
    assert_eq!(
        b.decide(M, "source.read", Some("s1")),
        NOT_A_MEMBER,
        "grants of a stay in a"
    );
    assert_eq!(a.decide("b-member", "workspace.read", None), NOT_A_MEMBER);
}

#[test]
fn non_members_and_unknown_workspaces_are_denied_everything() {
    let f = sources();
    let missing = Fixture::missing(Catalog::built_in());
    for (permission, instance) in [("workspace.read", None), ("source.read", Some("s1"))] {
        assert_eq!(f.decide("stranger", permission, instance), NOT_A_MEMBER);
        assert_eq!(missing.decide(OWNER, permission, instance), NOT_A_MEMBER);
    }
}

// Rule 9: the role catalog is data.

#[test]
fn a_role_added_to_the_catalog_as_data_is_enforced() {
    let text = format!(
        "{BUILT_IN}\n[[roles]]\nname = \"destination_editor\"\nproduct = \"connections\"\n\
         scope_type = \"source\"\nscopes = [\"instance\"]\n\
         permissions = [\"destination.read\", \"destination.update\"]\n"
    );
    let catalog = Catalog::parse(&text).expect("catalog");
    let mut f = Fixture::with_catalog(catalog, ALL_ADD_ONS);
    f.add("source", "s1", None);
    f.add("destination", "d1", Some("s1"));
    f.join(M);
    f.give(M, "destination_editor", ONE_S1);
    assert_eq!(
        f.decide(M, "destination.update", Some("d1")),
        by_grant(&f, "destination_editor", ONE_S1)
    );
    assert_eq!(f.decide(M, "destination.delete", Some("d1")), NO_GRANT);
    assert_eq!(f.decide(M, "source.update", Some("s1")), NO_GRANT);
    let all = f.grant(M, "destination_editor", Spec::All, None);
    assert!(matches!(
        f.exec(&all),
        Err(WriteError::ScopeNotAccepted { .. })
    ));
}

/// A catalog whose sources have `levels` generations of descendants below them, `level0`
/// (child of `source`) to `level{levels - 1}`, a permission on the deepest, and a role
/// scoped to each level that allows it.
fn deep_catalog(levels: usize) -> Catalog {
    let deepest = levels - 1;
    let mut text = format!(
        "{BUILT_IN}\n[[permissions]]\nname = \"deep.read\"\nproduct = \"connections\"\n\
         names = \"level{deepest}\"\n\
         [[roles]]\nname = \"deep_reader\"\nproduct = \"connections\"\n\
         scope_type = \"source\"\nscopes = [\"instance\"]\npermissions = [\"deep.read\"]\n"
    );
    for level in 0..levels {
        let parent = match level {
            0 => "source".to_owned(),
            _ => format!("level{}", level - 1),
        };
        text.push_str(&format!(
            "\n[[resource_types]]\nname = \"level{level}\"\nproduct = \"connections\"\n\
             parent = \"{parent}\"\n\
             [[roles]]\nname = \"level{level}_reader\"\nproduct = \"connections\"\n\
             scope_type = \"level{level}\"\nscopes = [\"instance\"]\n\
             permissions = [\"deep.read\"]\n"
        ));
    }
    Catalog::parse(&text).expect("catalog")
}

#[test]
fn a_grant_on_any_ancestor_covers_down_the_deepest_hierarchy_the_catalog_allows() {
    // The deepest catalog accepted: the source and MAX_TYPE_DEPTH - 1 levels below it.
    let levels = MAX_TYPE_DEPTH - 1;
    let mut f = Fixture::with_catalog(deep_catalog(levels), ALL_ADD_ONS);
    // Two chains, `a` and `b`, from a source down to the deepest level.
    for chain in ["a", "b"] {
        f.add("source", &format!("{chain}-source"), None);
        for level in 0..levels {
            let parent = match level {
                0 => format!("{chain}-source"),
                _ => format!("{chain}-{}", level - 1),
            };
            f.add(
                &format!("level{level}"),
                &format!("{chain}-{level}"),
                Some(&parent),
            );
        }
    }
    let deepest = levels - 1;
    let (a_bottom, b_bottom) = (format!("a-{deepest}"), format!("b-{deepest}"));
    f.join(M);
    assert_eq!(f.decide(M, "deep.read", Some(&a_bottom)), NO_GRANT);

    // A grant on the source covers the bottom of its own chain, not of the other.
    f.give(M, "deep_reader", Spec::One("source", "a-source"));
    assert_eq!(
        f.decide(M, "deep.read", Some(&a_bottom)),
        by_grant(&f, "deep_reader", Spec::One("source", "a-source"))
    );
    assert_eq!(f.decide(M, "deep.read", Some(&b_bottom)), NO_GRANT);

    // So does a grant on every level between, each found after a grant on the same
    // level of the other chain, which does not cover and comes first.
    for level in 0..levels {
        let (ty, id) = (format!("level{level}"), format!("b-{level}"));
        let role = format!("level{level}_reader");
        let mut g = Fixture::with_catalog(deep_catalog(levels), ALL_ADD_ONS);
        g.state = f.state.clone();
        g.give(M, &role, Spec::One(&ty, &format!("a-{level}")));
        assert_eq!(g.decide(M, "deep.read", Some(&b_bottom)), NO_GRANT, "{ty}");
        g.give(M, &role, Spec::One(&ty, &id));
        assert_eq!(
            g.decide(M, "deep.read", Some(&b_bottom)),
            by_grant(&g, &role, Spec::One(&ty, &id)),
            "{ty}"
        );
    }
}

#[test]
fn checks_decide_alike_in_tables_past_the_flat_size_and_after_they_shrink_back() {
    // Members and sources past the 128 entries a flat table holds, so that both are
    // searched as trees, then fewer than 64, so that both are flat again.
    let n = FLAT_MAX + 2;
    let mut f = Fixture::new(ALL_ADD_ONS);
    let (source, member) = (|i: usize| format!("s{i:03}"), |i: usize| format!("m{i:03}"));
    for i in 0..n {
        f.add("source", &source(i), None);
    }
    for i in 0..n {
        f.join(&member(i));
        f.give(&member(i), "source_read", Spec::One("source", &source(i)));
    }
    let assert_own_source_only = |f: &Fixture, from: usize| {
        for i in from..n {
            let (own, other) = (source(i), source(from.max(i.saturating_sub(1))));
            assert_eq!(
                f.decide(&member(i), "source.read", Some(&own)),
                by_grant(f, "source_read", Spec::One("source", &own)),
                "{}",
                member(i)
            );
            if other != own {
                assert_eq!(f.decide(&member(i), "source.read", Some(&other)), NO_GRANT);
            }
        }
        assert_eq!(
            f.decide("stranger", "source.read", Some(&source(n - 1))),
            NOT_A_MEMBER
        );
        assert_eq!(f.decide(OWNER, "source.read", Some("s999")), NOT_REGISTERED);
    };
    assert_own_source_only(&f, 0);

    let kept_from = n - FLAT_MAX / 4;
    for i in 0..kept_from {
        let remove = f.remove_member(&member(i), None);
        f.ok(&remove);
        let delete = f.delete("source", &source(i));
        f.ok(&delete);
    }
    assert_own_source_only(&f, kept_from);
    assert_eq!(
        f.decide(&member(0), "source.read", Some(&source(n - 1))),
        NOT_A_MEMBER
    );
    assert_eq!(
        f.decide(OWNER, "source.read", Some(&source(0))),
        NOT_REGISTERED
    );
}
