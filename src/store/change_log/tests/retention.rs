//! What the change log keeps: the budget for replicas, the audit retention past it, the
//! cap over both, with entries dated in the past rather than waited for.

use std::{
    fs,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::grants;
use crate::{
    model::Catalog,
    store::change_log::{
        ChangeLog, GroupLines, Retention, files::segment_name, format::LINE_BYTES, times,
    },
};

const DAY: Duration = Duration::from_secs(86_400);

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

/// A time `age` ago, in milliseconds since the epoch.
fn ago(age: Duration) -> u64 {
    now_millis() - u64::try_from(age.as_millis()).unwrap()
}

/// A write group of one entry at `revision`, made at `unix_millis`.
fn group(revision: u64, unix_millis: u64) -> GroupLines {
    let catalog = Catalog::built_in();
    let mut group = GroupLines::default();
    group.push(
        &catalog,
        revision,
        u128::from(unix_millis),
        "grant",
        &grants(&catalog, 3),
    );
    group.end();
    group
}

/// Room for `groups` of the groups the tests write, whatever their revisions (up to
/// two digits, which make a group a byte longer than one).
fn room(groups: u64) -> u64 {
    groups * (group(1, now_millis()).bytes().len() as u64 + 1)
}

/// A budget of `groups` groups: its segments (an eighth of it) close after one group
/// each, so each group is a file of its own.
fn budget(groups: u64) -> Retention {
    Retention::budget(room(groups))
}

/// Appends the groups after the log's last revision (from `first`), one made at each
/// of `times`, trimming after each as the writer does.
fn write(log: &mut ChangeLog, first: u64, times: &[u64]) {
    for (revision, unix_millis) in (first..).zip(times) {
        log.append(&group(revision, *unix_millis)).unwrap();
        log.trim();
    }
}

/// The first revision of each segment file in `dir`, oldest first.
fn kept(dir: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.split('.').next().unwrap().parse().unwrap()
        })
        .collect();
    firsts.sort_unstable();
    firsts
}

#[test]
fn past_the_budget_segments_older_than_the_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let retention = budget(4).with_audit(30 * DAY, room(400));
    let mut log = ChangeLog::open(dir.path(), retention).unwrap();
    // Within the budget, old entries stay.
    write(&mut log, 1, &[ago(100 * DAY); 3]);
    assert_eq!(kept(dir.path()), [1, 2, 3]);
    // Past it, they go, oldest first, as long as they are older than the retention.
    write(&mut log, 4, &[ago(100 * DAY); 3]);
    assert_eq!(kept(dir.path()), [3, 4, 5, 6]);
    write(&mut log, 7, &[ago(DAY); 6]);
    assert_eq!(kept(dir.path()), (7..=12).collect::<Vec<_>>());
}

#[test]
fn past_the_budget_segments_within_the_retention_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let retention = budget(4).with_audit(30 * DAY, room(400));
    let mut log = ChangeLog::open(dir.path(), retention).unwrap();
    write(&mut log, 1, &[ago(29 * DAY), ago(DAY), ago(Duration::ZERO)]);
    write(&mut log, 4, &[now_millis(); 7]);
    assert_eq!(kept(dir.path()), (1..=10).collect::<Vec<_>>());

    // Without a retention the budget alone decides, however young the entries.
    let dir = tempfile::tempdir().unwrap();
    let mut log = ChangeLog::open(dir.path(), budget(4)).unwrap();
    write(&mut log, 1, &[now_millis(); 10]);
    assert_eq!(kept(dir.path()), [7, 8, 9, 10]);
}

