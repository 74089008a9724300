//! Unit tests of the decision engine against every row and rule of `ACCESS_MODEL.md`.
//! State is built only through `plan` and `Workspace::apply`; expectations come from
//! `oracle`, a literal transcription of the model that shares no code with the engine.

mod access_writes;
mod migrate;
mod oracle;
mod plan_edges;
mod properties;
mod rules;
mod table;

use super::{Check, Command, WriteError, check, plan};
use crate::model::{
    Catalog, Change, Decision, DenialReason, Grant, Membership, PermissionId, ProductSet,
    ResourceId, RoleId, Scope, TypeId, UserId, Workspace, WorkspaceId,
};
use oracle::{Op, RefScope, World};

/// The workspace every fixture writes to.
const WS: &str = "w";
/// The first owner of every fixture's workspace.
const OWNER: &str = "owner";
/// Every add-on product of the built-in catalog.
const ALL_ADD_ONS: &[&str] = &["protocols", "personas"];

/// The member most tests give grants to.
const M: &str = "m";
/// A grant's scope: the one source `s1`.
const ONE_S1: Spec<'static> = Spec::One("source", "s1");

const NO_GRANT: Decision = Decision::Denied(DenialReason::NoCoveringGrant);
const NOT_ENABLED: Decision = Decision::Denied(DenialReason::ProductNotEnabled);
const NOT_REGISTERED: Decision = Decision::Denied(DenialReason::ResourceNotRegistered);
const NOT_A_MEMBER: Decision = Decision::Denied(DenialReason::NotAMember);

/// Every product; sources `s1`, `s2` with destinations `d1`, `d2`; member `m`.
fn sources() -> Fixture {
    let mut f = Fixture::new(ALL_ADD_ONS);
    f.add("source", "s1", None);
    f.add("source", "s2", None);
    f.add("destination", "d1", Some("s1"));
    f.add("destination", "d2", Some("s2"));
    f.join(M);
    f
}

/// The decision a grant of `role` on `spec` gives.
fn by_grant(f: &Fixture, role: &str, spec: Spec<'_>) -> Decision {
    Decision::AllowedByGrant(f.grant_of(role, spec))
}

fn user(raw: &str) -> UserId {
    UserId::parse(raw).expect("user id")
}

fn rid(raw: &str) -> ResourceId {
    ResourceId::parse(raw).expect("resource id")
}

/// A grant's scope, by names.
#[derive(Debug, Clone, Copy)]
enum Spec<'a> {
    /// All current and future instances.
    All,
    /// One instance: its type and id.
    One(&'a str, &'a str),
}

/// One workspace's state, changed only through the engine's plans.
struct Fixture {
    catalog: Catalog,
    workspace: WorkspaceId,
    state: Option<Workspace>,
}

impl Fixture {
    /// Workspace `w` with owner `owner` and the named add-on products.
    fn new(add_ons: &[&str]) -> Self {
        Self::with_catalog(Catalog::built_in(), add_ons)
    }

    fn with_catalog(catalog: Catalog, add_ons: &[&str]) -> Self {
        let mut fixture = Self::missing(catalog);
        let create = fixture.create_workspace(OWNER, add_ons);
        fixture.ok(&create);
        fixture
    }

    /// No workspace at all.
    fn missing(catalog: Catalog) -> Self {
        Self {
            catalog,
            workspace: WorkspaceId::parse(WS).expect("workspace id"),
            state: None,
        }
    }

    fn plan(&self, command: &Command) -> Result<Vec<Change>, WriteError> {
        plan(&self.catalog, self.state.as_ref(), command)
    }

    /// Plans `command` and applies the plan, as the store does.
    fn exec(&mut self, command: &Command) -> Result<Vec<Change>, WriteError> {
        let changes = self.plan(command)?;
        for change in &changes {
            assert_eq!(change.workspace(), &self.workspace, "{change:?}");
            Workspace::apply(&mut self.state, change);
        }
        Ok(changes)
    }

    fn ok(&mut self, command: &Command) -> Vec<Change> {
        match self.exec(command) {
            Ok(changes) => changes,
            Err(err) => panic!("{command:?} was refused: {err}"),
        }
    }

    fn state(&self) -> &Workspace {
        self.state.as_ref().expect("the workspace exists")
    }

