//! Logs whose size does not grow with the run: how the recorders keep a bounded number
//! of records per layer, parameter and loss curve however many steps are recorded.
//!
//! Every per-step log of the crate ([`LayerActivations::records`], one sequence per
//! pass; [`ParamGradients::records`]; [`LossLog::train`] and [`LossLog::valid`]) holds
//! at most a **capacity** of records ([`DEFAULT_CAPACITY`] unless configured:
//! [`ActivationConfig::capacity`], [`GradientConfig::capacity`],
//! [`LossLog::with_capacity`]). Until the capacity is reached every record is exact,
//! one per recorded call, as before.
//!
//! # Folding
//!
//! When a record would take a sequence past its capacity, older records are **folded**
//! together: the call (step) axis is cut into aligned buckets of a width `w` (the
//! recording cadence `every` at first), adjacent records that fall in the same bucket
//! merge into one record covering a range of calls (`call..=last_call`,
//! `step..=last_step`), and `w` doubles until the sequence fits again.
//! Folding pairs neighbours (a bucket of width `2w` holds two buckets of width `w`), so
//! every record covers the same stretch of the run after a fold, the newest records
//! since then being finer: the figures show the whole run at an even resolution of
//! between about half the capacity and the capacity in points.
//!
//! A merged record holds the statistics of the union of the values of its parts,
//! accumulated in `f64`: counts and histograms add (bin by bin, with the values below
//! and above the range); means combine weighted by count; standard deviations combine
//! exactly by the parallel-variance (Chan et al.) formula from each part's count, mean
//! and std; minimum and maximum are the extremes; fractions (near zero, saturated) are
//! weighted by count; a loss is the mean of the losses it covers. Gradient ratios
//! (grad:data, log10 update:data) and learning rates, which are per-step quantities,
//! are the mean of the per-step values (undefined ones left out). Each record says how
//! many calls it stands for (`merged`, 1 for an exact record), so averages over
//! records (the health report's "last quarter of training") weight it by that count.
//!
//! # What stays exact
//!
//! - the **first** record of each sequence and the **last** (the newest): a health
//!   report's "at the first batch" and "at the last step", and the early-abort rule,
//!   which reads every new record while it is the newest;
//! - the records the user asked to keep: the snapshot call and the saturation-map call
//!   of an [`ActivationConfig`], its [`keep_exact`](crate::activations::ActivationConfig::keep_exact)
//!   calls, a [`GradientConfig::histogram_at`] step, a [`LossLog::keep_step`];
//! - where NaN or infinity first appeared
//!   ([`LayerActivations::first_non_finite`], [`ActivationLog::first_non_finite`],
//!   [`ParamGradients::first_non_finite`], [`LossLog::first_non_finite`]), noted when
//!   the record is taken;
//! - the highest per-call std of each layer and its call
//!   ([`ActivationRecord::peak_std`], [`ActivationRecord::peak_call`]), for the
//!   exploding-over-time verdict.
//!
//! Kept records never fold, so a sequence with `k` of them holds at most
//! `max(capacity, 2k + 1)` records; the configurations refuse a capacity below
//! [`MIN_CAPACITY`] or below `2 (k + 2) + 1`.
//!
//! [`LayerActivations::records`]: crate::activations::LayerActivations::records
//! [`LayerActivations::first_non_finite`]: crate::activations::LayerActivations::first_non_finite
//! [`ActivationLog::first_non_finite`]: crate::activations::ActivationLog::first_non_finite
//! [`ActivationConfig`]: crate::activations::ActivationConfig
//! [`ActivationConfig::capacity`]: crate::activations::ActivationConfig::capacity
//! [`ActivationRecord::peak_std`]: crate::activations::ActivationRecord::peak_std
//! [`ActivationRecord::peak_call`]: crate::activations::ActivationRecord::peak_call
//! [`ParamGradients::records`]: crate::gradients::ParamGradients::records
//! [`ParamGradients::first_non_finite`]: crate::gradients::ParamGradients::first_non_finite
//! [`GradientConfig::capacity`]: crate::gradients::GradientConfig::capacity
//! [`GradientConfig::histogram_at`]: crate::gradients::GradientConfig::histogram_at
//! [`LossLog::train`]: crate::losses::LossLog::train
//! [`LossLog::valid`]: crate::losses::LossLog::valid
//! [`LossLog::with_capacity`]: crate::losses::LossLog::with_capacity
//! [`LossLog::keep_step`]: crate::losses::LossLog::keep_step
//! [`LossLog::first_non_finite`]: crate::losses::LossLog::first_non_finite

