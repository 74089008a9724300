//! The change log's line reader: `read_line` and `line_position` over arbitrary bytes
//! never panic, and a line that reads writes back (in one or more lines) as the same
//! entry.
#![no_main]

use accessd::fuzzing::change_log::{Author, GroupLines, line_position, read_line};
use accessd_fuzz::CATALOG;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let catalog = &*CATALOG;
    let position = line_position(line);
    let Ok(read) = read_line(catalog, line) else {
        return;
    };
    if let Some((revision, _)) = position {
        assert_eq!(
            revision, read.revision,
            "line_position and read_line disagree"
        );
    }
    let mut group = GroupLines::default();
    group.push_after(
        catalog,
        read.after,
        read.revision,
        u128::from(read.unix_millis),
        &read.command,
        Author {
            caller: read.caller.as_deref(),
            actor: read.actor.as_deref(),
        },
        &read.changes,
    );
    if read.end {
        group.end();
    }
    let lines: Vec<&[u8]> = group.bytes().split_inclusive(|b| *b == b'\n').collect();
    assert_eq!(line_position(lines[0]), Some((read.revision, 0)));
    let mut changes = Vec::new();
    for (part, written) in lines.iter().enumerate() {
        let again = read_line(catalog, written).expect("a written line reads back");
        assert_eq!(
            (
                again.revision,
                again.after,
                again.unix_millis,
                &again.command,
                &again.caller,
                &again.actor
            ),
            (
                read.revision,
                read.after,
                read.unix_millis,
                &read.command,
                &read.caller,
                &read.actor
            )
        );
        assert_eq!((again.part, again.parts), (part as u64, lines.len() as u64));
        assert_eq!(again.end, read.end && part + 1 == lines.len());
        changes.extend(again.changes);
    }
    assert_eq!(changes, read.changes);
});
