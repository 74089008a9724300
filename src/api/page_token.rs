//! Opaque page tokens: the hex-encoded key of the last item of the previous page, so a
//! page resumes after it even if writes happened in between.

use tonic::Status;

const VERSION: u8 = b'1';

/// The token that resumes after `last`.
pub fn encode(last: &str) -> String {
    std::iter::once(VERSION)
        .chain(last.bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key a token resumes after, or `None` for the first page.
pub fn decode(token: &str) -> Result<Option<String>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let malformed = || {
        Status::invalid_argument("`page_token`: malformed; pass back a `next_page_token` unchanged")
    };
    if token.len() % 2 != 0 || token.len() > 600 {
        return Err(malformed());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                // from_str_radix alone would take a sign: `+1` for 01.
                .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(malformed)?;
    match bytes.split_first() {
        Some((&VERSION, rest)) => String::from_utf8(rest.to_vec())
            .map(Some)
            .map_err(|_| malformed()),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(
            decode(&encode("alice@example.com")).unwrap().as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(decode("").unwrap(), None);
    }

    #[test]
    fn malformed_tokens_are_invalid_arguments() {
        for token in ["zz", "3", "30", "ff00", "31+1", "3177+1"] {
            let status = decode(token).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{token}");
        }
    }
}
