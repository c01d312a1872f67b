//! Concurrency stress: 16 threads each make 1,000 calls of `ctc_loss_forward`,
//! `ctc_loss_backward` and `ctc_loss_forward_backward` at once, over many distinct problems
//! (shapes, reductions, zero_infinity, blank, float32/float64, four memory layouts, padded and
//! concatenated targets, int32/int64, impossible samples) and thread counts 0..=4. Every result
//! must equal, bit for bit, the serial result computed first (one thread, the fused call) for the
//! same problem. Every tenth call is a failing one (a label out of range, different in every
//! thread) whose `ctc_last_error_message()` must name that thread's own value, even after other
//! threads' calls succeeded in between. The resident set size, measured after a warm-up round
//! and after the stress round, must not grow by more than a small bound (no leak per call).

mod common;
use common::skip::skip;
use common::*;
use ctc::ffi::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const THREADS: usize = 16;
const CALLS: usize = 1000;
const CONFIGS: usize = 64;

/// One distinct problem.
#[derive(Clone, Debug)]
struct Config {
    t: usize,
    n: usize,
    c: usize,
    s: usize,
    blank: i32,
    reduction: CtcReduction,
    zero_infinity: bool,
    double: bool,
    layout: Layout,
    concatenated: bool,
    wide: bool,
    null_grad_loss: bool,
    log_probs: Vec<f64>,
    /// Padded (N, S) rows, -1 past each length.
    targets: Vec<i64>,
    input_lengths: Vec<i64>,
    target_lengths: Vec<i64>,
    grad_out: Vec<f64>,
}

impl Config {
    fn new(rng: &mut Rng, i: usize) -> Config {
        let t = rng.range(1, 30);
        let n = rng.range(1, 6);
        let c = rng.range(2, 10);
        let s = rng.range(0, 8);
        let blank = rng.range(0, c - 1);
        let reduction = [CTC_REDUCTION_NONE, CTC_REDUCTION_MEAN, CTC_REDUCTION_SUM][i % 3];
        let logits: Vec<f64> = (0..t * n * c).map(|_| 2.0 * rng.normal()).collect();
        let log_probs = log_softmax(&logits, c);
        let mut targets = vec![-1; n * s];
        let mut input_lengths = Vec::new();
        let mut target_lengths = Vec::new();
        for b in 0..n {
            // Some samples are impossible (too few frames): +inf loss, NaN or zero gradient.
            input_lengths.push(rng.range(0, t) as i64);
            let l = rng.range(0, s);
            target_lengths.push(l as i64);
            for j in 0..l {
                let mut k = rng.range(0, c - 2);
                if k >= blank {
                    k += 1;
                }
                targets[b * s + j] = k as i64;
            }
        }
        let per_sample = reduction == CTC_REDUCTION_NONE;
        let grad_out = (0..if per_sample { n } else { 1 })
            .map(|_| rng.uniform() * 2.0 - 0.5)
            .collect();
        Config {
            t,
            n,
            c,
            s,
            blank: blank as i32,
            reduction,
            zero_infinity: i % 5 == 1,
            double: i.is_multiple_of(2),
            layout: LAYOUTS[(i / 2) % 4],
            concatenated: i % 7 == 3,
            wide: i % 3 != 2,
            null_grad_loss: i % 11 == 4,
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            grad_out,
        }
    }
}

/// Bits of the outputs of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bits {
    loss: Vec<u64>,
    grad: Vec<u64>,
}