    /// The engine's decision, by both of its paths: a single check (which finds the
    /// member and the instance together) and BatchCheck's (which finds the member once
    /// for many items); every test holds them equal.
    fn decide(&self, user_id: &str, permission: &str, resource: Option<&str>) -> Decision {
        let single = check(
            &self.catalog,
            self.state.as_ref(),
            &Check {
                user: user(user_id),
                permission: self.permission(permission),
                resource: resource.map(rid),
            },
        );
        let batched = super::check::UserInWorkspace::new(self.state.as_ref(), user_id)
            .decide(&self.catalog, self.permission(permission), resource)
            .to_decision();
        assert_eq!(
            single, batched,
            "{user_id} asking {permission} on {resource:?}"
        );
        single
    }

    fn allowed(&self, user_id: &str, permission: &str, resource: Option<&str>) -> bool {
        self.decide(user_id, permission, resource).allowed()
    }

    fn permission(&self, name: &str) -> PermissionId {
        self.catalog.permission_id(name).expect("permission")
    }

    fn role(&self, name: &str) -> RoleId {
        self.catalog.role_id(name).expect("role")
    }

    fn ty(&self, name: &str) -> TypeId {
        self.catalog.type_id(name).expect("resource type")
    }

    fn products(&self, add_ons: &[&str]) -> ProductSet {
        add_ons.iter().fold(ProductSet::default(), |set, name| {
            set.with(self.catalog.product_id(name).expect("product"))
        })
    }

    fn scope(&self, spec: Spec<'_>) -> Scope {
        match spec {
            Spec::All => Scope::All,
            Spec::One(ty, id) => Scope::Instance(self.ty(ty), rid(id)),
        }
    }

    fn grant_of(&self, role: &str, spec: Spec<'_>) -> Grant {
        Grant {
            role: self.role(role),
            scope: self.scope(spec),
        }
    }

    fn create_workspace(&self, owner: &str, add_ons: &[&str]) -> Command {
        Command::CreateWorkspace {
            workspace: self.workspace.clone(),
            owner: user(owner),
            products: self.products(add_ons),
        }
    }

    fn set_products(&self, add_ons: &[&str]) -> Command {
        Command::SetProducts {
            workspace: self.workspace.clone(),
            products: self.products(add_ons),
        }
    }

    fn set_membership(&self, who: &str, membership: Membership, actor: Option<&str>) -> Command {
        Command::SetMembership {
            workspace: self.workspace.clone(),
            user: user(who),
            membership,
            actor: actor.map(user),
        }
    }

    fn remove_member(&self, who: &str, actor: Option<&str>) -> Command {
        Command::RemoveMember {
            workspace: self.workspace.clone(),
            user: user(who),
            actor: actor.map(user),
        }
    }

    fn register(&self, ty: &str, id: &str, parent: Option<&str>) -> Command {
        Command::RegisterResource {
            workspace: self.workspace.clone(),
            resource: (self.ty(ty), rid(id)),
            parent: parent.map(rid),
        }
    }

    fn delete(&self, ty: &str, id: &str) -> Command {
        Command::DeleteResource {
            workspace: self.workspace.clone(),
            resource: (self.ty(ty), rid(id)),
        }
    }

    fn grant(&self, who: &str, role: &str, spec: Spec<'_>, actor: Option<&str>) -> Command {
        Command::Grant {
            workspace: self.workspace.clone(),
            user: user(who),
            grant: self.grant_of(role, spec),
            actor: actor.map(user),
        }
    }

    fn revoke(&self, who: &str, role: &str, spec: Spec<'_>, actor: Option<&str>) -> Command {
        Command::Revoke {
            workspace: self.workspace.clone(),
            user: user(who),
            grant: self.grant_of(role, spec),
            actor: actor.map(user),
        }
    }

    /// Adds `who` as a member.
    fn join(&mut self, who: &str) {
        let command = self.set_membership(who, Membership::Member, None);
        self.ok(&command);
    }

    /// Grants `role` to `who`.
    fn give(&mut self, who: &str, role: &str, spec: Spec<'_>) {
        let command = self.grant(who, role, spec, None);
        self.ok(&command);
    }

