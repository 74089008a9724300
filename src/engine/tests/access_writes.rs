//! The model's rules about writes to access, each as named tests: only owners manage
//! access, a workspace always has an owner, leaving removes grants, deleting an instance
//! removes what hangs on it.

use super::{
    M, NO_GRANT, NOT_A_MEMBER, NOT_REGISTERED, ONE_S1, OWNER, Spec, WriteError, rid, sources, user,
};
use crate::model::{Catalog, Change, Decision, Membership};

// Rule 5: who manages access.

#[test]
fn only_owners_may_manage_access() {
    let mut f = sources();
    for (_, role) in Catalog::built_in().roles() {
        f.give(M, &role.name, Spec::All);
    }
    f.give(M, "source_admin", ONE_S1);
    for permission in [
        "workspace.manage_access",
        "workspace.update",
        "workspace.delete",
    ] {
        assert_eq!(f.decide(M, permission, None), NO_GRANT, "{permission}");
        assert_eq!(
            f.decide(OWNER, permission, None),
            Decision::AllowedByMembership(Membership::Owner)
        );
    }
}

#[test]
fn source_admin_never_allows_managing_access() {
    let mut f = sources();
    f.give(M, "source_admin", ONE_S1);
    assert_eq!(f.decide(M, "workspace.manage_access", None), NO_GRANT);
    f.give(M, "source_admin", Spec::All);
    assert_eq!(f.decide(M, "workspace.manage_access", None), NO_GRANT);
}

#[test]
fn a_member_actor_is_refused_every_access_write() {
    let mut f = sources();
    f.give(M, "source_admin", Spec::All);
    f.give(M, "source_admin", ONE_S1);
    f.join("n");
    let refused = Err(WriteError::ActorNotAllowed(user(M)));
    let commands = [
        f.set_membership("x", Membership::Member, Some(M)),
        f.set_membership("n", Membership::Owner, Some(M)),
        f.remove_member("n", Some(M)),
        f.grant("n", "source_read", ONE_S1, Some(M)),
        f.revoke(M, "source_admin", ONE_S1, Some(M)),
    ];
    for command in &commands {
        assert_eq!(f.exec(command), refused, "{command:?}");
    }
    for who in ["stranger", "x"] {
        let command = f.grant("n", "source_read", ONE_S1, Some(who));
        assert_eq!(
            f.exec(&command),
            Err(WriteError::ActorNotAllowed(user(who)))
        );
    }
    assert!(f.state().member(&user("x")).is_none());
    assert!(
        f.state()
            .member(&user("n"))
            .is_some_and(|n| n.grants.is_empty())
    );
}

#[test]
fn an_owner_actor_may_manage_access() {
    let mut f = sources();
    let promote = f.set_membership("o2", Membership::Owner, Some(OWNER));
    f.ok(&promote);
    let grant = f.grant(M, "source_read", ONE_S1, Some("o2"));
    assert_eq!(f.exec(&grant).map(|c| c.len()), Ok(1));
    let revoke = f.revoke(M, "source_read", ONE_S1, Some(OWNER));
    assert_eq!(f.exec(&revoke).map(|c| c.len()), Ok(1));
    let remove = f.remove_member(M, Some("o2"));
    assert_eq!(f.exec(&remove).map(|c| c.len()), Ok(1));
}

// Rule 7: a workspace always has an owner.

#[test]
fn the_last_owner_cannot_be_demoted_or_removed() {
    let mut f = sources();
    let demote = f.set_membership(OWNER, Membership::Member, None);
    assert_eq!(f.exec(&demote), Err(WriteError::LastOwner(user(OWNER))));
    let remove = f.remove_member(OWNER, None);
    assert_eq!(f.exec(&remove), Err(WriteError::LastOwner(user(OWNER))));
    let demote_by_self = f.set_membership(OWNER, Membership::Member, Some(OWNER));
    assert_eq!(
        f.exec(&demote_by_self),
        Err(WriteError::LastOwner(user(OWNER)))
    );
    assert_eq!(f.state().owner_count(), 1);
}

#[test]
fn an_owner_can_be_demoted_or_removed_while_another_owner_remains() {
    let mut f = sources();
    let promote = f.set_membership(M, Membership::Owner, None);
    f.ok(&promote);
    let demote = f.set_membership(OWNER, Membership::Member, None);
    f.ok(&demote);
    assert_eq!(f.decide(OWNER, "workspace.manage_access", None), NO_GRANT);
    let demote_last = f.set_membership(M, Membership::Member, None);
    assert_eq!(f.exec(&demote_last), Err(WriteError::LastOwner(user(M))));
    let promote_back = f.set_membership(OWNER, Membership::Owner, None);
    f.ok(&promote_back);
    let remove = f.remove_member(M, None);
    f.ok(&remove);
    let remove_last = f.remove_member(OWNER, None);
    assert_eq!(
        f.exec(&remove_last),
        Err(WriteError::LastOwner(user(OWNER)))
    );
}