/// Runs `cfg` through `entry` with `threads` worker threads. With `bad_label = Some(v)` the first
/// label of the first sample with a non-empty target is replaced by `v` (out of range): the call
/// must then fail. Returns the status and the output bits (all of the buffers, padding included).
fn run<F: Float>(
    cfg: &Config,
    entry: Entry,
    threads: u32,
    bad_label: Option<i64>,
) -> (CtcStatus, Bits) {
    let (t, n, c) = (cfg.t, cfg.n, cfg.c);
    let mut lp = Strided::<F>::new(&cfg.log_probs, t, n, c, true, cfg.layout, f64::NAN);
    let mut grad = Strided::<F>::new(&vec![0.0; t * n * c], t, n, c, true, cfg.layout, -7.0);
    let mut labels = cfg.targets.clone();
    if let Some(v) = bad_label {
        let b = cfg.target_lengths.iter().position(|&l| l > 0).unwrap();
        labels[b * cfg.s] = v;
    }
    let (tvalues, tshape): (Vec<i64>, Vec<i64>) = if cfg.concatenated {
        let v: Vec<i64> = (0..n)
            .flat_map(|b| labels[b * cfg.s..b * cfg.s + cfg.target_lengths[b] as usize].to_vec())
            .collect();
        let len = v.len() as i64;
        (v, vec![len])
    } else {
        (labels, vec![n as i64, cfg.s as i64])
    };
    let mut targets = Ints::new(&tvalues, cfg.wide);
    let mut il = Ints::new(&cfg.input_lengths, !cfg.wide);
    let mut tl = Ints::new(&cfg.target_lengths, cfg.wide);
    let per_sample = cfg.reduction == CTC_REDUCTION_NONE;
    let nloss = if per_sample { n } else { 1 };
    let mut loss = vec![F::from_f64(-9.0); nloss];
    let mut go: Vec<F> = cfg.grad_out.iter().map(|&x| F::from_f64(x)).collect();
    let (lshape, lstrides): (Vec<i64>, Vec<i64>) = if per_sample {
        (vec![n as i64], vec![1])
    } else {
        (vec![], vec![])
    };
    let t_lp = lp.tensor();
    let t_tg = targets.tensor(&tshape, &contiguous(&tshape));
    let t_il = il.tensor(&[n as i64], &[1]);
    let t_tl = tl.tensor(&[n as i64], &[1]);
    let t_go = tensor(go.as_mut_ptr(), F::DTYPE, &lshape, &lstrides);
    let go_ptr: *const CtcTensor = if cfg.null_grad_loss {
        std::ptr::null()
    } else {
        &t_go
    };
    let mut t_loss = tensor(loss.as_mut_ptr(), F::DTYPE, &lshape, &lstrides);
    let mut t_grad = grad.tensor();
    let mut opts = ctc_options_default();
    opts.blank = cfg.blank;
    opts.reduction = cfg.reduction;
    opts.zero_infinity = CBool(cfg.zero_infinity as u8);
    opts.num_threads = threads;
    // SAFETY: every tensor describes a live buffer of its shape and dtype.
    let status = unsafe {
        call_entry(
            entry,
            &t_lp,
            &t_tg,
            &t_il,
            &t_tl,
            go_ptr,
            &opts,
            &mut t_loss,
            &mut t_grad,
            std::ptr::null_mut(),
        )
    };
    let bits = Bits {
        loss: loss.iter().map(|x| x.to_f64().to_bits()).collect(),
        grad: grad.buf.iter().map(|x| x.to_f64().to_bits()).collect(),
    };
    (status, bits)
}

fn run_any(cfg: &Config, entry: Entry, threads: u32, bad: Option<i64>) -> (CtcStatus, Bits) {
    if cfg.double {
        run::<f64>(cfg, entry, threads, bad)
    } else {
        run::<f32>(cfg, entry, threads, bad)
    }
}

