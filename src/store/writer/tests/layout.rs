//! The chunks the writer rewrites, change by change, always equal the state laid out
//! afresh; records the catalog cannot represent survive the rewrites.

use std::{collections::BTreeMap, sync::Arc};

use proptest::prelude::*;

use super::{plan_all_then_commit, resource, user};
use crate::{
    engine::Command,
    model::{Catalog, Grant, Membership, ProductSet, ResourceId, Scope, Workspace, WorkspaceId},
    store::{
        Store, StoreConfig, open_db,
        record::{
            self,
            chunks::{self, Boundaries},
            keys,
        },
    },
};

fn command(catalog: &Catalog) -> impl Strategy<Value = Command> + use<> {
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let admin = catalog.role_id("source_admin").unwrap();
    let workspace =
        prop_oneof![Just("a"), Just("b")].prop_map(|ws| WorkspaceId::parse(ws).unwrap());
    // All instances, or source `r`.
    let admin_grant = move |all: bool, r: u8| Grant {
        role: admin,
        scope: if all {
            Scope::All
        } else {
            Scope::Instance(source, resource(r))
        },
    };
    (workspace, 0..9_u8, 0..80_u8, 0..40_u8, any::<bool>()).prop_map(
        move |(workspace, op, u, r, flag)| match op {
            0 => Command::CreateWorkspace {
                workspace,
                owner: user(u),
                products: ProductSet::default(),
            },
            1 if u < 2 => Command::DeleteWorkspace { workspace },
            1 | 2 => Command::SetMembership {
                workspace,
                user: user(u),
                membership: if flag {
                    Membership::Owner
                } else {
                    Membership::Member
                },
                actor: None,
            },
            3 => Command::RemoveMember {
                workspace,
                user: user(u),
                actor: None,
            },
            4 => Command::RegisterResource {
                workspace,
                resource: if flag {
                    (source, resource(r))
                } else {
                    (destination, resource(r))
                },
                parent: (!flag).then(|| resource(r / 2)),
            },
            5 => Command::DeleteResource {
                workspace,
                resource: (if flag { source } else { destination }, resource(r)),
            },
            6 | 7 => Command::Grant {
                workspace,
                user: user(u),
                grant: admin_grant(flag, r),
                actor: None,
            },
            _ => Command::Revoke {
                workspace,
                user: user(u),
                grant: admin_grant(flag, r),
                actor: None,
            },
        },
    )
}

/// Records of one run, as (id, record).
type Records = Vec<(String, Vec<u8>)>;

/// The chunks a workspace's records make, laid out from scratch: what the writer's
/// incremental rewrites must always leave in the database.
fn layout(
    catalog: &Catalog,
    boundaries: Boundaries,
    id: &WorkspaceId,
    ws: &Workspace,
    into: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) {
    let mut runs: Vec<(Vec<u8>, Records)> = Vec::new();
    let members = ws
        .members()
        .map(|(user, member)| {
            let mut record = Vec::new();
            record::encode_member(&mut record, catalog, member, &[]);
            (user.to_string(), record)
        })
        .collect();
    runs.push((keys::member_chunk(id.as_str(), ""), members));
    for ty in ws.instance_types() {
        let instances = ws
            .instances_of(ty, None)
            .map(|(rid, instance)| {
                let mut record = Vec::new();
                record::encode_instance(&mut record, catalog, instance.parent.as_ref());
                (rid.to_string(), record)
            })
            .collect();
        runs.push((
            keys::instance_chunk(id.as_str(), catalog.type_name(ty), ""),
            instances,
        ));
    }
    for (head, records) in runs {
        let mut key = head.clone();
        let mut value = Vec::new();
        for (rid, record) in records {
            if boundaries.starts(rid.as_bytes()) {
                if !value.is_empty() {
                    into.insert(key, std::mem::take(&mut value));
                }
                key = [&head[..], rid.as_bytes()].concat();
            }
            chunks::push(&mut value, &rid, &record);
        }
        if !value.is_empty() {
            into.insert(key, value);
        }
    }
}

