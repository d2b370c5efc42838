//! 10,000 training steps of a small MLP must not grow memory: the graph of each step
//! is freed by backward and by dropping the step's values. Measured with a counting
//! global allocator (this test binary only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use autograd::{no_grad, Reduction, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::{DType, Device, Tensor};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: delegates every call to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn ten_thousand_training_steps_do_not_grow_memory() {
    let cpu = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(1);
    let w1 = Var::parameter(Tensor::randn([8, 32], 0.0, 0.3, DType::F32, &cpu, &mut rng).unwrap());
    let b1 = Var::parameter(Tensor::zeros([32], DType::F32, &cpu).unwrap());
    let w2 = Var::parameter(Tensor::randn([32, 4], 0.0, 0.3, DType::F32, &cpu, &mut rng).unwrap());
    let x = Var::constant(Tensor::randn([16, 8], 0.0, 1.0, DType::F32, &cpu, &mut rng).unwrap());
    let y = Tensor::from_vec((0..16u32).map(|i| i % 4).collect(), [16], &cpu).unwrap();
    let params = [&w1, &b1, &w2];
    let step = |_: usize| -> f64 {
        let h = x.matmul(&w1).unwrap().add(&b1).unwrap().tanh().unwrap();
        let loss = h
            .matmul(&w2)
            .unwrap()
            .cross_entropy(&y, Reduction::Mean)
            .unwrap();
        loss.backward().unwrap();
        let _guard = no_grad();
        for p in params {
            p.tensor().axpy_(-0.1, &p.grad().unwrap()).unwrap();
            p.zero_grad();
        }
        loss.tensor().item().unwrap()
    };
    let first_loss = step(0);
    // Warm-up: thread-local scratch buffers (gemm packing, kernels) reach their size.
    for i in 1..1_000 {
        step(i);
    }
    let live_after_warmup = LIVE.load(Ordering::Relaxed);
    for i in 1_000..5_500 {
        step(i);
    }
    let live_middle = LIVE.load(Ordering::Relaxed);
    let mut last_loss = 0.0;
    for i in 5_500..10_000 {
        last_loss = step(i);
    }
    let live_end = LIVE.load(Ordering::Relaxed);
    // A leak of even one small allocation per step grows each 4,500-step half by tens
    // of kilobytes, the second half as much as the first; caches that settle late show
    // up in the first half only.
    let (first_half, second_half) = (live_middle - live_after_warmup, live_end - live_middle);
    eprintln!("live heap growth: {first_half} then {second_half} bytes");
    assert!(
        first_half.abs() < 16_384 && second_half.abs() < 4_096,
        "live heap grew by {first_half} then {second_half} bytes over two runs of 4,500 steps"
    );
    assert!(
        last_loss < first_loss,
        "the MLP should also learn: {first_loss} -> {last_loss}"
    );
}
