//! No scratch allocation per call in steady state: after a few warm-up calls, forward-only and
//! fused calls on the CPU allocate no buffer, with one thread and with several, with a caller
//! workspace and with the library's cached one. One thread allocates nothing at all; with more,
//! the thread pool's bookkeeping (rayon boxes each task it hands to a pool thread, a few dozen
//! bytes, and its queue takes a block of 1.5 KB every 63 tasks) is all there is. Counted by a global allocator wrapper in this test binary, which
//! counts every thread's allocations (pool threads included).

use ctc::{ctc_loss_into, workspace_size, Inputs, IntView1, IntView2, Options, Reduction, Targets};
use ndarray::{Array1, Array2, Array3};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

const WARM: usize = 20;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicUsize = AtomicUsize::new(0);
/// The largest allocation since it was last reset.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn count(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    LAST.store(size, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged;
// the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A batch with deterministic pseudo-random log-probabilities and targets.
fn batch(
    t: usize,
    n: usize,
    c: usize,
    l: usize,
) -> (Array3<f32>, Array2<i64>, Array1<i64>, Array1<i64>) {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let lp = Array3::from_shape_fn((t, n, c), |_| -((next() % 1000) as f32) / 200.0 - 0.01);
    let targets = Array2::from_shape_fn((n, l), |_| 1 + (next() % (c as u64 - 1)) as i64);
    let il = Array1::from_elem(n, t as i64);
    let tl = Array1::from_shape_fn(n, |b| (l - b % 3) as i64);
    (lp, targets, il, tl)
}

#[test]
fn calls_allocate_nothing_in_steady_state() {
    // Short targets with many samples (the lanes kernel), long ones (the planar kernel), and
    // wide rows (the deferred gradient pass).
    let shapes = [(50, 16, 20, 12), (60, 5, 40, 25), (30, 6, 700, 10)];
    for (t, n, c, l) in shapes {
        let (lp, targets, il, tl) = batch(t, n, c, l);
        let inputs = Inputs {
            log_probs: lp.view(),
            targets: Targets::Padded(IntView2::from(targets.view())),
            input_lengths: IntView1::from(il.view()),
            target_lengths: IntView1::from(tl.view()),
        };
        for threads in [1, 2, 3] {
            let options = Options {
                num_threads: threads,
                reduction: Reduction::None,
                ..Options::default()
            };
            let mut loss = Array1::<f32>::zeros(n);
            let mut grad = Array3::<f32>::zeros((t, n, c));
            let size = workspace_size(&inputs, &options).expect("workspace size");
            let mut workspace = vec![0u8; size];
            let mut call = |fused: bool, own: bool| {
                let ws = own.then_some(&mut workspace[..]);
                let g = fused.then(|| grad.view_mut());
                ctc_loss_into(&inputs, &options, None, Some(loss.view_mut()), g, ws)
                    .expect("the call succeeds");
            };
            for _ in 0..WARM {
                for (fused, own) in [(false, false), (true, false), (true, true)] {
                    call(fused, own);
                }
            }
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            LARGEST.store(0, Ordering::SeqCst);
            let calls = 30;
            for _ in 0..calls / 3 {
                for (fused, own) in [(false, false), (true, false), (true, true)] {
                    call(fused, own);
                }
            }
            let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
            let largest = LARGEST.load(Ordering::SeqCst);
            let what = format!(
                "T = {t}, N = {n}, C = {c}, {threads} threads: {allocations} allocations in {calls} calls, the largest {largest} bytes, the last {} bytes",
                LAST.load(Ordering::SeqCst)
            );
            if threads == 1 {
                assert_eq!(allocations, 0, "{what}");
            } else {
                // rayon's job queue also allocates a block of 63 slots (about 1.5 KB) every 63
                // tasks; every scratch buffer of these shapes is far larger than 4 KB.
                assert!(largest <= 4096, "a buffer was allocated: {what}");
                assert!(allocations <= calls * threads, "{what}");
            }
        }
    }
}
