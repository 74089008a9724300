//! Property tests over random small workspaces, built by random writes: the engine agrees
//! with the reference model, grants only add access, revokes and product toggles undo
//! exactly, owners hold everything enabled and registered, non-members hold nothing.

use proptest::{prelude::*, sample::select};

use super::{
    OWNER, Twin,
    oracle::{ADD_ONS, Op, RefScope, questions},
};
use crate::model::{Decision, DenialReason, Membership, catalog::Target};

/// The users random writes name; `owner` is the workspace's first owner.
const USERS: &[&str] = &[OWNER, "u1", "u2", "u3"];
/// The users checks ask about: the above and one who is never added.
const ASKED: &[&str] = &[OWNER, "u1", "u2", "u3", "nobody"];
/// Instance ids, shared by every type so that types must not be confused.
const IDS: &[&str] = &["x", "y", "z"];
const TYPES: &[&str] = &[
    "source",
    "destination",
    "warehouse",
    "tracking_plan",
    "audience",
    "trait",
];
const ROLES: &[&str] = &[
    "source_admin",
    "source_read",
    "warehouse_admin",
    "warehouse_read",
    "protocols_admin",
    "protocols_read",
    "personas_admin",
    "personas_user",
    "personas_read",
];

fn add_ons() -> impl Strategy<Value = Vec<&'static str>> {
    (any::<bool>(), any::<bool>()).prop_map(|(protocols, personas)| {
        ADD_ONS
            .iter()
            .copied()
            .filter(|p| (*p == "protocols" && protocols) || (*p == "personas" && personas))
            .collect()
    })
}

fn scope() -> impl Strategy<Value = RefScope> {
    prop_oneof![
        2 => Just(RefScope::All),
        2 => select(IDS).prop_map(|id| RefScope::One("source".into(), id.into())),
        1 => (select(TYPES), select(IDS)).prop_map(|(ty, id)| RefScope::One(ty.into(), id.into())),
    ]
}

fn any_user() -> impl Strategy<Value = String> {
    select(USERS).prop_map(str::to_owned)
}

/// A random write inside an existing workspace, mostly well-formed.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => add_ons().prop_map(|add_ons| Op::SetProducts { add_ons }),
        3 => (any_user(), prop::bool::weighted(0.25))
            .prop_map(|(user, owner)| Op::SetMembership { user, owner }),
        1 => any_user().prop_map(|user| Op::RemoveMember { user }),
        5 => (select(TYPES), select(IDS), select(IDS), 0..10u8).prop_map(
            |(ty, id, parent, dice)| {
                // Usually a parent exactly when the type needs one; sometimes the opposite.
                let parent = ((ty == "destination") == (dice != 0)).then(|| parent.to_owned());
                Op::Register { ty, id: id.to_owned(), parent }
            }
        ),
        1 => (select(TYPES), select(IDS)).prop_map(|(ty, id)| Op::Delete { ty, id: id.to_owned() }),
        6 => (any_user(), select(ROLES), scope())
            .prop_map(|(user, role, scope)| Op::Grant { user, role, scope }),
        2 => (any_user(), select(ROLES), scope())
            .prop_map(|(user, role, scope)| Op::Revoke { user, role, scope }),
    ]
}

/// A random write, sometimes deleting or (re)creating the workspace itself.
fn op_or_lifecycle() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => op(),
        1 => Just(Op::DeleteWorkspace),
        1 => (any_user(), add_ons()).prop_map(|(owner, add_ons)| Op::CreateWorkspace { owner, add_ons }),
    ]
}

/// A workspace built by random writes, each checked against the reference model.
fn build(add_ons: &[&'static str], ops: &[Op]) -> Twin {
    let mut twin = Twin::new(add_ons);
    for op in ops {
        let _ = twin.run(op);
    }
    twin
}

/// A dense start, so that random writes meet registered instances and members: some
/// sources, destinations under random parents, some members.
fn seed() -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec(prop::bool::weighted(0.7), IDS.len()),
        prop::collection::vec(prop::option::weighted(0.6, select(IDS)), IDS.len()),
        prop::collection::vec(prop::bool::weighted(0.8), USERS.len() - 1),
    )
        .prop_map(|(sources, parents, joins)| {
            let register = |ty, id: &str, parent: Option<&str>| Op::Register {
                ty,
                id: id.to_owned(),
                parent: parent.map(str::to_owned),
            };
            let sources = IDS
                .iter()
                .zip(sources)
                .filter(|(_, yes)| *yes)
                .map(|(id, _)| register("source", id, None));
            let destinations = IDS
                .iter()
                .zip(parents)
                .filter_map(|(id, parent)| Some(register("destination", id, Some(parent?))));
            let members =
                USERS
                    .iter()
                    .skip(1)
                    .zip(joins)
                    .filter(|(_, yes)| *yes)
                    .map(|(user, _)| Op::SetMembership {
                        user: (*user).to_owned(),
                        owner: false,
                    });
            sources.chain(destinations).chain(members).collect()
        })
}

/// Products, then a dense start and random writes inside the workspace.
fn history() -> impl Strategy<Value = (Vec<&'static str>, Vec<Op>)> {
    (add_ons(), seed(), prop::collection::vec(op(), 0..24)).prop_map(|(add_ons, mut ops, more)| {
        ops.extend(more);
        (add_ons, ops)
    })
}

