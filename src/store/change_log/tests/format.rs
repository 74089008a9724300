//! Entries written as lines and read back.

use super::{grants, lines};
use crate::{
    model::{
        Catalog, Change, Grant, Membership, ProductSet, ResourceId, Scope, UserId, WorkspaceId,
    },
    store::change_log::format::{LINE_BYTES, ReadError, line_position, read_line},
};

/// Every kind of change, in an entry long enough to take several lines, reads back
/// as it was written: what the redo at open relies on.
#[test]
fn every_change_reads_back_as_written() {
    let catalog = Catalog::built_in();
    let ws = WorkspaceId::parse("acme").unwrap();
    let sam = UserId::parse("sam").unwrap();
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let ios = (source, ResourceId::parse("ios").unwrap());
    let products = ProductSet::default().with(catalog.product_id("personas").unwrap());
    let mut changes = vec![
        Change::CreateWorkspace {
            workspace: ws.clone(),
            products,
        },
        Change::SetProducts {
            workspace: ws.clone(),
            products: ProductSet::default(),
        },
        Change::SetMembership {
            workspace: ws.clone(),
            user: sam.clone(),
            membership: Membership::Owner,
        },
        Change::SetMembership {
            workspace: ws.clone(),
            user: sam.clone(),
            membership: Membership::Member,
        },
        Change::RegisterResource {
            workspace: ws.clone(),
            resource: ios.clone(),
            parent: None,
        },
        Change::RegisterResource {
            workspace: ws.clone(),
            resource: (destination, ResourceId::parse("amp").unwrap()),
            parent: Some(ios.clone()),
        },
        Change::AddGrant {
            workspace: ws.clone(),
            user: sam.clone(),
            grant: Grant {
                role: catalog.role_id("source_admin").unwrap(),
                scope: Scope::Instance(ios.0, ios.1.clone()),
            },
        },
        Change::RemoveGrant {
            workspace: ws.clone(),
            user: sam.clone(),
            grant: Grant {
                role: catalog.role_id("warehouse_read").unwrap(),
                scope: Scope::All,
            },
        },
        Change::DeleteResource {
            workspace: ws.clone(),
            resource: ios,
        },
        Change::RemoveMember {
            workspace: ws.clone(),
            user: sam,
        },
        Change::DeleteWorkspace { workspace: ws },
    ];
    changes.extend(grants(&catalog, 300));
    let lines = lines(&catalog, 7, 1000, "batch", &changes);
    assert!(lines.len() > 2, "{} lines", lines.len());
    let mut read = Vec::new();
    for (part, line) in lines.iter().enumerate() {
        let line = read_line(&catalog, line).unwrap();
        assert_eq!((line.revision, line.part), (7, part as u64));
        assert_eq!(line.parts, lines.len() as u64);
        read.extend(line.changes);
    }
    assert_eq!(read, changes);
}

/// A name the catalog does not have, or a line that is not an entry, is an error
/// that says what is wrong, not a change guessed at.
#[test]
fn a_line_that_cannot_be_read_back_says_why() {
    let catalog = Catalog::built_in();
    let line = br#"{"revision":3,"part":0,"parts":1,"changes":[{"op":"add_grant","workspace":"a","user":"u","grant":{"role":"auditor","scope":"all"}}]}"#;
    let err = read_line(&catalog, line).unwrap_err();
    assert!(
        matches!(&err, ReadError::Unknown(why) if why.contains("unknown role `auditor`")),
        "{err:?}"
    );
    let err = read_line(&catalog, b"{\"revision\":3,\"pa\0\0\0}\n").unwrap_err();
    assert!(matches!(err, ReadError::Malformed(_)), "{err:?}");
}

#[test]
fn entries_name_everything_by_name() {
    let catalog = Catalog::built_in();
    let ws = WorkspaceId::parse("acme").unwrap();
    let source = catalog.type_id("source").unwrap();
    let changes = vec![
        Change::AddGrant {
            workspace: ws.clone(),
            user: UserId::parse("sam").unwrap(),
            grant: Grant {
                role: catalog.role_id("source_admin").unwrap(),
                scope: Scope::Instance(source, ResourceId::parse("ios").unwrap()),
            },
        },
        Change::AddGrant {
            workspace: ws.clone(),
            user: UserId::parse("ria").unwrap(),
            grant: Grant {
                role: catalog.role_id("warehouse_read").unwrap(),
                scope: Scope::All,
            },
        },
    ];
    let lines = lines(&catalog, 7, 1000, "grant", &changes);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        String::from_utf8(lines[0].clone()).unwrap(),
        concat!(
            r#"{"revision":7,"part":0,"parts":1,"unix_millis":1000,"command":"grant","changes":["#,
            r#"{"op":"add_grant","workspace":"acme","user":"sam","grant":{"role":"source_admin","scope":{"type":"source","id":"ios"}}},"#,
            r#"{"op":"add_grant","workspace":"acme","user":"ria","grant":{"role":"warehouse_read","scope":"all"}}]}"#,
            "\n"
        )
    );
}

#[test]
fn a_large_entry_is_split_into_lines_that_are_each_json_and_together_hold_every_change() {
    let catalog = Catalog::built_in();
    let changes = grants(&catalog, 1000);
    let lines = lines(&catalog, 42, 1000, "batch", &changes);
    assert!(lines.len() > 5, "{} lines", lines.len());
    let mut users = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.len() <= LINE_BYTES + 256,
            "line {i}: {} bytes",
            line.len()
        );
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(entry["revision"], 42);
        assert_eq!(entry["part"], i);
        assert_eq!(entry["parts"], lines.len());
        assert_eq!(entry["command"], "batch");
        for change in entry["changes"].as_array().unwrap() {
            users.push(change["user"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..1000).map(|i| format!("user-{i:04}")).collect();
    assert_eq!(users, expected);
}

#[test]
fn an_entry_without_changes_is_one_line() {
    let lines = lines(&Catalog::built_in(), 1, 2, "batch", &[]);
    assert_eq!(lines.len(), 1);
    let entry: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    assert_eq!(entry["changes"], serde_json::json!([]));
}

#[test]
fn a_line_names_its_revision_and_part_at_its_start() {
    let catalog = Catalog::built_in();
    let lines = lines(&catalog, 77, 1000, "grant", &grants(&catalog, 1000));
    for (part, line) in lines.iter().enumerate() {
        assert_eq!(line_position(line), Some((77, part as u64)));
    }
    assert_eq!(
        line_position(br#"{"revision":5,"unix_millis":1}"#),
        Some((5, 0))
    );
    assert_eq!(line_position(br#"{"revision":x}"#), None);
    assert_eq!(line_position(b"torn"), None);
}
