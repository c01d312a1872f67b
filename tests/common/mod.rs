//! Shared test helpers: golden-case loading and calling the C ABI on buffers laid out in
//! different ways.
#![allow(dead_code)]

pub mod c_data;
pub mod cuda;
pub mod isolated;
pub mod native;
pub mod skip;

use ctc::ffi::*;
use serde_json::Value;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => panic!("unexpected number string {other:?}"),
        },
        other => panic!("unexpected value {other:?}"),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().map(num).collect(),
        other => vec![num(other)],
    }
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// One golden case (see tests/data/golden/README.md).
#[derive(Clone, Debug)]
pub struct Golden {
    pub name: String,
    pub batched: bool,
    pub t: usize,
    pub n: usize,
    pub c: usize,
    pub blank: i32,
    pub reduction: CtcReduction,
    pub zero_infinity: bool,
    pub padded: bool,
    pub s: usize,
    pub targets: Vec<i64>,
    pub input_lengths: Vec<i64>,
    pub target_lengths: Vec<i64>,
    pub grad_out: Vec<f64>,
    pub log_probs: Vec<f64>,
    pub loss: Vec<f64>,
    pub grad: Vec<f64>,
    pub torch_f32_loss: Vec<f64>,
    pub torch_f32_grad: Vec<f64>,
    /// `options.input`: log-probabilities, or logits (tests/data/golden-logits/).
    pub input: CtcInput,
}

pub fn load_golden(path: &Path) -> Golden {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let reduction = match v["reduction"].as_str().unwrap() {
        "none" => CTC_REDUCTION_NONE,
        "mean" => CTC_REDUCTION_MEAN,
        "sum" => CTC_REDUCTION_SUM,
        r => panic!("reduction {r}"),
    };
    let padded = v["targets_layout"].as_str().unwrap() == "padded";
    let targets = ints(&v["targets"]);
    Golden {
        name: v["name"].as_str().unwrap().to_owned(),
        batched: v["batched"].as_bool().unwrap(),
        t: v["T"].as_u64().unwrap() as usize,
        n: v["N"].as_u64().unwrap() as usize,
        c: v["C"].as_u64().unwrap() as usize,
        blank: v["blank"].as_i64().unwrap() as i32,
        reduction,
        zero_infinity: v["zero_infinity"].as_bool().unwrap(),
        padded,
        s: if padded {
            v["S"].as_u64().unwrap() as usize
        } else {
            targets.len()
        },
        targets,
        input_lengths: ints(&v["input_lengths"]),
        target_lengths: ints(&v["target_lengths"]),
        grad_out: nums(&v["grad_out"]),
        log_probs: nums(&v["log_probs"]),
        loss: nums(&v["expected"]["loss"]),
        grad: nums(&v["expected"]["grad"]),
        torch_f32_loss: nums(&v["expected_torch_f32"]["loss"]),
        torch_f32_grad: nums(&v["expected_torch_f32"]["grad"]),
        input: match v["input"].as_str() {
            None | Some("log_probs") => CTC_INPUT_LOG_PROBS,
            Some("logits") => CTC_INPUT_LOGITS,
            Some(other) => panic!("input {other}"),
        },
    }
}

/// The cases of a directory of golden JSON files, in name order.
fn golden_cases(dir: &Path) -> Vec<Golden> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_golden(p)).collect()
}

pub fn all_golden() -> Vec<Golden> {
    let cases = golden_cases(&golden_dir());
    assert_eq!(cases.len(), 20, "the golden set has twenty cases");
    cases
}

/// torch's answers on logits (tests/data/golden-logits/, scripts/make_golden_logits.py).
pub fn golden_logits() -> Vec<Golden> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-logits");
    let cases = golden_cases(&dir);
    assert!(cases.len() >= 9, "golden logits cases in {}", dir.display());
    for g in &cases {
        assert_eq!(g.input, CTC_INPUT_LOGITS, "{}", g.name);
    }
    cases
}

