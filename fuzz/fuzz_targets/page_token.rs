//! Page tokens: `decode` over arbitrary text never panics, a token that decodes is the
//! encoding of what it decodes to, and every key round-trips.
#![no_main]

use accessd::fuzzing::page_token::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    if let Ok(Some(key)) = decode(token) {
        assert!(
            encode(&key).eq_ignore_ascii_case(token),
            "`{token}` decodes to `{key}`, which encodes otherwise"
        );
    }
    // Keys are ids (at most 128 bytes); a token holds up to 299.
    if token.len() <= 299 {
        let decoded = decode(&encode(token)).expect("an encoded key decodes");
        assert_eq!(decoded.as_deref(), Some(token));
    }
});
