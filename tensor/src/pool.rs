//! A cache of large host buffers, reused from one tensor to the next.
//!
//! A training step allocates the same large tensors every time (activations,
//! gradients, kernel outputs) and frees them at the end. The system allocator hands
//! buffers of this size out as fresh `mmap`s and returns them on free, so every step
//! pays a page fault for each 4 KiB page it writes (and the kernel zeroes each page):
//! on the lesson's CNN that was a tenth of the step, and a quarter of a large
//! BatchNorm. PyTorch hides this with malloc tunables or its own caching allocator;
//! this module is our caching allocator for the CPU: when the storage of a tensor of
//! at least [`MIN_POOLED_BYTES`] is dropped, its buffer is kept here (up to a byte
//! limit, [`set_limit`]), and the next tensor of the same dtype and length takes it
//! instead of asking the allocator.
//!
//! Reused buffers hold the values of the tensor they came from, never uninitialised
//! memory; [`buffer`] documents that its contents are unspecified, and callers that
//! overwrite every element use it to skip zeroing.
//!
//! The tensors this crate creates take their buffers from the pool when one fits and
//! otherwise allocate fallibly: a buffer the system refuses is a
//! [`TensorError::AllocationFailed`](crate::TensorError::AllocationFailed) naming the
//! op, the shape and the bytes. Code outside the crate gets the same with
//! [`try_buffer`] and [`try_filled`]; [`buffer`] and [`filled`] abort on a refused
//! allocation, like `vec!`.
//!
//! ```
//! use tensor::{pool, DType, Device, Tensor};
//! pool::clear();
//! let big = Tensor::zeros([1024, 1024], DType::F32, &Device::Cpu).unwrap();
//! drop(big); // 4 MiB: kept
//! assert_eq!(pool::stats().buffers, 1);
//! let again = Tensor::zeros([1024, 1024], DType::F32, &Device::Cpu).unwrap(); // reuses it
//! assert_eq!(pool::stats().buffers, 0);
//! assert_eq!(again.sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex, PoisonError};

use crate::cpu::alloc_buf;
use crate::dtype::{DType, Element};
use crate::error::Result;
use crate::shape::Shape;
use crate::storage::{CpuStorage, Storage};

/// Buffers smaller than this go straight back to the allocator: its free lists serve
/// them without page faults (glibc's initial `mmap` threshold is 128 KiB).
pub const MIN_POOLED_BYTES: usize = 128 * 1024;

/// The default limit on the bytes the pool holds: 1 GiB.
pub const DEFAULT_LIMIT_BYTES: usize = 1 << 30;

/// A buffer's dtype and length: the pool reuses only exact matches.
type Key = (DType, usize);

/// Free buffers by dtype and length, oldest first, with the order they were kept in
/// across all keys, so that a full pool makes room by freeing the buffers that have
/// waited longest. Without that, a program whose shapes change (another model, an
/// evaluation batch, the next stage of `diagnose`) would fill the pool with buffers
/// nothing asks for again, and every later large tensor would come from the
/// allocator, page faults and all.
///
/// The pool also counts, per key, the buffers it has handed out (taken, or asked for
/// and then allocated fresh) that have not come back: a dropped buffer is kept only
/// against such an outstanding one. A buffer made elsewhere (a `Vec` the caller built
/// and passed to `Tensor::from_vec`, say, every batch of a data loader) has nothing
/// outstanding to match and goes straight back to the allocator; without that rule
/// such buffers piled up, unused, until the pool reached its limit, and memory grew
/// with the length of a run.
struct Pool {
    free: HashMap<Key, Vec<(u64, CpuStorage)>>,
    /// Per key, the buffers handed out by [`Pool::take`] (hits and misses alike) that
    /// have not come back through [`Pool::put`]. Only keys with a count above zero are
    /// present, so the map is bounded by the live tensors.
    outstanding: HashMap<Key, usize>,
    /// Stamp of every kept buffer (increasing with the time it was kept) to its key.
    order: BTreeMap<u64, Key>,
    next_stamp: u64,
    bytes: usize,
    limit: usize,
}

