//! Write planning at its edges: writes already in effect plan nothing, and every write
//! the model forbids is refused with an error naming why, changing nothing.

use super::Command;
use super::{ALL_ADD_ONS, Fixture, M, NO_GRANT, ONE_S1, OWNER, Spec, WriteError, rid, user};
use crate::model::{Catalog, Change, Membership};

/// Every product; source `s1` with destination `d1`; warehouse `wh`; member `m`.
fn fixture() -> Fixture {
    let mut f = Fixture::new(ALL_ADD_ONS);
    f.add("source", "s1", None);
    f.add("destination", "d1", Some("s1"));
    f.add("warehouse", "wh", None);
    f.join(M);
    f
}

/// Asserts that `command` is refused with `error` and that the state did not move.
fn refused(f: &mut Fixture, command: &Command, error: &WriteError) {
    let before = format!("{:?}", f.state);
    assert_eq!(f.exec(command).as_ref(), Err(error), "{command:?}");
    assert_eq!(
        format!("{:?}", f.state),
        before,
        "a refused write changes nothing"
    );
}

fn scope_not_accepted(f: &mut Fixture, command: &Command) {
    let before = format!("{:?}", f.state);
    let result = f.exec(command);
    assert!(
        matches!(result, Err(WriteError::ScopeNotAccepted { .. })),
        "{command:?}: {result:?}"
    );
    assert_eq!(format!("{:?}", f.state), before);
}

#[test]
fn writes_already_in_effect_plan_nothing() {
    let mut f = fixture();
    f.give(M, "source_admin", ONE_S1);
    let nothing: Result<Vec<Change>, WriteError> = Ok(Vec::new());
    let commands = [
        f.grant(M, "source_admin", ONE_S1, Some(OWNER)),
        f.revoke(M, "source_read", ONE_S1, None),
        f.revoke(M, "source_admin", Spec::All, None),
        f.revoke("stranger", "source_admin", ONE_S1, None),
        f.delete("source", "never"),
        f.delete("destination", "s1"),
        f.set_membership(M, Membership::Member, None),
        f.set_membership(OWNER, Membership::Owner, None),
        f.remove_member("stranger", None),
        f.register("source", "s1", None),
        f.register("destination", "d1", Some("s1")),
        f.set_products(ALL_ADD_ONS),
        f.set_products(&["connections", "protocols", "personas"]),
    ];
    for command in &commands {
        assert_eq!(f.exec(command), nothing, "{command:?}");
    }
    let revoke = f.revoke(M, "source_admin", ONE_S1, None);
    assert_eq!(f.exec(&revoke).map(|c| c.len()), Ok(1));
    assert_eq!(f.exec(&revoke), nothing, "revoking twice");
}

#[test]
fn deleting_a_workspace_that_does_not_exist_plans_nothing() {
    let mut f = Fixture::missing(Catalog::built_in());
    let delete = Command::DeleteWorkspace {
        workspace: f.workspace.clone(),
    };
    assert_eq!(f.exec(&delete), Ok(Vec::new()));
    let mut g = fixture();
    assert_eq!(g.exec(&delete).map(|c| c.len()), Ok(1));
    assert!(g.state.is_none());
    assert_eq!(g.exec(&delete), Ok(Vec::new()));
}

#[test]
fn roles_that_accept_only_all_instances_refuse_one_instance_scopes() {
    let mut f = fixture();
    f.add("tracking_plan", "tp", None);
    f.add("audience", "au", None);
    let commands = [
        f.grant(M, "warehouse_admin", Spec::One("warehouse", "wh"), None),
        f.grant(M, "warehouse_read", Spec::One("warehouse", "wh"), None),
        f.grant(M, "protocols_admin", Spec::One("tracking_plan", "tp"), None),
        f.grant(M, "personas_user", Spec::One("audience", "au"), None),
        f.grant(M, "warehouse_admin", ONE_S1, None),
    ];
    for command in &commands {
        scope_not_accepted(&mut f, command);
    }
}

#[test]
fn source_roles_refuse_scopes_of_other_types() {
    let mut f = fixture();
    let commands = [
        f.grant(M, "source_admin", Spec::One("warehouse", "wh"), None),
        f.grant(M, "source_read", Spec::One("warehouse", "wh"), None),
        f.grant(M, "source_admin", Spec::One("destination", "d1"), None),
    ];
    for command in &commands {
        scope_not_accepted(&mut f, command);
    }
}

#[test]
fn granting_to_a_non_member_is_refused() {
    let mut f = fixture();
    let command = f.grant("stranger", "source_read", Spec::All, None);
    refused(&mut f, &command, &WriteError::NotAMember(user("stranger")));
    let command = f.grant("stranger", "source_read", ONE_S1, Some(OWNER));
    refused(&mut f, &command, &WriteError::NotAMember(user("stranger")));
}

#[test]
fn granting_on_an_unregistered_instance_is_refused() {
    let mut f = fixture();
    let command = f.grant(M, "source_admin", Spec::One("source", "ghost"), None);
    let error = WriteError::ResourceNotFound {
        type_name: "source".into(),
        id: rid("ghost"),
    };
    refused(&mut f, &command, &error);
}

