//! The per-GPU handle: context, stream, cuBLAS handle and the NVRTC-compiled modules,
//! plus the availability probe that never panics.

use std::collections::HashMap;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cudarc::cublas::{CudaBlas, Gemm, StridedBatchedConfig};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
    DeviceRepr, LaunchConfig, ValidAsZeroBits,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

use crate::error::{KernelError, Result};

/// Threads per block of every kernel (the `.cu` sources assume 256).
pub(crate) const BLOCK: u32 = 256;

/// The error for a failed CUDA call in `op`.
pub(crate) fn cuda_err(op: &'static str) -> impl FnOnce(&dyn Display) -> KernelError {
    move |e| KernelError::Cuda {
        op,
        detail: e.to_string(),
    }
}

/// Maps any displayable CUDA error into a [`KernelError::Cuda`] naming `op`.
pub(crate) trait CudaResultExt<T> {
    /// Converts the error, naming `op`.
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T, E: Display> CudaResultExt<T> for std::result::Result<T, E> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|e| cuda_err(op)(&e))
    }
}

/// Element types the CUDA kernels are instantiated for; `SUFFIX` names the instance
/// (`unary_f32`, `cmp_u32`, ...).
pub trait CudaElem: DeviceRepr + ValidAsZeroBits + Copy + Default + Send + Sync + 'static {
    /// Kernel-name suffix of this type.
    const SUFFIX: &'static str;
}

impl CudaElem for f32 {
    const SUFFIX: &'static str = "f32";
}
impl CudaElem for f64 {
    const SUFFIX: &'static str = "f64";
}
impl CudaElem for u32 {
    const SUFFIX: &'static str = "u32";
}

/// The float element types (`f32`, `f64`): arithmetic kernels and cuBLAS gemm.
pub trait CudaFloat: CudaElem {
    /// `v` converted with `as` semantics.
    fn from_f64(v: f64) -> Self;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// Strided-batched gemm through cuBLAS (`sgemm` / `dgemm`).
    ///
    /// # Safety
    /// The configuration must address only memory inside `a`, `b` and `c`.
    #[doc(hidden)]
    unsafe fn blas_gemm<A: DevicePtr<Self>, B: DevicePtr<Self>, C: DevicePtrMut<Self>>(
        blas: &CudaBlas,
        cfg: StridedBatchedConfig<Self>,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<()>;
}

macro_rules! cuda_float {
    ($t:ty) => {
        impl CudaFloat for $t {
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            unsafe fn blas_gemm<A: DevicePtr<Self>, B: DevicePtr<Self>, C: DevicePtrMut<Self>>(
                blas: &CudaBlas,
                cfg: StridedBatchedConfig<Self>,
                a: &A,
                b: &B,
                c: &mut C,
            ) -> Result<()> {
                // SAFETY: forwarded from the caller's contract.
                unsafe { blas.gemm_strided_batched(cfg, a, b, c) }.op("gemm")
            }
        }
    };
}
cuda_float!(f32);
cuda_float!(f64);

/// A kernel source: a module name (the cache key) and its CUDA C text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source {
    pub(crate) name: &'static str,
    pub(crate) code: &'static str,
}

macro_rules! source {
    ($name:literal, $file:literal) => {
        crate::cuda::device::Source {
            name: $name,
            code: concat!(include_str!("src/common.cuh"), include_str!($file)),
        }
    };
}
pub(crate) use source;

/// Why CUDA cannot be used here, or `Ok(())` if a device can be opened: the driver
/// library, NVRTC and cuBLAS must load and the driver must report at least one GPU.
/// Never panics, also when the libraries are missing (cudarc would panic on first use,
/// so their presence is probed first).
///
/// ```
/// // On a machine without CUDA this explains why, for example
/// // "the CUDA driver library (libcuda.so) was not found".
/// match kernels::cuda::cuda_available() {
///     Ok(()) => println!("CUDA is available"),
///     Err(why) => println!("no CUDA: {why}"),
/// }
/// ```
pub fn cuda_available() -> std::result::Result<(), String> {
    libraries_present()?;
    let count = catch_unwind(CudaContext::device_count)
        .map_err(|_| "the CUDA driver library lacks a required function".to_string())?
        .map_err(|e| format!("the CUDA driver failed to initialise: {e}"))?;
    if count <= 0 {
        return Err("the CUDA driver reports no GPU".into());
    }
    Ok(())
}

