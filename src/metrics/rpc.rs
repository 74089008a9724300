//! Counts each gRPC call by method and status code, and times it from the request's
//! arrival to the end of its answer (the trailers that carry its status). A method's
//! handles are found once per call in a map built at start-up from the descriptors
//! served; recording is relaxed atomics, with no lock and no allocation.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use prost::Message;

use super::histogram::{DurationHistogram, LATENCY_BOUNDS};

/// The canonical names of gRPC's status codes, by number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];
const CANCELLED: u8 = 1;
const UNKNOWN: u8 = 2;

/// The labels of a call's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The full name of the service (`accessd.v1.AccessService`).
    pub service: String,
    /// The method's name (`Check`).
    pub method: String,
}

/// The labels of a call's count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The full name of the service.
    pub service: String,
    /// The method's name.
    pub method: String,
    /// The status code's name (`OK`, `INVALID_ARGUMENT`).
    pub code: &'static str,
}

/// Every method's handles, found by the request's path.
#[derive(Debug)]
pub struct RpcMetrics {
    methods: HashMap<Box<str>, Arc<MethodMetrics>, foldhash::fast::RandomState>,
    /// A path that names no method served: one series for all of them, so that a caller
    /// cannot make new ones.
    unknown: Arc<MethodMetrics>,
}

/// One method's handles.
#[derive(Debug)]
pub struct MethodMetrics {
    labels: MethodLabels,
    durations: Family<MethodLabels, DurationHistogram, fn() -> DurationHistogram>,
    /// Made in `durations` at the first call, so that only methods called show.
    duration: OnceLock<DurationHistogram>,
    calls: Family<CallLabels, Counter>,
    /// The count of each status code, made in `calls` the first time it is seen, so that
    /// only the codes a method has answered show.
    by_code: [OnceLock<Counter>; 17],
}

impl MethodMetrics {
    fn new(
        labels: MethodLabels,
        durations: &Family<MethodLabels, DurationHistogram, fn() -> DurationHistogram>,
        calls: &Family<CallLabels, Counter>,
    ) -> Self {
        Self {
            durations: durations.clone(),
            duration: OnceLock::new(),
            calls: calls.clone(),
            labels,
            by_code: Default::default(),
        }
    }

    fn record(&self, started: Instant, code: u8) {
        self.duration
            .get_or_init(|| self.durations.get_or_create_owned(&self.labels))
            .observe(started.elapsed());
        let code = if usize::from(code) < CODE_NAMES.len() {
            code
        } else {
            UNKNOWN
        };
        let Some(slot) = self.by_code.get(usize::from(code)) else {
            return;
        };
        slot.get_or_init(|| {
            self.calls.get_or_create_owned(&CallLabels {
                service: self.labels.service.clone(),
                method: self.labels.method.clone(),
                code: CODE_NAMES
                    .get(usize::from(code))
                    .copied()
                    .unwrap_or("UNKNOWN"),
            })
        })
        .inc();
    }
}

/// A histogram of call latencies, for [`Family`].
pub fn latency_histogram() -> DurationHistogram {
    DurationHistogram::new(LATENCY_BOUNDS)
}

impl RpcMetrics {
    /// Handles for every method of the services in `descriptor_sets` (encoded
    /// `FileDescriptorSet`s), made in `durations` and `calls`.
    pub fn new(
        descriptor_sets: &[&[u8]],
        durations: &Family<MethodLabels, DurationHistogram, fn() -> DurationHistogram>,
        calls: &Family<CallLabels, Counter>,
    ) -> Self {
        let mut methods = HashMap::default();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    let service_name = match package {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        let path = format!("/{service_name}/{}", method.name());
                        let labels = MethodLabels {
                            service: service_name.clone(),
                            method: method.name().to_owned(),
                        };
                        methods.insert(
                            path.into_boxed_str(),
                            Arc::new(MethodMetrics::new(labels, durations, calls)),
                        );
                    }
                }
            }
        }
        let unknown = MethodLabels {
            service: "unknown".into(),
            method: "unknown".into(),
        };
        Self {
            methods,
            unknown: Arc::new(MethodMetrics::new(unknown, durations, calls)),
        }
    }

    fn method(&self, path: &str) -> &Arc<MethodMetrics> {
        self.methods.get(path).unwrap_or(&self.unknown)
    }
}

/// Wraps each service in [`RpcMeasured`]; with no metrics, measures nothing.
#[derive(Clone)]
pub struct RpcMetricsLayer(Option<Arc<RpcMetrics>>);

impl RpcMetricsLayer {
    /// Records calls in `metrics`, if any.
    pub fn new(metrics: Option<Arc<RpcMetrics>>) -> Self {
        Self(metrics)
    }
}

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMeasured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMeasured {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// A service whose calls are counted and timed.
#[derive(Clone)]
pub struct RpcMeasured<S> {
    inner: S,
    metrics: Option<Arc<RpcMetrics>>,
}

/// A call being timed.
struct Timing {
    method: Arc<MethodMetrics>,
    started: Instant,
}

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for RpcMeasured<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<Timed<ResBody>>;
    type Error = S::Error;
    type Future = Measured<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timing = self.metrics.as_ref().map(|metrics| Timing {
            method: Arc::clone(metrics.method(request.uri().path())),
            started: Instant::now(),
        });
        Measured {
            timing,
            answer: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`RpcMeasured`]: its body records the call when it ends.
    pub struct Measured<F> {
        timing: Option<Timing>,
        #[pin]
        answer: F,
    }
}

impl<F, ResBody, E> Future for Measured<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<Timed<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match std::task::ready!(this.answer.poll(cx)) {
            Ok(response) => response,
            Err(err) => {
                if let Some(timing) = this.timing.take() {
                    timing.method.record(timing.started, UNKNOWN);
                }
                return Poll::Ready(Err(err));
            }
        };
        // An error is answered with its status in the headers and no body.
        let code = status_code(response.headers());
        let timing = this.timing.take();
        Poll::Ready(Ok(response.map(|body| Timed { body, timing, code })))
    }
}

/// An answer's body, which records its call when its trailers pass, or when hyper drops
/// it before they did (the stream was reset: CANCELLED, unless the headers said).
pub struct Timed<B> {
    body: B,
    timing: Option<Timing>,
    code: Option<u8>,
}

impl<B> Timed<B> {
    fn record(&mut self, code: Option<u8>) {
        if let Some(timing) = self.timing.take() {
            let code = code.or(self.code).unwrap_or(CANCELLED);
            timing.method.record(timing.started, code);
        }
    }
}

impl<B> Drop for Timed<B> {
    fn drop(&mut self) {
        self.record(None);
    }
}

impl<B: Body + Unpin> Body for Timed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if this.timing.is_some() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        this.record(Some(status_code(trailers).unwrap_or(UNKNOWN)));
                    }
                }
                Poll::Ready(Some(Err(_))) => this.record(Some(UNKNOWN)),
                Poll::Ready(None) => this.record(Some(this.code.unwrap_or(UNKNOWN))),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The `grpc-status` in `headers`, if any.
fn status_code(headers: &HeaderMap) -> Option<u8> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse().ok()
}
