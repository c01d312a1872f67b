//! Threads and retained memory: many callers at once get exactly the serial results; the
//! library's one pool stays bounded whatever thread counts callers ask for; a forked child
//! computes with threads; a failed thread start is reported and the process keeps computing;
//! tiny calls stay cheap at any thread count; cached scratch memory can be released; the host's
//! rayon global pool is never touched.

mod common;
use common::isolated::{isolated, resident_bytes, settled_thread_count, thread_count};
use common::skip::skip;
use common::*;
use ctc::{ctc_loss_and_grad, Inputs, IntView1, IntView2, Options, Reduction, Status, Targets};
use ndarray::{Array1, Array2, Array3};

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A deterministic batch: (log_probs (T, N, C), padded targets, input lengths, target lengths).
struct Batch {
    lp: Array3<f32>,
    targets: Array2<i64>,
    il: Array1<i64>,
    tl: Array1<i64>,
}

impl Batch {
    fn new(t: usize, n: usize, c: usize, l: usize) -> Batch {
        let mut rng = Rng(5);
        let lp = Array3::from_shape_fn((t, n, c), |_| -(rng.uniform() as f32) * 4.0 - 0.01);
        let targets = Array2::from_shape_fn((n, l), |_| rng.range(1, c - 1) as i64);
        Batch {
            lp,
            targets,
            il: Array1::from_elem(n, t as i64),
            tl: Array1::from_shape_fn(n, |b| (l - b % 3) as i64),
        }
    }

