//! The fused statistics kernel on the GPU: two passes over a dense buffer, after which
//! only the counters, two sums, min/max and the histogram cross the bus. The results
//! follow the CPU kernel's rules (see [`crate::cpu::stats`]): non-finite values are
//! only counted, the histogram slot is computed in the input's precision with the same
//! operations, and the variance is a sum of squared deviations from the mean (never
//! `E[x^2] - E[x]^2`).

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::{elems_cfg, kname, source, CudaDevice, CudaFloat, CudaResultExt};
use crate::cpu::stats::{Stats, StatsConfig, Totals};
use crate::error::{KernelError, Result};

const SRC: super::device::Source = source!("stats", "src/stats.cu");

/// Blocks of the stats launches at most (each loops over its share of the input).
const MAX_BLOCKS: usize = 1024;

/// Decodes the kernel's order-preserving `u64` key of an `f64`.
fn from_key(k: u64) -> f64 {
    let bits = if k >> 63 == 1 { k & !(1 << 63) } else { !k };
    f64::from_bits(bits)
}

/// The statistics of the first `len` elements of `x`, as [`crate::cpu::stats::stats`]
/// computes them (equal counts and histogram; moments equal up to rounding).
pub fn stats<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    len: usize,
    config: &StatsConfig,
) -> Result<Stats> {
    const OP: &str = "cuda stats";
    config.validate()?;
    if x.len() < len {
        return Err(KernelError::SliceTooShort {
            op: OP,
            what: "input",
            needed: len,
            got: x.len(),
        });
    }
    // The configuration in T, as the CPU kernel prepares it.
    let (lo, hi) = (T::from_f64(config.lo), T::from_f64(config.hi));
    let scale = T::from_f64(config.bins as f64 / (hi.to_f64() - lo.to_f64()));
    let ok = lo.to_f64() < hi.to_f64()
        && lo.to_f64().is_finite()
        && hi.to_f64().is_finite()
        && scale.to_f64().is_finite()
        && scale.to_f64() > 0.0;
    if !ok {
        return Err(KernelError::InvalidArgument {
            op: "stats",
            detail: format!(
                "histogram range [{}, {}) with {} bins is not representable in {}",
                config.lo,
                config.hi,
                config.bins,
                T::SUFFIX
            ),
        });
    }
    let last_bin = T::from_f64((config.bins - 1) as f64);
    let near_zero = T::from_f64(config.near_zero);
    let saturation = T::from_f64(config.saturation);
    let bins = config.bins as u32;
    let abs = u32::from(config.abs);

    let mut counters = dev.zeros::<u64>(6)?;
    let mut sum = dev.zeros::<f64>(1)?;
    let mut minmax = dev.htod(&[u64::MAX, 0u64])?;
    let mut hist = dev.zeros::<u64>(config.bins)?;
    let n64 = len as u64;
    let cfg = {
        let mut c = elems_cfg(len);
        c.grid_dim.0 = c.grid_dim.0.min(MAX_BLOCKS as u32);
        c
    };
    if len > 0 {
        let f = dev.function(SRC, &kname::<T>("stats_pass1"))?;
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&n64)
            .arg(x)
            .arg(&lo)
            .arg(&hi)
            .arg(&scale)
            .arg(&last_bin)
            .arg(&near_zero)
            .arg(&saturation)
            .arg(&abs)
            .arg(&bins)
            .arg(&mut counters)
            .arg(&mut sum)
            .arg(&mut minmax)
            .arg(&mut hist);
        // SAFETY: `x` holds `len` elements, the outputs have the sizes the kernel
        // writes (6 counters, 1 sum, 2 keys, `bins` counts), and the argument list
        // matches the kernel's signature.
        unsafe { l.launch(cfg) }.op(OP)?;
    }
    let c = dev.dtoh(&counters, 6)?;
    let s = dev.dtoh(&sum, 1)?[0];
    let count = c[0];
    let mean = if count > 0 { s / count as f64 } else { 0.0 };
    let mut m2 = dev.zeros::<f64>(1)?;
    if count > 0 {
        let f = dev.function(SRC, &kname::<T>("stats_pass2"))?;
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&n64).arg(x).arg(&mean).arg(&mut m2);
        // SAFETY: `x` holds `len` elements, `m2` one, and the argument list matches the
        // kernel's signature.
        unsafe { l.launch(cfg) }.op(OP)?;
    }
    let m2 = dev.dtoh(&m2, 1)?[0];
    let mm = dev.dtoh(&minmax, 2)?;
    let histogram = dev.dtoh(&hist, config.bins)?;
    let totals = Totals {
        count,
        mean,
        m2,
        min: from_key(mm[0]),
        max: from_key(mm[1]),
        below: c[1],
        above: c[2],
        near_zero: c[3],
        saturated: c[4],
        non_finite: c[5],
    };
    Ok(Stats::from_totals(config, totals, histogram))
}

#[cfg(test)]
mod tests {
    use super::from_key;

    /// The encoding `order_key` in `stats.cu` applies, for the round trip.
    fn to_key(v: f64) -> u64 {
        let b = v.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    }

    #[test]
    fn order_keys_round_trip_and_preserve_order() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        for w in values.windows(2) {
            assert!(to_key(w[0]) <= to_key(w[1]), "{} vs {}", w[0], w[1]);
        }
        for v in values {
            assert_eq!(from_key(to_key(v)).to_bits(), v.to_bits());
        }
    }
}
