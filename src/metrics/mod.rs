//! The Prometheus metrics of `accessd serve`, served on a port of their own
//! (`--metrics-listen`): calls, decisions, writes, the store, a follower's lag and the
//! process. What is counted on the hot path is atomics; the rest is read at scrape.

mod endpoint;
mod histogram;
mod rpc;
mod state;
mod writes;

use std::sync::Arc;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, info::Info},
    registry::Registry,
};

pub use endpoint::{MetricsPort, serve};
pub use rpc::RpcMetricsLayer;
pub use state::{Open, Sources};

use crate::{api::decisions::DecisionCounts, store::Observer};
use histogram::DurationHistogram;
use rpc::{CallLabels, MethodLabels, RpcMetrics};
use state::State;
use writes::WriteMetrics;

/// Every metric of a server, and what it reads when scraped.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc: Arc<RpcMetrics>,
    writes: Arc<WriteMetrics>,
    state: Arc<State>,
}

impl Metrics {
    /// The metrics of a server serving the methods of `descriptor_sets` (encoded
    /// `FileDescriptorSet`s), all at zero.
    pub fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "accessd_build",
            "The version of accessd running",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let durations = Family::<MethodLabels, DurationHistogram, fn() -> DurationHistogram>::new_with_constructor(rpc::latency_histogram);
        let calls = Family::<CallLabels, Counter>::default();
        let rpc = Arc::new(RpcMetrics::new(descriptor_sets, &durations, &calls));
        registry.register(
            "accessd_rpc_calls",
            "gRPC calls answered, by service, method and status code",
            calls,
        );
        registry.register(
            "accessd_rpc_duration_seconds",
            "Time from a gRPC call's arrival to the end of its answer, by service and method",
            durations,
        );
        let writes = Arc::new(WriteMetrics::register(&mut registry));
        let state = Arc::new(State::new(Arc::new(DecisionCounts::default())));
        registry.register_collector(Box::new(Arc::clone(&state)));
        Self {
            registry,
            rpc,
            writes,
            state,
        }
    }

    /// The metrics of `accessd serve`: every service it may serve, health and
    /// reflection included.
    pub fn of_server() -> Self {
        Self::new(&[
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ])
    }

    /// The layer that counts and times every call.
    pub fn rpc_layer(&self) -> RpcMetricsLayer {
        RpcMetricsLayer::new(Some(Arc::clone(&self.rpc)))
    }

    /// Where the read side counts its decisions.
    pub fn decisions(&self) -> Arc<DecisionCounts> {
        Arc::clone(&self.state.decisions)
    }

    /// What the store reports its writes to.
    pub fn write_observer(&self) -> Observer {
        Observer::new(Arc::clone(&self.writes) as _)
    }

    /// Reads `sources` at each scrape from now on; only the first call counts.
    pub fn attach(&self, sources: Sources) {
        let _ = self.state.sources.set(sources);
    }

    /// The metrics now, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String fails only if an encoder does, which ours do not.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
