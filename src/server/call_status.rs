//! While spans are exported: the gRPC status each call answered, set on its span, which
//! is kept open until the answer's last frame so that a stream's span covers it whole.
//! Without export the layer passes calls through untouched.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use opentelemetry::trace::Status;
use tonic::Code;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Wraps each service in [`CallStatus`].
#[derive(Clone, Copy)]
pub struct CallStatusLayer {
    /// Whether spans are exported; without, nothing reads the status.
    pub exporting: bool,
}

impl<S> tower_layer::Layer<S> for CallStatusLayer {
    type Service = CallStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallStatus {
            inner,
            exporting: self.exporting,
        }
    }
}

/// A service whose calls' spans are given the status they answered.
#[derive(Clone)]
pub struct CallStatus<S> {
    inner: S,
    exporting: bool,
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for CallStatus<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<Recorded<ResBody>>;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Answer {
            exporting: self.exporting,
            answer: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`CallStatus`]: its body carries the call's span if the status is
    /// still to come, in the trailers.
    pub struct Answer<F> {
        exporting: bool,
        #[pin]
        answer: F,
    }
}

impl<F, ResBody, E> Future for Answer<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<Recorded<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.answer.poll(cx))?;
        // tonic polls the answer inside the call's span.
        let span = this
            .exporting
            .then(tracing::Span::current)
            .filter(|span| !span.is_disabled());
        let pending = match span {
            // A call that failed before answering has its status in the headers alone.
            Some(span) => match status(response.headers()) {
                Some(code) => {
                    record(&span, code);
                    None
                }
                None => Some(span),
            },
            None => None,
        };
        Poll::Ready(Ok(response.map(|body| Recorded { body, pending })))
    }
}

/// An answer's body, which sets its call's status from the trailers.
pub struct Recorded<B> {
    body: B,
    /// The call's span while its status is to come; dropping it ends the span.
    pending: Option<tracing::Span>,
}

impl<B: Body + Unpin> Body for Recorded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(trailers) = frame.trailers_ref()
            && let Some(span) = this.pending.take()
            && let Some(code) = status(trailers)
        {
            record(&span, code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(Code::from_bytes(value.as_bytes()))
}

/// Sets the status as OpenTelemetry's conventions for gRPC servers say: the code as
/// `rpc.grpc.status_code`, and an error only for the codes that mean the server failed
/// (a refused or invalid request is the caller's).
fn record(span: &tracing::Span, code: Code) {
    span.set_attribute("rpc.grpc.status_code", i64::from(code as i32));
    if matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) {
        span.set_status(Status::error(code.description()));
    }
}