impl Pool {
    fn new(limit: usize) -> Self {
        Self {
            free: HashMap::new(),
            outstanding: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            bytes: 0,
            limit,
        }
    }

    /// Keeps `storage` (if it is large enough, not over the limit on its own, and
    /// matches a buffer of its key the pool handed out), evicting the longest-kept
    /// buffers to make room. Returns what to free: the evicted buffers, or `storage`
    /// itself when it is not kept.
    fn put(&mut self, storage: CpuStorage) -> Vec<CpuStorage> {
        let bytes = bytes_of(&storage);
        if bytes < MIN_POOLED_BYTES {
            return vec![storage];
        }
        let key = (storage.dtype(), len_of(&storage));
        // Coming back: one fewer outstanding, whether it is kept or not.
        match self.outstanding.get_mut(&key) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.outstanding.remove(&key);
            }
            // Made outside the pool: nothing will ask for it.
            None => return vec![storage],
        }
        if bytes > self.limit {
            return vec![storage];
        }
        let mut evicted = Vec::new();
        while self.bytes + bytes > self.limit {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            if let Some(list) = self.free.get_mut(&key) {
                // Stamps grow along each list, so the oldest of a key comes first.
                let (_, old) = list.remove(0);
                if list.is_empty() {
                    self.free.remove(&key);
                }
                self.bytes -= bytes_of(&old);
                evicted.push(old);
            }
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.order.insert(stamp, key);
        self.bytes += bytes;
        self.free.entry(key).or_default().push((stamp, storage));
        evicted
    }

    /// The most recently kept buffer of `key`, if any. Either way the caller now holds
    /// a buffer of `key` (this one, or one it allocates), counted as outstanding.
    fn take(&mut self, key: Key) -> Option<CpuStorage> {
        if key.1.saturating_mul(key.0.size_in_bytes()) < MIN_POOLED_BYTES {
            return None;
        }
        *self.outstanding.entry(key).or_insert(0) += 1;
        let list = self.free.get_mut(&key)?;
        let (stamp, storage) = list.pop()?;
        if list.is_empty() {
            self.free.remove(&key);
        }
        self.order.remove(&stamp);
        self.bytes -= bytes_of(&storage);
        Some(storage)
    }

    /// Drops every buffer, handing them back to free outside the lock.
    fn drain(&mut self) -> Vec<CpuStorage> {
        self.order.clear();
        self.bytes = 0;
        self.free
            .drain()
            .flat_map(|(_, list)| list.into_iter().map(|(_, s)| s))
            .collect()
    }
}

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(|| Mutex::new(Pool::new(DEFAULT_LIMIT_BYTES)));

/// The pool, whatever a panicking thread left it as (it holds only whole buffers).
fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bytes_of(storage: &CpuStorage) -> usize {
    len_of(storage) * storage.dtype().size_in_bytes()
}

fn len_of(storage: &CpuStorage) -> usize {
    match storage {
        CpuStorage::F32(v) => v.len(),
        CpuStorage::F64(v) => v.len(),
        CpuStorage::U32(v) => v.len(),
    }
}

/// What the pool holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Free buffers kept.
    pub buffers: usize,
    /// Their total size in bytes.
    pub bytes: usize,
    /// The most bytes the pool may hold.
    pub limit: usize,
}

/// What the pool holds now (for tests and memory reports).
pub fn stats() -> PoolStats {
    let p = pool();
    PoolStats {
        buffers: p.order.len(),
        bytes: p.bytes,
        limit: p.limit,
    }
}

/// Sets the most bytes the pool may hold (0 turns it off) and frees buffers beyond it.
pub fn set_limit(bytes: usize) {
    let freed = {
        let mut p = pool();
        p.limit = bytes;
        if p.bytes > bytes {
            p.drain()
        } else {
            Vec::new()
        }
    };
    drop(freed);
}

/// Returns every kept buffer to the allocator.
pub fn clear() {
    let freed = pool().drain();
    drop(freed);
}

/// Keeps the buffer of a storage being dropped, if it is large enough and fits (making
/// room by freeing the longest-kept buffers).
fn recycle(storage: CpuStorage) {
    let freed = pool().put(storage);
    drop(freed); // after the guard is released
}

