//! Each kind of violation planted in a real database, written by the record encoders, and
//! found where it was planted; a database as accessd writes it holds none.

use std::{path::Path, sync::Arc};

use super::{Severity, Verified, VerifyError, verify};
use crate::{
    engine::Command,
    model::{Catalog, Grant, Membership, ProductSet, ResourceId, Scope, UserId, WorkspaceId},
    store::{
        CHANGE_LOG_DIR, Store, StoreConfig,
        open::open_db,
        record::{chunks, keys},
    },
};

/// Workspace `acme` (owner olivia; sam holding `source_admin` on source `ios` and
/// `warehouse_read` on all; destination `amp` under `ios`) and `big`, whose `members`
/// members each hold a grant on its source: past the size at which a workspace indexes
/// its grant holders.
async fn written(dir: &Path, members: usize) {
    let catalog = Catalog::built_in();
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let store = Store::open(dir, Arc::new(catalog.clone()), &StoreConfig::default()).unwrap();
    let id = |s: &str| ResourceId::parse(s).unwrap();
    let user = |s: &str| UserId::parse(s).unwrap();
    let mut commands = Vec::new();
    for ws in ["acme", "big"] {
        let workspace = WorkspaceId::parse(ws).unwrap();
        commands.push(Command::CreateWorkspace {
            workspace: workspace.clone(),
            owner: user("olivia"),
            products: ProductSet::default(),
        });
        commands.push(Command::RegisterResource {
            workspace: workspace.clone(),
            resource: (source, id("ios")),
            parent: None,
        });
    }
    commands.push(Command::RegisterResource {
        workspace: WorkspaceId::parse("acme").unwrap(),
        resource: (destination, id("amp")),
        parent: Some(id("ios")),
    });
    let mut grants = vec![
        ("acme", "sam".to_owned(), "source_admin", Some("ios")),
        ("acme", "sam".to_owned(), "warehouse_read", None),
    ];
    grants
        .extend((0..members).map(|n| ("big", format!("user-{n:04}"), "source_read", Some("ios"))));
    for (ws, member, role, on) in grants {
        let workspace = WorkspaceId::parse(ws).unwrap();
        commands.push(Command::SetMembership {
            workspace: workspace.clone(),
            user: user(&member),
            membership: Membership::Member,
            actor: None,
        });
        commands.push(Command::Grant {
            workspace,
            user: user(&member),
            grant: Grant {
                role: catalog.role_id(role).unwrap(),
                scope: on.map_or(Scope::All, |on| Scope::Instance(source, id(on))),
            },
            actor: None,
        });
    }
    // The big workspace in one write group, then acme's writes one group each, so that
    // the log's last lines are single groups.
    let (acme, big): (Vec<Command>, Vec<Command>) = commands
        .into_iter()
        .partition(|command| command.workspace().as_str() == "acme");
    for outcome in store.write_all(big).await.unwrap() {
        outcome.unwrap();
    }
    for command in acme {
        store.write(command).await.unwrap().unwrap();
    }
    store.close();
}

fn checked(dir: &Path) -> Verified {
    verify(dir, &Catalog::built_in()).unwrap()
}

/// The violations found, as `place: problem`.
fn violations(verified: &Verified) -> Vec<String> {
    verified
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Violation)
        .map(|f| format!("{}: {}", f.place, f.problem))
        .collect()
}

fn notes(verified: &Verified) -> Vec<String> {
    verified
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Note)
        .map(|f| format!("{}: {}", f.place, f.problem))
        .collect()
}

/// Asserts that exactly one violation was found, and that it says `says`.
fn found_one(verified: &Verified, says: &str) {
    let found = violations(verified);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains(says), "{found:#?}");
}

/// Rewrites record `id` of the chunks under `prefix` with `record`, wherever it is.
fn rewrite(db: &sled::Db, prefix: &[u8], id: &str, record: &[u8]) {
    for item in db.scan_prefix(prefix) {
        let (key, value) = item.unwrap();
        let records: Vec<(Vec<u8>, Vec<u8>)> = chunks::records(&value)
            .map(|r| {
                let (i, r) = r.unwrap();
                (i.to_vec(), r.to_vec())
            })
            .collect();
        if records.iter().any(|(i, _)| i == id.as_bytes()) {
            let mut value = Vec::new();
            for (i, r) in records {
                let r = if i == id.as_bytes() {
                    record.to_vec()
                } else {
                    r
                };
                chunks::push(&mut value, std::str::from_utf8(&i).unwrap(), &r);
            }
            db.insert(key, value).unwrap();
            return;
        }
    }
    panic!("no record `{id}`");
}

