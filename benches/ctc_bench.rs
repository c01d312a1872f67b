//! CPU benchmark of libctc's float32 forward+backward against a memory-copy anchor.
//!
//! Run: `cargo bench --bench ctc_bench -- [--threads N] [--shapes a,b] [--json PATH]`
//! (`--help` lists every flag). docs/benchmarks.md explains what is measured and how to read it.
//!
//! For every shape, in the same process and on the same buffers:
//!
//! - `fused`: `ctc_loss_forward_backward` through the C ABI (what a training step calls), blank 0,
//!   mean reduction, `options.num_threads = --threads`, output buffers reused across iterations
//!   and a caller workspace of `ctc_workspace_size()` bytes, so that no allocation is timed;
//! - `fused, no ws`: the same call with `options.workspace = NULL` (the library allocates);
//! - `.so` (with `--dylib PATH`): `fused` through a libctc shared library opened at run time, the
//!   code a C program links against (this binary links the rlib, built with different link-time
//!   optimization, and the two can differ in speed by tens of percent);
//! - `forward`: `ctc_loss_forward` (loss only) with the caller workspace;
//! - `copy`: the memory-copy anchor, copying a T*N*C float32 buffer into another (the bytes the
//!   fused call must at least read and write: log_probs in, gradient out), split over `--threads`
//!   threads kept alive in a `std::thread::scope` and released by a spinning barrier each
//!   iteration, and
//!   the same copy on one thread.
//!
//! Each measurement runs warm-up calls, then repeats until it has at least `--min-runs` runs and
//! `--min-time` seconds, or `--max-time` seconds and 5 runs, and reports the median and the
//! minimum; every shape is measured `--rounds` times (interleaved with the other shapes) and each
//! figure keeps its lowest median, so that a slow phase of a shared machine does not decide it.
//! It also reports the share of the machine's CPU time that other processes took
//! meanwhile (from /proc/stat and /proc/self/stat); above `--max-interference` it waits for a
//! quiet moment and measures again (at most `--attempts` times, `--max-wait` seconds of waiting
//! in all), keeping the least disturbed measurement. Inputs are deterministic (splitmix64): log-softmax of standard normal logits, labels
//! uniform in [1, C), target lengths uniform in the shape's inclusive range, input length T for
//! every sample, padded int64 targets.

use ctc::ffi::*;
use serde_json::{json, Value};
use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One benchmark shape: (T, N, C) and the inclusive range of target lengths.
struct Shape {
    name: &'static str,
    t: usize,
    n: usize,
    c: usize,
    target_min: usize,
    target_max: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "seed",
        t: 50,
        n: 16,
        c: 20,
        target_min: 10,
        target_max: 30,
    },
    Shape {
        name: "asr_char",
        t: 400,
        n: 32,
        c: 32,
        target_min: 80,
        target_max: 120,
    },
    Shape {
        name: "asr_bpe",
        t: 250,
        n: 32,
        c: 1024,
        target_min: 40,
        target_max: 70,
    },
    Shape {
        name: "large_vocab",
        t: 150,
        n: 16,
        c: 8000,
        target_min: 20,
        target_max: 40,
    },
    Shape {
        name: "long",
        t: 2000,
        n: 4,
        c: 64,
        target_min: 500,
        target_max: 700,
    },
];

const USAGE: &str = "\
usage: cargo bench --bench ctc_bench -- [options]

  --threads N      worker threads: options.num_threads and the copy anchor (default: all cores)
  --shapes a,b     shapes to run (default: all): seed, asr_char, asr_bpe, large_vocab, long
  --json PATH      also write every figure as JSON to PATH
  --dylib PATH     also time the fused call through this libctc shared library (e.g.
                   target/release/libctc.so after `cargo build --release --lib`), opened at
                   run time: the code a C program gets, rather than the rlib linked in here
  --min-time S     seconds each measurement runs at least (default 0.5)
  --min-runs K     timed runs each measurement has at least (default 20)
  --max-time S     stop a measurement after S seconds once it has 5 runs (default 2)
  --rounds R       measure every shape R times, interleaved; each figure keeps its lowest
                   median (default 2)
  --seed X         RNG seed of the inputs (default 1)
  --max-interference F
                   measure a figure again when other processes took more than this share of
                   the CPUs while it was measured (default 0.05; 1 disables)
  --attempts K     measurements of one figure at most; the least disturbed is kept (default 4)
  --max-wait S     total seconds the benchmark may wait for a quiet machine (default 60)
  --list           print the shapes and exit";