use std::ops::RangeInclusive;

/// Records per layer and pass, per parameter and per loss curve unless configured:
/// enough points for a 1200-pixel-wide figure of the whole run, about 0.5 MB per
/// watched layer with the default 40-bin histograms.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The smallest capacity a configuration accepts.
pub const MIN_CAPACITY: usize = 16;

/// The smallest capacity that leaves room to fold a sequence with `kept` records
/// kept exact besides its first and last: `max(MIN_CAPACITY, 2 (kept + 2) + 1)`.
pub fn min_capacity(kept: usize) -> usize {
    MIN_CAPACITY.max(kept.saturating_add(2).saturating_mul(2).saturating_add(1))
}

/// What every record of a bounded series has in common (activation, gradient and
/// loss records): the calls (steps) it covers and how many recorded calls it stands
/// for, 1 for an exact record and more once older records were folded together.
///
/// ```
/// use diagnostics::bounded::Span;
/// use diagnostics::losses::LossLog;
/// let mut log = LossLog::with_capacity(16);
/// for step in 0..100 {
///     log.push_train(step, 1.0);
/// }
/// let first = &log.train[0];
/// assert!(!first.is_folded() && first.span() == (0..=0));
/// assert!(log.train.iter().any(|p| p.is_folded() && p.x() > p.first() as f64));
/// ```
pub trait Span {
    /// The first call (step) covered.
    fn first(&self) -> usize;
    /// The last call (step) covered.
    fn last(&self) -> usize;
    /// How many recorded calls (steps) it stands for.
    fn merged_calls(&self) -> u64;

    /// Whether it stands for more than one recorded call.
    fn is_folded(&self) -> bool {
        self.merged_calls() > 1
    }

    /// The calls (steps) covered: `first..=last`.
    fn span(&self) -> RangeInclusive<usize> {
        self.first()..=self.last()
    }

    /// Where it goes on a figure's call (step) axis: the middle of what it covers
    /// (its call, for an exact record).
    fn x(&self) -> f64 {
        0.5 * (self.first() as f64 + self.last() as f64)
    }
}

/// A record that can absorb the next records of its sequence.
pub(crate) trait Fold: Span {
    /// Merges `later`, which covers calls after this record's, into this record.
    fn absorb(&mut self, later: &Self);
}

/// The folding state of one sequence: how many records it holds and the current
/// bucket width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sequence {
    /// Records of the sequence now in the log.
    pub(crate) len: usize,
    /// Width of the buckets of the last fold, in calls (steps); the cadence before any.
    pub(crate) width: usize,
}

impl Sequence {
    /// An empty sequence recorded every `base` calls.
    pub(crate) fn new(base: usize) -> Self {
        Self {
            len: 0,
            width: base.max(1),
        }
    }
}

/// Folds the records of `items` that `member` selects (one sequence; other records are
/// left where they are) until at most `capacity` remain or nothing more can merge.
/// The first and last member and those `kept` selects are never merged.
pub(crate) fn fold_to_capacity<T: Fold>(
    items: &mut Vec<T>,
    seq: &mut Sequence,
    capacity: usize,
    member: impl Fn(&T) -> bool,
    kept: impl Fn(&T) -> bool,
) {
    if seq.len <= capacity {
        return;
    }
    let Some(last_index) = items.iter().rev().find(|t| member(t)).map(Span::last) else {
        return;
    };
    loop {
        // The records since the last fold are merged at its width first; the width
        // doubles only when that is not enough.
        rebucket(items, seq, &member, &kept);
        if seq.len <= capacity || seq.width > last_index || seq.width == usize::MAX {
            return; // it fits, or everything mergeable already shares one bucket
        }
        seq.width = seq.width.saturating_mul(2);
    }
}

/// One pass of folding at `seq.width`: merges each member into the open record before
/// it when both lie in the same aligned bucket, in place.
fn rebucket<T: Fold>(
    items: &mut Vec<T>,
    seq: &mut Sequence,
    member: &impl Fn(&T) -> bool,
    kept: &impl Fn(&T) -> bool,
) {
    let width = seq.width;
    let first = items.iter().position(member);
    let last = items.iter().rposition(member);
    let mut write = 0;
    // Index (below `write`) of the member that later members of its bucket merge into.
    let mut open: Option<usize> = None;
    for read in 0..items.len() {
        let is_member = member(&items[read]);
        let protected =
            is_member && (Some(read) == first || Some(read) == last || kept(&items[read]));
        if is_member && !protected {
            if let Some(o) = open {
                if items[o].first() / width == items[read].last() / width {
                    let (done, rest) = items.split_at_mut(read);
                    done[o].absorb(&rest[0]);
                    seq.len -= 1;
                    continue;
                }
            }
        }
        items.swap(write, read);
        if is_member {
            open = (!protected).then_some(write);
        }
        write += 1;
    }
    items.truncate(write);
}