/// Opens the raw database of `dir`, lets `plant` change it, and flushes.
fn planted(dir: &Path, plant: impl FnOnce(&sled::Db)) {
    let db = open_db(dir, &StoreConfig::default()).unwrap();
    plant(&db);
    db.flush().unwrap();
}

#[tokio::test]
async fn a_database_as_accessd_writes_it_holds_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 300).await;
    let verified = checked(dir.path());
    assert_eq!(violations(&verified), Vec::<String>::new());
    assert_eq!(notes(&verified), Vec::<String>::new());
    // sam's second membership changes nothing and takes no revision.
    assert_eq!(verified.revision, 5 + 3 + 2 * 300);
    assert_eq!(verified.workspaces, 2);
    assert_eq!(verified.members, 2 + 1 + 300);
    assert_eq!(verified.instances, 3);
    assert_eq!(verified.grants, 2 + 300);
    assert_eq!(verified.change_log.first_revision, Some(1));
    assert_eq!(verified.change_log.last_revision, Some(verified.revision));
    assert!(verified.history_id.is_some());
}

#[tokio::test]
async fn a_grant_on_an_instance_that_is_not_registered_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    planted(dir.path(), |db| {
        rewrite(
            db,
            &keys::member_chunk("acme", ""),
            "sam",
            b"member\nsource_admin\0isource\0ghost",
        );
    });
    found_one(
        &checked(dir.path()),
        "workspace `acme`, member `sam`: grant of `source_admin` on `source:ghost`, which is \
         not registered",
    );
}

#[tokio::test]
async fn an_instance_whose_parent_is_not_registered_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    planted(dir.path(), |db| {
        rewrite(
            db,
            &keys::instance_chunk("acme", "destination", ""),
            "amp",
            b"source\0ghost",
        );
    });
    found_one(
        &checked(dir.path()),
        "instance `destination:amp` names its parent `source:ghost`, which is not registered",
    );
}

#[tokio::test]
async fn a_workspace_without_an_owner_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    planted(dir.path(), |db| {
        rewrite(db, &keys::member_chunk("acme", ""), "olivia", b"member");
    });
    found_one(&checked(dir.path()), "workspace `acme`: no owner");
}

#[tokio::test]
async fn records_of_a_workspace_without_its_record_are_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    planted(dir.path(), |db| {
        db.remove(keys::workspace(&WorkspaceId::parse("acme").unwrap()))
            .unwrap();
    });
    let found = violations(&checked(dir.path()));
    assert!(
        found.contains(&"workspace `acme`: instance records, but no workspace record".to_owned()),
        "{found:#?}"
    );
    assert!(
        found.contains(&"workspace `acme`: member records, but no workspace record".to_owned()),
        "{found:#?}"
    );
}

#[tokio::test]
async fn records_out_of_order_or_out_of_their_chunk_are_violations() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    planted(dir.path(), |db| {
        let boundaries =
            chunks::Boundaries::decode(&db.get(keys::CHUNK_BOUNDARIES).unwrap().unwrap()).unwrap();
        // Ids in the head chunk must not start a chunk: two that do not, the wrong way
        // round, and then one that does.
        let mut plain = (0..)
            .map(|n| format!("wh-{n}"))
            .filter(|id| !boundaries.starts(id.as_bytes()));
        let (a, b) = (plain.next().unwrap(), plain.next().unwrap());
        let starting = (0..)
            .map(|n| format!("wh-{n}"))
            .find(|id| boundaries.starts(id.as_bytes()))
            .unwrap();
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        let mut value = Vec::new();
        chunks::push(&mut value, &high, b"");
        chunks::push(&mut value, &low, b"");
        db.insert(keys::instance_chunk("acme", "warehouse", ""), value)
            .unwrap();
        let mut value = Vec::new();
        chunks::push(&mut value, &starting, b"");
        db.insert(keys::instance_chunk("acme", "tracking_plan", ""), value)
            .unwrap();
    });
    let found = violations(&checked(dir.path()));
    assert!(
        found.iter().any(|v| v.contains("out of order or twice")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|v| v.contains("not where the chunk boundaries put it")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|v| v.contains("start-up would refuse it")),
        "{found:#?}"
    );
}