// Rule 8: leaving, and deleting instances.

#[test]
fn leaving_a_workspace_removes_the_users_grants_with_the_membership() {
    let mut f = sources();
    f.give(M, "source_admin", ONE_S1);
    f.give(M, "source_read", Spec::All);
    f.give(M, "warehouse_read", Spec::All);
    let held = f.state().member(&user(M)).expect("member").grants.clone();
    assert_eq!(held.len(), 3);
    let leave = f.remove_member(M, Some(OWNER));
    let changes = f.ok(&leave);
    let mut expected: Vec<Change> = held
        .iter()
        .map(|grant| Change::RemoveGrant {
            workspace: f.workspace.clone(),
            user: user(M),
            grant: grant.clone(),
        })
        .collect();
    expected.push(Change::RemoveMember {
        workspace: f.workspace.clone(),
        user: user(M),
    });
    assert_eq!(
        changes, expected,
        "one plan: every grant, then the membership"
    );
    assert!(f.state().member(&user(M)).is_none());
    assert_eq!(f.state().grant_count(), 0);
    assert_eq!(f.decide(M, "workspace.read", None), NOT_A_MEMBER);
    assert_eq!(f.decide(M, "source.read", Some("s1")), NOT_A_MEMBER);

    f.join(M);
    assert!(
        f.state()
            .member(&user(M))
            .is_some_and(|m| m.grants.is_empty())
    );
    assert_eq!(
        f.decide(M, "source.read", Some("s1")),
        NO_GRANT,
        "rejoining restores nothing"
    );
    assert_eq!(f.state().grants_on(&(f.ty("source"), rid("s1"))).len(), 0);
}

#[test]
fn deleting_a_source_removes_its_destinations_and_the_grants_scoped_to_them() {
    let mut f = sources();
    f.join("n");
    f.give(M, "source_admin", ONE_S1);
    f.give(M, "source_read", ONE_S1);
    f.give(M, "source_read", Spec::One("source", "s2"));
    f.give("n", "source_admin", Spec::All);
    f.add("destination", "d1b", Some("s1"));

    let delete = f.delete("source", "s1");
    let changes = f.ok(&delete);
    let position = |wanted: &Change| {
        changes
            .iter()
            .position(|c| c == wanted)
            .unwrap_or_else(|| panic!("{wanted:?} is not in {changes:?}"))
    };
    let ws = f.workspace.clone();
    let delete_of = |id: &str, ty: &str| Change::DeleteResource {
        workspace: ws.clone(),
        resource: (f.ty(ty), rid(id)),
    };
    let source_gone = position(&delete_of("s1", "source"));
    assert_eq!(source_gone, changes.len() - 1, "the source goes last");
    assert!(position(&delete_of("d1", "destination")) < source_gone);
    assert!(position(&delete_of("d1b", "destination")) < source_gone);
    for role in ["source_admin", "source_read"] {
        position(&Change::RemoveGrant {
            workspace: ws.clone(),
            user: user(M),
            grant: f.grant_of(role, ONE_S1),
        });
    }
    assert_eq!(changes.len(), 5, "{changes:?}");

    for (ty, id) in [
        ("source", "s1"),
        ("destination", "d1"),
        ("destination", "d1b"),
    ] {
        assert!(f.state().instance(&(f.ty(ty), rid(id))).is_none(), "{id}");
    }
    assert_eq!(
        *f.state().member(&user(M)).expect("m").grants,
        [f.grant_of("source_read", Spec::One("source", "s2"))]
    );
    assert_eq!(
        f.state().member(&user("n")).expect("n").grants.len(),
        1,
        "all-scope grants stay"
    );
    assert_eq!(f.decide(OWNER, "source.read", Some("s1")), NOT_REGISTERED);
    assert_eq!(
        f.decide(OWNER, "destination.read", Some("d1")),
        NOT_REGISTERED
    );
    assert!(f.allowed(M, "destination.read", Some("d2")));
    assert_eq!(f.state().children(&(f.ty("source"), rid("s1"))).count(), 0);

    f.add("source", "s1", None);
    assert_eq!(
        f.decide(M, "source.read", Some("s1")),
        NO_GRANT,
        "re-registering restores no grant"
    );
    assert!(f.allowed("n", "source.update", Some("s1")));
}

#[test]
fn deleting_a_destination_keeps_its_source_and_the_grants_on_it() {
    let mut f = sources();
    f.give(M, "source_admin", ONE_S1);
    let delete = f.delete("destination", "d1");
    let changes = f.ok(&delete);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(f.decide(M, "destination.read", Some("d1")), NOT_REGISTERED);
    assert!(f.allowed(M, "source.update", Some("s1")));
    assert_eq!(f.state().children(&(f.ty("source"), rid("s1"))).count(), 0);
}
