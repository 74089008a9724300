//! A histogram of durations kept in atomics: recording one is three relaxed increments,
//! with no lock and no allocation. prometheus-client's own histogram takes a mutex per
//! observation, which a Check at concurrency 64 would contend for; this one is encoded
//! through the same crate, so the exposition is the crate's.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

/// Bucket bounds for calls and writes: from 25 µs (a Check) to 10 s (a large import
/// batch), about three to a decade.
pub const LATENCY_BOUNDS: &[Duration] = &[
    Duration::from_micros(25),
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_micros(2_500_000),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// A histogram of durations, shared by its clones.
#[derive(Debug, Clone)]
pub struct DurationHistogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Upper bounds, in nanoseconds, ascending; +Inf is past the last.
    bounds: Box<[u64]>,
    /// One per bound, and one for +Inf; not cumulative (summed when encoded).
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// In nanoseconds: wraps after 584 years of summed time.
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &[Duration]) -> Self {
        let bounds: Box<[u64]> = bounds.iter().map(|b| nanos(*b)).collect();
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(Inner {
            bounds,
            buckets,
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }))
    }

    /// Records one duration.
    pub fn observe(&self, took: Duration) {
        self.observe_value(nanos(took));
    }

    /// Records one value, in the histogram's unit (nanoseconds for durations).
    pub fn observe_value(&self, value: u64) {
        let inner = &*self.0;
        let at = inner.bounds.partition_point(|bound| *bound < value);
        if let Some(bucket) = inner.buckets.get(at) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        inner.count.fetch_add(1, Ordering::Relaxed);
        inner.sum_nanos.fetch_add(value, Ordering::Relaxed);
    }

    /// Encodes with `scale` dividing bounds and sum (1e9 for seconds; 1 for a count).
    fn encode_scaled(&self, mut encoder: MetricEncoder, scale: f64) -> Result<(), std::fmt::Error> {
        let inner = &*self.0;
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .map(|bound| *bound as f64 / scale)
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // Read after the buckets, so that the count is never below their sum by more
        // than the observations made meanwhile.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = inner.sum_nanos.load(Ordering::Relaxed) as f64 / scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.encode_scaled(encoder, 1e9)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A histogram of counts (a write group's size): the same atomics, bounds in units.
#[derive(Debug, Clone)]
pub struct CountHistogram(DurationHistogram);

impl CountHistogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &[u64]) -> Self {
        let as_durations: Vec<Duration> = bounds.iter().map(|b| Duration::from_nanos(*b)).collect();
        Self(DurationHistogram::new(&as_durations))
    }

    /// Records one value.
    pub fn observe(&self, value: u64) {
        self.0.observe_value(value);
    }
}

impl TypedMetric for CountHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for CountHistogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode_scaled(encoder, 1.0)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them_and_encode_cumulatively() {
        let histogram = DurationHistogram::new(&[Duration::from_millis(1), Duration::from_secs(1)]);
        histogram.observe(Duration::from_micros(10));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(2));
        histogram.observe(Duration::from_secs(3));
        let mut registry = Registry::default();
        registry.register("took_seconds", "how long", histogram);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "took_seconds_sum 3.00301",
                "took_seconds_count 4",
                "took_seconds_bucket{le=\"0.001\"} 2",
                "took_seconds_bucket{le=\"1.0\"} 3",
                "took_seconds_bucket{le=\"+Inf\"} 4",
            ]
        );
    }
}
