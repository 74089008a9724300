//! The server's resident memory over the soak: read from `/proc` at a steady interval,
//! and judged after the warm-up against what it was at the warm-up's end.

use std::time::Duration;

use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::process;

/// One reading of the server's resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the mixed load started.
    pub seconds: f64,
    /// `VmRSS`, in bytes; `None` when it could not be read (the process is gone).
    pub bytes: Option<u64>,
}

/// Reads the resident memory of `pid` every `every` from `start` until `end`, calling
/// `progress` with each reading as it is taken.
pub async fn sample(
    pid: u32,
    every: Duration,
    start: Instant,
    end: Instant,
    mut progress: impl FnMut(&Sample),
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval_at(start, every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = tokio::time::sleep_until(end) => break,
        }
        let sample = take(pid, start);
        progress(&sample);
        samples.push(sample);
    }
    samples
}

/// Reads the resident memory of `pid` now.
pub fn take(pid: u32, start: Instant) -> Sample {
    Sample {
        seconds: start.elapsed().as_secs_f64(),
        bytes: process::rss_bytes(pid),
    }
}

/// What the samples say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Growth {
    /// The last reading at or before the warm-up's end, in bytes.
    pub at_warmup_end: u64,
    /// The largest reading after it (the last reading if none came after), in bytes.
    pub max_after_warmup: u64,
    /// The last reading, in bytes.
    pub end: u64,
    /// How far the largest reading after the warm-up is above the one at its end, in
    /// percent (negative if below).
    pub growth_percent: f64,
}

/// Judges `samples` with a warm-up of `warmup`; `None` without a reading of the warm-up
/// or a last reading, or if any reading failed.
pub fn growth(samples: &[Sample], warmup: Duration) -> Option<Growth> {
    let warmup = warmup.as_secs_f64();
    let readings: Vec<(f64, u64)> = samples
        .iter()
        .map(|s| s.bytes.map(|bytes| (s.seconds, bytes)))
        .collect::<Option<_>>()?;
    let at_warmup_end = readings.iter().rev().find(|(t, _)| *t <= warmup)?.1;
    let end = readings.last()?.1;
    let max_after_warmup = readings
        .iter()
        .filter(|(t, _)| *t > warmup)
        .map(|(_, bytes)| *bytes)
        .max()
        .unwrap_or(end);
    Some(Growth {
        at_warmup_end,
        max_after_warmup,
        end,
        growth_percent: percent_above(max_after_warmup, at_warmup_end),
    })
}

fn percent_above(value: u64, base: u64) -> f64 {
    if base == 0 {
        return 0.0;
    }
    (value as f64 / base as f64 - 1.0) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64, mib: u64) -> Sample {
        Sample {
            seconds,
            bytes: Some(mib << 20),
        }
    }

    #[test]
    fn growth_is_the_largest_reading_after_the_warm_up_against_the_last_one_in_it() {
        let samples = [
            at(0.0, 50),
            at(5.0, 90),
            at(10.0, 100),
            at(15.0, 108),
            at(20.0, 104),
            at(20.4, 103),
        ];
        let judged = growth(&samples, Duration::from_secs(10)).unwrap();
        assert_eq!(judged.at_warmup_end, 100 << 20);
        assert_eq!(judged.max_after_warmup, 108 << 20);
        assert_eq!(judged.end, 103 << 20);
        assert!((judged.growth_percent - 8.0).abs() < 1e-9, "{judged:?}");

        let shrinking = [at(0.0, 100), at(1.0, 80), at(2.0, 90)];
        let judged = growth(&shrinking, Duration::from_millis(500)).unwrap();
        assert!((judged.growth_percent + 10.0).abs() < 1e-9, "{judged:?}");
    }

    #[test]
    fn a_failed_reading_or_no_reading_in_the_warm_up_gives_no_verdict() {
        let gone = [
            at(0.0, 50),
            Sample {
                seconds: 5.0,
                bytes: None,
            },
        ];
        assert_eq!(growth(&gone, Duration::from_secs(1)), None);
        assert_eq!(growth(&[at(3.0, 50)], Duration::from_secs(1)), None);
        assert_eq!(growth(&[], Duration::from_secs(1)), None);
    }
}