struct Config {
    threads: usize,
    shapes: Vec<&'static Shape>,
    json: Option<PathBuf>,
    /// A libctc shared library to time the fused call through as well.
    dylib: Option<PathBuf>,
    min_time: Duration,
    min_runs: usize,
    max_time: Duration,
    /// Times every shape is measured, interleaved; each figure keeps its lowest median.
    rounds: usize,
    seed: u64,
    /// Largest share of the CPUs other processes may take during a measurement before it is
    /// measured again.
    max_interference: f64,
    /// Measurements of one figure at most (the first plus retries).
    attempts: usize,
    /// What is left of the total time the benchmark may spend waiting for a quiet machine.
    wait_budget: Cell<Duration>,
}

fn fail(msg: &str) -> ! {
    eprintln!("ctc_bench: {msg}\n\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut cfg = Config {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        shapes: SHAPES.iter().collect(),
        json: None,
        dylib: None,
        min_time: Duration::from_millis(500),
        min_runs: 20,
        max_time: Duration::from_secs(2),
        rounds: 2,
        seed: 1,
        max_interference: 0.05,
        attempts: 4,
        wait_budget: Cell::new(Duration::from_secs(60)),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| fail(&format!("{flag} needs a value")))
        };
        let seconds = |v: String| -> Duration {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or_else(|| fail(&format!("{flag}: {v:?} is not a number of seconds")))
        };
        match flag.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--threads" => {
                let v = value();
                cfg.threads = v
                    .parse()
                    .ok()
                    .filter(|&t| t >= 1)
                    .unwrap_or_else(|| fail(&format!("--threads: {v:?} is not a count >= 1")));
            }
            "--shapes" => {
                cfg.shapes = value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        SHAPES
                            .iter()
                            .find(|shape| shape.name == s)
                            .unwrap_or_else(|| fail(&format!("unknown shape {s:?}")))
                    })
                    .collect();
            }
            "--json" => cfg.json = Some(PathBuf::from(value())),
            "--dylib" => cfg.dylib = Some(PathBuf::from(value())),
            "--min-time" => cfg.min_time = seconds(value()),
            "--max-time" => cfg.max_time = seconds(value()),
            "--min-runs" => {
                let v = value();
                cfg.min_runs = v
                    .parse()
                    .unwrap_or_else(|_| fail(&format!("--min-runs: {v:?} is not a count")));
            }
            "--max-interference" => {
                let v = value();
                cfg.max_interference = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .unwrap_or_else(|| {
                        fail(&format!("--max-interference: {v:?} is not in [0, 1]"))
                    });
            }
            "--attempts" => {
                let v = value();
                cfg.attempts = v
                    .parse()
                    .ok()
                    .filter(|&a| a >= 1)
                    .unwrap_or_else(|| fail(&format!("--attempts: {v:?} is not a count >= 1")));
            }
            "--max-wait" => cfg.wait_budget.set(seconds(value())),
            "--rounds" => {
                let v = value();
                cfg.rounds = v
                    .parse()
                    .ok()
                    .filter(|&r| r >= 1)
                    .unwrap_or_else(|| fail(&format!("--rounds: {v:?} is not a count >= 1")));
            }
            "--seed" => {
                let v = value();
                cfg.seed = v
                    .parse()
                    .unwrap_or_else(|_| fail(&format!("--seed: {v:?} is not an integer")));
            }
            "--list" => {
                for s in SHAPES {
                    println!(
                        "{:<12} T={:<5} N={:<3} C={:<5} target lengths {}..={}",
                        s.name, s.t, s.n, s.c, s.target_min, s.target_max
                    );
                }
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    if cfg.shapes.is_empty() {
        fail("--shapes selects no shape");
    }
    cfg
}

