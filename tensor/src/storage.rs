//! The memory behind tensors, per device and dtype.
//!
//! `Storage` is an enum over devices and `CpuStorage` an enum over dtypes. Ops match on
//! them once and run a monomorphised loop; a CUDA backend is added by filling in the
//! `Cuda` arms, without touching the CPU code. With the `cuda` feature the arms call
//! `crate::cuda`; without it [`CudaStorage`] has no values, so those arms are
//! `match x {}` and cost nothing.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::dtype::DType;
use crate::tensor::Tensor;

/// A tensor's elements on one device.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// GPU memory (no values exist in a build without the `cuda` feature).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    Cuda(CudaStorage),
}

/// Host-memory elements, one variant per dtype. (Declared `pub` only so the sealed
/// `Element` plumbing can name it; the `storage` module is private.)
#[derive(Clone, Debug)]
pub enum CpuStorage {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `u32` elements.
    U32(Vec<u32>),
}

impl CpuStorage {
    /// The dtype of the elements.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::U32(_) => DType::U32,
        }
    }
}

/// Device memory of the CUDA backend. This build has no CUDA backend, so the type is
/// uninhabited: every `Storage::Cuda` match arm is statically unreachable, and creating
/// a tensor on `Device::Cuda` returns `TensorError::CudaUnavailable` instead.
#[cfg(not(feature = "cuda"))]
#[derive(Debug)]
pub(crate) enum CudaStorage {}

#[cfg(feature = "cuda")]
pub(crate) use crate::cuda::CudaStorage;

impl Tensor {
    /// Shared access to the storage. A poisoned lock (a panic elsewhere while writing)
    /// still holds plain numbers, so it is used as is rather than propagating a panic.
    #[inline]
    pub(crate) fn read_storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.storage.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Exclusive access to the storage (for in-place ops).
    #[inline]
    pub(crate) fn write_storage(&self) -> RwLockWriteGuard<'_, Storage> {
        self.storage.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Address of the shared storage lock: identifies the storage, orders lock taking.
    #[inline]
    pub(crate) fn storage_ptr(&self) -> *const RwLock<Storage> {
        std::sync::Arc::as_ptr(&self.storage)
    }
}

/// Read guards on the storages of several tensors, each storage locked once even if
/// several tensors share it (a second read lock on the same `RwLock` from one thread can
/// deadlock behind a waiting writer), taken in address order so that two threads
/// locking the same set can never wait on each other.
pub(crate) struct ReadSet<'a> {
    guards: Vec<RwLockReadGuard<'a, Storage>>,
    /// For each tensor passed in, the index of its guard.
    slots: Vec<usize>,
}

impl<'a> ReadSet<'a> {
    /// Locks the storages of `tensors` for reading.
    pub(crate) fn new(tensors: &[&'a Tensor]) -> Self {
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors[i].storage_ptr() as usize);
        let mut guards = Vec::with_capacity(tensors.len());
        let mut slots = vec![0; tensors.len()];
        let mut last: Option<*const RwLock<Storage>> = None;
        for i in order {
            let ptr = tensors[i].storage_ptr();
            if last != Some(ptr) {
                guards.push(tensors[i].read_storage());
                last = Some(ptr);
            }
            slots[i] = guards.len() - 1;
        }
        ReadSet { guards, slots }
    }

    /// The storage of the `i`-th tensor passed to [`ReadSet::new`].
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &Storage {
        &self.guards[self.slots[i]]
    }
}