/// A kept buffer of `len` elements of `T`, if there is one.
#[inline]
pub(crate) fn take<T: Element>(len: usize) -> Option<Vec<T>> {
    if len.saturating_mul(std::mem::size_of::<T>()) < MIN_POOLED_BYTES {
        return None;
    }
    let storage = pool().take((T::DTYPE, len))?;
    T::from_cpu_storage(storage)
}

/// A vector of `len` elements whose values are unspecified: a buffer reused from a
/// dropped tensor (holding its old values) or, if none is free, zeros. For outputs
/// that the caller overwrites completely. Aborts if the system refuses the memory;
/// [`try_buffer`] returns an error instead.
///
/// ```
/// let mut v = tensor::pool::buffer::<f32>(3);
/// v.copy_from_slice(&[1.0, 2.0, 3.0]);
/// assert_eq!(v.len(), 3);
/// ```
pub fn buffer<T: Element>(len: usize) -> Vec<T> {
    take(len).unwrap_or_else(|| vec![T::ZERO; len])
}

/// A vector of `len` copies of `value`, in a reused buffer when one is free. Aborts if
/// the system refuses the memory; [`try_filled`] returns an error instead.
///
/// ```
/// assert_eq!(tensor::pool::filled(2, 1.5f64), vec![1.5, 1.5]);
/// ```
pub fn filled<T: Element>(len: usize, value: T) -> Vec<T> {
    match take(len) {
        Some(mut v) => {
            v.fill(value);
            v
        }
        None => vec![value; len],
    }
}

/// Like [`buffer`], for the output of `op` of shape `shape` (its element count is the
/// length), with a size that does not fit or memory the system refuses returned as
/// [`TensorError::AllocationFailed`](crate::TensorError::AllocationFailed) naming `op`,
/// the shape and the bytes.
///
/// ```
/// use tensor::{pool, Shape, TensorError};
/// let v = pool::try_buffer::<f32>("my_kernel", &Shape::from([2, 3])).unwrap();
/// assert_eq!(v.len(), 6);
/// let err = pool::try_buffer::<f32>("my_kernel", &Shape::from([1 << 30, 1 << 30])).unwrap_err();
/// assert!(matches!(err, TensorError::AllocationFailed { bytes: Some(b), .. } if b == 1 << 62));
/// assert_eq!(
///     err.to_string(),
///     "my_kernel: cannot allocate 4611686018427387904 bytes for a f32 tensor of shape [1073741824, 1073741824]"
/// );
/// ```
pub fn try_buffer<T: Element>(op: &'static str, shape: &Shape) -> Result<Vec<T>> {
    alloc_buf::buffer(op, shape)
}

