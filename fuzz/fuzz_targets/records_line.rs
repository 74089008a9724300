//! Import records: a records file's line over arbitrary text never panics from parsing
//! to the command it applies; a line that parses serializes back to itself, and one the
//! server accepts exports as a line that applies the same.
#![no_main]

use accessd::{cli::records::RecordLine, fuzzing::transfer};
use accessd_fuzz::CATALOG;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    let Ok(parsed) = RecordLine::parse(line) else {
        return;
    };
    let json = serde_json::to_string(&parsed).expect("a line serializes");
    assert_eq!(RecordLine::parse(&json).as_ref(), Ok(&parsed));
    let Ok(record) = parsed.clone().into_record() else {
        return;
    };
    let Ok(command) = transfer::command(&CATALOG, &record) else {
        return;
    };
    // What the server accepts, an export writes back as a line that applies the same.
    let exported = RecordLine::from_record(record).expect("an accepted record exports");
    let again = exported.into_record().expect("an exported line imports");
    assert_eq!(transfer::command(&CATALOG, &again).ok(), Some(command));
});
