//! The W3C trace context of a call (`traceparent`, `tracestate`): read from its headers
//! with OpenTelemetry's propagator, and passed on to the leader by a follower. It parses
//! nothing itself and decides nothing about spans.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::{TraceContextExt as _, TraceId},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

/// The header carrying the caller's trace id and span id; a name made once, since a
/// lookup by a string parses the string first, which would cost every call more.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The trace of a call whose caller sent a valid `traceparent`.
pub struct CallerTrace {
    /// The caller's span, as a parent for the call's own.
    pub context: Context,
    /// The trace the caller's span belongs to.
    pub trace_id: TraceId,
}

/// The caller's trace, if the call's headers carry a valid `traceparent`. A call without
/// one costs a single header lookup.
pub fn extract(headers: &http::HeaderMap) -> Option<CallerTrace> {
    if !headers.contains_key(&TRACEPARENT) {
        return None;
    }
    let context = TraceContextPropagator::new().extract(&Headers(headers));
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| CallerTrace {
        context,
        trace_id: span_context.trace_id(),
    })
}

/// Puts `context`'s span into `metadata` as `traceparent` (and `tracestate`), if it has a
/// valid one; returns whether it did.
pub fn inject(context: &Context, metadata: &mut MetadataMap) -> bool {
    if !context.span().span_context().is_valid() {
        return false;
    }
    TraceContextPropagator::new().inject_context(context, &mut Metadata(metadata));
    true
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes only its own two well-formed headers; anything else is
        // left out rather than sent malformed.
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(key, value)| {
                (
                    http::HeaderName::from_static(key),
                    http::HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn a_valid_traceparent_gives_the_caller_s_trace_id() {
        let trace = extract(&headers(&[("traceparent", SENT)])).unwrap();
        assert_eq!(
            trace.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            trace.context.span().span_context().span_id().to_string(),
            "00f067aa0ba902b7"
        );
    }

    #[test]
    fn no_traceparent_or_a_malformed_one_gives_none() {
        assert!(extract(&headers(&[])).is_none());
        assert!(extract(&headers(&[("traceparent", "00-not-a-trace-01")])).is_none());
        assert!(
            extract(&headers(&[(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
            )]))
            .is_none()
        );
    }

    #[test]
    fn a_caller_s_trace_is_passed_on_with_its_state() {
        let trace = extract(&headers(&[
            ("traceparent", SENT),
            ("tracestate", "vendor=opaque"),
        ]))
        .unwrap();
        let mut metadata = MetadataMap::new();
        assert!(inject(&trace.context, &mut metadata));
        assert_eq!(metadata.get("traceparent").unwrap(), SENT);
        assert_eq!(metadata.get("tracestate").unwrap(), "vendor=opaque");
        assert!(!inject(&Context::new(), &mut MetadataMap::new()));
    }
}
