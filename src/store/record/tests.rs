//! Every kind of record reads back as it was written.

use proptest::prelude::*;

use super::{chunks::Boundaries, *};
use crate::model::{
    Catalog, Grant, InstanceKey, Membership, ProductSet, ResourceId, Scope, TypeId, WorkspaceId,
    access::Member,
};

/// An id as `parse` accepts them: printable ASCII, never a separator.
fn id() -> impl Strategy<Value = String> {
    "[!-~]{1,24}"
}

fn type_id(catalog: &Catalog) -> impl Strategy<Value = TypeId> + use<> {
    let types: Vec<TypeId> = catalog.resource_types().map(|(id, _)| id).collect();
    proptest::sample::select(types)
}

fn instance_key(catalog: &Catalog) -> impl Strategy<Value = InstanceKey> + use<> {
    (type_id(catalog), id()).prop_map(|(ty, id)| (ty, ResourceId::parse(&id).unwrap()))
}

fn grant(catalog: &Catalog) -> impl Strategy<Value = Grant> + use<> {
    let roles: Vec<_> = catalog.roles().map(|(id, _)| id).collect();
    (
        proptest::sample::select(roles),
        proptest::option::of(instance_key(catalog)),
    )
        .prop_map(|(role, on)| Grant {
            role,
            scope: on.map_or(Scope::All, |(ty, id)| Scope::Instance(ty, id)),
        })
}

fn member(catalog: &Catalog) -> impl Strategy<Value = Member> + use<> {
    (
        any::<bool>(),
        proptest::collection::btree_set(grant(catalog), 0..12),
    )
        .prop_map(|(owner, grants)| Member {
            membership: if owner {
                Membership::Owner
            } else {
                Membership::Member
            },
            grants: grants.into_iter().collect(),
        })
}

/// Decodes a grant line by `catalog`'s names.
fn resolve_grant(catalog: &Catalog, line: &[u8]) -> Grant {
    let stored = decode_grant(line).unwrap();
    Grant {
        role: catalog.role_id(stored.role).unwrap(),
        scope: match stored.scope {
            ScopeRecord::All => Scope::All,
            ScopeRecord::Instance { type_name, id } => Scope::Instance(
                catalog.type_id(type_name).unwrap(),
                ResourceId::parse(id).unwrap(),
            ),
        },
    }
}

