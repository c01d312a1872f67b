//! Forced alignment (`ctc_align`) through the C ABI: torchaudio's golden alignments in every
//! layout, dtype and thread count; a brute-force enumeration of every alignment (optimal, valid,
//! and the one the documented tie rule picks); ties everywhere; impossible samples inside a
//! batch; inputs around the checkpoint segments' boundaries; the release-only long input; and
//! the validation rules of the new entry point.

mod common;
use common::*;
use ctc::ffi::*;
use serde_json::Value;
use std::path::Path;
use std::ptr;

/// One alignment problem: (T, N, C) log-probabilities (row-major), each sample's labels and
/// input length.
#[derive(Clone, Debug)]
struct Problem {
    t: usize,
    n: usize,
    c: usize,
    blank: i32,
    lp: Vec<f64>,
    labels: Vec<Vec<i64>>,
    input_lengths: Vec<i64>,
}

/// What `ctc_align` returned.
#[derive(Debug, PartialEq)]
struct Aligned {
    status: CtcStatus,
    /// (T, N) row-major.
    path: Vec<i64>,
    scores: Vec<f64>,
}

impl Problem {
    fn lp(&self, t: usize, b: usize, c: usize) -> f64 {
        self.lp[(t * self.n + b) * self.c + c]
    }

    /// Aligns with log_probs of type `F` in `layout`, padded int64 targets, paths of int32 or
    /// int64, `threads` threads.
    fn align<F: Float>(&self, layout: Layout, path_i32: bool, threads: u32) -> Aligned {
        let mut lp = Strided::<F>::new(&self.lp, self.t, self.n, self.c, true, layout, f64::NAN);
        let s = self.labels.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut targets = vec![-7i64; self.n * s];
        for (b, l) in self.labels.iter().enumerate() {
            targets[b * s..b * s + l.len()].copy_from_slice(l);
        }
        let mut il = self.input_lengths.clone();
        let mut tl: Vec<i64> = self.labels.iter().map(|l| l.len() as i64).collect();
        let (t, n) = (self.t as i64, self.n as i64);
        let mut path64 = vec![i64::MIN; self.t * self.n];
        let mut path32 = vec![i32::MIN; self.t * self.n];
        let mut scores = vec![F::from_f64(12345.0); self.n];
        let t_lp = lp.tensor();
        let t_tg = tensor(
            targets.as_mut_ptr(),
            CTC_DTYPE_INT64,
            &[n, s as i64],
            &[s as i64, 1],
        );
        let t_il = tensor(il.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
        let t_tl = tensor(tl.as_mut_ptr(), CTC_DTYPE_INT64, &[n], &[1]);
        let mut t_path = if path_i32 {
            tensor(path32.as_mut_ptr(), CTC_DTYPE_INT32, &[t, n], &[n, 1])
        } else {
            tensor(path64.as_mut_ptr(), CTC_DTYPE_INT64, &[t, n], &[n, 1])
        };
        let mut t_scores = tensor(scores.as_mut_ptr(), F::DTYPE, &[n], &[1]);
        let mut opts = ctc_options_default();
        opts.blank = self.blank;
        opts.num_threads = threads;
        // SAFETY: every tensor describes a live buffer of its shape and dtype.
        let status = unsafe {
            ctc_align(
                &t_lp,
                &t_tg,
                &t_il,
                &t_tl,
                &opts,
                &mut t_path,
                &mut t_scores,
            )
        };
        let path = if path_i32 {
            path32.iter().map(|&v| v as i64).collect()
        } else {
            path64
        };
        Aligned {
            status,
            path,
            scores: scores.iter().map(|v| v.to_f64()).collect(),
        }
    }

    /// The path of sample `b`, frames 0..T.
    fn column(&self, a: &Aligned, b: usize) -> Vec<i64> {
        (0..self.t).map(|t| a.path[t * self.n + b]).collect()
    }
}

/// Whether `path` (the classes of frames 0..t_b) collapses to `labels`.
fn collapses_to(path: &[i64], labels: &[i64], blank: i64) -> bool {
    let mut out = Vec::new();
    let mut last = None;
    for &c in path {
        if Some(c) != last && c != blank {
            out.push(c);
        }
        last = Some(c);
    }
    out == labels
}

/// Every alignment of `labels` to `t_b` frames (as state sequences), by enumeration.
fn all_alignments(labels: &[i64], t_b: usize) -> Vec<Vec<usize>> {
    let s_prime = 2 * labels.len() + 1;
    if t_b == 0 {
        // The empty alignment, valid for an empty target only.
        return if labels.is_empty() {
            vec![vec![]]
        } else {
            vec![]
        };
    }
    let skip = |s: usize| s % 2 == 1 && s >= 2 && labels[s / 2] != labels[s / 2 - 1];
    let mut out = Vec::new();
    let mut stack: Vec<Vec<usize>> = vec![vec![0]];
    if s_prime > 1 {
        stack.push(vec![1]);
    }
    while let Some(p) = stack.pop() {
        let s = *p.last().unwrap();
        if p.len() == t_b {
            if s + 2 >= s_prime {
                out.push(p);
            }
            continue;
        }
        for next in [s, s + 1, s + 2] {
            if next < s_prime && (next <= s + 1 || skip(next)) {
                let mut q = p.clone();
                q.push(next);
                stack.push(q);
            }
        }
    }
    out
}

fn class_of(labels: &[i64], s: usize, blank: i64) -> i64 {
    if s.is_multiple_of(2) {
        blank
    } else {
        labels[s / 2]
    }
}

/// The alignment the documented tie rule picks among the best (scores summed exactly: the
/// problems that use this have scores that sum exactly in float32 and float64): the one ending in
/// the last label rather than the final blank, then, frame by frame from the last, staying
/// rather than coming from one state back, rather than two.
fn rule_pick(p: &Problem, b: usize) -> Option<Vec<i64>> {
    let (labels, t_b) = (&p.labels[b], p.input_lengths[b] as usize);
    let blank = p.blank as i64;
    let score = |a: &[usize]| -> f64 {
        a.iter()
            .enumerate()
            .map(|(t, &s)| p.lp(t, b, class_of(labels, s, blank) as usize))
            .sum()
    };
    let all = all_alignments(labels, t_b);
    let best = all
        .iter()
        .map(|a| score(a))
        .fold(f64::NEG_INFINITY, f64::max);
    if best == f64::NEG_INFINITY {
        return None;
    }
    let s_prime = 2 * labels.len() + 1;
    // Key: the final state's rank (last label first), then each step's back-pointer from the end.
    let key = |a: &Vec<usize>| -> Vec<usize> {
        let last = a.last().copied().unwrap_or(0);
        let mut k = vec![if labels.is_empty() || last == s_prime - 2 {
            0
        } else {
            1
        }];
        k.extend((1..a.len()).rev().map(|t| a[t] - a[t - 1]));
        k
    };
    let pick = all
        .iter()
        .filter(|a| score(a) == best)
        .min_by_key(|a| key(a))?;
    Some(pick.iter().map(|&s| class_of(labels, s, blank)).collect())
}

/// A random problem of small sizes; `coarse` makes every log-probability one of -1, -2, -3, so
/// that many alignments tie (and sums are exact).
fn random_problem(rng: &mut Rng, coarse: bool) -> Problem {
    let (t, n, c) = (rng.range(1, 7), rng.range(1, 4), rng.range(2, 5));
    let blank = rng.range(0, c - 1) as i32;
    let lp: Vec<f64> = (0..t * n * c)
        .map(|_| {
            if coarse {
                -(rng.range(1, 3) as f64)
            } else {
                -3.0 * rng.uniform()
            }
        })
        .collect();
    let labels = (0..n)
        .map(|_| {
            (0..rng.range(0, 3))
                .map(|_| {
                    let k = rng.range(0, c - 2) as i64;
                    if k >= blank as i64 {
                        k + 1
                    } else {
                        k
                    }
                })
                .collect()
        })
        .collect();
    let input_lengths = (0..n).map(|_| rng.range(0, t) as i64).collect();
    Problem {
        t,
        n,
        c,
        blank,
        lp: if coarse {
            lp
        } else {
            lp.iter().map(|&v| (v as f32) as f64).collect()
        },
        labels,
        input_lengths,
    }
}

#[test]
fn brute_force_optimal_valid_and_by_the_tie_rule() {
    let mut rng = Rng(3);
    for case in 0..400 {
        let coarse = case % 2 == 0;
        let p = random_problem(&mut rng, coarse);
        let picks: Vec<_> = (0..p.n).map(|b| rule_pick(&p, b)).collect();
        for (layout, path_i32, threads) in [
            (Layout::Contiguous, false, 1),
            (Layout::Transposed, true, 2),
        ] {
            for a in [
                p.align::<f64>(layout, path_i32, threads),
                p.align::<f32>(layout, path_i32, threads),
            ] {
                assert_eq!(a.status, CTC_STATUS_SUCCESS, "{}", last_error());
                for (b, pick) in picks.iter().enumerate() {
                    let got = p.column(&a, b);
                    let t_b = p.input_lengths[b] as usize;
                    assert!(got[t_b..].iter().all(|&v| v == -1), "case {case}: padding");
                    match pick {
                        None => {
                            assert!(got.iter().all(|&v| v == -1), "case {case} sample {b}");
                            assert_eq!(a.scores[b], f64::NEG_INFINITY);
                        }
                        Some(want) => {
                            assert!(collapses_to(&got[..t_b], &p.labels[b], p.blank as i64));
                            if coarse {
                                assert_eq!(got[..t_b], want[..], "case {case} sample {b}: {p:?}");
                            }
                            let score: f64 = (0..t_b).map(|t| p.lp(t, b, got[t] as usize)).sum();
                            let best: f64 = (0..t_b).map(|t| p.lp(t, b, want[t] as usize)).sum();
                            assert!((score - best).abs() <= 1e-5, "case {case}: not optimal");
                            assert!((a.scores[b] - score).abs() <= 1e-5 * score.abs().max(1.0));
                        }
                    }
                }
            }
        }
    }
}

/// Equal log-probabilities everywhere: every alignment is best; the path is the tie rule's.
#[test]
fn ties_everywhere_follow_the_rule() {
    for (t, labels) in [
        (8, vec![1, 2, 3]),
        (10, vec![2, 2]),
        (5, vec![1]),
        (6, vec![]),
        (9, vec![1, 1, 1, 2]),
    ] {
        let c = 4;
        let p = Problem {
            t,
            n: 1,
            c,
            blank: 0,
            lp: vec![-1.0; t * c],
            labels: vec![labels],
            input_lengths: vec![t as i64],
        };
        let want = rule_pick(&p, 0).unwrap();
        for threads in [1, 2] {
            let a = p.align::<f32>(Layout::Contiguous, false, threads);
            assert_eq!(p.column(&a, 0), want, "{p:?}");
            assert_eq!(a.scores[0], -(t as f64));
        }
    }
}

fn golden_align_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-align")
}

