//! The store's change log on disk, read back from the files alone.

use std::{
    fs::{self, OpenOptions},
    io::Write as _,
    path::Path,
    sync::Arc,
};

use super::lines;
use crate::{
    engine::Command,
    model::{Catalog, Membership, ProductSet, UserId, WorkspaceId},
    store::{
        CHANGE_LOG_DIR, Store, StoreConfig, StoreError,
        change_log::{files::segment_name, format::mark_group_end},
    },
};

/// What the change log holds: its files (name, bytes), and every line as (revision,
/// part, command).
struct Contents {
    files: Vec<(String, u64)>,
    bytes: u64,
    lines: Vec<(u64, u64, String)>,
}

fn contents(dir: &Path) -> Contents {
    let mut contents = Contents {
        files: Vec::new(),
        bytes: 0,
        lines: Vec::new(),
    };
    let mut names: Vec<String> = fs::read_dir(dir.join(CHANGE_LOG_DIR))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let data = fs::read(dir.join(CHANGE_LOG_DIR).join(&name)).unwrap();
        contents.bytes += data.len() as u64;
        for (i, line) in data.split_inclusive(|b| *b == b'\n').enumerate() {
            assert_eq!(line.last(), Some(&b'\n'));
            let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
            let (revision, part) = (
                entry["revision"].as_u64().unwrap(),
                entry["part"].as_u64().unwrap_or(0),
            );
            if i == 0 {
                assert_eq!(name, segment_name(revision), "named by its first line");
            }
            let command = entry["command"].as_str().unwrap().to_owned();
            contents.lines.push((revision, part, command));
        }
        contents.files.push((name, data.len() as u64));
    }
    contents
}

fn config(change_log_bytes: u64) -> StoreConfig {
    StoreConfig {
        change_log_bytes,
        ..StoreConfig::default()
    }
}

/// A workspace, then `members` memberships in it: one revision each.
fn commands(members: usize) -> Vec<Command> {
    let ws = WorkspaceId::parse("acme").unwrap();
    let mut commands = vec![Command::CreateWorkspace {
        workspace: ws.clone(),
        owner: UserId::parse("olivia").unwrap(),
        products: ProductSet::default(),
    }];
    commands.extend((0..members).map(|i| Command::SetMembership {
        workspace: ws.clone(),
        user: UserId::parse(&format!("user-{i:05}")).unwrap(),
        membership: Membership::Member,
        actor: None,
    }));
    commands
}

async fn write(dir: &Path, config: &StoreConfig, commands: Vec<Command>) -> u64 {
    let store = Store::open(dir, Arc::new(Catalog::built_in()), config).unwrap();
    for chunk in commands.chunks(100) {
        for result in store.write_all(chunk.to_vec()).await.unwrap() {
            result.unwrap();
        }
    }
    let revision = store.snapshot().revision;
    store.close();
    revision
}

fn revisions(log: &Contents) -> Vec<u64> {
    log.lines.iter().map(|(r, _, _)| *r).collect()
}

#[tokio::test]
async fn the_writer_keeps_the_newest_entries_within_the_budget_and_drops_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 << 10;
    let last = write(dir.path(), &config(budget), commands(2000)).await;
    assert_eq!(last, 2001);
    let log = contents(dir.path());
    assert!(log.bytes <= budget, "{} bytes", log.bytes);
    assert!(log.bytes > budget / 2, "{} bytes", log.bytes);
    assert!(log.files.len() > 1, "{:?}", log.files);
    let kept = revisions(&log);
    let oldest = kept[0];
    assert!(oldest > 1000, "oldest kept: {oldest}");
    assert_eq!(kept, (oldest..=last).collect::<Vec<_>>());
    assert_eq!(log.lines.last().unwrap().2, "set_membership");
}

