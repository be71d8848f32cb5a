//! One node's estimate: latency and its spread, bandwidth, queue; how samples move it, how it
//! scores a request, and how it ages on disk.

use std::time::Duration;

use morsa_core::convert::lossy_f64;
use serde::{Deserialize, Serialize};

use super::NODE_PARALLELISM;

/// Weight of a new sample in the averages (as TCP's SRTT: 1/8 would be slow to notice a node
/// that turned slow; 1/4 notices within a few answers).
const GAIN: f64 = 0.25;
/// Latency assumed of a node in the caller's zone, another zone, or an unknown one.
const PRIOR_NEAR: f64 = 0.002;
const PRIOR_FAR: f64 = 0.060;
const PRIOR_UNKNOWN: f64 = 0.020;
/// Bandwidth assumed of a node before a large answer was measured (bytes per second).
const PRIOR_BANDWIDTH: f64 = 100e6;
/// Answers at least this large measure bandwidth; smaller ones measure latency alone (in a
/// small answer the node's own work per request hides the transfer).
const BANDWIDTH_SAMPLE_BYTES: u64 = 256 * 1024;
/// What a failure counts as: a very slow answer.
const FAILURE_SAMPLE: f64 = 2.0;
/// Shortest patience: answers sooner than this are not worth a second request.
const MIN_PATIENCE: f64 = 0.030;
/// Longest patience, and the largest duration an estimate answers.
const MAX_PATIENCE: f64 = 30.0;
/// A sample arriving this long after the previous one replaces the estimate (latency, spread
/// and bandwidth) instead of moving it: a node not heard from for a while may have changed
/// (recovered, or turned slow), and an old average would hide it. Readers probe such nodes now and then
/// ([`super::NodeScores::stalest`]).
pub const STALE_AFTER_MS: u64 = 3_000;
/// Confidence of a saved estimate halves every this many milliseconds of age.
const HALF_LIFE_MS: f64 = 3_600_000.0;

/// What is known of one node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Moving average of the answer latency without the transfer, seconds.
    pub latency: f64,
    /// Moving average of how far samples fall from `latency`, seconds.
    pub spread: f64,
    /// Moving average of the bandwidth of large answers, bytes per second; `None` until one
    /// was measured.
    pub bandwidth: Option<f64>,
    /// Answers (and failures) measured.
    pub samples: u32,
    /// Requests this process has in flight to the node (not saved).
    #[serde(skip)]
    pub in_flight: u32,
    /// Moving average of the load the node reports (requests it is serving; not saved).
    #[serde(skip)]
    pub reported_load: f64,
    /// Wall-clock milliseconds of the last sample.
    pub updated_ms: u64,
}

/// The parts of a score, for people (`morsa health --latency`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreInputs {
    /// Latency estimate, milliseconds.
    pub latency_ms: f64,
    /// Its spread, milliseconds.
    pub spread_ms: f64,
    /// Bandwidth estimate in megabits per second, if measured.
    pub bandwidth_mbit: Option<f64>,
    /// Requests in flight from this process.
    pub in_flight: u32,
    /// The node's own load figure (average).
    pub reported_load: f64,
    /// Answers measured (0: the topology prior).
    pub samples: u32,
    /// The score of the reference request, milliseconds.
    pub score_ms: f64,
    /// Patience for the reference request, milliseconds.
    pub patience_ms: f64,
    /// Whether this process measured the node (else: loaded from the cache, or the prior).
    pub measured: bool,
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.clamp(0.0, MAX_PATIENCE)).unwrap_or(Duration::ZERO)
}

impl Estimate {
    /// The estimate of a node never measured: near (`Some(true)`), far, or unknown.
    pub fn prior(same_zone: Option<bool>) -> Self {
        let latency = match same_zone {
            Some(true) => PRIOR_NEAR,
            Some(false) => PRIOR_FAR,
            None => PRIOR_UNKNOWN,
        };
        Self {
            latency,
            spread: latency,
            bandwidth: None,
            samples: 0,
            in_flight: 0,
            reported_load: 0.0,
            updated_ms: 0,
        }
    }

    fn transfer(&self, bytes: u64) -> f64 {
        self.transfer_among(bytes, None)
    }

    /// The transfer time of `bytes`: at the node's bandwidth, else at the `typical` one of the
    /// nodes compared with it, else at the prior.
    fn transfer_among(&self, bytes: u64, typical: Option<f64>) -> f64 {
        lossy_f64(bytes) / self.bandwidth.or(typical).unwrap_or(PRIOR_BANDWIDTH)
    }