pub trait Float: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    const DTYPE: CtcDType;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}
impl Float for f32 {
    const DTYPE: CtcDType = CTC_DTYPE_FLOAT32;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Float for f64 {
    const DTYPE: CtcDType = CTC_DTYPE_FLOAT64;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

pub fn tensor<T>(data: *mut T, dtype: CtcDType, shape: &[i64], strides: &[i64]) -> CtcTensor {
    assert_eq!(shape.len(), strides.len());
    let mut t = CtcTensor {
        data: data.cast(),
        dtype,
        device: CTC_DEVICE_CPU,
        device_index: 0,
        ndim: shape.len() as i32,
        shape: [0; 3],
        strides: [0; 3],
    };
    t.shape[..shape.len()].copy_from_slice(shape);
    t.strides[..shape.len()].copy_from_slice(strides);
    t
}

/// Contiguous strides of a shape.
pub fn contiguous(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// An integer vector as an int32 or int64 buffer.
pub enum Ints {
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Ints {
    pub fn new(v: &[i64], wide: bool) -> Ints {
        if wide {
            Ints::I64(v.to_vec())
        } else {
            Ints::I32(v.iter().map(|&x| x as i32).collect())
        }
    }
    pub fn tensor(&mut self, shape: &[i64], strides: &[i64]) -> CtcTensor {
        match self {
            Ints::I32(v) => tensor(v.as_mut_ptr(), CTC_DTYPE_INT32, shape, strides),
            Ints::I64(v) => tensor(v.as_mut_ptr(), CTC_DTYPE_INT64, shape, strides),
        }
    }
}

/// A strided 3-D (or 2-D when unbatched) float buffer holding a logical (T, N, C) array.
pub struct Strided<F> {
    pub buf: Vec<F>,
    pub shape: Vec<i64>,
    pub strides: Vec<i64>,
}

/// Memory layouts the golden tests run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Contiguous (T, N, C).
    Contiguous,
    /// (N, T, C) memory seen as (T, N, C) through strides.
    BatchFirst,
    /// Rows padded past C (Kaldi-style row stride C + 3).
    PaddedRows,
    /// Class-major memory (C, N, T): nothing is unit-stride along C.
    Transposed,
}

pub const LAYOUTS: [Layout; 4] = [
    Layout::Contiguous,
    Layout::BatchFirst,
    Layout::PaddedRows,
    Layout::Transposed,
];

impl<F: Float> Strided<F> {
    /// Lays out `values` (logical (T, N, C) row-major) in `layout`, filling the gaps with `fill`.
    pub fn new(
        values: &[f64],
        t: usize,
        n: usize,
        c: usize,
        batched: bool,
        layout: Layout,
        fill: f64,
    ) -> Self {
        let (ti, ni, ci) = (t as i64, n as i64, c as i64);
        let (len, strides3): (usize, [i64; 3]) = match layout {
            Layout::Contiguous => (t * n * c, [ni * ci, ci, 1]),
            Layout::BatchFirst => (t * n * c, [ci, ti * ci, 1]),
            Layout::PaddedRows => (t * n * (c + 3), [ni * (ci + 3), ci + 3, 1]),
            Layout::Transposed => (t * n * c, [1, ti, ti * ni]),
        };
        let mut buf = vec![F::from_f64(fill); len.max(1)];
        for a in 0..t {
            for b in 0..n {
                for k in 0..c {
                    let at =
                        a as i64 * strides3[0] + b as i64 * strides3[1] + k as i64 * strides3[2];
                    buf[at as usize] = F::from_f64(values[(a * n + b) * c + k]);
                }
            }
        }
        let (shape, strides) = if batched {
            (vec![ti, ni, ci], strides3.to_vec())
        } else {
            assert_eq!(n, 1);
            (vec![ti, ci], vec![strides3[0], strides3[2]])
        };
        Strided {
            buf,
            shape,
            strides,
        }
    }

    pub fn tensor(&mut self) -> CtcTensor {
        tensor(self.buf.as_mut_ptr(), F::DTYPE, &self.shape, &self.strides)
    }

    /// The logical (T, N, C) values in row-major order.
    pub fn values(&self) -> Vec<f64> {
        let (t, n, c, s) = if self.shape.len() == 3 {
            (
                self.shape[0],
                self.shape[1],
                self.shape[2],
                self.strides.clone(),
            )
        } else {
            (
                self.shape[0],
                1,
                self.shape[1],
                vec![self.strides[0], 0, self.strides[1]],
            )
        };
        let mut out = Vec::new();
        for a in 0..t {
            for b in 0..n {
                for k in 0..c {
                    out.push(self.buf[(a * s[0] + b * s[1] + k * s[2]) as usize].to_f64());
                }
            }
        }
        out
    }
}

pub fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(ctc_last_error_message()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Result of running a golden case through the fused C call.
pub struct Outcome {
    pub status: CtcStatus,
    pub loss: Vec<f64>,
    pub grad: Vec<f64>,
}

/// Runs `g` through `ctc_loss_forward_backward` (and checks `ctc_loss_forward` and
/// `ctc_loss_backward` give the same bits) in the given layout.
pub fn run_golden<F: Float>(g: &Golden, layout: Layout, threads: u32) -> Outcome {
    let wide = matches!(layout, Layout::Contiguous | Layout::PaddedRows);
    let mut lp = Strided::<F>::new(&g.log_probs, g.t, g.n, g.c, g.batched, layout, f64::NAN);
    // Zeroed gradient buffers in `layout`, with -7 in the gaps between rows.
    let new_grad = || {
        Strided::<F>::new(
            &vec![0.0; g.t * g.n * g.c],
            g.t,
            g.n,
            g.c,
            g.batched,
            layout,
            -7.0,
        )
    };
    let mut grad = new_grad();
    let mut targets = Ints::new(&g.targets, wide);
    let (tshape, tstrides) = if g.padded && g.batched {
        (
            vec![g.n as i64, g.s as i64],
            contiguous(&[g.n as i64, g.s as i64]),
        )
    } else {
        (vec![g.targets.len() as i64], vec![1])
    };
    let mut il = Ints::new(&g.input_lengths, !wide);
    let mut tl = Ints::new(&g.target_lengths, wide);
    let lshape: Vec<i64> = if g.batched { vec![g.n as i64] } else { vec![] };
    let lstrides: Vec<i64> = if g.batched { vec![1] } else { vec![] };
    let per_sample = g.batched && g.reduction == CTC_REDUCTION_NONE;
    // The loss goes to every other element of a buffer to exercise its stride too.
    let nloss = g.loss.len();
    let mut loss = vec![F::from_f64(-9.0); 2 * nloss];
    let mut go: Vec<F> = g.grad_out.iter().map(|&x| F::from_f64(x)).collect();
    let (loss_shape, loss_strides, go_shape, go_strides) = if per_sample {
        (vec![nloss as i64], vec![2], vec![nloss as i64], vec![1])
    } else {
        (vec![], vec![], vec![], vec![])
    };
    let t_lp = lp.tensor();
    let t_tg = targets.tensor(&tshape, &tstrides);
    let t_il = il.tensor(&lshape, &lstrides);
    let t_tl = tl.tensor(&lshape, &lstrides);
    let t_go = tensor(go.as_mut_ptr(), F::DTYPE, &go_shape, &go_strides);
    let mut t_loss = tensor(loss.as_mut_ptr(), F::DTYPE, &loss_shape, &loss_strides);
    let mut t_grad = grad.tensor();
    let mut opts = ctc_options_default();
    opts.blank = g.blank;
    opts.reduction = g.reduction;
    opts.zero_infinity = CBool(g.zero_infinity as u8);
    opts.num_threads = threads;
    opts.input = g.input;
    // SAFETY: every tensor describes a live buffer of its shape and dtype.
    let status = unsafe {
        ctc_loss_forward_backward(
            &t_lp,
            &t_tg,
            &t_il,
            &t_tl,
            &t_go,
            &opts,
            &mut t_loss,
            &mut t_grad,
        )
    };
    if status != CTC_STATUS_SUCCESS {
        return Outcome {
            status,
            loss: vec![],
            grad: vec![],
        };
    }
    let loss_values: Vec<f64> = (0..nloss)
        .map(|i| loss[if per_sample { 2 * i } else { i }].to_f64())
        .collect();
    let grad_values = grad.values();

    // The separate calls give the same bits.
    let mut loss2 = vec![F::from_f64(-9.0); 2 * nloss];
    let mut t_loss2 = tensor(loss2.as_mut_ptr(), F::DTYPE, &loss_shape, &loss_strides);
    // SAFETY: as above.
    let s2 = unsafe { ctc_loss_forward(&t_lp, &t_tg, &t_il, &t_tl, &opts, &mut t_loss2) };
    assert_eq!(
        s2,
        CTC_STATUS_SUCCESS,
        "{}: forward: {}",
        g.name,
        last_error()
    );
    for i in 0..nloss {
        let k = if per_sample { 2 * i } else { i };
        assert_eq!(
            loss2[k].to_f64().to_bits(),
            loss[k].to_f64().to_bits(),
            "{}: forward loss",
            g.name
        );
    }
    let mut grad2 = new_grad();
    let mut t_grad2 = grad2.tensor();
    // SAFETY: as above.
    let s3 = unsafe { ctc_loss_backward(&t_lp, &t_tg, &t_il, &t_tl, &t_go, &opts, &mut t_grad2) };
    assert_eq!(
        s3,
        CTC_STATUS_SUCCESS,
        "{}: backward: {}",
        g.name,
        last_error()
    );
    let same = grad2
        .buf
        .iter()
        .zip(&grad.buf)
        .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits());
    assert!(same, "{}: backward differs from forward_backward", g.name);
    // Padding between elements of the gradient is never written.
    if layout == Layout::PaddedRows {
        let c = g.c;
        for (i, v) in grad.buf.iter().enumerate() {
            if i % (c + 3) >= c {
                assert_eq!(v.to_f64(), -7.0, "{}: padding of grad written", g.name);
            }
        }
    }
    Outcome {
        status,
        loss: loss_values,
        grad: grad_values,
    }
}

/// A small deterministic generator (splitmix64) so tests need no extra crates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// log_softmax over the last axis of a (T, N, C) row-major buffer.
pub fn log_softmax(x: &[f64], c: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(c) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|v| v - lse));
    }
    out
}