/// torchaudio's golden alignments (no ties): the same path exactly, and the score, in every
/// layout, float32 and float64, int32 and int64 paths, 1 and 3 threads; the cases also batched
/// together (each padded to the longest).
#[test]
fn golden_alignments_from_torchaudio() {
    let mut paths: Vec<_> = std::fs::read_dir(golden_align_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 11, "the golden alignment set has eleven cases");
    let cases: Vec<(Problem, Vec<i64>, f64)> = paths
        .iter()
        .map(|path| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let (t, c) = (
                v["T"].as_u64().unwrap() as usize,
                v["C"].as_u64().unwrap() as usize,
            );
            let lp: Vec<f64> = v["log_probs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect();
            let ints = |k: &str| -> Vec<i64> {
                v[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect()
            };
            let p = Problem {
                t,
                n: 1,
                c,
                blank: v["blank"].as_i64().unwrap() as i32,
                lp,
                labels: vec![ints("targets")],
                input_lengths: vec![t as i64],
            };
            (p, ints("path"), v["path_score"].as_f64().unwrap())
        })
        .collect();
    for (p, want, score) in &cases {
        for layout in LAYOUTS {
            for (path_i32, threads) in [(false, 1), (true, 3)] {
                for a in [
                    p.align::<f32>(layout, path_i32, threads),
                    p.align::<f64>(layout, path_i32, threads),
                ] {
                    assert_eq!(a.status, CTC_STATUS_SUCCESS, "{}", last_error());
                    assert_eq!(&p.column(&a, 0), want, "{layout:?}");
                    assert!((a.scores[0] - score).abs() <= 1e-4 * score.abs().max(1.0));
                }
            }
        }
    }
    // All of them as one batch with the same blank: each padded to the longest input.
    let blank0: Vec<_> = cases.iter().filter(|(p, _, _)| p.blank == 0).collect();
    let t = blank0.iter().map(|(p, _, _)| p.t).max().unwrap();
    let c = blank0.iter().map(|(p, _, _)| p.c).max().unwrap();
    let n = blank0.len();
    let mut lp = vec![f64::NEG_INFINITY; t * n * c];
    for (b, (p, _, _)) in blank0.iter().enumerate() {
        for ti in 0..p.t {
            for k in 0..p.c {
                lp[(ti * n + b) * c + k] = p.lp(ti, 0, k);
            }
        }
    }
    let batch = Problem {
        t,
        n,
        c,
        blank: 0,
        lp,
        labels: blank0.iter().map(|(p, _, _)| p.labels[0].clone()).collect(),
        input_lengths: blank0.iter().map(|(p, _, _)| p.t as i64).collect(),
    };
    for threads in [1, 2, 5] {
        let a = batch.align::<f32>(Layout::BatchFirst, false, threads);
        assert_eq!(a.status, CTC_STATUS_SUCCESS, "{}", last_error());
        for (b, (p, want, score)) in blank0.iter().enumerate() {
            let got = batch.column(&a, b);
            assert_eq!(&got[..p.t], &want[..]);
            assert!(got[p.t..].iter().all(|&v| v == -1));
            assert!((a.scores[b] - score).abs() <= 1e-4 * score.abs().max(1.0));
        }
    }
}

/// Samples with no alignment (too few frames for their repeats; every alignment through a -inf;
/// a NaN) get -1 and -inf among samples that align; the call succeeds.
#[test]
fn impossible_samples_inside_a_batch() {
    let (t, n, c) = (6, 4, 4);
    let mut lp = vec![-1.0; t * n * c];
    // Sample 2: the blank and label 1 are -inf at frame 3, so no alignment of [1] survives.
    for k in [0, 1] {
        lp[(3 * n + 2) * c + k] = f64::NEG_INFINITY;
    }
    lp[(2 * n + 3) * c + 2] = f64::NAN; // sample 3: a NaN on every alignment of [2]
    let p = Problem {
        t,
        n,
        c,
        blank: 0,
        lp,
        labels: vec![vec![1, 2], vec![3, 3, 3, 3], vec![1], vec![2, 2, 2]],
        input_lengths: vec![6, 6, 6, 5],
    };
    for threads in [1, 3] {
        let a = p.align::<f32>(Layout::Contiguous, false, threads);
        assert_eq!(a.status, CTC_STATUS_SUCCESS, "{}", last_error());
        assert!(collapses_to(&p.column(&a, 0), &[1, 2], 0));
        assert_eq!(a.scores[0], -6.0);
        for b in 1..4 {
            assert!(p.column(&a, b).iter().all(|&v| v == -1), "sample {b}");
            assert_eq!(a.scores[b], f64::NEG_INFINITY, "sample {b}");
        }
    }
}

/// A straightforward float32 Viterbi with the tie rule, whole table: the expected path.
fn simple_viterbi(p: &Problem, b: usize) -> Option<Vec<i64>> {
    let (labels, t_b, blank) = (&p.labels[b], p.input_lengths[b] as usize, p.blank as i64);
    if t_b == 0 {
        return labels.is_empty().then(Vec::new);
    }
    let s_prime = 2 * labels.len() + 1;
    let lp = |t: usize, s: usize| p.lp(t, b, class_of(labels, s, blank) as usize) as f32;
    let skip = |s: usize| s % 2 == 1 && s >= 2 && labels[s / 2] != labels[s / 2 - 1];
    let mut delta = vec![f32::NEG_INFINITY; s_prime];
    let mut from = vec![0usize; t_b * s_prime];
    delta[0] = lp(0, 0);
    if s_prime > 1 {
        delta[1] = lp(0, 1);
    }
    for t in 1..t_b {
        let prev = delta.clone();
        for s in 0..s_prime {
            let x0 = prev[s];
            let x1 = if s >= 1 {
                prev[s - 1]
            } else {
                f32::NEG_INFINITY
            };
            let x2 = if skip(s) {
                prev[s - 2]
            } else {
                f32::NEG_INFINITY
            };
            let (v, k) = if x2 > x1 && x2 > x0 {
                (x2, 2)
            } else if x1 > x0 {
                (x1, 1)
            } else {
                (x0, 0)
            };
            delta[s] = v + lp(t, s);
            from[t * s_prime + s] = k;
        }
    }
    let blank_better = labels.is_empty() || delta[s_prime - 1] > delta[s_prime - 2];
    let mut s = if blank_better {
        s_prime - 1
    } else {
        s_prime - 2
    };
    if delta[s] == f32::NEG_INFINITY || delta[s].is_nan() {
        return None;
    }
    let mut path = vec![0; t_b];
    for t in (0..t_b).rev() {
        path[t] = class_of(labels, s, blank);
        s -= from[t * s_prime + s];
    }
    Some(path)
}

/// Input lengths just below, at and just above multiples of the checkpoint segment (K = 80 for
/// T = 400 in float32), in one batch: the paths of a whole-table Viterbi.
#[test]
fn checkpoint_segment_boundaries() {
    let (t, c) = (400, 6);
    let lengths = [1i64, 2, 79, 80, 81, 159, 160, 161, 240, 399, 400];
    let n = lengths.len();
    let mut rng = Rng(9);
    let lp: Vec<f64> = (0..t * n * c)
        .map(|_| ((-4.0 * rng.uniform()) as f32) as f64)
        .collect();
    let labels: Vec<Vec<i64>> = lengths
        .iter()
        .map(|&l| {
            (0..(l as usize / 3).min(40))
                .map(|_| rng.range(1, c - 1) as i64)
                .collect()
        })
        .collect();
    let p = Problem {
        t,
        n,
        c,
        blank: 0,
        lp,
        labels,
        input_lengths: lengths.to_vec(),
    };
    for threads in [1, 2] {
        let a = p.align::<f32>(Layout::Contiguous, true, threads);
        assert_eq!(a.status, CTC_STATUS_SUCCESS, "{}", last_error());
        for (b, length) in lengths.iter().enumerate() {
            let got = p.column(&a, b);
            match simple_viterbi(&p, b) {
                Some(want) => assert_eq!(&got[..want.len()], &want[..], "length {length}"),
                None => assert!(got.iter().all(|&v| v == -1)),
            }
        }
    }
}

/// T = 100,000 frames, 10,000 labels (release builds): a valid path, its score the best score
/// of a rows-only Viterbi, and the same bits with 1 and 2 threads.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "1e5 frames x 2e4 states, twice: run with `cargo test --release --test align`"
)]
fn long_input_release_only() {
    let (t, c, l) = (100_000usize, 40usize, 10_000usize);
    let mut rng = Rng(21);
    let labels: Vec<i64> = (0..l).map(|_| rng.range(1, c - 1) as i64).collect();
    let lp: Vec<f64> = (0..t * c)
        .map(|_| ((-5.0 * rng.uniform()) as f32) as f64)
        .collect();
    let p = Problem {
        t,
        n: 1,
        c,
        blank: 0,
        lp,
        labels: vec![labels],
        input_lengths: vec![t as i64],
    };
    let a = p.align::<f32>(Layout::Contiguous, false, 1);
    assert_eq!(a.status, CTC_STATUS_SUCCESS, "{}", last_error());
    let path = p.column(&a, 0);
    assert!(collapses_to(&path, &p.labels[0], 0));
    let sum: f64 = (0..t).map(|ti| p.lp(ti, 0, path[ti] as usize)).sum();
    assert!((a.scores[0] - sum).abs() <= 1e-3 * sum.abs());
    assert_eq!(p.align::<f32>(Layout::Contiguous, false, 2), a);
}