    fn add(&mut self, ty: &str, id: &str, parent: Option<&str>) {
        let command = self.register(ty, id, parent);
        self.ok(&command);
    }

    /// The reference model's operation as the engine's command (no actor).
    fn command(&self, op: &Op) -> Command {
        let spec = |scope: &'_ RefScope| -> Scope {
            match scope {
                RefScope::All => Scope::All,
                RefScope::One(ty, id) => self.scope(Spec::One(ty, id)),
            }
        };
        let workspace = self.workspace.clone();
        match op {
            Op::CreateWorkspace { owner, add_ons } => self.create_workspace(owner, add_ons),
            Op::DeleteWorkspace => Command::DeleteWorkspace { workspace },
            Op::SetProducts { add_ons } => self.set_products(add_ons),
            Op::SetMembership { user: who, owner } => {
                let membership = if *owner {
                    Membership::Owner
                } else {
                    Membership::Member
                };
                self.set_membership(who, membership, None)
            }
            Op::RemoveMember { user: who } => self.remove_member(who, None),
            Op::Register { ty, id, parent } => self.register(ty, id, parent.as_deref()),
            Op::Delete { ty, id } => self.delete(ty, id),
            Op::Grant {
                user: who,
                role,
                scope,
            } => Command::Grant {
                workspace,
                user: user(who),
                grant: Grant {
                    role: self.role(role),
                    scope: spec(scope),
                },
                actor: None,
            },
            Op::Revoke {
                user: who,
                role,
                scope,
            } => Command::Revoke {
                workspace,
                user: user(who),
                grant: Grant {
                    role: self.role(role),
                    scope: spec(scope),
                },
                actor: None,
            },
        }
    }
}

/// The engine and the reference model side by side, driven by the same operations.
struct Twin {
    fixture: Fixture,
    world: Option<World>,
}

impl Twin {
    /// Workspace `w` with owner `owner` and the named add-on products, in both.
    fn new(add_ons: &[&'static str]) -> Self {
        let mut twin = Self {
            fixture: Fixture::missing(Catalog::built_in()),
            world: None,
        };
        twin.run(&Op::CreateWorkspace {
            owner: OWNER.to_owned(),
            add_ons: add_ons.to_vec(),
        })
        .expect("create workspace");
        twin
    }

    /// Runs `op` in both; panics unless they agree on refusing it and on whether it
    /// changes anything.
    fn run(&mut self, op: &Op) -> Result<Vec<Change>, WriteError> {
        let expected = oracle::apply(&mut self.world, op);
        let command = self.fixture.command(op);
        let got = self.fixture.exec(&command);
        match (expected, &got) {
            (Some(changed), Ok(changes)) => assert_eq!(
                changed,
                !changes.is_empty(),
                "{op:?}: the model says changed={changed}, the engine planned {changes:?}"
            ),
            (None, Err(_)) => {}
            (Some(changed), Err(err)) => {
                panic!(
                    "{op:?}: the model accepts it (changed={changed}), the engine refused: {err}"
                )
            }
            (None, Ok(changes)) => {
                panic!("{op:?}: the model refuses it, the engine planned {changes:?}")
            }
        }
        got
    }

    /// Every question about `users` and instance ids `ids`, with the engine's answers.
    fn decisions(&self, users: &[&str], ids: &[&str]) -> Vec<Decision> {
        oracle::questions(users, ids)
            .iter()
            .map(|(who, permission, instance)| {
                self.fixture.decide(who, permission, instance.as_deref())
            })
            .collect()
    }

    /// Panics unless the engine answers every question as the reference model does.
    fn assert_agrees(&self, users: &[&str], ids: &[&str]) {
        for (who, permission, instance) in oracle::questions(users, ids) {
            self.assert_agrees_on(&who, permission, instance.as_deref());
        }
    }

    fn assert_agrees_on(&self, who: &str, permission: &str, instance: Option<&str>) {
        let expected = oracle::expected(self.world.as_ref(), who, permission, instance);
        let decision = self.fixture.decide(who, permission, instance);
        assert!(
            oracle::agrees(&self.fixture.catalog, &decision, &expected),
            "`{who}` asking `{permission}` on {instance:?}: the model expects {expected:?}, \
             the engine decided {decision:?}\nworld: {:#?}",
            self.world
        );
    }
}