#[tokio::test]
async fn an_instance_whose_parent_type_the_catalog_lacks_keeps_its_record_through_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::built_in());
    {
        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        let boundaries = crate::store::open::prepare(&db).unwrap();
        db.insert(
            keys::workspace(&WorkspaceId::parse("acme").unwrap()),
            &b""[..],
        )
        .unwrap();
        // Destinations d00..d39, d07's parent of a type the catalog does not have.
        let head = keys::instance_chunk("acme", "destination", "");
        let (mut key, mut value) = (head.clone(), Vec::new());
        for n in 0..40 {
            let id = format!("d{n:02}");
            if boundaries.starts(id.as_bytes()) && !value.is_empty() {
                db.insert(&key, std::mem::take(&mut value)).unwrap();
            }
            if boundaries.starts(id.as_bytes()) {
                key = [&head[..], id.as_bytes()].concat();
            }
            let record: &[u8] = if n == 7 { b"gone_type\0p1" } else { b"" };
            chunks::push(&mut value, &id, record);
        }
        db.insert(&key, value).unwrap();
        db.flush().unwrap();
    }
    let stored = |dir: &std::path::Path| {
        let db = open_db(dir, &StoreConfig::default()).unwrap();
        db.scan_prefix(keys::INSTANCES)
            .values()
            .map(|value| value.unwrap().to_vec())
            .collect::<Vec<_>>()
            .concat()
    };
    let destination = catalog.type_id("destination").unwrap();
    let acme = WorkspaceId::parse("acme").unwrap();
    let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    assert!(
        store
            .load_report()
            .skipped
            .iter()
            .any(|note| note.contains("`d07`") && note.contains("gone_type"))
    );
    let (_, d07) = store
        .snapshot()
        .workspace(&acme)
        .unwrap()
        .instance_named(destination, "d07")
        .map(|(id, instance)| (id.clone(), instance.clone()))
        .unwrap();
    assert_eq!(d07.parent, None);
    // Every chunk of destinations rewritten: one registration next to each record.
    let source = catalog.type_id("source").unwrap();
    let mut commands = vec![Command::RegisterResource {
        workspace: acme.clone(),
        resource: (source, ResourceId::parse("s1").unwrap()),
        parent: None,
    }];
    commands.extend((0..40).map(|n| Command::RegisterResource {
        workspace: acme.clone(),
        resource: (
            destination,
            ResourceId::parse(&format!("d{n:02}x")).unwrap(),
        ),
        parent: Some(ResourceId::parse("s1").unwrap()),
    }));
    for result in store.write_all(commands).await.unwrap() {
        result.unwrap();
    }
    let state = store.snapshot();
    store.close();
    drop(store);
    let records = stored(dir.path());
    assert_eq!(
        records
            .windows(12)
            .filter(|w| *w == b"gone_type\0p1")
            .count(),
        1,
        "kept once"
    );
    let again = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    assert_eq!(again.snapshot().workspace(&acme), state.workspace(&acme));
    assert_eq!(
        again
            .snapshot()
            .workspace(&acme)
            .unwrap()
            .instances_of(destination, None)
            .count(),
        80
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After any sequence of writes, in groups of any size, the database holds
    /// exactly the chunks of the published state, and reopening it gives that state:
    /// whether each group is durable before the next is planned (through the store)
    /// or every group is planned before any is committed (as the planner runs ahead
    /// of the committer, to the extreme).
    #[test]
    fn chunks_rewritten_change_by_change_equal_the_state_laid_out_afresh(
        groups in proptest::collection::vec(
            proptest::collection::vec(command(&Catalog::built_in()), 1..40),
            1..6,
        ),
        ahead in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::built_in());
        let state = if ahead {
            plan_all_then_commit(dir.path(), &catalog, groups)
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let store =
                Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
            for group in groups {
                runtime.block_on(store.write_all(group)).unwrap();
            }
            let state = store.snapshot();
            store.close();
            state
        };

        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        let boundaries = crate::store::open::prepare(&db).unwrap();
        let mut expected = BTreeMap::new();
        for (id, ws) in state.workspaces.iter() {
            layout(&catalog, boundaries, &WorkspaceId::parse(id).unwrap(), ws, &mut expected);
        }
        let mut stored = BTreeMap::new();
        for prefix in [keys::MEMBERS, keys::INSTANCES] {
            for item in db.scan_prefix(prefix) {
                let (key, value) = item.unwrap();
                stored.insert(key.to_vec(), value.to_vec());
            }
        }
        prop_assert_eq!(stored, expected);
        drop(db);

        let again = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        let reloaded = again.snapshot();
        prop_assert_eq!(reloaded.workspaces.len(), state.workspaces.len());
        for (id, ws) in state.workspaces.iter() {
            prop_assert_eq!(reloaded.workspaces.get(id), Some(ws));
        }
    }
}