#[tokio::test]
async fn missing_single_records_and_foreign_keys_are_violations() {
    type Plant = fn(&sled::Db);
    let cases: [(Plant, &str); 6] = [
        (
            |db| drop(db.remove(keys::FORMAT_VERSION).unwrap()),
            "key `v`: missing",
        ),
        (
            |db| drop(db.remove(keys::REVISION).unwrap()),
            "key `r`: missing",
        ),
        (
            |db| drop(db.remove(keys::HISTORY).unwrap()),
            "key `h`: missing",
        ),
        (
            |db| {
                drop(
                    db.insert(keys::FORMAT_VERSION, &7_u64.to_be_bytes()[..])
                        .unwrap(),
                )
            },
            "format 7",
        ),
        (
            |db| drop(db.insert(b"x\0old", &b""[..]).unwrap()),
            "key `x\\x00old`: a key of no kind this format has",
        ),
        (
            |db| drop(db.insert(keys::BOOTSTRAPPING, &b""[..]).unwrap()),
            "bootstrap was interrupted",
        ),
    ];
    for (plant, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path(), 0).await;
        planted(dir.path(), plant);
        let verified = checked(dir.path());
        // A missing revision also leaves the log ahead of the state.
        let found = violations(&verified);
        assert!(found.iter().any(|v| v.contains(says)), "{says}: {found:#?}");
        assert!(found.len() <= 2, "{says}: {found:#?}");
    }
}

/// The change log's only segment and its lines.
fn log_lines(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let log = dir.join(CHANGE_LOG_DIR);
    let segment = std::fs::read_dir(&log)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&segment).unwrap();
    (segment, text.lines().map(str::to_owned).collect())
}

/// `line` as revision `revision`.
fn renumbered(line: &str, revision: u64) -> String {
    let rest = line.split_once(",\"part\"").unwrap().1;
    format!("{{\"revision\":{revision},\"part\"{rest}")
}

#[tokio::test]
async fn the_change_log_against_the_state_gaps_redo_and_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    let (segment, lines) = log_lines(dir.path());
    let last = lines.last().unwrap().clone();
    let revision = checked(dir.path()).revision;
    let write = |lines: &[String], tail: &str| {
        std::fs::write(&segment, lines.join("\n") + "\n" + tail).unwrap();
    };

    // A whole group past the state: redone at the next open.
    let mut ahead = lines.clone();
    ahead.push(renumbered(&last, revision + 1));
    write(&ahead, "");
    let verified = checked(dir.path());
    assert_eq!(violations(&verified), Vec::<String>::new());
    assert!(
        notes(&verified)
            .iter()
            .any(|n| n.contains("the next open redoes them")),
        "{:#?}",
        notes(&verified)
    );

    // A torn line at the end: cut at the next open.
    write(&lines, &last[..last.len() / 2]);
    let verified = checked(dir.path());
    assert_eq!(violations(&verified), Vec::<String>::new());
    assert!(
        notes(&verified)
            .iter()
            .any(|n| n.contains("line without its newline")),
        "{:#?}",
        notes(&verified)
    );

    // A gap: a revision missing from the log.
    let mut gap = lines.clone();
    gap.push(renumbered(&last, revision + 2));
    write(&gap, "");
    found_one(
        &checked(dir.path()),
        "a gap, an overlap or lines out of order",
    );

    // The state ahead of its log.
    write(&lines[..lines.len() - 1], "");
    found_one(&checked(dir.path()), "ahead of the log's last write group");

    // A garbled line with lines after it.
    let mut garbled = lines.clone();
    garbled.insert(1, "{\"revision\":".to_owned());
    write(&garbled, "");
    found_one(&checked(dir.path()), "a garbled line");
}

#[tokio::test]
async fn a_database_a_process_holds_open_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 0).await;
    let store = Store::open(
        dir.path(),
        Arc::new(Catalog::built_in()),
        &StoreConfig::default(),
    )
    .unwrap();
    // sled's lock is per process: a second handle in this one waits, then fails alike.
    match verify(dir.path(), &Catalog::built_in()) {
        Err(VerifyError::Locked(_)) => {}
        other => panic!("{other:?}"),
    }
    store.close();
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        verify(empty.path(), &Catalog::built_in()),
        Err(VerifyError::NoDatabase(_))
    ));
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "nothing created"
    );
}
