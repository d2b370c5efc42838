//! The per-type glue of gemm: which micro-kernel runs at which SIMD level, and the
//! thread-local packing buffers.

use std::cell::RefCell;

use super::driver::{self, Problem};
use super::kernel::{PortableF32, PortableF64};
#[cfg(target_arch = "x86_64")]
use super::x86;
use super::GemmScalar;
use crate::cpu::dispatch::SimdLevel;

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A [`GemmScalar`] the fast driver is implemented for (f32 and f64; sealed).
pub(crate) trait Element: GemmScalar + private::Sealed {
    /// Runs a validated, non-degenerate problem with the micro-kernel for `level`
    /// (clamped to what the CPU supports), on at most `threads` threads.
    fn run_at(level: SimdLevel, problem: Problem<Self>, threads: usize);

    /// Calls `f` with this thread's buffer for packed blocks of A. Buffers keep their
    /// capacity between calls, so steady-state gemm calls do not allocate. A re-entrant
    /// call on the same thread gets a fresh temporary buffer instead.
    fn with_a_buffer<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;

    /// Like [`Element::with_a_buffer`], for packed blocks of B (a separate buffer, so a
    /// thread can hold a shared B block while it packs A blocks).
    fn with_b_buffer<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
}

/// Runs `f` on the buffer in `cell`, or on a fresh one if the cell is already in use
/// further up this thread's stack.
fn with_buffer<T, R>(cell: &RefCell<Vec<T>>, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
    match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::new()),
    }
}

macro_rules! impl_element {
    ($t:ty, $a_buf:ident, $b_buf:ident, portable: $portable:ty, avx2: $avx2:ident, avx512: $avx512:ident) => {
        thread_local! {
            static $a_buf: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
            static $b_buf: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
        }

        impl Element for $t {
            fn run_at(level: SimdLevel, problem: Problem<Self>, threads: usize) {
                match level.clamp_to_supported() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the level is clamped to what this CPU supports, and
                    // Avx512 implies AVX-512F.
                    SimdLevel::Avx512 => unsafe { driver::run::<x86::$avx512>(problem, threads) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above; Avx2Fma implies AVX2 and FMA.
                    SimdLevel::Avx2Fma => unsafe { driver::run::<x86::$avx2>(problem, threads) },
                    // SAFETY: the portable kernel needs no CPU feature.
                    _ => unsafe { driver::run::<$portable>(problem, threads) },
                }
            }

            fn with_a_buffer<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
                $a_buf.with(|cell| with_buffer(cell, f))
            }

            fn with_b_buffer<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
                $b_buf.with(|cell| with_buffer(cell, f))
            }
        }
    };
}

impl_element!(f32, PACK_A_F32, PACK_B_F32, portable: PortableF32, avx2: Avx2F32, avx512: Avx512F32);
impl_element!(f64, PACK_A_F64, PACK_B_F64, portable: PortableF64, avx2: Avx2F64, avx512: Avx512F64);