/// Whether `a` is in the same class as the expected `b`: both NaN, the same infinity, or both
/// finite.
pub fn same_class(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a.is_infinite() && a == b) || (a.is_finite() && b.is_finite())
}

/// The float64 rule of the golden cases: losses within 1e-10 relative, gradients within 1e-10
/// absolute, non-finite values exactly where torch has them.
pub fn check_golden_f64(g: &Golden, loss: &[f64], grad: &[f64], what: &str) {
    for (i, (&a, &e)) in loss.iter().zip(&g.loss).enumerate() {
        assert!(same_class(a, e), "{what}: loss[{i}] = {a}, torch {e}");
        if e.is_finite() {
            assert!(
                (a - e).abs() <= 1e-10 * e.abs().max(1.0),
                "{what}: loss[{i}] = {a}, torch {e}"
            );
        }
    }
    assert_eq!(grad.len(), g.grad.len(), "{what}: gradient length");
    for (i, (&a, &e)) in grad.iter().zip(&g.grad).enumerate() {
        assert!(same_class(a, e), "{what}: grad[{i}] = {a}, torch {e}");
        if e.is_finite() {
            assert!((a - e).abs() <= 1e-10, "{what}: grad[{i}] = {a}, torch {e}");
        }
    }
}

/// The float32 rule of the golden cases: on every case, the largest error is at most twice
/// torch's own float32 error, with floors of 1e-6 relative (loss) and 1e-5 absolute (gradient).
pub fn check_golden_f32(g: &Golden, loss: &[f64], grad: &[f64], what: &str) {
    let (mut ours, mut torch) = (0.0f64, 0.0f64);
    for (i, ((&a, &e), &t)) in loss.iter().zip(&g.loss).zip(&g.torch_f32_loss).enumerate() {
        assert!(same_class(a, e), "{what}: loss[{i}] = {a}, torch {e}");
        if e.is_finite() {
            let scale = e.abs().max(1.0);
            ours = ours.max((a - e).abs() / scale);
            torch = torch.max((t - e).abs() / scale);
        }
    }
    assert!(
        ours <= (2.0 * torch).max(1e-6),
        "{what}: loss error {ours:e}, torch's float32 error {torch:e}"
    );
    assert_eq!(grad.len(), g.grad.len(), "{what}: gradient length");
    let (mut ours, mut torch) = (0.0f64, 0.0f64);
    for (i, ((&a, &e), &t)) in grad.iter().zip(&g.grad).zip(&g.torch_f32_grad).enumerate() {
        assert!(same_class(a, e), "{what}: grad[{i}] = {a}, torch {e}");
        if e.is_finite() {
            ours = ours.max((a - e).abs());
            torch = torch.max((t - e).abs());
        }
    }
    assert!(
        ours <= (2.0 * torch).max(1e-5),
        "{what}: grad error {ours:e}, torch's float32 error {torch:e}"
    );
}