#[tokio::test]
async fn a_budget_of_zero_logs_nothing_and_drops_what_was_logged() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &StoreConfig::default(), commands(10)).await;
    assert_eq!(contents(dir.path()).lines.len(), 11);
    write(dir.path(), &config(0), commands(20).split_off(11)).await;
    let log = contents(dir.path());
    assert!(log.lines.is_empty());
    assert!(log.files.is_empty());
}

/// Entries past the state that cannot be redone (a name the catalog lacks), or a
/// log that resumes after a gap, stop the open with the reason: serving without
/// writes the log says were made would be serving stale access.
#[tokio::test]
async fn entries_past_the_state_that_cannot_be_redone_stop_the_open() {
    let catalog = Arc::new(Catalog::built_in());
    for (entry, reason) in [
        (
            r#"{"op":"add_grant","workspace":"acme","user":"u","grant":{"role":"auditor","scope":"all"}}"#,
            "unknown role `auditor`",
        ),
        ("", "resumes after"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let last = write(dir.path(), &config(4 << 10), commands(3)).await;
        let revision = if entry.is_empty() { last + 2 } else { last + 1 };
        let line = format!(
            "{{\"revision\":{revision},\"part\":0,\"parts\":1,\"unix_millis\":0,\"command\":\"x\",\"changes\":[{entry}],\"end\":true}}\n"
        );
        let log = contents(dir.path());
        let (newest, _) = log.files.last().unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
            .unwrap();
        file.write_all(line.as_bytes()).unwrap();
        match Store::open(dir.path(), Arc::clone(&catalog), &config(4 << 10)) {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.contains(reason), "{message}");
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("opened"),
        }
    }
}

/// Opened with a budget of 0 after a crash, the log is still redone before it goes.
#[tokio::test]
async fn a_budget_of_zero_redoes_the_log_before_dropping_it() {
    let dir = tempfile::tempdir().unwrap();
    let last = write(dir.path(), &config(4 << 10), commands(3)).await;
    let mut group = lines(&Catalog::built_in(), last + 1, 0, "orphan", &[]).concat();
    mark_group_end(&mut group);
    let log = contents(dir.path());
    let (newest, _) = log.files.last().unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
        .unwrap();
    file.write_all(&group).unwrap();
    let store = Store::open(dir.path(), Arc::new(Catalog::built_in()), &config(0)).unwrap();
    assert_eq!(store.snapshot().revision, last + 1);
    store.close();
    assert!(contents(dir.path()).files.is_empty());
}