/// Like [`filled`], for the output of `op` of shape `shape`, returning
/// [`TensorError::AllocationFailed`](crate::TensorError::AllocationFailed) instead of
/// aborting.
///
/// ```
/// use tensor::{pool, Shape};
/// assert_eq!(pool::try_filled("my_op", &Shape::from([2]), 1.5f64).unwrap(), vec![1.5, 1.5]);
/// assert!(pool::try_filled("my_op", &Shape::from([usize::MAX, 2]), 0u32).is_err());
/// ```
pub fn try_filled<T: Element>(op: &'static str, shape: &Shape, value: T) -> Result<Vec<T>> {
    alloc_buf::filled(op, shape, value)
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Storage::Cpu(cpu) = self {
            let empty = CpuStorage::F32(Vec::new());
            recycle(std::mem::replace(cpu, empty));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Device, Tensor};

    /// Held by every test that uses the process-global pool: one of them turns the pool
    /// off for a moment, which must not happen while another expects a buffer kept.
    static GLOBAL_POOL: Mutex<()> = Mutex::new(());

    fn lock_global_pool() -> std::sync::MutexGuard<'static, ()> {
        GLOBAL_POOL.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pool is process-global; tests here use lengths no other test uses.
    #[test]
    fn dropped_large_tensors_are_reused_and_small_ones_are_not() {
        let _global = lock_global_pool();
        let n = 123_457; // ~482 KiB of f32
        let t = Tensor::full([n], 7.0, DType::F32, &Device::Cpu).unwrap();
        drop(t);
        let reused = take::<f32>(n).expect("the dropped buffer is kept");
        assert!(reused.iter().all(|&x| x == 7.0), "it holds the old values");
        assert!(take::<f64>(n).is_none(), "dtypes are kept apart");
        let small = Tensor::full([100], 1.0, DType::F32, &Device::Cpu).unwrap();
        drop(small);
        assert!(take::<f32>(100).is_none());
    }

    #[test]
    fn zeros_from_a_reused_buffer_are_zeros() {
        let _global = lock_global_pool();
        let n = 65_539;
        drop(Tensor::full([n], 3.0, DType::F64, &Device::Cpu).unwrap());
        let z = Tensor::zeros([n], DType::F64, &Device::Cpu).unwrap();
        assert!(z.to_vec::<f64>().unwrap().iter().all(|&x| x == 0.0));
    }

    #[test]
    fn a_refused_allocation_through_the_pool_is_the_same_error() {
        let _global = lock_global_pool();
        // A kept buffer of another length must not be handed out instead.
        let n = 77_773;
        drop(Tensor::zeros([n], DType::F32, &Device::Cpu).unwrap());
        let huge = Shape::from([1 << 30, 1 << 30]); // 2^62 bytes of f32
        let want = crate::TensorError::AllocationFailed {
            op: "zeros",
            shape: huge.clone(),
            dtype: DType::F32,
            bytes: Some(1 << 62),
        };
        assert_eq!(try_buffer::<f32>("zeros", &huge).unwrap_err(), want);
        assert_eq!(try_filled("zeros", &huge, 0.0f32).unwrap_err(), want);
        assert_eq!(
            Tensor::zeros(huge.clone(), DType::F32, &Device::Cpu).unwrap_err(),
            want
        );
        let beyond_usize = Shape::from([usize::MAX / 2, 3]);
        assert!(matches!(
            try_filled("ones", &beyond_usize, 1u32).unwrap_err(),
            crate::TensorError::AllocationFailed {
                op: "ones",
                bytes: None,
                ..
            }
        ));
        assert!(take::<f32>(n).is_some(), "the kept buffer is still there");
        // Exact matches are still reused by the fallible path.
        drop(Tensor::full([n], 4.0, DType::F32, &Device::Cpu).unwrap());
        let again = try_buffer::<f32>("test", &Shape::from([n])).unwrap();
        assert!(
            again.iter().all(|&x| x == 4.0),
            "the kept buffer was reused"
        );
    }

    /// Puts back an f32 buffer of `n` elements that the pool handed out (asked for,
    /// then allocated fresh, as `alloc_buf` does on a miss); returns what was freed.
    fn issue_and_put(p: &mut Pool, n: usize) -> Vec<CpuStorage> {
        let buffer = match p.take((DType::F32, n)) {
            Some(CpuStorage::F32(v)) => v,
            _ => vec![0.0; n],
        };
        p.put(CpuStorage::F32(buffer))
    }

    /// A private pool of `limit` bytes holding f32 buffers of the given lengths, kept
    /// in that order.
    fn pool_with(limit: usize, lens: &[usize]) -> Pool {
        let mut p = Pool::new(limit);
        for &n in lens {
            assert!(p.take((DType::F32, n)).is_none(), "a new pool is empty");
        }
        // Every buffer was asked for (above) and now comes back.
        for &n in lens {
            assert!(p.put(CpuStorage::F32(vec![0.0; n])).is_empty());
        }
        p
    }

    #[test]
    fn a_full_pool_frees_its_longest_kept_buffers_to_make_room() {
        let (a, b, c) = (40_000, 50_000, 60_000); // 160, 200 and 240 KB
        let mut p = pool_with(4 * (a + b + c), &[a, b, c]);
        assert_eq!(p.bytes, 4 * (a + b + c));
        // 4 * 70_000 bytes more: the oldest (a) and the next (b) must go.
        let evicted = issue_and_put(&mut p, 70_000);
        let lens: Vec<usize> = evicted.iter().map(len_of).collect();
        assert_eq!(lens, [a, b]);
        assert_eq!(p.bytes, 4 * (c + 70_000));
        assert!(p.take((DType::F32, a)).is_none());
        assert!(p.take((DType::F32, c)).is_some());
        assert!(p.take((DType::F32, 70_000)).is_some());
        assert_eq!((p.bytes, p.order.len(), p.free.len()), (0, 0, 0));
    }

    #[test]
    fn taking_a_buffer_spares_it_from_eviction_and_reuse_is_newest_first() {
        let n = 40_000;
        let mut p = pool_with(4 * (2 * n + 50_000), &[n, n, 50_000]);
        // The newest n-buffer is handed out; the older one stays the first to go.
        let CpuStorage::F32(mut v) = p.take((DType::F32, n)).unwrap() else {
            unreachable!()
        };
        v[0] = 1.0;
        assert!(p.put(CpuStorage::F32(v)).is_empty());
        let evicted = issue_and_put(&mut p, 60_000);
        assert_eq!(evicted.iter().map(len_of).collect::<Vec<_>>(), [n, 50_000]);
        let CpuStorage::F32(kept) = p.take((DType::F32, n)).unwrap() else {
            unreachable!()
        };
        assert_eq!(kept[0], 1.0, "the buffer put back last survived");
    }

    #[test]
    fn buffers_larger_than_the_limit_or_small_are_not_kept() {
        let mut p = Pool::new(4 * 50_000);
        assert_eq!(issue_and_put(&mut p, 60_000).len(), 1);
        assert_eq!(issue_and_put(&mut p, 100).len(), 1);
        assert_eq!(p.bytes, 0);
        assert!(
            p.outstanding.is_empty(),
            "what came back is no longer outstanding"
        );
    }

    #[test]
    fn buffers_made_outside_the_pool_are_not_kept() {
        let n = 50_000;
        let mut p = Pool::new(1 << 30);
        // A batch built by the caller every step: nothing of its size was handed out.
        for _ in 0..10 {
            assert_eq!(p.put(CpuStorage::F32(vec![0.0; n])).len(), 1);
        }
        assert_eq!((p.bytes, p.order.len()), (0, 0));
        // Handed out twice and back twice: both kept; a third from outside is not.
        assert!(p.take((DType::F32, n)).is_none());
        assert!(p.take((DType::F32, n)).is_none());
        assert!(p.put(CpuStorage::F32(vec![0.0; n])).is_empty());
        assert!(p.put(CpuStorage::F32(vec![0.0; n])).is_empty());
        assert_eq!(p.put(CpuStorage::F32(vec![0.0; n])).len(), 1);
        assert_eq!(p.order.len(), 2);
        assert!(p.outstanding.is_empty());
    }

    /// A training loop whose batches are made outside the pool: the pool's size stays
    /// what one step needs however many steps run.
    #[test]
    fn a_loop_of_outside_buffers_and_pooled_outputs_keeps_the_pool_flat() {
        let mut p = Pool::new(1 << 30);
        let (batch, act) = (40_000, 60_000);
        let mut sizes = Vec::new();
        for _step in 0..50 {
            // The batch: built by the caller (from_vec), dropped at the end.
            let x = CpuStorage::F32(vec![0.0; batch]);
            // Three activations from the pool.
            let acts: Vec<CpuStorage> = (0..3)
                .map(|_| {
                    p.take((DType::F32, act))
                        .unwrap_or(CpuStorage::F32(vec![0.0; act]))
                })
                .collect();
            for s in acts.into_iter().chain([x]) {
                drop(p.put(s));
            }
            sizes.push(p.order.len());
        }
        assert!(sizes.iter().all(|&n| n == 3), "{sizes:?}");
    }

    #[test]
    fn nothing_is_kept_beyond_the_limit() {
        let _global = lock_global_pool();
        let n = 98_317;
        set_limit(0);
        assert_eq!(stats().bytes, 0);
        drop(Tensor::zeros([n], DType::U32, &Device::Cpu).unwrap());
        let kept = take::<u32>(n).is_some();
        set_limit(DEFAULT_LIMIT_BYTES);
        assert!(!kept);
    }
}