proptest! {
    #[test]
    fn counters_and_chunk_boundaries_read_back(value in any::<u64>(), seed in any::<u64>(), period in 1..u64::MAX) {
        prop_assert_eq!(decode_u64(&encode_u64(value), "revision").unwrap(), value);
        let boundaries = Boundaries::new(seed, period);
        prop_assert_eq!(Boundaries::decode(&boundaries.encode()), Some(boundaries));
    }

    #[test]
    fn a_workspace_record_reads_back_as_its_products(picks in proptest::collection::vec(any::<bool>(), 8)) {
        let catalog = Catalog::built_in();
        let products = catalog
            .products()
            .zip(picks.iter().cycle())
            .filter(|(_, picked)| **picked)
            .fold(ProductSet::default(), |set, ((id, _), _)| set.with(id));
        let value = encode_products(&catalog, products);
        let read = decode_products(&value)
            .unwrap()
            .fold(ProductSet::default(), |set, name| set.with(catalog.product_id(name).unwrap()));
        prop_assert_eq!(read, products);
    }

    #[test]
    fn a_member_record_reads_back_with_its_grants_then_its_retained_lines(
        member in member(&Catalog::built_in()),
        retained in proptest::collection::vec("[a-z_]{1,12}", 0..3),
    ) {
        let catalog = Catalog::built_in();
        // Lines of roles the catalog does not have, as a record keeps them verbatim.
        let retained: Vec<Vec<u8>> = retained
            .iter()
            .map(|role| [b"gone_", role.as_bytes(), b"\0a"].concat())
            .collect();
        let mut value = Vec::new();
        encode_member(&mut value, &catalog, &member, &retained);
        let record = decode_member(&value).unwrap();
        prop_assert_eq!(record.membership, member.membership);
        prop_assert_eq!(record.grant_count(), member.grants.len() + retained.len());
        let lines: Vec<&[u8]> = record.grant_lines().collect();
        let (grants, kept) = lines.split_at(member.grants.len());
        let grants: Vec<Grant> = grants.iter().map(|line| resolve_grant(&catalog, line)).collect();
        prop_assert_eq!(&grants[..], &member.grants[..]);
        prop_assert_eq!(kept.to_vec(), retained.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn an_instance_record_reads_back_as_its_parent(parent in proptest::option::of(instance_key(&Catalog::built_in()))) {
        let catalog = Catalog::built_in();
        let mut value = Vec::new();
        encode_instance(&mut value, &catalog, parent.as_ref());
        let read = decode_instance(&value).unwrap().map(|(type_name, id)| {
            (catalog.type_id(type_name).unwrap(), ResourceId::parse(id).unwrap())
        });
        prop_assert_eq!(read, parent);
    }

    #[test]
    fn a_chunk_reads_back_as_its_records(records in proptest::collection::vec((id(), "[ -~\n\0]{0,40}"), 0..20)) {
        prop_assume!(!records.is_empty(), "an empty chunk is never stored: its key is removed");
        let mut value = Vec::new();
        for (id, record) in &records {
            chunks::push(&mut value, id, record.as_bytes());
        }
        let read: Vec<(String, String)> = chunks::records(&value)
            .map(|record| {
                let (id, record) = record.unwrap();
                (text(id).unwrap().to_owned(), text(record).unwrap().to_owned())
            })
            .collect();
        prop_assert_eq!(read, records);
    }

    #[test]
    fn keys_read_back_as_the_ids_they_name(ws in id(), type_name in "[a-z_]{1,16}", first in proptest::option::of(id())) {
        let first = first.unwrap_or_default();
        let workspace = WorkspaceId::parse(&ws).unwrap();
        let key = keys::workspace(&workspace);
        prop_assert_eq!(keys::decode_workspace(&key).unwrap(), ws.as_bytes());
        let key = keys::member_chunk(&ws, &first);
        prop_assert_eq!(keys::decode_member_chunk(&key).unwrap(), (ws.as_bytes(), first.as_bytes()));
        prop_assert!(key.starts_with(&keys::in_workspace(keys::MEMBERS, &workspace)));
        let key = keys::instance_chunk(&ws, &type_name, &first);
        prop_assert_eq!(
            keys::decode_instance_chunk(&key).unwrap(),
            keys::InstanceChunkKey {
                workspace: ws.as_bytes(),
                type_name: type_name.as_bytes(),
                first: first.as_bytes(),
            }
        );
        prop_assert!(key.starts_with(&keys::in_workspace(keys::INSTANCES, &workspace)));
        prop_assert_eq!(keys::workspace_of(&key, keys::INSTANCES), Some(ws.as_bytes()));
    }
}

#[test]
fn records_that_are_not_of_the_format_are_refused() {
    assert!(decode_u64(b"1234567", "revision").is_err());
    assert!(decode_member(b"guest").is_err());
    assert!(decode_member(b"member\nrole\0a").is_ok());
    for line in [
        &b"role"[..],
        b"role\0b",
        b"role\0a\0x",
        b"role\0xsource\0s1",
        b"role\0isource\0s1\0more",
        b"\xff\0a",
    ] {
        assert!(decode_grant(line).is_err(), "{line:?}");
    }
    assert!(decode_instance(b"source").is_err());
    assert!(decode_instance(b"source\0s1\0more").is_err());
    assert_eq!(decode_instance(b"").unwrap(), None);
    assert!(keys::decode_member_chunk(b"M\0ws").is_err());
    assert!(keys::decode_instance_chunk(b"I\0ws\0type").is_err());
}