    /// The C3 score of a request of `bytes` with `planned` more requests counted as queued.
    pub fn score(&self, bytes: u64, planned: u32) -> Duration {
        self.score_among(bytes, planned, None)
    }

    /// [`Estimate::score`] among nodes whose `typical` bandwidth stands in for this node's
    /// while it has none measured: a node not measured yet is neither favoured nor shunned
    /// for it.
    pub fn score_among(&self, bytes: u64, planned: u32, typical: Option<f64>) -> Duration {
        let queue =
            1.0 + (f64::from(self.in_flight) + f64::from(planned) + self.reported_load) / NODE_PARALLELISM;
        // The service time: the transfer, and at least a millisecond of the node's own work.
        let service = self.transfer_among(bytes, typical).max(0.001);
        seconds(self.latency + service * queue.powi(3))
    }

    /// The spread of the latency, as a duration.
    pub fn spread_duration(&self) -> Duration {
        seconds(self.spread)
    }

    /// How long an answer of `bytes` may take before another node is asked.
    pub fn patience(&self, bytes: u64) -> Duration {
        let transfer = self.transfer(bytes);
        seconds((self.latency + 4.0 * self.spread + 1.5 * transfer).max(MIN_PATIENCE))
    }

    /// Whether the last sample is so old that the next replaces the estimate.
    fn stale(&self, now_ms: u64) -> bool {
        self.samples > 0 && now_ms.saturating_sub(self.updated_ms) > STALE_AFTER_MS
    }

    /// Forgets the measurements (not the load): the next sample is the estimate.
    fn forget(&mut self) {
        self.samples = 0;
        self.bandwidth = None;
    }

    /// An answer of `bytes` after `elapsed`.
    pub fn observe(&mut self, elapsed: Duration, bytes: u64, now_ms: u64) {
        if self.stale(now_ms) {
            self.forget();
        }
        let elapsed = elapsed.as_secs_f64();
        if bytes >= BANDWIDTH_SAMPLE_BYTES {
            // The transfer is what the answer took beyond the latency (at least half of it).
            let transfer = (elapsed - self.latency).max(elapsed / 2.0).max(1e-6);
            let sample = lossy_f64(bytes) / transfer;
            self.bandwidth = Some(match self.bandwidth {
                Some(average) if self.samples > 0 => average + GAIN * (sample - average),
                _ => sample,
            });
        }
        let latency = (elapsed - self.transfer(bytes)).max(elapsed / 10.0);
        self.add_latency(latency, now_ms);
    }

    fn add_latency(&mut self, sample: f64, now_ms: u64) {
        if self.samples == 0 {
            self.latency = sample;
            self.spread = sample / 2.0;
        } else {
            self.spread += GAIN * ((sample - self.latency).abs() - self.spread);
            self.latency += GAIN * (sample - self.latency);
        }
        self.samples = self.samples.saturating_add(1);
        self.updated_ms = now_ms;
    }

    /// A failed request.
    pub fn observe_failure(&mut self, now_ms: u64) {
        if self.stale(now_ms) {
            self.forget();
        }
        self.add_latency(FAILURE_SAMPLE, now_ms);
    }

    /// A request cancelled after `elapsed`: the node would have taken longer. Counts only if
    /// that is slower than expected (a lower bound says nothing about a node expected slower).
    pub fn observe_cancelled(&mut self, elapsed: Duration, now_ms: u64) {
        let elapsed = elapsed.as_secs_f64();
        if self.stale(now_ms) {
            self.forget();
            self.add_latency(elapsed, now_ms);
        } else if elapsed > self.latency {
            self.add_latency(elapsed, now_ms);
        }
    }

    /// A load figure the node reported.
    pub fn observe_load(&mut self, load: u32) {
        self.reported_load += GAIN * (f64::from(load) - self.reported_load);
    }

    /// The estimate as it should be trusted `now_ms`: less confident (the spread grows
    /// towards the latency) with each half-life of age; `None` once too old to keep.
    pub fn aged(&self, now_ms: u64) -> Option<Self> {
        let age = now_ms.saturating_sub(self.updated_ms);
        if u128::from(age) > super::MAX_SAVED_AGE.as_millis() || !self.latency.is_finite() {
            return None;
        }
        let kept = 0.5f64.powf(lossy_f64(age) / HALF_LIFE_MS);
        let spread = self.spread * kept + self.latency.max(PRIOR_UNKNOWN) * (1.0 - kept);
        Some(Self { spread, in_flight: 0, reported_load: 0.0, ..*self })
    }

