//! Counts the calls in progress on each connection, from the arrival of a request to the
//! end of its answer's body, so that a connection idle for the idle timeout (no call in
//! progress) can be closed while one with a long stream open is kept. The connection is
//! found in the call's [`Peer`].

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};

use std::sync::Arc;

use crate::api::peer::{CallCounter, Peer};

/// Wraps each service in [`OpenCalls`].
#[derive(Clone, Copy)]
pub struct OpenCallsLayer;

impl<S> tower_layer::Layer<S> for OpenCallsLayer {
    type Service = OpenCalls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OpenCalls { inner }
    }
}

/// A service whose calls are counted on their connection while they are in progress.
#[derive(Clone)]
pub struct OpenCalls<S> {
    inner: S,
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for OpenCalls<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<Counted<ResBody>>;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request
            .extensions()
            .get::<Peer>()
            .map(|peer| CallGuard::new(peer.calls()));
        Answer {
            guard,
            answer: self.inner.call(request),
        }
    }
}

/// A call in progress, counted on its connection until it is dropped.
pub struct CallGuard(Arc<dyn CallCounter>);

impl CallGuard {
    fn new(calls: &Arc<dyn CallCounter>) -> Self {
        calls.started();
        Self(Arc::clone(calls))
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.ended();
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`OpenCalls`]: its body carries the call's guard.
    pub struct Answer<F> {
        guard: Option<CallGuard>,
        #[pin]
        answer: F,
    }
}

impl<F, ResBody, E> Future for Answer<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<Counted<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.answer.poll(cx))?;
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|body| Counted {
            body,
            _guard: guard,
        })))
    }
}

/// An answer's body, which ends the call's count when hyper drops it (after sending its
/// end, or when the stream is reset).
pub struct Counted<B> {
    body: B,
    _guard: Option<CallGuard>,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
