//! Request messages off the wire: prost decoding of arbitrary bytes, then validation,
//! never panics, and a message that decodes re-encodes to one that decodes the same.
#![no_main]

use accessd::{api::convert, fuzzing::transfer, proto};
use accessd_fuzz::CATALOG;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(message: &M) {
    let again = M::decode(message.encode_to_vec().as_slice()).expect("re-encoded decodes");
    assert_eq!(&again, message);
}

fuzz_target!(|bytes: &[u8]| {
    let catalog = &*CATALOG;
    if let Ok(request) = proto::CheckRequest::decode(bytes) {
        round_trip(&request);
        let _ = convert::check(catalog, None, &request);
    }
    if let Ok(request) = proto::BatchCheckRequest::decode(bytes) {
        round_trip(&request);
        for (i, check) in request.checks.iter().enumerate() {
            let _ = convert::check(catalog, Some(i), check);
        }
    }
    if let Ok(record) = proto::Record::decode(bytes) {
        round_trip(&record);
        let _ = transfer::command(catalog, &record);
    }
    if let Ok(request) = proto::ImportRequest::decode(bytes) {
        round_trip(&request);
        for record in &request.records {
            let _ = transfer::command(catalog, record);
        }
    }
});