/// A valid problem for the validation tests: T = 6, N = 2, C = 4.
struct Case {
    lp: Vec<f32>,
    targets: Vec<i64>,
    il: Vec<i64>,
    tl: Vec<i64>,
    path: Vec<i64>,
    scores: Vec<f32>,
    t_lp: CtcTensor,
    t_tg: CtcTensor,
    t_il: CtcTensor,
    t_tl: CtcTensor,
    t_path: CtcTensor,
    t_scores: Option<CtcTensor>,
    opts: CtcOptions,
}

impl Case {
    fn new() -> Box<Case> {
        let mut c = Box::new(Case {
            lp: vec![-1.3f32; 6 * 2 * 4],
            targets: vec![1, 2, 3, 3],
            il: vec![6, 5],
            tl: vec![2, 2],
            path: vec![77; 6 * 2],
            scores: vec![77.0; 2],
            t_lp: tensor(ptr::null_mut::<f32>(), 0, &[], &[]),
            t_tg: tensor(ptr::null_mut::<f32>(), 0, &[], &[]),
            t_il: tensor(ptr::null_mut::<f32>(), 0, &[], &[]),
            t_tl: tensor(ptr::null_mut::<f32>(), 0, &[], &[]),
            t_path: tensor(ptr::null_mut::<f32>(), 0, &[], &[]),
            t_scores: None,
            opts: ctc_options_default(),
        });
        c.t_lp = tensor(c.lp.as_mut_ptr(), CTC_DTYPE_FLOAT32, &[6, 2, 4], &[8, 4, 1]);
        c.t_tg = tensor(c.targets.as_mut_ptr(), CTC_DTYPE_INT64, &[2, 2], &[2, 1]);
        c.t_il = tensor(c.il.as_mut_ptr(), CTC_DTYPE_INT64, &[2], &[1]);
        c.t_tl = tensor(c.tl.as_mut_ptr(), CTC_DTYPE_INT64, &[2], &[1]);
        c.t_path = tensor(c.path.as_mut_ptr(), CTC_DTYPE_INT64, &[6, 2], &[2, 1]);
        c.t_scores = Some(tensor(c.scores.as_mut_ptr(), CTC_DTYPE_FLOAT32, &[2], &[1]));
        c
    }

