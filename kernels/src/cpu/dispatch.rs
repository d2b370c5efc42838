//! Run-time choice of the SIMD instruction set.
//!
//! Kernels are compiled for every level this crate knows and pick one when called:
//! the best the CPU supports ([`SimdLevel::detected`]), lowered by a process-wide cap
//! ([`set_level_cap`]) that benches use to measure the slower paths. Tests do not touch
//! the cap (tests run in parallel threads); they call the `*_at(level, ..)` variants of
//! each kernel for every level in [`SimdLevel::available`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// An instruction-set level a kernel can run at, from slowest to fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Plain Rust that compiles on every target (the compiler may still auto-vectorise
    /// for the baseline instruction set).
    Portable,
    /// x86-64 AVX2 with fused multiply-add (256-bit vectors).
    Avx2Fma,
    /// x86-64 AVX-512 Foundation (512-bit vectors).
    Avx512,
}

impl SimdLevel {
    /// Every level, slowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Portable, SimdLevel::Avx2Fma, SimdLevel::Avx512];

    /// The best level this CPU supports (detected once, then cached).
    pub fn detected() -> SimdLevel {
        static DETECTED: OnceLock<SimdLevel> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// Whether this CPU can run kernels compiled for `self`.
    pub fn is_supported(self) -> bool {
        self <= Self::detected()
    }

    /// The levels this CPU can run, slowest first: what tests iterate over.
    pub fn available() -> Vec<SimdLevel> {
        Self::ALL.into_iter().filter(|l| l.is_supported()).collect()
    }

    /// `self` if the CPU supports it, otherwise the best supported level below it.
    /// Kernels call this on a requested level so that asking for AVX-512 on an
    /// AVX2-only machine can never execute an illegal instruction.
    pub fn clamp_to_supported(self) -> SimdLevel {
        self.min(Self::detected())
    }

    /// A short lowercase name, e.g. for bench ids: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2Fma => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    fn from_u8(v: u8) -> SimdLevel {
        match v {
            0 => SimdLevel::Portable,
            1 => SimdLevel::Avx2Fma,
            _ => SimdLevel::Avx512,
        }
    }
}

impl std::fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn detect() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return SimdLevel::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return SimdLevel::Avx2Fma;
        }
    }
    SimdLevel::Portable
}

static LEVEL_CAP: AtomicU8 = AtomicU8::new(u8::MAX);

/// Caps the level that kernels called without an explicit level use, process-wide,
/// and returns the previous cap. Meant for benches and demos that compare paths;
/// tests should prefer the explicit `*_at` kernel variants.
///
/// ```
/// use kernels::cpu::dispatch::{active, set_level_cap, SimdLevel};
/// let previous = set_level_cap(SimdLevel::Portable);
/// assert_eq!(active(), SimdLevel::Portable);
/// set_level_cap(previous);
/// ```
pub fn set_level_cap(level: SimdLevel) -> SimdLevel {
    SimdLevel::from_u8(LEVEL_CAP.swap(level as u8, Ordering::Relaxed))
}

/// The level kernels use by default: the detected level lowered by the cap.
pub fn active() -> SimdLevel {
    SimdLevel::detected().min(SimdLevel::from_u8(LEVEL_CAP.load(Ordering::Relaxed)))
}