    /// Loss and gradient bits with `threads` threads, or the error.
    fn run(&self, threads: usize) -> Result<(Vec<u32>, Vec<u32>), ctc::Error> {
        let inputs = Inputs {
            log_probs: self.lp.view(),
            targets: Targets::Padded(IntView2::from(self.targets.view())),
            input_lengths: IntView1::from(self.il.view()),
            target_lengths: IntView1::from(self.tl.view()),
        };
        let options = Options {
            num_threads: threads,
            reduction: Reduction::None,
            ..Options::default()
        };
        let (loss, grad) = ctc_loss_and_grad(&inputs, &options, None)?;
        let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
        Ok((b(loss.as_slice().unwrap()), b(grad.as_slice().unwrap())))
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn concurrent_callers_get_the_serial_results() {
    let cases = all_golden();
    let serial: Vec<(Vec<u64>, Vec<u64>)> = cases
        .iter()
        .map(|g| {
            let o = run_golden::<f64>(g, Layout::Contiguous, 1);
            (bits(&o.loss), bits(&o.grad))
        })
        .collect();
    std::thread::scope(|scope| {
        for worker in 0..8u32 {
            let cases = &cases;
            let serial = &serial;
            scope.spawn(move || {
                for round in 0..3 {
                    for (i, g) in cases.iter().enumerate() {
                        let threads = [0, 1, 2, 3, 8][(worker as usize + round + i) % 5];
                        let layout = LAYOUTS[(worker as usize + i) % 4];
                        let o = run_golden::<f64>(g, layout, threads);
                        assert_eq!(bits(&o.loss), serial[i].0, "{} worker {worker}", g.name);
                        assert_eq!(bits(&o.grad), serial[i].1, "{} worker {worker}", g.name);
                        assert_eq!(last_error(), "", "message after success");
                    }
                }
            });
        }
    });
}

#[test]
fn serial_sweep_of_thread_counts_keeps_one_bounded_pool() {
    isolated(
        "serial_sweep_of_thread_counts_keeps_one_bounded_pool",
        || {
            let batch = Batch::new(20, 16, 12, 5);
            let want = batch.run(1).unwrap();
            for threads in 0..=256 {
                assert_eq!(batch.run(threads).unwrap(), want, "{threads} threads");
            }
            // This process: the main thread, the test's thread and the pool.
            let bound = cpus() + 2;
            let now = settled_thread_count(bound);
            println!(
                "threads after the sweep: {now} (bound {bound}, {} CPUs)",
                cpus()
            );
            assert!(
                now <= bound,
                "{now} threads after the sweep, more than {bound}"
            );
        },
    );
}

#[test]
fn concurrent_callers_with_random_thread_counts_keep_one_bounded_pool() {
    isolated(
        "concurrent_callers_with_random_thread_counts_keep_one_bounded_pool",
        || {
            let batch = Batch::new(20, 16, 12, 5);
            let want = batch.run(1).unwrap();
            let callers = 16;
            // The pool, the callers, the main thread and the test's thread.
            let bound = cpus() + callers + 2;
            let most = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for caller in 0..callers {
                    let (batch, want, most) = (&batch, &want, &most);
                    scope.spawn(move || {
                        let mut rng = Rng(caller as u64);
                        for _ in 0..40 {
                            let threads = rng.range(1, 32);
                            assert_eq!(&batch.run(threads).unwrap(), want, "{threads} threads");
                            most.fetch_max(thread_count(), std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                }
            });
            let most = most.into_inner();
            let after = settled_thread_count(cpus() + 2);
            println!("threads: at most {most} while running, {after} after (bound {bound})");
            assert!(
                most <= bound,
                "{most} threads while running, more than {bound}"
            );
            assert!(
                after <= cpus() + 2,
                "{after} threads after the callers left"
            );
        },
    );
}

#[test]
fn forked_child_computes_with_threads() {
    isolated("forked_child_computes_with_threads", || {
        if cpus() < 2 {
            skip(
                "forked_child_computes_with_threads",
                "one CPU, no threads to test",
            );
            return;
        }
        let batch = Batch::new(60, 32, 20, 12);
        let want = batch.run(2).unwrap(); // the parent's pool exists from here on
                                          // SAFETY: this process runs only this test (isolated), so no other thread of the test
                                          // harness holds a lock the child needs; the child only computes and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let before = thread_count();
            let ok = (0..5).all(|_| batch.run(2).as_ref() == Ok(&want));
            // The child's own pool: threads were started in this process.
            let threaded = thread_count() > before;
            // SAFETY: ends the child without running the parent's exit handlers twice.
            unsafe {
                libc::_exit(if ok && threaded {
                    0
                } else {
                    1 + threaded as i32
                })
            };
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("the forked child hung");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(libc::WIFEXITED(status), "the child did not exit normally");
        let code = libc::WEXITSTATUS(status);
        assert_ne!(code, 2, "the child computed without threads");
        assert_eq!(code, 0, "the child's results differ from the parent's");
        // And the parent still computes with its pool.
        assert_eq!(batch.run(2).unwrap(), want);
    });
}

#[test]
fn failed_thread_start_is_reported_and_calls_keep_working() {
    isolated(
        "failed_thread_start_is_reported_and_calls_keep_working",
        || {
            if cpus() < 2 {
                skip(
                    "failed_thread_start_is_reported_and_calls_keep_working",
                    "one CPU, the pool is never started",
                );
                return;
            }
            let batch = Batch::new(30, 16, 12, 6);
            // Caches the scratch memory; no pool yet.
            let want = batch.run(1).unwrap();
            // Address space for what exists now and a little more, not for a thread's stack.
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let vm_kib: u64 = status
                .lines()
                .find(|l| l.starts_with("VmSize:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap();
            let limit = (vm_kib + 512) * 1024;
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: a valid rlimit for this process.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
            let err = batch
                .run(2)
                .expect_err("no thread can start under this limit");
            assert_eq!(err.status(), Status::OutOfMemory, "{err}");
            assert!(err.message().contains("worker threads"), "{err}");
            assert_eq!(batch.run(1).unwrap(), want, "1 thread after the failure");
            assert_eq!(batch.run(2).unwrap(), want, "2 threads after the failure");
            // With the limit lifted, releasing lets the threads start.
            let rl = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
            ctc::release_cached_memory();
            let before = thread_count();
            assert_eq!(batch.run(2).unwrap(), want, "2 threads after the release");
            assert!(
                thread_count() > before,
                "the pool started after the release"
            );
        },
    );
}

/// CPU time (user + system) of this process, all threads, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(u.ru_utime) + s(u.ru_stime)
}

#[test]
fn tiny_calls_cost_little_cpu_at_any_thread_count() {
    isolated("tiny_calls_cost_little_cpu_at_any_thread_count", || {
        let batch = Batch::new(50, 16, 20, 10); // the seed shape
        let calls = 150;
        let measure = |threads: usize| {
            batch.run(threads).unwrap();
            let start = cpu_seconds();
            for _ in 0..calls {
                batch.run(threads).unwrap();
            }
            cpu_seconds() - start
        };
        // The lowest of three alternated measurements of each.
        let (mut one, mut many) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            one = one.min(measure(1));
            many = many.min(measure(256));
        }
        println!("CPU time of {calls} tiny calls: {one:.4} s at 1 thread, {many:.4} s at 256");
        assert!(
            many <= 2.0 * one.max(0.005),
            "{many:.4} s of CPU at 256 threads against {one:.4} s at 1"
        );
    });
}

#[test]
fn released_scratch_memory_returns_to_the_system() {
    isolated("released_scratch_memory_returns_to_the_system", || {
        // A fused call whose workspace is about 100 MB (under the cache bound, so it is kept).
        let batch = Batch::new(2000, 4, 10, 1500);
        let before = resident_bytes();
        batch.run(1).unwrap();
        let kept = resident_bytes();
        let freed = ctc::release_cached_memory();
        let after = resident_bytes();
        println!("resident: {before} before, {kept} after the call, {after} after releasing {freed} bytes");
        assert!(freed >= 90 << 20, "released only {freed} bytes");
        assert!(kept >= before + (90 << 20), "the workspace was not kept");
        assert!(
            after <= before + (10 << 20),
            "{after} bytes resident after the release"
        );
        assert_eq!(ctc::release_cached_memory(), 0, "nothing left to release");
    });
}

#[test]
fn rayon_global_pool_is_left_alone() {
    isolated("rayon_global_pool_is_left_alone", || {
        let batch = Batch::new(20, 16, 12, 5);
        for threads in [0, 1, 3] {
            batch.run(threads).unwrap();
        }
        // Had libctc built or used the global pool, configuring it now would fail.
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build_global()
            .expect("libctc must not initialize rayon's global pool");
    });
}

#[test]
fn calls_run_on_a_small_stack() {
    // The README promises that a calling thread needs well under 64 KiB of stack (release
    // builds; a debug build of the library needs more).
    let stack = if cfg!(debug_assertions) { 512 } else { 64 } << 10;
    let handle = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(|| {
            for (t, n, c, l) in [(50, 16, 20, 10), (40, 3, 300, 12), (30, 2, 2000, 5)] {
                let batch = Batch::new(t, n, c, l);
                let want = batch.run(1).unwrap();
                assert_eq!(batch.run(2).unwrap(), want);
            }
        })
        .unwrap();
    handle.join().expect("the calls fit the small stack");
}