#[test]
fn the_cap_wins_over_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let retention = budget(4).with_audit(30 * DAY, room(6));
    let mut log = ChangeLog::open(dir.path(), retention).unwrap();
    write(&mut log, 1, &[now_millis(); 9]);
    assert_eq!(kept(dir.path()), (4..=9).collect::<Vec<_>>());
    // A cap below the budget is the budget: replicas keep what they were promised.
    let dir = tempfile::tempdir().unwrap();
    let retention = budget(4).with_audit(30 * DAY, room(1));
    let mut log = ChangeLog::open(dir.path(), retention).unwrap();
    write(&mut log, 1, &[now_millis(); 9]);
    assert_eq!(kept(dir.path()), [6, 7, 8, 9]);
}

#[test]
fn the_segment_being_appended_to_is_never_deleted() {
    // Every group alone is past the budget and the cap, and older than the retention.
    for retention in [
        Retention::budget(1),
        Retention::budget(1).with_audit(DAY, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ChangeLog::open(dir.path(), retention).unwrap();
        for revision in 1..=3 {
            write(&mut log, revision, &[ago(100 * DAY)]);
            assert_eq!(kept(dir.path()), [revision]);
        }
        log.settle();
        assert_eq!(kept(dir.path()), [3]);
    }
}

#[test]
fn a_reopened_log_learns_when_its_segments_were_written_from_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let long = budget(4).with_audit(1000 * DAY, room(100));
    let mut log = ChangeLog::open(dir.path(), long).unwrap();
    write(&mut log, 1, &[ago(100 * DAY); 4]);
    write(&mut log, 5, &[ago(DAY); 5]);
    drop(log);
    // A torn line after the last whole one, as a crash leaves it, is passed over.
    let last = dir.path().join(segment_name(9));
    let mut bytes = fs::read(&last).unwrap();
    bytes.extend_from_slice(br#"{"revision":10,"part":0,"parts":1,"unix_millis":1"#);
    fs::write(&last, bytes).unwrap();

    // Opened with a shorter retention, before any write: past the budget of 4, the
    // old segments go and the young ones stay, which only their files' times tell.
    let retention = budget(4).with_audit(30 * DAY, room(100));
    let mut log = ChangeLog::open(dir.path(), retention).unwrap();
    log.settle();
    assert_eq!(kept(dir.path()), (5..=9).collect::<Vec<_>>());
}

#[test]
fn a_segment_s_newest_time_is_its_last_whole_line_s_and_its_oldest_its_first_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(segment_name(1));
    let catalog = Catalog::built_in();
    // Entries of many lines, and a clock that stepped back: the file says the time of
    // its last line, a group the time of its newest entry.
    let mut lines = GroupLines::default();
    lines.push(&catalog, 1, 1_000, "import", &grants(&catalog, 200));
    lines.push(&catalog, 2, 3_000, "import", &grants(&catalog, 200));
    lines.push(&catalog, 3, 2_000, "grant", &grants(&catalog, 1));
    lines.end();
    fs::write(&path, lines.bytes()).unwrap();
    assert_eq!(times::newest_unix_millis(&path).unwrap(), 2_000);
    assert_eq!(times::oldest_unix_millis(&path).unwrap(), 1_000);
    assert_eq!(lines.newest_unix_millis(), 3_000);
    // A torn write longer than a read from the end is passed over.
    let mut torn = lines.bytes().to_vec();
    torn.extend(vec![b'x'; 10 * LINE_BYTES]);
    fs::write(&path, torn).unwrap();
    assert_eq!(times::newest_unix_millis(&path).unwrap(), 2_000);

    let mut one = GroupLines::default();
    one.push(&catalog, 1, 7_000, "grant", &grants(&catalog, 1));
    one.end();
    fs::write(&path, one.bytes()).unwrap();
    assert_eq!(times::newest_unix_millis(&path).unwrap(), 7_000);
    fs::write(&path, &one.bytes()[..one.bytes().len() - 1]).unwrap();
    assert_eq!(times::newest_unix_millis(&path).unwrap(), 0);
    fs::write(&path, b"").unwrap();
    assert_eq!(times::newest_unix_millis(&path).unwrap(), 0);
    assert_eq!(times::oldest_unix_millis(&path).unwrap(), 0);
}
