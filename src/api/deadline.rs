//! The caller's deadline, read from the `grpc-timeout` request header, and how long a
//! read may therefore wait for a revision. It does not enforce the deadline: tonic does.

use std::time::Duration;

use tonic::metadata::MetadataMap;

use super::MAX_REVISION_WAIT;

/// The header in which a gRPC caller sends the time it gives its call.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The most a read answers ahead of the caller's deadline; less for short deadlines (a
/// tenth of them). Enough for the answer to reach a caller on a busy machine before its
/// own timer fires and turns it into a bare CANCELLED.
const MAX_MARGIN: Duration = Duration::from_millis(100);

/// How long a read may wait for a revision: until a little before the caller's deadline
/// (so that the caller receives our status, not its own timer's), or
/// [`MAX_REVISION_WAIT`] if the call has no deadline.
pub fn revision_wait(metadata: &MetadataMap) -> Duration {
    match timeout(metadata) {
        Some(timeout) => timeout.saturating_sub(margin(timeout)),
        None => MAX_REVISION_WAIT,
    }
}

/// The time the caller gives its call, or `None` if it sets none or sends a malformed
/// value (which tonic ignores too).
pub fn timeout(metadata: &MetadataMap) -> Option<Duration> {
    metadata.get(GRPC_TIMEOUT)?.to_str().ok().and_then(parse)
}

/// How far ahead of a deadline `timeout` away to answer: long enough for the status to
/// travel back, short enough not to give up on a revision that was about to arrive.
fn margin(timeout: Duration) -> Duration {
    (timeout / 10).min(MAX_MARGIN)
}

/// A `grpc-timeout` value: 1 to 8 ASCII digits, then the unit (`H` hours, `M` minutes,
/// `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds).
fn parse(value: &str) -> Option<Duration> {
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 8 digits: even in hours, the seconds fit a u64 many times over.
    let amount: u64 = digits.parse().ok()?;
    match value.get(digits.len()..)? {
        "H" => Some(Duration::from_secs(amount * 60 * 60)),
        "M" => Some(Duration::from_secs(amount * 60)),
        "S" => Some(Duration::from_secs(amount)),
        "m" => Some(Duration::from_millis(amount)),
        "u" => Some(Duration::from_micros(amount)),
        "n" => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert(GRPC_TIMEOUT, value.parse().unwrap());
        metadata
    }

    #[test]
    fn every_unit_is_read() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("42S"), Some(Duration::from_secs(42)));
        assert_eq!(parse("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse("82n"), Some(Duration::from_nanos(82)));
        assert_eq!(parse("0S"), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3_600))
        );
    }

    #[test]
    fn malformed_values_are_no_deadline() {
        for bad in [
            "",
            "S",
            "m",
            "5",
            "5s",
            "5h",
            "5 S",
            " 5S",
            "5S ",
            "+5S",
            "-5S",
            "5.0S",
            "0x5S",
            "123456789S",
            "5SS",
            "٥S",
            "5é",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} was read");
        }
    }

    #[test]
    fn a_read_answers_a_tenth_ahead_of_a_short_deadline_and_100_ms_ahead_of_a_long_one() {
        assert_eq!(
            revision_wait(&with_timeout("100m")),
            Duration::from_millis(90)
        );
        assert_eq!(
            revision_wait(&with_timeout("3S")),
            Duration::from_millis(2_900)
        );
        assert_eq!(
            revision_wait(&with_timeout("1H")),
            Duration::from_millis(3_599_900)
        );
        assert_eq!(revision_wait(&with_timeout("0n")), Duration::ZERO);
    }

    #[test]
    fn a_call_without_a_usable_deadline_waits_at_most_the_cap() {
        assert_eq!(timeout(&MetadataMap::new()), None);
        assert_eq!(revision_wait(&MetadataMap::new()), MAX_REVISION_WAIT);
        assert_eq!(revision_wait(&with_timeout("soon")), MAX_REVISION_WAIT);
    }

    #[test]
    fn tonic_s_own_timeouts_are_read_back() {
        let mut request = tonic::Request::new(());
        request.set_timeout(Duration::from_millis(300));
        assert_eq!(
            timeout(request.metadata()),
            Some(Duration::from_millis(300))
        );
    }
}