/// Checks that the three dynamically loaded libraries can be opened.
fn libraries_present() -> std::result::Result<(), String> {
    // SAFETY: each probe only tries to open the shared library with `dlopen` (running
    // its initialisers, as any use of CUDA would) and closes it again.
    let (driver, nvrtc, cublas) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    };
    if !driver {
        return Err("the CUDA driver library (libcuda.so) was not found".into());
    }
    if !nvrtc {
        return Err("the NVRTC library (libnvrtc.so) was not found".into());
    }
    if !cublas {
        return Err("the cuBLAS library (libcublas.so) was not found".into());
    }
    Ok(())
}

/// One GPU: its context, the single stream every op of this crate runs on (so ops are
/// ordered without events), a cuBLAS handle on that stream, and the kernel modules,
/// compiled with NVRTC for this GPU's architecture on first use and cached.
pub struct CudaDevice {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    arch: String,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// The layout description passed to launches whose operands are all dense.
    empty_info: CudaSlice<u64>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("ordinal", &self.ordinal)
            .field("arch", &self.arch)
            .finish_non_exhaustive()
    }
}

impl CudaDevice {
    /// The handle of GPU `ordinal`, opened on first use and shared afterwards. Errors
    /// (never panics) when CUDA is unavailable or the ordinal does not exist.
    pub fn get(ordinal: usize) -> Result<Arc<CudaDevice>> {
        static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
        let mut devices = DEVICES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = devices.get(&ordinal) {
            return Ok(Arc::clone(d));
        }
        cuda_available().map_err(|detail| KernelError::Cuda {
            op: "open device",
            detail,
        })?;
        let dev = catch_unwind(AssertUnwindSafe(|| Self::open(ordinal))).map_err(|_| {
            KernelError::Cuda {
                op: "open device",
                detail: format!(
                    "cuda:{ordinal}: a CUDA library lacks a required function (driver too old?)"
                ),
            }
        })??;
        let dev = Arc::new(dev);
        devices.insert(ordinal, Arc::clone(&dev));
        Ok(dev)
    }

    fn open(ordinal: usize) -> Result<CudaDevice> {
        const OP: &str = "open device";
        let count = CudaContext::device_count().op(OP)?;
        if ordinal >= count.max(0) as usize {
            return Err(KernelError::Cuda {
                op: OP,
                detail: format!("cuda:{ordinal} does not exist: the driver reports {count} GPU(s)"),
            });
        }
        let ctx = CudaContext::new(ordinal).op(OP)?;
        // SAFETY: every op of this crate runs on the one stream below, so the cross-stream
        // synchronisation that event tracking provides is never needed.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx.compute_capability().op(OP)?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(Arc::clone(&stream)).op(OP)?;
        let empty_info = stream.alloc_zeros::<u64>(1).op(OP)?;
        Ok(CudaDevice {
            ordinal,
            ctx,
            stream,
            blas,
            arch: format!("compute_{major}{minor}"),
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            empty_info,
        })
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The GPU's name as the driver reports it.
    pub fn name(&self) -> Result<String> {
        self.ctx.name().op("device name")
    }

    /// The stream all ops of this crate run on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Waits until every queued op has finished (for timing and error checking).
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().op("synchronize")
    }

    pub(crate) fn blas(&self) -> &CudaBlas {
        &self.blas
    }

