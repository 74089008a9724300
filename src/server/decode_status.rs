//! Answers a request that cannot be decoded with INVALID_ARGUMENT: tonic answers INTERNAL
//! (a non-UTF-8 string, a truncated message, a wrong wire type), but the fault is the
//! caller's. It rewrites only that status, in the answer's headers, for every service.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue, uri::PathAndQuery};
use tonic::{Code, Status};

/// How prost's decode errors begin, which tonic passes on as INTERNAL.
const DECODE_FAILURE: &str = "failed to decode Protobuf message";

/// Wraps each service in [`DecodeStatus`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeStatusLayer;

impl<S> tower_layer::Layer<S> for DecodeStatusLayer {
    type Service = DecodeStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeStatus { inner }
    }
}

/// A service whose decode failures are INVALID_ARGUMENT instead of INTERNAL.
#[derive(Debug, Clone)]
pub struct DecodeStatus<S> {
    inner: S,
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for DecodeStatus<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Rewritten<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Rewritten {
            // Shares the request's bytes: nothing is copied on the hot path.
            method: request.uri().path_and_query().cloned(),
            answer: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`DecodeStatus`], its status rewritten if it is a decode failure.
    pub struct Rewritten<F> {
        method: Option<PathAndQuery>,
        #[pin]
        answer: F,
    }
}

impl<F, ResBody, E> Future for Rewritten<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.answer.poll(cx))?;
        let method = this.method.as_ref().map_or("", PathAndQuery::path);
        rewrite(method, response.headers_mut());
        Poll::Ready(Ok(response))
    }
}

fn rewrite(method: &str, headers: &mut HeaderMap) {
    if headers.get(Status::GRPC_STATUS) != Some(&HeaderValue::from_static("13")) {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() != Code::Internal || !status.message().starts_with(DECODE_FAILURE) {
        return;
    }
    let detail = status
        .message()
        .trim_start_matches(DECODE_FAILURE)
        .trim_start_matches(':')
        .trim();
    let invalid = Status::invalid_argument(format!(
        "the request to `{method}` could not be decoded as its protobuf message: {detail}"
    ));
    headers.remove(Status::GRPC_MESSAGE);
    headers.remove(Status::GRPC_STATUS_DETAILS);
    // The message is ASCII text we wrote, so it always makes a valid header.
    let _ = invalid.add_header(headers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: &Status) -> HeaderMap {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        headers
    }

    #[test]
    fn a_decode_failure_becomes_invalid_argument_naming_the_method() {
        let mut headers = headers_of(&Status::internal(
            "failed to decode Protobuf message: CheckRequest.user_id: invalid string value: data is not UTF-8 encoded",
        ));
        rewrite("/accessd.v1.AccessService/Check", &mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "the request to `/accessd.v1.AccessService/Check` could not be decoded as its \
             protobuf message: CheckRequest.user_id: invalid string value: data is not UTF-8 encoded"
        );
    }

    #[test]
    fn other_internal_errors_are_left_alone() {
        let mut headers = headers_of(&Status::internal("the store failed"));
        rewrite("/accessd.v1.AdminService/Grant", &mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "the store failed");
    }
}
