//! Flushing subnormal floats to zero while training.
//!
//! Subnormal numbers (below `1.2e-38` in f32) take a microcode assist on x86 — about a
//! hundred cycles per operation instead of one. A network whose activations or
//! gradients die away produces them by the million: the lesson's baseline CNN at lr 0.6
//! spent about 30% of its epoch in such assists here. Setting the CPU's *flush to zero*
//! (results) and *denormals are zero* (inputs) modes makes those values exact zeros,
//! which changes no number a network can resolve; TensorFlow runs its kernels this way
//! and PyTorch offers the same switch as `torch.set_flush_denormal(True)`.
//!
//! The mode is per thread (the MXCSR register on x86-64). [`FlushDenormals::enable`]
//! sets it on the calling thread and on every thread of the current rayon pool (with
//! `rayon::broadcast`), and the guard restores each thread's previous mode when it is
//! dropped. On other architectures it does nothing and [`FlushDenormals::is_active`]
//! says so.
//!
//! ```
//! use kernels::cpu::denormals::FlushDenormals;
//! let tiny = std::hint::black_box(1e-39f32); // subnormal
//! {
//!     let guard = FlushDenormals::enable();
//!     if guard.is_active() {
//!         assert_eq!(std::hint::black_box(tiny) * 1.0, 0.0);
//!     }
//! }
//! assert_eq!(std::hint::black_box(tiny) * 1.0, tiny); // restored
//! ```

/// MXCSR bits: FTZ (bit 15) and DAZ (bit 6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit control/status register to the given address,
    // which points to a live, aligned u32; SSE is part of the x86-64 baseline.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: `ldmxcsr` loads the register from a live u32. Only the FTZ and DAZ bits
    // are ever changed from what `read_mxcsr` returned (rounding mode and exception
    // masks are kept), so no reserved bit is set and no exception is unmasked.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags));
    }
}

/// Sets or clears flush-to-zero and denormals-are-zero on the calling thread and
/// returns whether they were set before. Always `false` (and no effect) off x86-64.
pub fn set_flush_denormals(on: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let csr = read_mxcsr();
        let was = csr & FTZ_DAZ == FTZ_DAZ;
        write_mxcsr(if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ });
        was
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = on;
        false
    }
}

/// Whether subnormals are flushed on the calling thread.
pub fn flush_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        read_mxcsr() & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Flushes subnormals to zero on this thread and on the current rayon pool's threads
/// until dropped; each thread then gets its previous mode back.
///
/// Create it on the thread that drives the work (its pool is the one whose threads are
/// set), and keep it on that thread (it is not `Send`).
#[derive(Debug)]
#[must_use = "the mode is restored when the guard is dropped"]
pub struct FlushDenormals {
    /// Previous mode of the calling thread.
    caller_was: bool,
    /// Previous mode of each pool thread, by index.
    pool_was: Vec<bool>,
    active: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl FlushDenormals {
    /// Enables flushing here and on every thread of the current rayon pool.
    pub fn enable() -> Self {
        let caller_was = set_flush_denormals(true);
        let pool_was = rayon::broadcast(|_| set_flush_denormals(true));
        Self {
            caller_was,
            pool_was,
            active: cfg!(target_arch = "x86_64"),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Whether this platform supports the mode (x86-64); elsewhere the guard is inert.
    pub fn is_active(&self) -> bool {
        self.active
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        let pool_was = std::mem::take(&mut self.pool_was);
        rayon::broadcast(|ctx| {
            let was = pool_was.get(ctx.index()).copied().unwrap_or(false);
            set_flush_denormals(was);
        });
        set_flush_denormals(self.caller_was);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn product_is_flushed() -> bool {
        let tiny = std::hint::black_box(1e-39f32);
        std::hint::black_box(tiny) * std::hint::black_box(1.0f32) == 0.0
    }

    #[test]
    fn the_guard_flushes_on_the_pool_and_restores_it() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            assert!(!product_is_flushed());
            {
                let guard = FlushDenormals::enable();
                if !guard.is_active() {
                    return;
                }
                assert!(flush_denormals());
                let flushed: Vec<bool> = rayon::broadcast(|_| product_is_flushed());
                assert_eq!(flushed, vec![true; 3]);
                let all = (0..1000).into_par_iter().all(|_| product_is_flushed());
                assert!(all);
            }
            assert!(!flush_denormals());
            let flushed: Vec<bool> = rayon::broadcast(|_| product_is_flushed());
            assert_eq!(flushed, vec![false; 3]);
        });
    }

    #[test]
    fn set_reports_the_previous_mode() {
        let before = set_flush_denormals(true);
        assert_eq!(set_flush_denormals(before), cfg!(target_arch = "x86_64"));
        assert_eq!(flush_denormals(), before);
    }
}
