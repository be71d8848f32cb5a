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

/// The topology prior of a node not measured yet: where its declared zone puts it from the
/// caller's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZonePrior {
    /// In the caller's zone: assumed near (2 ms).
    SameZone,
    /// In another zone: assumed far (60 ms).
    OtherZone,
    /// The node's zone or the caller's is not known: in between (20 ms).
    #[default]
    Unknown,
}

impl ZonePrior {
    /// The prior of a node in `theirs` for a caller in `mine`.
    pub fn of(mine: Option<&str>, theirs: Option<&str>) -> Self {
        match (mine, theirs) {
            (Some(mine), Some(theirs)) if mine == theirs => Self::SameZone,
            (Some(_), Some(_)) => Self::OtherZone,
            _ => Self::Unknown,
        }
    }

    /// Whether the node is in the caller's zone, if known.
    pub fn same_zone(self) -> Option<bool> {
        match self {
            Self::SameZone => Some(true),
            Self::OtherZone => Some(false),
            Self::Unknown => None,
        }
    }

    /// The latency it assumes, milliseconds.
    pub fn latency_ms(self) -> f64 {
        Estimate::prior(self.same_zone()).latency * 1000.0
    }

    /// A short name for people: `same zone`, `other zone`, `unknown`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::SameZone => "same zone",
            Self::OtherZone => "other zone",
            Self::Unknown => "unknown",
        }
    }
}
/// Bandwidth assumed of a node before a large answer was measured (bytes per second).
const PRIOR_BANDWIDTH: f64 = 100e6;
/// Answers at least this large measure bandwidth; smaller ones measure latency alone (in a
/// small answer the node's own work per request hides the transfer), unless the node's link
/// is known to be so thin that their transfer is most of the answer
/// ([`SMALL_SAMPLE_TRANSFER`]).
const BANDWIDTH_SAMPLE_BYTES: u64 = 256 * 1024;
/// A smaller answer measures bandwidth too when, at the node's known bandwidth, its transfer
/// takes at least this long and longer than the node's latency: the 75 kB slivers of a 1 MiB
/// read over a 20 Mbit/s link (30 ms) do, over a fast one (under a millisecond) they do not.
/// So a thin link is measured by every answer it sends, and found again when it widens.
const SMALL_SAMPLE_TRANSFER: f64 = 0.010;
/// A link with less than a this-th of the typical bandwidth of the nodes compared is *thin*:
/// its bandwidth, not the node's work, bounds its answers, and the requests out to the node
/// share it, each waiting for the transfers before it (a cost linear in the queue, which C3's
/// cube, made for a node's parallel work, underprices for the first few requests).
const THIN_LINK_FACTOR: f64 = 4.0;
/// Shortest transfer a bandwidth sample is taken to have lasted (a fast link delivers a probe
/// with its head).
const MIN_TRANSFER: f64 = 0.001;
/// What a failure counts as: a very slow answer.
const FAILURE_SAMPLE: f64 = 2.0;
/// Shortest patience: answers sooner than this are not worth a second request.
const MIN_PATIENCE: f64 = 0.030;
/// Longest patience, and the largest duration an estimate answers.
const MAX_PATIENCE: f64 = 30.0;
/// A sample arriving this long after the previous one replaces the latency and its spread
/// instead of moving them: a node not heard from for a while may have changed (recovered, or
/// turned slow), and an old average would hide it. Readers probe such nodes now and then
/// ([`super::NodeScores::stalest`]), with small requests that say nothing of the node's link,
/// so the bandwidth is kept across the silence, until the next answer that measures it
/// replaces it.
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
    /// Whether `bandwidth` is a probe's ([`Estimate::observe_transfer`]) that no answer has
    /// measured since: a probe times the link alone, an answer the link and the node's work,
    /// so a probe's figure flags a thin link but does not stand for the typical bandwidth
    /// ([`Estimate::measured_bandwidth`]).
    #[serde(default)]
    pub probed: bool,
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
    /// The topology prior of the node, which stands for its latency while `samples` is 0.
    #[serde(default)]
    pub prior: ZonePrior,
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
            probed: false,
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
    /// for it. A node whose link is thin next to `typical` ([`Estimate::thin_among`]) is
    /// scored at least as a queue on its link: its transfer times the requests out and planned
    /// to it, this one included.
    pub fn score_among(&self, bytes: u64, planned: u32, typical: Option<f64>) -> Duration {
        seconds(self.latency + self.queued_service(bytes, planned, typical))
    }

    /// The expected service time of a request of `bytes` behind the requests out to the node
    /// and `planned` more: C3's transfer (at least a millisecond of the node's own work) times
    /// the cube of the queue, and on a thin link at least one transfer per request queued.
    fn queued_service(&self, bytes: u64, planned: u32, typical: Option<f64>) -> f64 {
        let queued = f64::from(self.in_flight) + f64::from(planned);
        let queue = 1.0 + (queued + self.reported_load) / NODE_PARALLELISM;
        let transfer = self.transfer_among(bytes, typical);
        let c3 = transfer.max(0.001) * queue.powi(3);
        let link = if self.thin_among(typical) { transfer * (1.0 + queued) } else { 0.0 };
        c3.max(link)
    }

    /// Whether the node's bandwidth is under a quarter of `typical` (of the prior while no
    /// answer measured any node's): its link, not its work, bounds its answers.
    pub fn thin_among(&self, typical: Option<f64>) -> bool {
        self.bandwidth.is_some_and(|own| own * THIN_LINK_FACTOR < typical.unwrap_or(PRIOR_BANDWIDTH))
    }

    /// The spread of the latency, as a duration.
    pub fn spread_duration(&self) -> Duration {
        seconds(self.spread)
    }

    /// How long an answer of `bytes` may take before another node is asked.
    pub fn patience(&self, bytes: u64) -> Duration {
        self.patience_among(bytes, None)
    }

    /// [`Estimate::patience`] for a request sent now, among nodes of `typical` bandwidth (which
    /// stands in for the node's while it has none measured, as in its score): it joins the
    /// requests out to the node, so its service is counted behind them as its score counts it
    /// (on a thin link, [`Estimate::thin_among`], after their transfers).
    pub fn patience_among(&self, bytes: u64, typical: Option<f64>) -> Duration {
        let service = self.queued_service(bytes, 0, typical);
        seconds((self.latency + 4.0 * self.spread + 1.5 * service).max(MIN_PATIENCE))
    }

    /// Takes the latency and spread of `prior` while no answer was measured (the requests
    /// out, the load and a probed bandwidth stay).
    pub(super) fn take_prior(&mut self, prior: &Estimate) {
        if self.samples == 0 {
            self.latency = prior.latency;
            self.spread = prior.spread;
        }
    }

    /// Whether the last sample is so old that the next replaces the estimate.
    fn stale(&self, now_ms: u64) -> bool {
        self.samples > 0 && now_ms.saturating_sub(self.updated_ms) > STALE_AFTER_MS
    }

    /// Forgets the latency and its spread (not the bandwidth, nor the load): the next sample
    /// is the latency, and the next that measures the bandwidth is the bandwidth.
    fn forget(&mut self) {
        self.samples = 0;
    }

    /// Whether an answer of `bytes` measures the node's bandwidth: a large one, or one whose
    /// transfer at the bandwidth known is long ([`SMALL_SAMPLE_TRANSFER`]).
    fn measures_bandwidth(&self, bytes: u64) -> bool {
        bytes >= BANDWIDTH_SAMPLE_BYTES
            || self.bandwidth.is_some_and(|_| {
                let transfer = self.transfer(bytes);
                transfer >= SMALL_SAMPLE_TRANSFER && transfer > self.latency
            })
    }

    /// An answer of `bytes` after `elapsed`.
    pub fn observe(&mut self, elapsed: Duration, bytes: u64, now_ms: u64) {
        if self.stale(now_ms) {
            self.forget();
        }
        let elapsed = elapsed.as_secs_f64();
        if self.measures_bandwidth(bytes) {
            // The transfer is what the answer took beyond the latency (at least half of it).
            let transfer = (elapsed - self.latency).max(elapsed / 2.0).max(1e-6);
            let sample = lossy_f64(bytes) / transfer;
            self.bandwidth = Some(match self.bandwidth {
                Some(average) if self.samples > 0 && !self.probed => average + GAIN * (sample - average),
                _ => sample,
            });
            self.probed = false;
        }
        let latency = (elapsed - self.transfer(bytes)).max(elapsed / 10.0);
        self.add_latency(latency, now_ms);
    }

    /// A transfer of `bytes` that took `transfer` from the answer's head to its last byte (a
    /// probe of the link, [`crate::node::routes::PROBE`]). It counts only if it shows a thin
    /// link (under a quarter of the prior bandwidth) and no answer measured the
    /// node's bandwidth yet: the probe is there to find a thin link before the first read, and
    /// its figure of a fast link (the link alone, no work of the node's) is not comparable
    /// with what answers measure.
    pub fn observe_transfer(&mut self, bytes: u64, transfer: Duration) {
        let sample = lossy_f64(bytes) / transfer.as_secs_f64().max(MIN_TRANSFER);
        if sample * THIN_LINK_FACTOR >= PRIOR_BANDWIDTH || (self.bandwidth.is_some() && !self.probed) {
            return;
        }
        self.bandwidth = Some(match self.bandwidth {
            Some(average) => average + GAIN * (sample - average),
            None => sample,
        });
        self.probed = true;
    }

    /// The bandwidth answers measured (not a probe's): what the typical bandwidth of the nodes
    /// compared is made of.
    pub fn measured_bandwidth(&self) -> Option<f64> {
        self.bandwidth.filter(|_| !self.probed)
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
            prior: ZonePrior::Unknown,
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
        let thin = estimate.bandwidth;
        estimate.observe(Duration::from_millis(2), 100, 30 + STALE_AFTER_MS + 1);
        assert!(estimate.latency < 0.003, "after a silence, the new sample is the estimate");
        assert_eq!(estimate.bandwidth, thin, "a small answer says nothing of the link: it is kept");
        estimate.observe(Duration::from_millis(42), MIB, 30 + 2 * STALE_AFTER_MS + 2);
        assert!(
            estimate.bandwidth.is_some_and(|rate| rate > 20e6),
            "the next answer that measures the link after a silence replaces what was kept: {:?}",
            estimate.bandwidth
        );
    }

    #[test]
    fn answers_too_small_to_measure_a_fast_link_measure_a_thin_one() {
        let mut fast = Estimate::prior(None);
        let mut thin = Estimate::prior(None);
        fast.observe_transfer(MIB, Duration::from_millis(5));
        thin.observe_transfer(MIB, Duration::from_millis(400));
        // A 75 kB sliver: under a millisecond at 200 MB/s (says nothing), 30 ms at 2.6 MB/s.
        let sliver = 75_000;
        let before = fast.bandwidth;
        fast.observe(Duration::from_millis(2), sliver, 1);
        assert_eq!(fast.bandwidth, before, "a small answer of a fast link is latency");
        // The thin link widened: its small answers now come at once, and say so.
        for ms in 1..=8 {
            thin.observe(Duration::from_millis(2), sliver, ms);
        }
        assert!(thin.bandwidth.is_some_and(|rate| rate > 10e6), "{:?}", thin.bandwidth);
    }

    #[test]
    fn requests_to_a_thin_link_queue_on_it() {
        // Both 1 ms away; one link measured at 200 MB/s, the other at 2.5 MB/s (20 Mbit/s).
        let mut thin = Estimate::prior(None);
        thin.observe(Duration::from_millis(1), 100, 1);
        thin.observe_transfer(MIB, Duration::from_millis(420));
        let typical = Some(200e6);
        let sliver = 75_000;
        assert!(thin.thin_among(typical) && !thin.thin_among(Some(5e6)));
        // The third request waits for two transfers before its own: three times one transfer.
        let one = thin.score_among(sliver, 0, typical).as_secs_f64() - thin.latency;
        let third = thin.score_among(sliver, 2, typical).as_secs_f64() - thin.latency;
        assert!((third / one - 3.0).abs() < 0.01, "{third} / {one}");
        // The cube alone (the link not thin next to the others) prices it under two.
        let cube = thin.score_among(sliver, 2, Some(5e6)).as_secs_f64() - thin.latency;
        assert!(cube < 2.0 * one, "{cube} / {one}");
        let alone = thin.patience_among(sliver, typical);
        let behind_two = Estimate { in_flight: 2, ..thin }.patience_among(sliver, typical);
        assert!(behind_two > alone + Duration::from_millis(50), "{behind_two:?} / {alone:?}");
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