/// A role the catalog lacks in a group left unfinished (never acknowledged) is
/// cut off like any unfinished group: it does not stop the open.
#[tokio::test]
async fn an_unknown_name_in_an_unfinished_group_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let last = write(dir.path(), &config(4 << 10), commands(3)).await;
    let line = format!(
        "{{\"revision\":{},\"part\":0,\"parts\":1,\"unix_millis\":0,\"command\":\"x\",\"changes\":[{{\"op\":\"add_grant\",\"workspace\":\"acme\",\"user\":\"u\",\"grant\":{{\"role\":\"auditor\",\"scope\":\"all\"}}}}]}}\n",
        last + 1
    );
    let log = contents(dir.path());
    let (newest, _) = log.files.last().unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
        .unwrap();
    file.write_all(line.as_bytes()).unwrap();
    let store = Store::open(dir.path(), Arc::new(Catalog::built_in()), &config(4 << 10)).unwrap();
    assert_eq!(store.snapshot().revision, last);
    store.close();
    assert_eq!(
        revisions(&contents(dir.path())),
        (1..=last).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn entries_past_the_state_are_redone_at_open_and_what_cannot_follow_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 4 << 10;
    let last = write(dir.path(), &config(budget), commands(5)).await;
    // As if a crash had come between a group's log and its state: a whole group
    // of three entries in the last file; then, in a file of its own, a group left
    // unfinished (an entry, but not the line that ends the group) and a torn
    // line; and another file after them.
    let catalog = Catalog::built_in();
    let mut whole = Vec::new();
    for revision in last + 1..=last + 3 {
        whole.extend(lines(&catalog, revision, 0, "orphan", &[]).concat());
    }
    mark_group_end(&mut whole);
    let unfinished = lines(&catalog, last + 4, 0, "unfinished", &[]).concat();
    let log = contents(dir.path());
    let (newest, _) = log.files.last().unwrap();
    let path = dir.path().join(CHANGE_LOG_DIR);
    let mut file = OpenOptions::new()
        .append(true)
        .open(path.join(newest))
        .unwrap();
    file.write_all(&whole).unwrap();
    let mut own = unfinished;
    own.extend_from_slice(br#"{"revision":99,"part"#);
    fs::write(path.join(segment_name(last + 4)), own).unwrap();
    let later = lines(&catalog, last + 5, 0, "later", &[]).concat();
    fs::write(path.join(segment_name(last + 5)), later).unwrap();

    // The whole group is redone (the state reaches its revisions); what follows
    // it is cut, and the next write follows on.
    let after = write(dir.path(), &config(budget), commands(6).split_off(6)).await;
    assert_eq!(after, last + 4);
    let log = contents(dir.path());
    let lines: Vec<(u64, &str)> = log.lines.iter().map(|(r, _, c)| (*r, c.as_str())).collect();
    let mut expected = vec![(1, "create_workspace")];
    expected.extend((2..=last).map(|r| (r, "set_membership")));
    expected.extend((last + 1..=last + 3).map(|r| (r, "orphan")));
    expected.push((last + 4, "set_membership"));
    assert_eq!(lines, expected);
    assert!(!path.join(segment_name(last + 5)).exists());
}

/// Damage past the state that whole groups follow is not what a crash leaves:
/// cutting there would drop acknowledged writes, so the open stops. Damage in the
/// last group, even in its first line, is what a power loss leaves, and is cut.
#[tokio::test]
async fn damage_followed_by_whole_groups_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 4 << 10;
    let last = write(dir.path(), &config(budget), commands(3)).await;
    let catalog = Catalog::built_in();
    let mut tail = lines(&catalog, last + 1, 0, "first", &[]).concat();
    mark_group_end(&mut tail);
    tail.extend_from_slice(b"{\"revision\":\0\0\0\n");
    // The damage could be the start of the group after it, the last one, which a
    // power loss may leave half written; a group after that one was synced.
    for (revision, name) in [(last + 2, "second"), (last + 3, "third")] {
        let mut group = lines(&catalog, revision, 0, name, &[]).concat();
        mark_group_end(&mut group);
        tail.extend(group);
    }
    let log = contents(dir.path());
    let (newest, _) = log.files.last().unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
        .unwrap();
    file.write_all(&tail).unwrap();
    match Store::open(dir.path(), Arc::new(catalog.clone()), &config(budget)) {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("whole write groups follow"), "{message}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened"),
    }

    // A page never written reads back as zeros, without a newline: the last
    // group's first line runs into its second, then its end.
    let dir = tempfile::tempdir().unwrap();
    let last = write(dir.path(), &config(budget), commands(3)).await;
    let mut group = Vec::new();
    for revision in last + 1..=last + 2 {
        group.extend(lines(&catalog, revision, 0, "lost", &[]).concat());
    }
    mark_group_end(&mut group);
    let hole = group.iter().position(|b| *b == b'\n').unwrap() + 1;
    group[..hole].fill(0);
    let log = contents(dir.path());
    let (newest, _) = log.files.last().unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(CHANGE_LOG_DIR).join(newest))
        .unwrap();
    file.write_all(&group).unwrap();
    let store = Store::open(dir.path(), Arc::new(catalog), &config(budget)).unwrap();
    assert_eq!(store.snapshot().revision, last);
    store.close();
    assert_eq!(
        revisions(&contents(dir.path())),
        (1..=last).collect::<Vec<_>>()
    );
}