/// -log P(target | log_probs) for one sample by enumeration; +inf when no path spells it.
pub fn brute_force_nll(lp: &[f64], t_b: usize, c: usize, blank: usize, target: &[usize]) -> f64 {
    let mut total = f64::NEG_INFINITY;
    let paths = c.pow(t_b as u32);
    for mut code in 0..paths {
        let mut path = Vec::with_capacity(t_b);
        for _ in 0..t_b {
            path.push(code % c);
            code /= c;
        }
        let mut collapsed = Vec::new();
        let mut prev = None;
        for &k in &path {
            if Some(k) != prev && k != blank {
                collapsed.push(k);
            }
            prev = Some(k);
        }
        if collapsed == target {
            let logp: f64 = path.iter().enumerate().map(|(t, &k)| lp[t * c + k]).sum();
            total = if total == f64::NEG_INFINITY {
                logp
            } else {
                let m = total.max(logp);
                m + ((total - m).exp() + (logp - m).exp()).ln()
            };
        }
    }
    -total
}

/// The four entry points of the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `ctc_loss_forward`
    Forward,
    /// `ctc_loss_backward`
    Backward,
    /// `ctc_loss_forward_backward`
    Fused,
    /// `ctc_workspace_size`
    Size,
    /// `ctc_workspace_size_for_call(CTC_CALL_FORWARD, ...)`
    SizeForward,
}