    fn run(&mut self) -> CtcStatus {
        let scores = self
            .t_scores
            .as_mut()
            .map_or(ptr::null_mut(), |t| t as *mut CtcTensor);
        // SAFETY: valid descriptors (or ones a test broke on purpose, which the library must
        // refuse before touching memory).
        unsafe {
            ctc_align(
                &self.t_lp,
                &self.t_tg,
                &self.t_il,
                &self.t_tl,
                &self.opts,
                &mut self.t_path,
                scores,
            )
        }
    }

    /// Runs, expecting `status` with `needle` in the message and nothing written.
    #[track_caller]
    fn expect(&mut self, status: CtcStatus, needle: &str) {
        let got = self.run();
        assert_eq!(got, status, "{}", last_error());
        assert!(
            last_error().contains(needle),
            "{:?} lacks {needle:?}",
            last_error()
        );
        assert!(self.path.iter().all(|&v| v == 77), "path written");
        assert!(self.scores.iter().all(|&v| v == 77.0), "scores written");
    }
}

#[test]
fn validation_of_ctc_align() {
    let invalid = |needle: &str, f: fn(&mut Case)| {
        let mut c = Case::new();
        f(&mut c);
        c.expect(CTC_STATUS_INVALID_ARGUMENT, needle);
    };
    invalid(
        "path.dtype = float32 but path must be int32 or int64",
        |c| c.t_path.dtype = CTC_DTYPE_FLOAT32,
    );
    invalid("path.ndim = 1 but path must be (T, N)", |c| {
        c.t_path.ndim = 1
    });
    invalid(
        "path has shape (5, 2) but log_probs has (T, N) = (6, 2)",
        |c| c.t_path.shape[0] = 5,
    );
    invalid(
        "path has strides [1, 1] for shape [6, 2]: its elements overlap",
        |c| c.t_path.strides = [1, 1, 0],
    );
    invalid(
        "path_scores.dtype = float64 but log_probs.dtype = float32",
        |c| c.t_scores.as_mut().unwrap().dtype = CTC_DTYPE_FLOAT64,
    );
    invalid(
        "path_scores has 1 elements but log_probs has batch size N = 2",
        |c| c.t_scores.as_mut().unwrap().shape[0] = 1,
    );
    invalid("path_scores.ndim = 0 but path_scores must be (N,)", |c| {
        c.t_scores.as_mut().unwrap().ndim = 0
    });
    invalid("path overlaps log_probs in memory", |c| {
        c.t_path.data = c.lp.as_mut_ptr().cast();
        c.t_path.dtype = CTC_DTYPE_INT32;
    });
    invalid("path overlaps path_scores in memory", |c| {
        c.t_scores.as_mut().unwrap().data = c.path.as_mut_ptr().cast()
    });
    invalid(
        "path is on CUDA device 0 but log_probs is on the host",
        |c| c.t_path.device = CTC_DEVICE_CUDA,
    );
    // The rules of the loss apply to the inputs.
    invalid("targets[0][1] = 4 is out of range [0, 4)", |c| {
        c.targets[1] = 4
    });
    invalid("targets[1][0] = 0 is the blank class", |c| c.targets[2] = 0);
    invalid("input_lengths[1] = 7 is out of range [0, T = 6]", |c| {
        c.il[1] = 7
    });
    invalid("options.blank = 4 is out of range [0, 4)", |c| {
        c.opts.blank = 4
    });
    invalid(
        "log_probs.dtype = int64 but log_probs must be floating point",
        |c| c.t_lp.dtype = CTC_DTYPE_INT64,
    );
    // Logits are aligned as their log_softmax (tests/logits.rs compares the two).
    let mut c = Case::new();
    c.opts.input = CTC_INPUT_LOGITS;
    assert_eq!(c.run(), CTC_STATUS_SUCCESS, "{}", last_error());
    // The NULL path case above needs a NULL pointer, not a missing field: run it for real.
    let mut c = Case::new();
    let scores = c.t_scores.as_mut().map(|t| t as *mut CtcTensor).unwrap();
    // SAFETY: valid descriptors and a NULL path, which the library must refuse.
    let s = unsafe {
        ctc_align(
            &c.t_lp,
            &c.t_tg,
            &c.t_il,
            &c.t_tl,
            &c.opts,
            ptr::null_mut(),
            scores,
        )
    };
    assert_eq!(s, CTC_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("path is NULL"), "{}", last_error());
    // Valid: NULL path_scores, float32 scores for float64 log_probs, int32 paths, the size query.
    let mut c = Case::new();
    c.t_scores = None;
    assert_eq!(c.run(), CTC_STATUS_SUCCESS, "{}", last_error());
    let column = |b: usize| -> Vec<i64> { (0..6).map(|t| c.path[t * 2 + b]).collect() };
    assert!(collapses_to(&column(0), &[1, 2], 0), "{:?}", c.path);
    assert!(collapses_to(&column(1)[..5], &[3, 3], 0) && column(1)[5] == -1);
    let mut bytes = 0usize;
    let c = Case::new();
    // SAFETY: valid descriptors and a writable size.
    let s = unsafe {
        ctc_workspace_size_for_call(
            CTC_CALL_ALIGN,
            &c.t_lp,
            &c.t_tg,
            &c.t_il,
            &c.t_tl,
            ptr::null(),
            &mut bytes,
        )
    };
    assert_eq!(s, CTC_STATUS_SUCCESS);
    assert!(bytes > 0);
}

