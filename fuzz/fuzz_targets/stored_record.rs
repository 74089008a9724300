//! The stored-record decoders: every key, value and chunk decoder over arbitrary bytes
//! never panics, and what decodes encodes back to the same bytes.
#![no_main]

use accessd::{
    fuzzing::record::{
        ScopeRecord, chunks, decode_grant, decode_instance, decode_member, decode_products,
        decode_u64, encode_instance, encode_member, encode_u64, keys,
    },
    model::{Grant, ResourceId, Scope, WorkspaceId, access::Member},
};
use accessd_fuzz::CATALOG;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    keys_round_trip(bytes);
    values_round_trip(bytes);
    chunks_round_trip(bytes);
});

fn keys_round_trip(bytes: &[u8]) {
    let _ = keys::parts(bytes, b"");
    let _ = keys::workspace_of(bytes, keys::MEMBERS);
    if let Ok(ws) = keys::decode_workspace(bytes)
        && let Some(ws) = std::str::from_utf8(ws)
            .ok()
            .and_then(|ws| WorkspaceId::parse(ws).ok())
    {
        assert_eq!(keys::workspace(&ws), bytes);
    }
    if let Ok((ws, first)) = keys::decode_member_chunk(bytes)
        && let (Ok(ws), Ok(first)) = (std::str::from_utf8(ws), std::str::from_utf8(first))
    {
        assert_eq!(keys::member_chunk(ws, first), bytes);
    }
    if let Ok(key) = keys::decode_instance_chunk(bytes) {
        let text = |b| std::str::from_utf8(b).ok();
        if let (Some(ws), Some(ty), Some(first)) =
            (text(key.workspace), text(key.type_name), text(key.first))
        {
            assert_eq!(keys::instance_chunk(ws, ty, first), bytes);
        }
    }
}

fn values_round_trip(bytes: &[u8]) {
    let catalog = &*CATALOG;
    if let Ok(value) = decode_u64(bytes, "a counter") {
        assert_eq!(encode_u64(value), bytes);
    }
    if let Some(boundaries) = chunks::Boundaries::decode(bytes) {
        assert_eq!(boundaries.encode(), bytes);
    }
    if let Ok(names) = decode_products(bytes) {
        names.for_each(drop);
    }
    if let Ok(record) = decode_member(bytes) {
        let count = record.grant_count();
        let lines: Vec<&[u8]> = record.grant_lines().collect();
        assert_eq!(lines.len(), count);
        // Grants by names the catalog knows, as the loader resolves them.
        let grants: Option<Vec<Grant>> = lines
            .iter()
            .map(|line| {
                let stored = decode_grant(line).ok()?;
                let role = catalog.role_id(stored.role)?;
                let scope = match stored.scope {
                    ScopeRecord::All => Scope::All,
                    ScopeRecord::Instance { type_name, id } => {
                        Scope::Instance(catalog.type_id(type_name)?, ResourceId::parse(id).ok()?)
                    }
                };
                Some(Grant { role, scope })
            })
            .collect();
        if let Some(grants) = grants {
            let member = Member {
                membership: record.membership,
                grants: grants.into_boxed_slice(),
            };
            let mut value = Vec::new();
            encode_member(&mut value, catalog, &member, &[]);
            assert_eq!(value, bytes);
        }
    }
    let _ = decode_grant(bytes);
    if let Ok(parent) = decode_instance(bytes) {
        let parent = match parent {
            None => None,
            Some((ty, id)) => match (catalog.type_id(ty), ResourceId::parse(id)) {
                (Some(ty), Ok(id)) => Some((ty, id)),
                _ => return,
            },
        };
        let mut value = Vec::new();
        encode_instance(&mut value, catalog, parent.as_ref());
        assert_eq!(value, bytes);
    }
}

fn chunks_round_trip(bytes: &[u8]) {
    let records: Option<Vec<(&[u8], &[u8])>> = chunks::records(bytes).collect();
    let Some(records) = records else {
        return;
    };
    let mut value = Vec::new();
    for (id, record) in records {
        let Ok(id) = std::str::from_utf8(id) else {
            return;
        };
        chunks::push(&mut value, id, record);
    }
    assert_eq!(value, bytes);
}