/// Resident set size in bytes (Linux: /proc/self/statm); None elsewhere.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// One round: every thread makes `calls` calls; returns the number of failing calls checked.
fn round(configs: &[Config], serial: &[Bits], calls: usize, salt: usize) -> usize {
    let failures = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..THREADS {
            let failures = &failures;
            scope.spawn(move || {
                for i in 0..calls {
                    let k = (worker * 7919 + i * 31 + salt) % configs.len();
                    let cfg = &configs[k];
                    let threads = ((worker + i) % 5) as u32;
                    let entry = [Entry::Forward, Entry::Backward, Entry::Fused][(i + worker) % 3];
                    if i % 10 == 9 {
                        if let Some(b) = cfg.target_lengths.iter().position(|&l| l > 0) {
                            // A value out of range [0, C) unique to this thread and call.
                            let bad = (cfg.c + 1000 * (worker + 1) + i) as i64;
                            let (status, bits) = run_any(cfg, entry, threads, Some(bad));
                            assert_eq!(status, CTC_STATUS_INVALID_ARGUMENT, "config {k}");
                            std::thread::yield_now();
                            let msg = last_error();
                            let want = if cfg.concatenated {
                                let off: i64 = cfg.target_lengths[..b].iter().sum();
                                format!("targets[{off}] = {bad} ")
                            } else {
                                format!("targets[{b}][0] = {bad} is out of range")
                            };
                            assert!(
                                msg.contains(&want),
                                "worker {worker} call {i}: message {msg:?} is not this thread's ({want:?})"
                            );
                            // Nothing was written.
                            assert!(bits.loss.iter().all(|&x| x == (-9.0f64).to_bits()));
                            failures.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    let (status, bits) = run_any(cfg, entry, threads, None);
                    assert_eq!(
                        status,
                        CTC_STATUS_SUCCESS,
                        "worker {worker} config {k}: {}",
                        last_error()
                    );
                    assert_eq!(last_error(), "", "message after a success");
                    let want = &serial[k];
                    if entry != Entry::Backward {
                        assert_eq!(
                            bits.loss, want.loss,
                            "worker {worker} call {i}: {entry:?} loss of config {k} with {threads} threads differs from the serial one"
                        );
                    }
                    if entry != Entry::Forward {
                        assert_eq!(
                            bits.grad, want.grad,
                            "worker {worker} call {i}: {entry:?} gradient of config {k} with {threads} threads differs from the serial one"
                        );
                    }
                }
            });
        }
    });
    failures.into_inner()
}

#[test]
fn sixteen_threads_get_serial_bits_own_messages_and_no_leak() {
    let mut rng = Rng(0x5eed_57e5);
    let configs: Vec<Config> = (0..CONFIGS).map(|i| Config::new(&mut rng, i)).collect();
    let start = Instant::now();
    let serial: Vec<Bits> = configs
        .iter()
        .enumerate()
        .map(|(k, cfg)| {
            let (status, bits) = run_any(cfg, Entry::Fused, 1, None);
            assert_eq!(status, CTC_STATUS_SUCCESS, "config {k}: {}", last_error());
            bits
        })
        .collect();
    let impossible = configs
        .iter()
        .filter(|c| {
            (0..c.n).any(|b| {
                let l = c.target_lengths[b] as usize;
                let labels = &c.targets[b * c.s..b * c.s + l];
                let repeats = labels.windows(2).filter(|w| w[0] == w[1]).count();
                (c.input_lengths[b] as usize) < l + repeats
            })
        })
        .count();
    assert!(
        impossible > 5,
        "only {impossible} configs have an impossible sample"
    );

    // Warm-up: every pool, thread-local and allocator arena the stress round uses.
    round(&configs, &serial, 100, 1);
    let before = rss();
    let failures = round(&configs, &serial, CALLS, 0);
    let after = rss();
    println!(
        "{THREADS} threads x {CALLS} calls over {CONFIGS} configs ({failures} failing calls checked) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures > THREADS * CALLS / 20,
        "only {failures} failing calls"
    );
    match (before, after) {
        (Some(b), Some(a)) => {
            let growth = a as i64 - b as i64;
            println!(
                "RSS after warm-up {:.1} MiB, after the stress round {:.1} MiB (growth {:.2} MiB)",
                b as f64 / 1048576.0,
                a as f64 / 1048576.0,
                growth as f64 / 1048576.0
            );
            assert!(
                growth < 8 << 20,
                "RSS grew by {growth} bytes over {} calls",
                THREADS * CALLS
            );
        }
        _ => skip("the RSS check", "/proc/self/statm is not readable here"),
    }
}