/// CUDA tensors on a machine without a CUDA driver: a valid alignment that this machine cannot
/// serve, `CTC_STATUS_UNSUPPORTED` with nothing written, and so is its workspace size; targets and
/// lengths on the host or on the device. (Where a device is present, tests/cuda_gpu.rs aligns
/// on it; its stand-in runs there too.)
#[test]
fn cuda_align_without_a_driver_is_unsupported() {
    let n = ctc_cuda_device_count();
    if n > 0 {
        common::skip::skip(
            "align::cuda_align_without_a_driver_is_unsupported",
            &format!("{n} CUDA device(s) present; it checks the answer without one"),
        );
        return;
    }
    for ints_on_device in [false, true] {
        let mut c = Case::new();
        let mut on_cuda = vec![&mut c.t_lp, &mut c.t_path];
        on_cuda.extend(c.t_scores.as_mut());
        if ints_on_device {
            on_cuda.extend([&mut c.t_tg, &mut c.t_il, &mut c.t_tl]);
        }
        for t in on_cuda {
            t.device = CTC_DEVICE_CUDA;
        }
        let needle = "log_probs is on CUDA device 0";
        let mut bytes = 12345usize;
        // SAFETY: valid descriptors (their memory is never read) and a writable size.
        let s = unsafe {
            ctc_workspace_size_for_call(
                CTC_CALL_ALIGN,
                &c.t_lp,
                &c.t_tg,
                &c.t_il,
                &c.t_tl,
                &c.opts,
                &mut bytes,
            )
        };
        assert_eq!(s, CTC_STATUS_UNSUPPORTED, "{}", last_error());
        assert!(last_error().contains(needle), "{}", last_error());
        assert_eq!(bytes, 12345, "the size is not written");
        c.expect(CTC_STATUS_UNSUPPORTED, needle);
    }
}