/// As `history`, with the workspace itself sometimes deleted or created again.
fn history_with_lifecycle() -> impl Strategy<Value = (Vec<&'static str>, Vec<Op>)> {
    (
        add_ons(),
        seed(),
        prop::collection::vec(op_or_lifecycle(), 0..24),
    )
        .prop_map(|(add_ons, mut ops, more)| {
            ops.extend(more);
            (add_ons, ops)
        })
}

/// The enabled add-on products, as the model's reference state holds them.
fn enabled_add_ons(twin: &Twin) -> Vec<&'static str> {
    let world = twin.world.as_ref().expect("the workspace exists");
    ADD_ONS
        .iter()
        .copied()
        .filter(|p| world.add_ons.contains(*p))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_engine_answers_as_the_reference_model_on_random_workspaces(
        (add_ons, ops) in history_with_lifecycle(),
    ) {
        let mut twin = Twin::new(&add_ons);
        twin.assert_agrees(ASKED, IDS);
        for op in &ops {
            let _ = twin.run(op);
            twin.assert_agrees(ASKED, IDS);
        }
    }

    #[test]
    fn granting_never_reduces_access(
        (add_ons, ops) in history(),
        (user, role, scope) in (any_user(), select(ROLES), scope()),
    ) {
        let mut twin = build(&add_ons, &ops);
        let before = twin.decisions(ASKED, IDS);
        let _ = twin.run(&Op::Grant { user, role, scope });
        let after = twin.decisions(ASKED, IDS);
        for (((who, permission, instance), before), after) in
            questions(ASKED, IDS).iter().zip(&before).zip(&after)
        {
            prop_assert!(
                !before.allowed() || after.allowed(),
                "`{who}` lost `{permission}` on {instance:?}: {before:?} became {after:?}"
            );
        }
    }

    #[test]
    fn revoking_what_was_just_granted_restores_every_answer(
        (add_ons, ops) in history(),
        (user, role, scope) in (select(&USERS[1..]), select(ROLES), scope()),
    ) {
        let mut twin = build(&add_ons, &ops);
        // Make the grant likely to be accepted: the user is a member, the source exists.
        let _ = twin.run(&Op::SetMembership { user: user.to_owned(), owner: false });
        if let RefScope::One(ty, id) = &scope {
            if ty == "source" {
                let _ = twin.run(&Op::Register { ty: "source", id: id.clone(), parent: None });
            }
        }
        let before = twin.decisions(ASKED, IDS);
        let grant = Op::Grant { user: user.to_owned(), role, scope: scope.clone() };
        let added = twin.run(&grant).map(|changes| !changes.is_empty()).unwrap_or(false);
        if added {
            let revoke = Op::Revoke { user: user.to_owned(), role, scope };
            let removed = twin.run(&revoke).map(|changes| changes.len());
            prop_assert_eq!(removed, Ok(1));
            prop_assert_eq!(twin.decisions(ASKED, IDS), before);
        }
    }

    #[test]
    fn disabling_and_enabling_products_again_restores_every_answer(
        (add_ons, ops) in history(),
        other in add_ons(),
    ) {
        let mut twin = build(&add_ons, &ops);
        let original = enabled_add_ons(&twin);
        let before = twin.decisions(ASKED, IDS);
        let toggled = twin.run(&Op::SetProducts { add_ons: other });
        prop_assert!(toggled.is_ok());
        let restored = twin.run(&Op::SetProducts { add_ons: original });
        prop_assert!(restored.is_ok());
        prop_assert_eq!(twin.decisions(ASKED, IDS), before);
    }

    #[test]
    fn owners_are_allowed_every_permission_of_enabled_products_on_registered_instances(
        (add_ons, ops) in history(),
    ) {
        let twin = build(&add_ons, &ops);
        let f = &twin.fixture;
        let state = f.state();
        let mut asked = 0;
        for owner in state.owners() {
            for (_, permission) in f.catalog.permissions() {
                if !state.products().contains(permission.product) {
                    continue;
                }
                let targets: Vec<Option<String>> = match permission.target {
                    Target::Workspace => vec![None],
                    Target::Instance(ty) => state
                        .instances_of(ty, None)
                        .map(|(id, _)| Some(id.as_str().to_owned()))
                        .collect(),
                };
                for target in targets {
                    prop_assert_eq!(
                        f.decide(owner.as_str(), &permission.name, target.as_deref()),
                        Decision::AllowedByMembership(Membership::Owner),
                        "{} {:?}", permission.name, target
                    );
                    asked += 1;
                }
            }
        }
        prop_assert!(asked >= 4, "an owner always holds the workspace permissions");
    }

    #[test]
    fn non_members_are_always_denied((add_ons, ops) in history_with_lifecycle()) {
        let twin = build(&add_ons, &ops);
        let f = &twin.fixture;
        let outsiders: Vec<&str> = ASKED
            .iter()
            .copied()
            .filter(|who| {
                f.state
                    .as_ref()
                    .is_none_or(|state| state.member(&super::user(who)).is_none())
            })
            .collect();
        prop_assert!(!outsiders.is_empty());
        for (who, permission, instance) in questions(&outsiders, IDS) {
            prop_assert_eq!(
                f.decide(&who, permission, instance.as_deref()),
                Decision::Denied(DenialReason::NotAMember)
            );
        }
    }
}