    /// What the score is made of, for a request of `bytes`.
    pub fn inputs(&self, bytes: u64, measured: bool) -> ScoreInputs {
        ScoreInputs {
            latency_ms: self.latency * 1000.0,
            spread_ms: self.spread * 1000.0,
            bandwidth_mbit: self.bandwidth.map(|rate| rate * 8.0 / 1e6),
            in_flight: self.in_flight,
            reported_load: self.reported_load,
            samples: self.samples,
            score_ms: self.score(bytes, 0).as_secs_f64() * 1000.0,
            patience_ms: self.patience(bytes).as_secs_f64() * 1000.0,
            measured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_thin_link_scores_worse_for_large_answers_only() {
        let mut fast = Estimate::prior(None);
        let mut thin = Estimate::prior(None);
        for _ in 0..6 {
            // Both answer small requests in 1 ms; for 4 MiB, one takes 20 ms, the other 1.6 s.
            fast.observe(Duration::from_millis(1), 100, 1);
            thin.observe(Duration::from_millis(1), 100, 1);
            fast.observe(Duration::from_millis(21), 4 * MIB, 1);
            thin.observe(Duration::from_millis(1601), 4 * MIB, 1);
        }
        assert!(thin.score(4 * MIB, 0) > fast.score(4 * MIB, 0) * 10);
        assert!(thin.bandwidth.unwrap() < 3e6 && fast.bandwidth.unwrap() > 100e6);
        assert!(thin.patience(4 * MIB) > Duration::from_secs(1), "a thin link is waited for longer");
    }

    #[test]
    fn the_queue_penalty_grows_with_the_cube_of_the_queue() {
        let idle = Estimate::prior(None);
        let busy = Estimate { in_flight: 8, ..idle };
        let service = |estimate: &Estimate| estimate.score(MIB, 0).as_secs_f64() - estimate.latency;
        let ratio = service(&busy) / service(&idle);
        assert!((ratio - 8.0).abs() < 0.01, "a queue of 2 (8 in flight / 8) costs 2^3: {ratio}");
        assert!(idle.score(MIB, 8) == busy.score(MIB, 0), "planned requests count as in flight");
    }

    #[test]
    fn a_cancelled_request_counts_only_when_slower_than_expected() {
        let mut estimate = Estimate::prior(None);
        estimate.observe(Duration::from_millis(10), 100, 1);
        let before = estimate.latency;
        estimate.observe_cancelled(Duration::from_millis(2), 2);
        assert_eq!(estimate.latency, before);
        estimate.observe_cancelled(Duration::from_millis(500), 3);
        assert!(estimate.latency > before);
    }

    #[test]
    fn a_sample_after_a_long_silence_replaces_the_estimate() {
        let mut estimate = Estimate::prior(None);
        for ms in 1..=10 {
            estimate.observe(Duration::from_millis(300), 100, ms);
        }
        estimate.observe(Duration::from_millis(2), 100, 20);
        assert!(estimate.latency > 0.2, "a fresh fast sample moves the average a quarter of the way");
        estimate.observe(Duration::from_millis(400), 256 * 1024, 30);
        assert!(
            estimate.bandwidth.is_some_and(|rate| rate < 2e6),
            "a slow large answer reads as a thin link"
        );
        estimate.observe(Duration::from_millis(2), 100, 30 + STALE_AFTER_MS + 1);
        assert!(estimate.latency < 0.003, "after a silence, the new sample is the estimate");
        assert_eq!(estimate.bandwidth, None, "and the old bandwidth is forgotten with it");
    }

    #[test]
    fn saved_estimates_lose_confidence_with_age_and_are_dropped_when_old() {
        let mut estimate = Estimate::prior(None);
        for _ in 0..10 {
            estimate.observe(Duration::from_millis(100), 100, 1_000);
        }
        let fresh = estimate.aged(1_000).unwrap();
        let day_old = estimate.aged(1_000 + 24 * 3_600_000).unwrap();
        assert!(day_old.spread > fresh.spread * 5.0);
        assert_eq!(day_old.latency, fresh.latency, "the latency itself is kept");
        assert!(estimate.aged(1_000 + 8 * 24 * 3_600_000).is_none());
    }

    #[test]
    fn the_zone_prior_orders_unmeasured_nodes() {
        let near = Estimate::prior(Some(true)).score(MIB, 0);
        let unknown = Estimate::prior(None).score(MIB, 0);
        let far = Estimate::prior(Some(false)).score(MIB, 0);
        assert!(near < unknown && unknown < far);
    }
}