/// splitmix64: a small, deterministic, good-enough generator for benchmark inputs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi] (inclusive).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The inputs of one shape, owned by the benchmark.
struct Data {
    log_probs: Vec<f32>,
    targets: Vec<i64>,
    input_lengths: Vec<i64>,
    target_lengths: Vec<i64>,
    /// Padded width of `targets`.
    s: usize,
}

fn make_data(shape: &Shape, seed: u64) -> Data {
    let (t, n, c) = (shape.t, shape.n, shape.c);
    // Mix the shape name into the seed so that shapes do not share a stream.
    let salt = shape
        .name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = SplitMix64(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut log_probs = vec![0f32; t * n * c];
    let mut logits = vec![0f64; c];
    for row in log_probs.chunks_mut(c) {
        for x in logits.iter_mut() {
            *x = rng.normal();
        }
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + logits.iter().map(|&x| (x - max).exp()).sum::<f64>().ln();
        for (o, &x) in row.iter_mut().zip(&logits) {
            *o = (x - lse) as f32;
        }
    }
    let s = shape.target_max;
    let target_lengths: Vec<i64> = (0..n)
        .map(|_| rng.range(shape.target_min, shape.target_max) as i64)
        .collect();
    let mut targets = vec![0i64; n * s];
    for (b, row) in targets.chunks_mut(s).enumerate() {
        for x in row.iter_mut().take(target_lengths[b] as usize) {
            *x = rng.range(1, c - 1) as i64;
        }
    }
    Data {
        log_probs,
        targets,
        input_lengths: vec![t as i64; n],
        target_lengths,
        s,
    }
}

/// A contiguous `CtcTensor` over `data` with the given shape (C order).
fn tensor<T>(data: *mut T, dtype: CtcDType, shape: &[usize]) -> CtcTensor {
    let mut t = CtcTensor {
        data: data.cast(),
        dtype,
        device: CTC_DEVICE_CPU,
        device_index: 0,
        ndim: shape.len() as i32,
        shape: [0; 3],
        strides: [0; 3],
    };
    let mut stride = 1i64;
    for i in (0..shape.len()).rev() {
        t.shape[i] = shape[i] as i64;
        t.strides[i] = stride;
        stride *= shape[i] as i64;
    }
    t
}

fn check(status: CtcStatus, what: &str) {
    if status != CTC_STATUS_SUCCESS {
        // SAFETY: both functions return pointers to NUL-terminated strings owned by the library,
        // valid until the next call on this thread.
        let (name, msg) = unsafe {
            (
                CStr::from_ptr(ctc_status_string(status)).to_string_lossy(),
                CStr::from_ptr(ctc_last_error_message()).to_string_lossy(),
            )
        };
        panic!("{what} failed: {name}: {msg}");
    }
}

/// Median and minimum of one measurement, in milliseconds, and how disturbed it was.
#[derive(Clone, Copy)]
struct Stats {
    median_ms: f64,
    min_ms: f64,
    runs: usize,
    /// Share of the machine's CPU time that other processes took while this was measured (None
    /// without /proc).
    interference: Option<f64>,
    /// Measurements made to get this one.
    attempts: usize,
}

impl Stats {
    fn json(&self) -> Value {
        json!({
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "runs": self.runs,
            "interference": self.interference,
            "attempts": self.attempts,
        })
    }

    fn disturbed(&self, cfg: &Config) -> bool {
        self.interference.is_some_and(|i| i > cfg.max_interference)
    }
}

/// CPU time counters, in clock ticks: the whole machine's busy and total time (/proc/stat) and
/// this process's (all threads, /proc/self/stat).
#[derive(Clone, Copy)]
struct CpuTicks {
    busy: u64,
    total: u64,
    own: u64,
}

impl CpuTicks {
    fn now() -> Option<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if cpu.len() < 5 {
            return None;
        }
        let total: u64 = cpu.iter().sum();
        let busy = total - cpu[3] - cpu[4]; // less idle and iowait
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name in parentheses; utime and stime are fields 14 and 15.
        let rest: Vec<&str> = me.rsplit_once(')')?.1.split_whitespace().collect();
        let own = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
        Some(CpuTicks { busy, total, own })
    }

    /// Share of all CPU time from `self` to `later` that other processes used.
    fn interference(&self, later: &CpuTicks) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        if total == 0 {
            return Some(0.0);
        }
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Some((busy.saturating_sub(own) as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// Sleeps in 250 ms windows until one has other processes below the threshold, spending at most
/// what is left of the wait budget.
fn wait_for_quiet(cfg: &Config) {
    let started = Instant::now();
    while started.elapsed() < cfg.wait_budget.get() {
        let Some(a) = CpuTicks::now() else { break };
        std::thread::sleep(Duration::from_millis(250));
        let Some(b) = CpuTicks::now() else { break };
        if a.interference(&b)
            .is_some_and(|i| i <= cfg.max_interference)
        {
            break;
        }
    }
    let spent = started.elapsed();
    cfg.wait_budget
        .set(cfg.wait_budget.get().saturating_sub(spent));
}

/// Measures `f` (see [`measure_once`]); when other processes took more than
/// `--max-interference` of the machine meanwhile, waits for a quiet moment and measures again,
/// up to `--attempts` times, and keeps the least disturbed measurement.
fn measure(cfg: &Config, mut f: impl FnMut()) -> Stats {
    let mut best: Option<Stats> = None;
    for attempt in 1..=cfg.attempts {
        if attempt > 1 {
            if cfg.wait_budget.get().is_zero() {
                break;
            }
            wait_for_quiet(cfg);
        }
        let before = CpuTicks::now();
        let mut stats = measure_once(cfg, &mut f);
        stats.interference = before
            .zip(CpuTicks::now())
            .and_then(|(a, b)| a.interference(&b));
        stats.attempts = attempt;
        let better = match &best {
            None => true,
            Some(b) => stats.interference.unwrap_or(0.0) < b.interference.unwrap_or(0.0),
        };
        if better {
            best = Some(stats);
        }
        if !stats.disturbed(cfg) {
            break;
        }
    }
    let mut best = best.expect("at least one attempt");
    best.attempts = best.attempts.max(1);
    best
}

/// Warms up, then times `f` until it has `--min-runs` runs and `--min-time` seconds, or 5 runs
/// and `--max-time` seconds.
fn measure_once(cfg: &Config, f: &mut impl FnMut()) -> Stats {
    let warm = Instant::now();
    let mut k = 0;
    while k < 2 || (k < 1000 && warm.elapsed() < Duration::from_millis(50)) {
        f();
        k += 1;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    loop {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        let elapsed = start.elapsed();
        let n = times.len();
        if (n >= cfg.min_runs && elapsed >= cfg.min_time)
            || (n >= 5 && elapsed >= cfg.max_time)
            || n >= 1_000_000
        {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    Stats {
        median_ms: median,
        min_ms: times[0],
        runs: n,
        interference: None,
        attempts: 1,
    }
}

/// A barrier whose waiters spin briefly, then yield, instead of sleeping in the kernel: the
/// hand-off of a thread pool whose workers are awake (rayon's workers spin and yield before they
/// sleep). `std::sync::Barrier` sleeps on a futex, and its wake-up alone (tens of microseconds on
/// a small VM) would dwarf the copy of a small buffer.
struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(parties: usize) -> Self {
        SpinBarrier {
            parties,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 4096 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Times copying `src` into `dst` on `threads` threads: the calling thread plus `threads - 1`
/// scoped workers that live for the whole measurement and are released by a [`SpinBarrier`] each
/// iteration (so thread creation is not timed; the barrier round trip is, as a pool's would be).
fn measure_copy(cfg: &Config, src: &[f32], dst: &mut [f32], threads: usize) -> Stats {
    if threads <= 1 {
        return measure(cfg, || {
            dst.copy_from_slice(src);
            black_box(dst.as_mut_ptr());
        });
    }
    // Chunks of whole 64-byte lines, so that no two threads write the same cache line.
    let chunk = src.len().div_ceil(threads).next_multiple_of(16).max(16);
    let parts = src.len().div_ceil(chunk);
    let start = SpinBarrier::new(parts);
    let done = SpinBarrier::new(parts);
    let stop = AtomicBool::new(false);
    let mut pairs = src.chunks(chunk).zip(dst.chunks_mut(chunk));
    let (src0, dst0) = pairs.next().expect("a non-empty buffer");
    std::thread::scope(|scope| {
        for (s, d) in pairs {
            let (start, done, stop) = (&start, &done, &stop);
            scope.spawn(move || loop {
                start.wait();
                if stop.load(Ordering::Acquire) {
                    break;
                }
                d.copy_from_slice(s);
                black_box(d.as_mut_ptr());
                done.wait();
            });
        }
        let stats = measure(cfg, || {
            start.wait();
            dst0.copy_from_slice(src0);
            black_box(dst0.as_mut_ptr());
            done.wait();
        });
        stop.store(true, Ordering::Release);
        start.wait();
        stats
    })
}

type ForwardBackwardFn = unsafe extern "C" fn(
    *const CtcTensor,
    *const CtcTensor,
    *const CtcTensor,
    *const CtcTensor,
    *const CtcTensor,
    *const CtcOptions,
    *mut CtcTensor,
    *mut CtcTensor,
) -> CtcStatus;
type MessageFn = unsafe extern "C" fn() -> *const c_char;

/// The fused entry point of a libctc shared library opened at run time: what a C program linked
/// against `libctc.so` calls (the code above is the rlib linked into this binary, built with
/// different link-time optimization).
struct Dylib {
    path: PathBuf,
    forward_backward: ForwardBackwardFn,
    last_error_message: MessageFn,
    /// Keeps the library mapped while the function pointers are used.
    _lib: libloading::Library,
}

impl Dylib {
    fn open(path: &std::path::Path) -> Result<Dylib, String> {
        let err = |e: libloading::Error| format!("{}: {e}", path.display());
        // SAFETY: loading libctc runs no initialisation code with preconditions; the symbols are
        // the C ABI's functions, declared above with the header's signatures.
        unsafe {
            let lib = libloading::Library::new(path).map_err(err)?;
            let forward_backward = *lib
                .get::<ForwardBackwardFn>(b"ctc_loss_forward_backward\0")
                .map_err(err)?;
            let last_error_message = *lib
                .get::<MessageFn>(b"ctc_last_error_message\0")
                .map_err(err)?;
            Ok(Dylib {
                path: path.to_path_buf(),
                forward_backward,
                last_error_message,
                _lib: lib,
            })
        }
    }

    fn check(&self, status: CtcStatus, what: &str) {
        if status != CTC_STATUS_SUCCESS {
            // SAFETY: the library returns a NUL-terminated thread-local string.
            let msg = unsafe { CStr::from_ptr((self.last_error_message)()) };
            panic!(
                "{what} ({}) failed with status {status}: {}",
                self.path.display(),
                msg.to_string_lossy()
            );
        }
    }
}

/// Everything measured on one shape.
struct Row {
    shape: &'static Shape,
    workspace_bytes: usize,
    loss: f32,
    fused: Stats,
    fused_alloc: Stats,
    /// The fused call through the shared library (`--dylib`).
    fused_dylib: Option<Stats>,
    /// Whether the shared library's loss and gradient equal this binary's bit for bit.
    dylib_identical: Option<bool>,
    forward: Stats,
    copy: Stats,
    copy_1t: Stats,
}

impl Row {
    /// Per figure, the measurement with the lower median.
    fn best(self, other: Row) -> Row {
        let pick = |a: Stats, b: Stats| if b.median_ms < a.median_ms { b } else { a };
        Row {
            fused: pick(self.fused, other.fused),
            fused_alloc: pick(self.fused_alloc, other.fused_alloc),
            fused_dylib: match (self.fused_dylib, other.fused_dylib) {
                (Some(a), Some(b)) => Some(pick(a, b)),
                (a, b) => a.or(b),
            },
            forward: pick(self.forward, other.forward),
            copy: pick(self.copy, other.copy),
            copy_1t: pick(self.copy_1t, other.copy_1t),
            ..self
        }
    }

    fn all(&self) -> Vec<Stats> {
        [
            Some(self.fused),
            Some(self.fused_alloc),
            self.fused_dylib,
            Some(self.forward),
            Some(self.copy),
            Some(self.copy_1t),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn worst_interference(&self) -> f64 {
        self.all()
            .iter()
            .filter_map(|s| s.interference)
            .fold(0.0, f64::max)
    }
}

/// One shape's inputs and gradient buffer, kept across rounds.
struct Case {
    shape: &'static Shape,
    data: Data,
    grad: Vec<f32>,
}

/// Measures every figure of one shape once.
fn bench_shape(cfg: &Config, case: &mut Case, dylib: Option<&Dylib>) -> Row {
    let shape = case.shape;
    let (t, n, c) = (shape.t, shape.n, shape.c);
    let d = &mut case.data;
    let grad = &mut case.grad;
    let mut loss = 0f32;
    let mut loss_fwd = 0f32;

    let lp = tensor(d.log_probs.as_mut_ptr(), CTC_DTYPE_FLOAT32, &[t, n, c]);
    let tg = tensor(d.targets.as_mut_ptr(), CTC_DTYPE_INT64, &[n, d.s]);
    let il = tensor(d.input_lengths.as_mut_ptr(), CTC_DTYPE_INT64, &[n]);
    let tl = tensor(d.target_lengths.as_mut_ptr(), CTC_DTYPE_INT64, &[n]);
    let mut loss_t = tensor(&mut loss as *mut f32, CTC_DTYPE_FLOAT32, &[]);
    let mut loss_fwd_t = tensor(&mut loss_fwd as *mut f32, CTC_DTYPE_FLOAT32, &[]);
    let mut grad_t = tensor(grad.as_mut_ptr(), CTC_DTYPE_FLOAT32, &[t, n, c]);

    let mut options = ctc_options_default(); // blank 0, mean reduction
    options.num_threads = cfg.threads as u32;
    let mut workspace_bytes = 0usize;
    // SAFETY (this and every call below): each tensor describes a live buffer of this function
    // with exactly its shape and dtype; the outputs, the workspace and the inputs are distinct
    // allocations; the options and the workspace outlive every call.
    check(
        unsafe { ctc_workspace_size(&lp, &tg, &il, &tl, &options, &mut workspace_bytes) },
        "ctc_workspace_size",
    );
    let mut workspace = vec![0u8; workspace_bytes];
    let alloc_options = options;
    options.workspace = workspace.as_mut_ptr().cast();
    options.workspace_bytes = workspace.len();

    // One fused call through `f`: the rlib's `ctc_loss_forward_backward` or a shared library's.
    let (loss_p, grad_p): (*mut CtcTensor, *mut CtcTensor) = (&mut loss_t, &mut grad_t);
    let fused_call = |f: ForwardBackwardFn, options: &CtcOptions| unsafe {
        f(
            &lp,
            &tg,
            &il,
            &tl,
            std::ptr::null(),
            options,
            loss_p,
            grad_p,
        )
    };
    let mut fused = || {
        check(
            fused_call(ctc_loss_forward_backward, &options),
            "ctc_loss_forward_backward",
        )
    };
    fused();
    let first_loss = loss;
    let first_grad = grad.clone();
    let fused = measure(cfg, &mut fused);

    let fused_alloc = measure(cfg, || {
        check(
            fused_call(ctc_loss_forward_backward, &alloc_options),
            "ctc_loss_forward_backward (no workspace)",
        )
    });
    let forward = measure(cfg, || {
        check(
            unsafe { ctc_loss_forward(&lp, &tg, &il, &tl, &options, &mut loss_fwd_t) },
            "ctc_loss_forward",
        )
    });
    // Results are documented as deterministic: every variant must agree bit for bit.
    assert!(first_loss.is_finite(), "{}: loss {first_loss}", shape.name);
    assert_eq!(loss.to_bits(), first_loss.to_bits(), "{}: loss", shape.name);
    assert_eq!(
        loss_fwd.to_bits(),
        first_loss.to_bits(),
        "{}: fwd",
        shape.name
    );
    assert!(
        grad.iter()
            .zip(&first_grad)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{}: gradient differs between runs",
        shape.name
    );

    // The same call through the shared library, on the same buffers and workspace.
    let (fused_dylib, dylib_identical) = match dylib {
        None => (None, None),
        Some(lib) => {
            let call = || {
                lib.check(
                    fused_call(lib.forward_backward, &options),
                    "ctc_loss_forward_backward",
                )
            };
            call();
            let identical = loss.to_bits() == first_loss.to_bits()
                && grad
                    .iter()
                    .zip(&first_grad)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            (Some(measure(cfg, call)), Some(identical))
        }
    };
    drop(first_grad);

    // The anchor copies the real input into the real gradient buffer.
    let copy = measure_copy(cfg, &d.log_probs, grad, cfg.threads);
    let copy_1t = measure_copy(cfg, &d.log_probs, grad, 1);
    Row {
        shape,
        workspace_bytes,
        loss: first_loss,
        fused,
        fused_alloc,
        fused_dylib,
        dylib_identical,
        forward,
        copy,
        copy_1t,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The 1-, 5- and 15-minute load averages, when /proc/loadavg exists.
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn main() {
    let cfg = parse_args();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "libctc {} CPU benchmark: float32 forward+backward, blank 0, mean reduction",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "threads {} (options.num_threads and copy anchor), {} cores, CPU {}",
        cfg.threads,
        cores,
        cpu_model()
    );
    if let Some(load) = load_average() {
        println!("load average {load}");
    }
    println!(
        "each figure: median (min) of >= {} runs and >= {:.2} s, or >= 5 runs and {:.2} s; \
         lowest median of {} round(s)",
        cfg.min_runs,
        cfg.min_time.as_secs_f64(),
        cfg.max_time.as_secs_f64(),
        cfg.rounds
    );
    let dylib = cfg.dylib.as_ref().map(|path| {
        Dylib::open(path).unwrap_or_else(|e| {
            eprintln!("ctc_bench: could not open --dylib {e}");
            std::process::exit(1)
        })
    });
    if let Some(lib) = &dylib {
        println!("shared library: {}", lib.path.display());
    }
    println!();
    let mut cases: Vec<Case> = cfg
        .shapes
        .iter()
        .map(|&shape| Case {
            shape,
            data: make_data(shape, cfg.seed),
            grad: vec![0f32; shape.t * shape.n * shape.c],
        })
        .collect();
    let mut best: Vec<Option<Row>> = cases.iter().map(|_| None).collect();
    for round in 1..=cfg.rounds {
        if cfg.rounds > 1 {
            eprint!("round {round}/{}:", cfg.rounds);
        }
        for (case, best) in cases.iter_mut().zip(best.iter_mut()) {
            if cfg.rounds > 1 {
                eprint!(" {}", case.shape.name);
            }
            let r = bench_shape(&cfg, case, dylib.as_ref());
            *best = Some(match best.take() {
                Some(b) => b.best(r),
                None => r,
            });
        }
        if cfg.rounds > 1 {
            eprintln!();
        }
    }
    let header = format!(
        "{:<12} {:>5} {:>3} {:>5} {:>8} | {:>19} {:>9} {:>9} {:>9} | {:>19} {:>9} | {:>7} | {:>6}",
        "shape",
        "T",
        "N",
        "C",
        "L",
        "fused ms (min)",
        "no-ws ms",
        ".so ms",
        "fwd ms",
        format!("copy {}T ms (min)", cfg.threads),
        "copy 1T",
        "ratio",
        "other%"
    );
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    let mut rows = Vec::new();
    for r in best.into_iter().flatten() {
        let shape = r.shape;
        println!(
            "{:<12} {:>5} {:>3} {:>5} {:>8} | {:>9.3} ({:>7.3}) {:>9.3} {:>9} {:>9.3} | {:>9.4} ({:>7.4}) {:>9.4} | {:>7.1} | {:>5.1}{}",
            shape.name,
            shape.t,
            shape.n,
            shape.c,
            format!("{}..{}", shape.target_min, shape.target_max),
            r.fused.median_ms,
            r.fused.min_ms,
            r.fused_alloc.median_ms,
            r.fused_dylib
                .map_or("-".to_string(), |s| format!("{:.3}", s.median_ms)),
            r.forward.median_ms,
            r.copy.median_ms,
            r.copy.min_ms,
            r.copy_1t.median_ms,
            r.fused.median_ms / r.copy.median_ms,
            100.0 * r.worst_interference(),
            if r.all().iter().any(|s| s.disturbed(&cfg)) {
                "*"
            } else {
                ""
            },
        );
        if r.dylib_identical == Some(false) {
            println!(
                "  note: the shared library's loss or gradient differs from this binary's: \
                 is it built from the same source?"
            );
        }
        rows.push(r);
    }
    println!();
    println!(
        "fused: ctc_loss_forward_backward with a caller workspace; no-ws: the same without one; \
         .so: fused through --dylib;\nfwd: ctc_loss_forward; copy: T*N*C float32 copied into another buffer; \
         ratio = fused median / copy {}T median;\nother%: the largest share of the CPUs other \
         processes took while a figure of the row was measured (* above {:.0}%: noisy).",
        cfg.threads,
        100.0 * cfg.max_interference
    );

    if let Some(path) = &cfg.json {
        let shapes: Vec<Value> = rows
            .iter()
            .map(|r| {
                let s = r.shape;
                json!({
                    "name": s.name,
                    "T": s.t,
                    "N": s.n,
                    "C": s.c,
                    "target_min": s.target_min,
                    "target_max": s.target_max,
                    "copy_bytes": 2 * s.t * s.n * s.c * std::mem::size_of::<f32>(),
                    "workspace_bytes": r.workspace_bytes,
                    "loss": r.loss,
                    "fused": r.fused.json(),
                    "fused_no_workspace": r.fused_alloc.json(),
                    "fused_dylib": r.fused_dylib.map(|s| s.json()),
                    "dylib_identical": r.dylib_identical,
                    "forward": r.forward.json(),
                    "copy": r.copy.json(),
                    "copy_1thread": r.copy_1t.json(),
                    "ratio_fused_over_copy": r.fused.median_ms / r.copy.median_ms,
                })
            })
            .collect();
        let doc = json!({
            "library_version": env!("CARGO_PKG_VERSION"),
            "dtype": "float32",
            "blank": 0,
            "reduction": "mean",
            "threads": cfg.threads,
            "cores": cores,
            "cpu": cpu_model(),
            "dylib": cfg.dylib.as_ref().map(|p| p.display().to_string()),
            "load_average_at_end": load_average(),
            "seed": cfg.seed,
            "min_time_s": cfg.min_time.as_secs_f64(),
            "min_runs": cfg.min_runs,
            "max_time_s": cfg.max_time.as_secs_f64(),
            "rounds": cfg.rounds,
            "max_interference": cfg.max_interference,
            "shapes": shapes,
        });
        let text = serde_json::to_string_pretty(&doc).expect("serializable") + "\n";
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("ctc_bench: could not write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}