impl Entry {
    pub const ALL: [Entry; 5] = [
        Entry::Forward,
        Entry::Backward,
        Entry::Fused,
        Entry::Size,
        Entry::SizeForward,
    ];

    /// Whether this is a size query (it writes `*bytes`, not tensors).
    pub fn is_size(self) -> bool {
        matches!(self, Entry::Size | Entry::SizeForward)
    }
}

/// Calls `entry` with these arguments, each passed through as it is; the ones `entry` does not
/// take are ignored (`grad_loss` by forward and size, `loss` by backward and size, `grad` by
/// forward and size, `bytes` by all but size).
///
/// # Safety
/// The called function's: its pointers as its documentation requires, or as broken as the
/// test means the library to refuse.
#[allow(clippy::too_many_arguments)]
pub unsafe fn call_entry(
    entry: Entry,
    log_probs: *const CtcTensor,
    targets: *const CtcTensor,
    input_lengths: *const CtcTensor,
    target_lengths: *const CtcTensor,
    grad_loss: *const CtcTensor,
    options: *const CtcOptions,
    loss: *mut CtcTensor,
    grad: *mut CtcTensor,
    bytes: *mut usize,
) -> CtcStatus {
    let (lp, tg, il, tl) = (log_probs, targets, input_lengths, target_lengths);
    // SAFETY: the caller's.
    unsafe {
        match entry {
            Entry::Forward => ctc_loss_forward(lp, tg, il, tl, options, loss),
            Entry::Backward => ctc_loss_backward(lp, tg, il, tl, grad_loss, options, grad),
            Entry::Fused => {
                ctc_loss_forward_backward(lp, tg, il, tl, grad_loss, options, loss, grad)
            }
            Entry::Size => ctc_workspace_size(lp, tg, il, tl, options, bytes),
            Entry::SizeForward => {
                ctc_workspace_size_for_call(CTC_CALL_FORWARD, lp, tg, il, tl, options, bytes)
            }
        }
    }
}

/// Padded targets and lengths of a random batch for the safe API's tests: labels in 1..c-1,
/// input lengths t, t-1, t-2 and target lengths s, s-1 in turn.
pub struct PaddedCase {
    pub targets: ndarray::Array2<i64>,
    pub input_lengths: ndarray::Array1<i64>,
    pub target_lengths: ndarray::Array1<i64>,
}

impl PaddedCase {
    pub fn random(rng: &mut Rng, t: usize, n: usize, c: usize, s: usize) -> PaddedCase {
        PaddedCase {
            targets: ndarray::Array2::from_shape_fn((n, s), |_| rng.range(1, c - 1) as i64),
            input_lengths: ndarray::Array1::from_shape_fn(n, |b| (t - b % 3) as i64),
            target_lengths: ndarray::Array1::from_shape_fn(n, |b| (s - b % 2) as i64),
        }
    }

    /// The inputs of the safe API with `x` as log_probs (or logits).
    pub fn inputs<'a, E>(&'a self, x: ndarray::ArrayView3<'a, E>) -> ctc::Inputs<'a, E> {
        ctc::Inputs {
            log_probs: x,
            targets: ctc::Targets::Padded(ctc::IntView2::from(self.targets.view())),
            input_lengths: ctc::IntView1::from(self.input_lengths.view()),
            target_lengths: ctc::IntView1::from(self.target_lengths.view()),
        }
    }
}