#[test]
fn a_destination_needs_a_registered_parent_source() {
    let mut f = fixture();
    let orphan = f.register("destination", "d2", None);
    assert!(matches!(f.exec(&orphan), Err(WriteError::BadParent(_))));
    let unknown = f.register("destination", "d2", Some("ghost"));
    let error = WriteError::ResourceNotFound {
        type_name: "source".into(),
        id: rid("ghost"),
    };
    refused(&mut f, &unknown, &error);
    let under_destination = f.register("destination", "d2", Some("d1"));
    assert!(matches!(
        f.exec(&under_destination),
        Err(WriteError::ResourceNotFound { .. })
    ));
    assert!(
        f.state()
            .instance(&(f.ty("destination"), rid("d2")))
            .is_none()
    );
}

#[test]
fn types_without_a_parent_refuse_one() {
    let mut f = fixture();
    for ty in ["source", "warehouse"] {
        let command = f.register(ty, "x", Some("s1"));
        let before = format!("{:?}", f.state);
        assert!(
            matches!(f.exec(&command), Err(WriteError::BadParent(_))),
            "{ty}"
        );
        assert_eq!(format!("{:?}", f.state), before);
    }
}

#[test]
fn re_registering_an_instance_under_another_parent_is_refused() {
    let mut f = fixture();
    f.add("source", "s2", None);
    let command = f.register("destination", "d1", Some("s2"));
    let error = WriteError::ResourceExists {
        type_name: "destination".into(),
        id: rid("d1"),
    };
    refused(&mut f, &command, &error);
}

#[test]
fn the_same_id_may_name_instances_of_different_types() {
    let mut f = fixture();
    f.add("warehouse", "s1", None);
    f.add("destination", "s1", Some("s1"));
    f.give(M, "source_read", ONE_S1);
    assert!(f.allowed(M, "destination.read", Some("s1")));
    assert_eq!(f.decide(M, "warehouse.read", Some("s1")), NO_GRANT);
}

#[test]
fn a_grant_on_a_source_does_not_cover_a_destination_that_only_shares_its_id() {
    let mut f = fixture();
    f.add("source", "s2", None);
    f.add("destination", "s1", Some("s2"));
    f.add("destination", "s2", Some("s1"));
    f.give(M, "source_read", ONE_S1);
    assert_eq!(f.decide(M, "destination.read", Some("s1")), NO_GRANT);
    assert!(f.allowed(M, "destination.read", Some("s2")));
}

#[test]
fn creating_an_existing_workspace_is_refused() {
    let mut f = fixture();
    let command = f.create_workspace("someone", &[]);
    let error = WriteError::WorkspaceExists(f.workspace.clone());
    refused(&mut f, &command, &error);
}

#[test]
fn creating_a_workspace_plans_it_with_connections_and_its_first_owner() {
    let f = Fixture::missing(Catalog::built_in());
    let command = f.create_workspace(OWNER, &["personas"]);
    assert_eq!(
        f.plan(&command),
        Ok(vec![
            Change::CreateWorkspace {
                workspace: f.workspace.clone(),
                products: f.products(&["connections", "personas"]),
            },
            Change::SetMembership {
                workspace: f.workspace.clone(),
                user: user(OWNER),
                membership: Membership::Owner,
            },
        ])
    );
}

#[test]
fn writes_to_a_workspace_that_does_not_exist_are_refused() {
    let f = Fixture::missing(Catalog::built_in());
    let not_found = Err(WriteError::WorkspaceNotFound(f.workspace.clone()));
    let commands = [
        f.set_products(&[]),
        f.set_membership(M, Membership::Member, None),
        f.remove_member(M, None),
        f.register("source", "s1", None),
        f.delete("source", "s1"),
        f.grant(M, "source_read", Spec::All, None),
        f.revoke(M, "source_read", Spec::All, None),
    ];
    for command in &commands {
        assert_eq!(f.plan(command), not_found, "{command:?}");
    }
}

#[test]
fn grant_plans_one_add_grant_change() {
    let mut f = fixture();
    let command = f.grant(M, "source_admin", ONE_S1, Some(OWNER));
    assert_eq!(
        f.exec(&command),
        Ok(vec![Change::AddGrant {
            workspace: f.workspace.clone(),
            user: user(M),
            grant: f.grant_of("source_admin", ONE_S1),
        }])
    );
    let held = &f.state().member(&user(M)).expect("m").grants;
    assert_eq!(**held, [f.grant_of("source_admin", ONE_S1)]);
}

#[test]
fn write_errors_read_as_the_style_asks() {
    let mut f = fixture();
    let command = f.grant(M, "personas_read", Spec::All, None);
    let disable = f.set_products(&[]);
    f.ok(&disable);
    let error = f.exec(&command).expect_err("personas is disabled");
    assert_eq!(
        error.to_string(),
        "role `personas_read` belongs to product `personas`, which the workspace does not have"
    );
    let remove = f.remove_member(OWNER, None);
    let error = f.exec(&remove).expect_err("last owner");
    assert_eq!(
        error.to_string(),
        "user `owner` is the workspace's last owner; a workspace always has an owner"
    );
}