/// Mean and population std of the union of two sets of `na` and `nb` values with
/// these means and stds (Chan et al.'s parallel variance). An empty side leaves the
/// other's.
pub(crate) fn combine_moments(
    (na, ma, sa): (f64, f64, f64),
    (nb, mb, sb): (f64, f64, f64),
) -> (f64, f64) {
    if nb <= 0.0 {
        return (ma, sa);
    }
    if na <= 0.0 {
        return (mb, sb);
    }
    let n = na + nb;
    let delta = mb - ma;
    let mean = ma + delta * (nb / n);
    let m2 = sa * sa * na + sb * sb * nb + delta * delta * (na * nb / n);
    (mean, (m2 / n).max(0.0).sqrt())
}

/// The count-weighted mean of two values (`NaN` when both weights are 0).
pub(crate) fn weighted(a: f64, na: f64, b: f64, nb: f64) -> f64 {
    let n = na + nb;
    if n <= 0.0 || nb <= 0.0 {
        return a;
    }
    if na <= 0.0 {
        return b;
    }
    (a * na + b * nb) / n
}

/// The mean of two per-step values weighted by the steps they stand for, leaving out
/// an undefined (non-finite) side; two undefined sides keep the first.
pub(crate) fn mean_of_defined(a: f64, na: u64, b: f64, nb: u64) -> f64 {
    match (a.is_finite(), b.is_finite()) {
        (true, true) => weighted(a, na as f64, b, nb as f64),
        (false, true) => b,
        _ => a,
    }
}

/// The weighted median of `(value, weight)` pairs: the median of the multiset in which
/// each value appears `weight` times (the mean of the two middle ones for an even
/// total), so that with unit weights it is the ordinary median. NaN when empty.
pub(crate) fn weighted_median(values: &mut [(f64, u64)]) -> f64 {
    let total: u64 = values.iter().map(|&(_, w)| w).sum();
    if total == 0 {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The value at (0-based) position `k` of the expanded multiset.
    let at = |k: u64| {
        let mut seen = 0;
        for &(v, w) in values.iter() {
            seen += w;
            if k < seen {
                return v;
            }
        }
        f64::NAN
    };
    if total % 2 == 1 {
        at(total / 2)
    } else {
        0.5 * (at(total / 2 - 1) + at(total / 2))
    }
}

/// The weighted mean of `(value, weight)` pairs (NaN when the weights sum to 0).
pub(crate) fn weighted_mean(values: impl Iterator<Item = (f64, u64)>) -> f64 {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), (v, w)| (s + v * w as f64, n + w));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The last part of `items` that stands for at least `fraction` of the calls they
/// cover together (at least one item when there are any), by `weight`: with unit
/// weights, the last `ceil(n * fraction)` items.
pub(crate) fn last_part_by_weight<T>(
    items: &[T],
    fraction: f64,
    weight: impl Fn(&T) -> u64,
) -> &[T] {
    let total: u64 = items.iter().map(&weight).sum();
    let want = ((total as f64 * fraction).ceil() as u64).max(1);
    let mut got = 0;
    let mut start = items.len();
    while start > 0 && got < want {
        start -= 1;
        got += weight(&items[start]);
    }
    &items[start..]
}

