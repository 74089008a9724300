//! Tests of the catalog: the built-in file parses and maps the legacy roles, and a file
//! that breaks a rule is refused with a message that names it.

use super::*;

#[test]
fn built_in_catalog_parses() {
    let catalog = Catalog::parse(BUILT_IN).expect("built-in catalog");
    assert_eq!(catalog.roles().count(), 9);
    assert!(catalog.role_id("source_admin").is_some());
    assert_eq!(
        catalog.always_enabled().iter().count(),
        1,
        "only connections is always enabled"
    );
}

#[test]
fn duplicate_roles_are_rejected() {
    let text = format!(
        "{BUILT_IN}\n[[roles]]\nname = \"source_read\"\nproduct = \"connections\"\nscopes = [\"all\"]\npermissions = []\n"
    );
    let err = Catalog::parse(&text).expect_err("duplicate");
    assert_eq!(err.to_string(), "role `source_read` is defined twice");
}

#[test]
fn names_that_would_break_the_stored_records_are_rejected() {
    // As TOML strings.
    for bad in [
        r#""source admin""#,
        r#""source,admin""#,
        r#""source\u001Eadmin""#,
        r#""""#,
    ] {
        let text = BUILT_IN.replace("name = \"source_read\"", &format!("name = {bad}"));
        let err = Catalog::parse(&text).expect_err(bad);
        assert!(err.to_string().contains("printable ASCII"), "{err}");
    }
}

#[test]
fn unknown_permissions_in_roles_are_rejected() {
    let text = BUILT_IN.replace("\"warehouse.read\"]", "\"warehouse.peek\"]");
    let err = Catalog::parse(&text).expect_err("unknown permission");
    assert_eq!(
        err.to_string(),
        "role `warehouse_read`: unknown permission `warehouse.peek`"
    );
}

#[test]
fn roles_without_scopes_are_rejected() {
    let text = BUILT_IN.replace(
        "scopes = [\"all\"]\npermissions = [\"warehouse.read\"]",
        "scopes = []\npermissions = [\"warehouse.read\"]",
    );
    let err = Catalog::parse(&text).expect_err("no scope");
    assert_eq!(err.to_string(), "role `warehouse_read` accepts no scope");
}

#[test]
fn owner_only_permissions_cannot_be_given_to_roles() {
    let text = BUILT_IN.replace(
        "permissions = [\"warehouse.read\"]",
        "permissions = [\"warehouse.read\", \"workspace.manage_access\"]",
    );
    let err = Catalog::parse(&text).expect_err("owner only");
    assert!(err.to_string().contains("reserved to owners"), "{err}");
}

#[test]
fn hierarchies_deeper_than_the_bound_are_rejected() {
    let mut text = BUILT_IN.to_owned();
    for level in 0..MAX_TYPE_DEPTH {
        let parent = if level == 0 {
            "source".to_owned()
        } else {
            format!("level{}", level - 1)
        };
        text.push_str(&format!(
            "\n[[resource_types]]\nname = \"level{level}\"\nproduct = \"connections\"\nparent = \"{parent}\"\n"
        ));
    }
    let err = Catalog::parse(&text).expect_err("too deep");
    assert!(err.to_string().contains("levels of parents"), "{err}");
}

#[test]
fn unknown_resource_types_are_rejected() {
    let text = BUILT_IN.replace("names = \"trait\"", "names = \"traits\"");
    let err = Catalog::parse(&text).expect_err("unknown type");
    assert!(
        err.to_string().contains("unknown resource type `traits`"),
        "{err}"
    );
}

#[test]
fn the_built_in_legacy_table_maps_the_three_legacy_roles() {
    let catalog = Catalog::parse(BUILT_IN).expect("built-in catalog");
    let legacy = catalog.legacy();
    assert_eq!(
        legacy.keys().collect::<Vec<_>>(),
        [
            "source_collaborator",
            "workspace_owner",
            "workspace_read_only"
        ]
    );
    let collaborator = &legacy["source_collaborator"];
    assert_eq!(collaborator.membership, Membership::Member);
    assert_eq!(collaborator.instance_type, catalog.type_id("source"));
    assert_eq!(
        collaborator.grants,
        [LegacyGrant {
            role: catalog.role_id("source_admin").expect("role"),
            scope: ScopeKind::Instance,
        }]
    );
    assert_eq!(legacy["workspace_owner"].membership, Membership::Owner);
    assert_eq!(legacy["workspace_read_only"].grants.len(), 3);
    assert_eq!(legacy["workspace_read_only"].instance_type, None);
}

#[test]
fn a_catalog_without_a_legacy_table_has_no_legacy_roles() {
    let end = BUILT_IN.find("[legacy.").expect("legacy table");
    let catalog = Catalog::parse(&BUILT_IN[..end]).expect("catalog");
    assert!(catalog.legacy().is_empty());
}

#[test]
fn legacy_grants_of_unknown_roles_are_rejected() {
    let text = BUILT_IN.replace("{ role = \"warehouse_read\"", "{ role = \"warehouse_peek\"");
    let err = Catalog::parse(&text).expect_err("unknown role");
    assert_eq!(
        err.to_string(),
        "legacy role `workspace_read_only`: unknown role `warehouse_peek`"
    );
}

#[test]
fn legacy_grants_in_a_scope_their_role_does_not_accept_are_rejected() {
    let text = BUILT_IN.replace(
        "{ role = \"warehouse_read\", scope = \"all\" }",
        "{ role = \"warehouse_read\", scope = \"instance\" }",
    );
    let err = Catalog::parse(&text).expect_err("scope");
    assert_eq!(
        err.to_string(),
        "legacy role `workspace_read_only`: role `warehouse_read` does not accept the `instance` scope"
    );
}

#[test]
fn legacy_owners_with_grants_are_rejected() {
    let text = BUILT_IN.replace(
        "membership = \"owner\"\n",
        "membership = \"owner\"\ngrants = [{ role = \"source_read\", scope = \"all\" }]\n",
    );
    let err = Catalog::parse(&text).expect_err("owner grants");
    assert!(err.to_string().contains("need no grants"), "{err}");
}

#[test]
fn legacy_memberships_other_than_owner_or_member_are_rejected() {
    let text = BUILT_IN.replace("membership = \"owner\"\n", "membership = \"admin\"\n");
    let err = Catalog::parse(&text).expect_err("membership");
    assert!(err.to_string().contains("unknown variant `admin`"), "{err}");
}