    /// `n` zeros on the device (a buffer of at least one element, since CUDA cannot
    /// allocate zero bytes).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(n.max(1)).op("alloc")
    }

    /// A device buffer of `n` elements (at least one) whose contents the caller
    /// overwrites before reading.
    pub(crate) fn alloc<T: DeviceRepr>(&self, n: usize) -> Result<CudaSlice<T>> {
        // SAFETY: every caller writes all `n` elements with a kernel before any read.
        unsafe { self.stream.alloc::<T>(n.max(1)) }.op("alloc")
    }

    /// A copy of `data` on the device.
    pub fn htod<T: DeviceRepr + ValidAsZeroBits>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        if data.is_empty() {
            return self.zeros(0);
        }
        self.stream.clone_htod(data).op("copy to device")
    }

    /// The first `len` elements of `src`, copied to the host (waits for the stream).
    pub fn dtoh<T: DeviceRepr>(&self, src: &CudaSlice<T>, len: usize) -> Result<Vec<T>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        if len > src.len() {
            return Err(KernelError::SliceTooShort {
                op: "copy to host",
                what: "device buffer",
                needed: len,
                got: src.len(),
            });
        }
        let v = self
            .stream
            .clone_dtoh(&src.slice(..len))
            .op("copy to host")?;
        // Pageable copies complete before returning; the synchronise also surfaces any
        // error of the kernels queued before (an asynchronous launch reports none).
        self.synchronize()?;
        Ok(v)
    }

    /// The function `name` of module `src`, compiling and loading the module on first
    /// use.
    pub(crate) fn function(&self, src: Source, name: &str) -> Result<CudaFunction> {
        let mut fns = self
            .functions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = fns.get(name) {
            return Ok(f.clone());
        }
        let module = self.module(src)?;
        let f = module.load_function(name).map_err(|e| KernelError::Cuda {
            op: "load kernel",
            detail: format!("{name} in module {}: {e}", src.name),
        })?;
        fns.insert(name.to_string(), f.clone());
        Ok(f)
    }

    fn module(&self, src: Source) -> Result<Arc<CudaModule>> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = modules.get(src.name) {
            return Ok(Arc::clone(m));
        }
        let opts = CompileOptions {
            options: vec![format!("--gpu-architecture={}", self.arch)],
            name: Some(format!("{}.cu", src.name)),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(src.code, opts).map_err(|e| KernelError::Cuda {
            op: "nvrtc compile",
            detail: format!("module {} for {}: {e:?}", src.name, self.arch),
        })?;
        let m = self.ctx.load_module(ptx).op("load module")?;
        modules.insert(src.name, Arc::clone(&m));
        Ok(m)
    }

    /// The `u64` layout description a strided kernel reads, uploaded; an empty one
    /// (every operand dense) is a shared one-element buffer, so dense launches copy
    /// nothing to the device.
    pub(crate) fn info(&self, values: &[usize]) -> Result<Info<'_>> {
        if values.is_empty() {
            return Ok(Info::Shared(&self.empty_info));
        }
        let v: Vec<u64> = values.iter().map(|&x| x as u64).collect();
        Ok(Info::Owned(self.htod(&v)?))
    }
}

/// A layout description on the device (see [`CudaDevice::info`]).
pub(crate) enum Info<'a> {
    /// The device's shared placeholder (never read: the kernel is told rank 0).
    Shared(&'a CudaSlice<u64>),
    /// A freshly uploaded description.
    Owned(CudaSlice<u64>),
}

impl Info<'_> {
    /// The buffer to pass to the kernel.
    pub(crate) fn slice(&self) -> &CudaSlice<u64> {
        match self {
            Info::Shared(s) => s,
            Info::Owned(s) => s,
        }
    }
}

/// A grid-stride launch over `n` elements.
pub(crate) fn elems_cfg(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 16) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row (grid-stride over rows beyond 65535).
pub(crate) fn rows_cfg(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.clamp(1, 65535) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The kernel name `base_suffix` for element type `T`.
pub(crate) fn kname<T: CudaElem>(base: &str) -> String {
    format!("{base}_{}", T::SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_a_reason_or_a_device_never_a_panic() {
        match cuda_available() {
            Ok(()) => {
                let dev = CudaDevice::get(0).expect("an available GPU opens");
                assert_eq!(dev.ordinal(), 0);
                assert!(CudaDevice::get(1 << 20).is_err());
            }
            Err(why) => {
                assert!(!why.is_empty());
                let e = CudaDevice::get(0).unwrap_err().to_string();
                assert!(e.contains(&why), "{e}");
            }
        }
    }

    #[test]
    fn launch_shapes_cover_the_work() {
        assert_eq!(elems_cfg(0).grid_dim.0, 1);
        assert_eq!(elems_cfg(257).grid_dim.0, 2);
        assert_eq!(elems_cfg(usize::MAX).grid_dim.0, 1 << 16);
        assert_eq!(rows_cfg(10).grid_dim.0, 10);
        assert_eq!(rows_cfg(1 << 20).grid_dim.0, 65535);
        assert_eq!(kname::<f64>("unary"), "unary_f64");
    }
}