/// The first part of `items` that stands for at least `count` calls (at least one
/// item when there are any).
pub(crate) fn first_part_by_weight<T>(items: &[T], count: u64, weight: impl Fn(&T) -> u64) -> &[T] {
    let want = count.max(1);
    let mut got = 0;
    let mut end = 0;
    while end < items.len() && got < want {
        got += weight(&items[end]);
        end += 1;
    }
    &items[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `values` at calls `first..=last`.
    #[derive(Clone, Debug, PartialEq)]
    struct Run {
        first: usize,
        last: usize,
        values: Vec<u32>,
    }

    impl Span for Run {
        fn first(&self) -> usize {
            self.first
        }
        fn last(&self) -> usize {
            self.last
        }
        fn merged_calls(&self) -> u64 {
            self.values.len() as u64
        }
    }

    impl Fold for Run {
        fn absorb(&mut self, later: &Self) {
            self.last = later.last;
            self.values.extend_from_slice(&later.values);
        }
    }

    fn push(items: &mut Vec<Run>, seq: &mut Sequence, cap: usize, call: usize, kept: &[usize]) {
        items.push(Run {
            first: call,
            last: call,
            values: vec![call as u32],
        });
        seq.len += 1;
        fold_to_capacity(
            items,
            seq,
            cap,
            |_| true,
            |s| s.first == s.last && kept.contains(&s.first),
        );
    }

    #[test]
    fn folds_keep_first_last_and_kept_records_and_lose_nothing() {
        for n in [10usize, 100, 1000, 10_000] {
            let (mut items, mut seq) = (Vec::new(), Sequence::new(1));
            for call in 0..n {
                push(&mut items, &mut seq, 16, call, &[37]);
                assert!(
                    items.len() <= 16,
                    "{n}: {} {:?} {:?}",
                    items.len(),
                    seq,
                    items.iter().map(|s| (s.first, s.last)).collect::<Vec<_>>()
                );
                assert_eq!(items.len(), seq.len);
            }
            assert_eq!(items[0].values, vec![0]);
            assert_eq!(items.last().unwrap().values, vec![n as u32 - 1]);
            if n > 37 {
                assert!(items.iter().any(|s| s.values == vec![37]));
            }
            // Every call is in exactly one record, in order, each record in one bucket.
            let all: Vec<u32> = items.iter().flat_map(|s| s.values.clone()).collect();
            assert_eq!(all, (0..n as u32).collect::<Vec<_>>());
            for s in &items {
                assert_eq!(s.first / seq.width, s.last / seq.width, "{s:?}");
            }
        }
    }

    #[test]
    fn other_sequences_are_left_in_place() {
        // Even calls are sequence A, odd ones sequence B (which never folds).
        let mut items: Vec<Run> = Vec::new();
        let mut seq = Sequence::new(2);
        for call in 0..200 {
            items.push(Run {
                first: call,
                last: call,
                values: vec![call as u32],
            });
            if call % 2 == 0 {
                seq.len += 1;
                fold_to_capacity(&mut items, &mut seq, 16, |s| s.first % 2 == 0, |_| false);
            }
        }
        let odd: Vec<u32> = items
            .iter()
            .filter(|s| s.first % 2 == 1)
            .flat_map(|s| s.values.clone())
            .collect();
        assert_eq!(odd, (0..100).map(|k| 2 * k + 1).collect::<Vec<u32>>());
        assert!(items.iter().filter(|s| s.first % 2 == 0).count() <= 16);
    }

    #[test]
    fn chan_matches_the_union() {
        let a = [1.0, 2.0, 4.0];
        let b = [-3.0, 10.0];
        let moments = |x: &[f64]| {
            let n = x.len() as f64;
            let m = x.iter().sum::<f64>() / n;
            let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
            (n, m, v.sqrt())
        };
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let (_, m, s) = moments(&all);
        let (cm, cs) = combine_moments(moments(&a), moments(&b));
        assert!((cm - m).abs() < 1e-12 && (cs - s).abs() < 1e-12);
        assert_eq!(
            combine_moments((0.0, f64::NAN, f64::NAN), (2.0, 1.0, 0.5)),
            (1.0, 0.5)
        );
    }

    #[test]
    fn weighted_helpers_reduce_to_the_plain_ones() {
        assert_eq!(weighted_median(&mut [(3.0, 1), (1.0, 1), (2.0, 1)]), 2.0);
        assert_eq!(
            weighted_median(&mut [(4.0, 1), (1.0, 1), (2.0, 1), (3.0, 1)]),
            2.5
        );
        assert_eq!(weighted_median(&mut [(1.0, 3), (10.0, 1)]), 1.0);
        assert!(weighted_median(&mut []).is_nan());
        let items = [1u64, 1, 1, 1, 1, 1, 1, 1];
        assert_eq!(last_part_by_weight(&items, 0.25, |&w| w).len(), 2);
        let items = [8u64, 4, 1, 1];
        assert_eq!(last_part_by_weight(&items, 0.25, |&w| w), &[4, 1, 1]);
        assert_eq!(last_part_by_weight(&items, 0.125, |&w| w), &[1, 1]);
        assert_eq!(first_part_by_weight(&items, 3, |&w| w), &[8]);
        assert_eq!(mean_of_defined(f64::NAN, 3, 2.0, 1), 2.0);
        assert_eq!(mean_of_defined(1.0, 3, 5.0, 1), 2.0);
    }
}
