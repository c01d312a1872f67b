//! The CPU backend: tasks on the calling thread and the library's pool (`pool.rs`), each running
//! a vectorized kernel, with `reference.rs` as their scalar oracle:
//!
//! - `lanes.rs` for batches of at least [`lanes::GROUP`] samples with short targets (at most
//!   `lanes::MAX_TARGET` labels) and fewer than 256 classes: one task per group of consecutive
//!   samples, side by side in the vector lanes (the last `N % GROUP` samples as below);
//! - otherwise `planar/`, vectorized across the states of one sample: one task per sample; with
//!   256 classes or more a second round of tasks writes the gradient rows of groups of
//!   neighbouring samples (`planar::Phase::Gradient`).
//!
//! A sample's values never depend on another sample's, which samples form a group depends only
//! on the batch, and the batch reduction runs serially in index order afterwards, so results are
//! bitwise identical for every thread count.

mod align;
mod convert;
pub(crate) mod isa;
mod lanes;
pub(crate) mod layout;
mod logadd;
mod logits;
pub(crate) mod math;
mod planar;
pub(crate) mod pool;
pub(crate) mod reference;
pub(crate) mod scratch;

use crate::error::Error;
use crate::problem::{
    for_each_label, AlignOutputs, IntView1, Ints, Lengths, LogProbs, Out1, Out3, Outputs, PathOut,
    PathViewMut, Problem, Sizes, Targets, TargetsArg, Workspace,
};
use crate::types::{Call, Element, Floats1, Floats1Mut, Floats3, Floats3Mut, Options, Real};
use crate::types::{Gradient, Input, Reduction};
use layout::{carve, carve_align, AlignLayout, Dims, Layout, Parts, Pass};
use math::CpuElement;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut3, Axis};
use num_traits::{Float, One, Zero};
use planar::{Form, Upstream};

/// A problem's host operands, typed: what the kernels read.
pub(crate) struct Batch<'a, E> {
    /// (T, N, C).
    pub log_probs: ArrayView3<'a, E>,
    pub targets: Targets<'a>,
    pub input_lengths: IntView1<'a>,
    pub target_lengths: IntView1<'a>,
    pub sizes: Sizes,
    pub options: Options,
}

impl<'a, E> Batch<'a, E> {
    /// `input_lengths[b]`, validated.
    #[inline]
    fn input_length(&self, b: usize) -> usize {
        self.input_lengths.get(b) as usize
    }

    /// `target_lengths[b]`, validated.
    #[inline]
    fn target_length(&self, b: usize) -> usize {
        self.target_lengths.get(b) as usize
    }

    /// The log-probabilities of sample `b`, (T, C).
    fn sample_log_probs(&self, b: usize) -> ArrayView2<'a, E> {
        self.log_probs.index_axis_move(Axis(1), b)
    }
}

/// The host operands of a problem: targets, lengths and what reading them established.
fn host_operands<'a>(
    p: &Problem<'a>,
) -> Result<(Targets<'a>, IntView1<'a>, IntView1<'a>, Lengths), Error> {
    match (p.targets, p.input_lengths, p.target_lengths, p.lengths) {
        (TargetsArg::Host(t), Ints::Host(il), Ints::Host(tl), Some(lengths)) => {
            Ok((t, il, tl, lengths))
        }
        _ => Err(Error::Internal(
            "the CPU backend got device-resident targets or lengths".into(),
        )),
    }
}

/// Bytes of the accumulation type for log-probabilities of `dtype`.
fn accumulator_bytes(dtype: crate::types::DType) -> usize {
    match dtype {
        crate::types::DType::Float64 => 8,
        _ => 4,
    }
}

/// The layout of the workspace for `pass` on this problem.
fn layout(p: &Problem<'_>, pass: Pass) -> Result<Layout, Error> {
    let (_, _, _, lengths) = host_operands(p)?;
    let acc = accumulator_bytes(p.dtype);
    let dims = Dims {
        batch: p.sizes.batch,
        classes: p.sizes.classes,
        max_input_length: lengths.max_input,
        max_target_length: lengths.max_target,
        logits: p.options.input == Input::Logits,
    };
    Layout::new(dims, acc, pass)
}

/// Bytes of workspace the computation `call` needs on this problem.
pub(crate) fn workspace_size(p: &Problem<'_>, call: Call) -> Result<usize, Error> {
    let pass = match call {
        Call::Forward => Pass::Forward,
        Call::Backward | Call::ForwardBackward => Pass::Gradient,
        Call::Align => return align_workspace_size(p),
    };
    Ok(layout(p, pass)?.bytes)
}

/// Runs a validated problem whose operands are all on the host.
pub(crate) fn run(
    p: &Problem<'_>,
    out: Outputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    let (targets, input_lengths, target_lengths, _) = host_operands(p)?;
    let LogProbs::Host(log_probs) = p.log_probs else {
        return Err(Error::Internal(
            "the CPU backend got device-resident log_probs".into(),
        ));
    };
    let loss = match out.loss {
        None => None,
        Some(Out1::Host(l)) => Some(l),
        Some(Out1::Device(_)) => return Err(Error::Internal("a device loss on the CPU".into())),
    };
    let grad_loss = match out.grad_loss {
        None => None,
        Some(crate::problem::In1::Host(g)) => Some(g),
        Some(_) => return Err(Error::Internal("a device grad_loss on the CPU".into())),
    };
    let grad = match out.grad {
        None => None,
        Some(Out3::Host(g)) => Some(g),
        Some(Out3::Device(_)) => {
            return Err(Error::Internal("a device gradient on the CPU".into()))
        }
    };
    let pass = if grad.is_some() {
        Pass::Gradient
    } else {
        Pass::Forward
    };
    let layout = layout(p, pass)?;
    let common = Common {
        sizes: p.sizes,
        options: p.options,
        targets,
        input_lengths,
        target_lengths,
        layout: &layout,
        loss,
        grad_loss,
    };
    let with = |w: &mut [u8]| match (log_probs, grad) {
        (Floats3::F32(lp), None) => common.run::<f32>(lp, None, w),
        (Floats3::F32(lp), Some(Floats3Mut::F32(g))) => common.run::<f32>(lp, Some(g), w),
        (Floats3::F64(lp), None) => common.run::<f64>(lp, None, w),
        (Floats3::F64(lp), Some(Floats3Mut::F64(g))) => common.run::<f64>(lp, Some(g), w),
        (Floats3::F16(lp), None) => common.run::<half::f16>(lp, None, w),
        (Floats3::F16(lp), Some(Floats3Mut::F16(g))) => common.run::<half::f16>(lp, Some(g), w),
        (Floats3::BF16(lp), None) => common.run::<half::bf16>(lp, None, w),
        (Floats3::BF16(lp), Some(Floats3Mut::BF16(g))) => common.run::<half::bf16>(lp, Some(g), w),
        // A float32 gradient of half inputs: the float32 computation on the widened values,
        // which is what the half kernels compute (they accumulate in float32).
        (Floats3::F16(lp), Some(Floats3Mut::F32(g))) => {
            widened(lp, |wide| common.run::<f32>(wide, Some(g), w))
        }
        (Floats3::BF16(lp), Some(Floats3Mut::F32(g))) => {
            widened(lp, |wide| common.run::<f32>(wide, Some(g), w))
        }
        _ => Err(Error::Internal(
            "log_probs and grad_log_probs of different dtypes reached the CPU backend".into(),
        )),
    };
    match workspace {
        Workspace::Host(w) => with(w),
        Workspace::Library => scratch::with_scratch(layout.bytes, with),
        Workspace::Device { .. } => Err(Error::Internal("a device workspace on the CPU".into())),
    }
}

/// Runs `f` on a float32 copy of `lp` (T, N, C), contiguous, in library-owned memory (cached
/// between calls like the scratch of calls without a workspace).
fn widened<H: Element<Acc = f32>, R>(
    lp: ArrayView3<'_, H>,
    f: impl FnOnce(ArrayView3<'_, f32>) -> Result<R, Error>,
) -> Result<R, Error> {
    let dim = lp.dim();
    let len = lp.len();
    let bytes = len
        .checked_mul(4)
        .and_then(|b| b.checked_add(3))
        .ok_or_else(|| Error::OutOfMemory(format!("a float32 copy of {len} values")))?;
    scratch::with_scratch(bytes, |buf| {
        let (_, floats, _) = bytemuck::pod_align_to_mut::<u8, f32>(buf);
        let floats = &mut floats[..len];
        for (d, &x) in floats.iter_mut().zip(lp.iter()) {
            *d = x.to_acc();
        }
        let wide = ArrayView3::from_shape(dim, &*floats)
            .map_err(|e| Error::Internal(format!("the float32 copy of log_probs: {e}")))?;
        f(wide)
    })
}

/// The layout of an alignment's workspace on this problem.
fn align_layout(p: &Problem<'_>) -> Result<AlignLayout, Error> {
    let (_, _, _, lengths) = host_operands(p)?;
    let dims = Dims {
        batch: p.sizes.batch,
        classes: p.sizes.classes,
        max_input_length: lengths.max_input,
        max_target_length: lengths.max_target,
        logits: false,
    };
    AlignLayout::new(dims, accumulator_bytes(p.dtype))
}

/// Bytes of workspace an alignment needs on this problem.
pub(crate) fn align_workspace_size(p: &Problem<'_>) -> Result<usize, Error> {
    Ok(align_layout(p)?.bytes)
}

/// Aligns a validated problem whose operands are all on the host.
pub(crate) fn align(
    p: &Problem<'_>,
    out: AlignOutputs<'_>,
    workspace: Workspace<'_>,
) -> Result<(), Error> {
    let (targets, input_lengths, target_lengths, _) = host_operands(p)?;
    let LogProbs::Host(log_probs) = p.log_probs else {
        return Err(Error::Internal(
            "the CPU backend got device-resident log_probs".into(),
        ));
    };
    let (PathOut::Host(path), scores) = (out.path, out.scores) else {
        return Err(Error::Internal("a device path on the CPU".into()));
    };
    let scores = match scores {
        None => None,
        Some(Out1::Host(s)) => Some(s),
        Some(Out1::Device(_)) => return Err(Error::Internal("device scores on the CPU".into())),
    };
    let layout = align_layout(p)?;
    let mut aligner = Aligner {
        sizes: p.sizes,
        options: p.options,
        targets,
        input_lengths,
        target_lengths,
        layout: &layout,
        path,
        scores,
    };
    let mut with = |w: &mut [u8]| match log_probs {
        Floats3::F32(lp) => aligner.run::<f32>(lp, w),
        Floats3::F64(lp) => aligner.run::<f64>(lp, w),
        Floats3::F16(lp) => aligner.run::<half::f16>(lp, w),
        Floats3::BF16(lp) => aligner.run::<half::bf16>(lp, w),
    };
    match workspace {
        Workspace::Host(w) => with(w),
        Workspace::Library => scratch::with_scratch(layout.bytes, with),
        Workspace::Device { .. } => Err(Error::Internal("a device workspace on the CPU".into())),
    }
}

/// An alignment's operands and outputs besides the typed log-probabilities.
struct Aligner<'a, 'o, 'l> {
    sizes: Sizes,
    options: Options,
    targets: Targets<'a>,
    input_lengths: IntView1<'a>,
    target_lengths: IntView1<'a>,
    layout: &'l AlignLayout,
    path: PathViewMut<'o>,
    scores: Option<Floats1Mut<'o>>,
}

impl<'a> Aligner<'a, '_, '_> {
    /// Aligns every sample (one task each) in `workspace`, then writes the scores.
    fn run<E: CpuElement>(
        &mut self,
        log_probs: ArrayView3<'a, E>,
        workspace: &mut [u8],
    ) -> Result<(), Error> {
        let mut parts = carve_align::<E::Acc>(workspace, self.layout)?;
        let stride = self.layout.labels_stride;
        let labels = &mut *parts.labels;
        for_each_label(
            &self.targets,
            &self.target_lengths,
            self.sizes.batch,
            |b, j, _, label| {
                labels[b * stride + j] = label as u32;
                Ok(())
            },
        )?;
        let isa = isa::detect();
        let (layout, sizes) = (self.layout, self.sizes);
        let (il, tl) = (self.input_lengths, self.target_lengths);
        let scores = std::mem::take(&mut parts.scores);
        let samples = align::samples(parts, layout, sizes.classes)
            .zip(scores.iter_mut())
            .zip(path_columns(&mut self.path))
            .enumerate();
        let threads = pool::effective_threads(self.options.num_threads);
        let logits = self.options.input == Input::Logits;
        pool::for_each(
            threads,
            samples,
            |(b, (((labels, scratch), score), mut column))| {
                let job = align::AlignJob {
                    log_probs: log_probs.index_axis(Axis(1), b),
                    labels: &labels[..tl.get(b) as usize],
                    blank: sizes.blank,
                    input_length: il.get(b) as usize,
                    width: layout.width,
                    segment: layout.segment,
                    code_row: layout.code_row,
                    logits,
                    scratch,
                };
                // -1 past the input length, and everywhere for a sample with no alignment.
                column.fill(-1);
                let aligned = align::align(job, &mut |t, c| column.set(t, c as i64), isa);
                *score = aligned.unwrap_or_else(|| {
                    column.fill(-1);
                    f64::NEG_INFINITY
                });
            },
        )?;
        if let Some(out) = &mut self.scores {
            for (b, &s) in scores.iter().enumerate() {
                out.set(b, E::Acc::from_f64(s).to_f64());
            }
        }
        Ok(())
    }
}

/// One sample's column of the paths.
enum PathColumn<'a> {
    I32(ndarray::ArrayViewMut1<'a, i32>),
    I64(ndarray::ArrayViewMut1<'a, i64>),
}

impl PathColumn<'_> {
    fn set(&mut self, t: usize, v: i64) {
        match self {
            PathColumn::I32(c) => c[t] = v as i32,
            PathColumn::I64(c) => c[t] = v,
        }
    }

    fn fill(&mut self, v: i64) {
        match self {
            PathColumn::I32(c) => c.fill(v as i32),
            PathColumn::I64(c) => c.fill(v),
        }
    }
}

/// The columns of (T, N) paths, sample by sample.
fn path_columns<'p>(
    path: &'p mut PathViewMut<'_>,
) -> impl ExactSizeIterator<Item = PathColumn<'p>> + Send {
    let (i32s, i64s) = match path {
        PathViewMut::I32(p) => (Some(p.axis_iter_mut(Axis(1))), None),
        PathViewMut::I64(p) => (None, Some(p.axis_iter_mut(Axis(1)))),
    };
    let n = i32s.as_ref().map_or(0, |i| i.len()) + i64s.as_ref().map_or(0, |i| i.len());
    let all = i32s
        .into_iter()
        .flatten()
        .map(PathColumn::I32)
        .chain(i64s.into_iter().flatten().map(PathColumn::I64));
    Exact {
        inner: all,
        left: n,
    }
}

/// An iterator with a known length (`chain` of two optional iterators has none).
struct Exact<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let next = self.inner.next();
        self.left = self.left.saturating_sub(next.is_some() as usize);
        next
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}

/// What a call needs besides the typed log-probabilities and gradient.
struct Common<'a, 'o, 'l> {
    sizes: Sizes,
    options: Options,
    targets: Targets<'a>,
    input_lengths: IntView1<'a>,
    target_lengths: IntView1<'a>,
    layout: &'l Layout,
    loss: Option<Floats1Mut<'o>>,
    grad_loss: Option<Floats1<'o>>,
}

impl<'a> Common<'a, '_, '_> {
    /// Runs the kernels for element type `E` in `workspace`, then writes the loss.
    fn run<'p, E: CpuElement>(
        self,
        log_probs: ArrayView3<'p, E>,
        grad: Option<ArrayViewMut3<'_, E>>,
        workspace: &mut [u8],
    ) -> Result<(), Error>
    where
        'a: 'p,
    {
        // The kernels see one lifetime: the shorter of the inputs' and a widened copy's.
        let batch = Batch {
            log_probs,
            targets: self.targets.reborrow(),
            input_lengths: self.input_lengths.reborrow(),
            target_lengths: self.target_lengths.reborrow(),
            sizes: self.sizes,
            options: self.options,
        };
        let parts = carve::<E::Acc>(workspace, self.layout)?;
        let nll = compute(&batch, self.layout, parts, grad, self.grad_loss)?;
        if let Some(mut loss) = self.loss {
            write_loss(&batch, nll, &mut loss);
        }
        Ok(())
    }
}

/// The upstream factor of sample `b`'s gradient: its `grad_loss` (ones when absent) through
/// the reduction; and which derivative the options ask for.
fn upstream<E: CpuElement>(
    batch: &Batch<'_, E>,
    grad_loss: Option<&Floats1<'_>>,
    b: usize,
) -> Upstream<E::Acc> {
    let o = &batch.options;
    Upstream {
        g: upstream_factor(batch, grad_loss, b),
        form: match (o.input, o.gradient) {
            (Input::Logits, _) => Form::Softmax,
            (Input::LogProbs, Gradient::Exact) => Form::Exact,
            (Input::LogProbs, Gradient::Torch) => Form::Torch,
        },
        shift: planar::Shift::none(),
    }
}

fn upstream_factor<E: CpuElement>(
    batch: &Batch<'_, E>,
    grad_loss: Option<&Floats1<'_>>,
    b: usize,
) -> E::Acc {
    let g = |i: usize| grad_loss.map_or(E::Acc::one(), |g| E::Acc::from_f64(g.get(i)));
    match batch.options.reduction {
        Reduction::None => g(b),
        Reduction::Sum => g(0),
        Reduction::Mean => {
            let n = E::Acc::from_f64(batch.sizes.batch as f64);
            let l = E::Acc::from_f64(batch.target_length(b).max(1) as f64);
            g(0) / n / l
        }
    }
}

/// Writes the loss from the per-sample negative log-likelihoods: per sample or reduced in index
/// order (so that it does not depend on the thread count).
fn write_loss<E: CpuElement>(batch: &Batch<'_, E>, nll: &[E::Acc], loss: &mut Floats1Mut<'_>) {
    let value = |b: usize| -> E::Acc {
        let v = nll[b];
        if batch.options.zero_infinity && v == E::Acc::infinity() {
            E::Acc::zero()
        } else {
            v
        }
    };
    let n = batch.sizes.batch;
    match batch.options.reduction {
        Reduction::None => {
            for b in 0..n {
                loss.set(b, value(b).to_f64());
            }
        }
        Reduction::Sum => {
            let total: f64 = (0..n).map(|b| value(b).to_f64()).sum();
            loss.set(0, E::Acc::from_f64(total).to_f64());
        }
        Reduction::Mean => {
            let total: f64 = (0..n)
                .map(|b| value(b).to_f64() / batch.target_length(b).max(1) as f64)
                .sum();
            loss.set(0, E::Acc::from_f64(total / n as f64).to_f64());
        }
    }
}

/// The most samples a worker takes through the deferred gradient rows together.
const MAX_GROUP: usize = 32;

/// A sample's scratch (`Layout::scratch_stride` elements) cut into its buffers.
struct SampleScratch<'w, A> {
    /// The gathered log-probabilities (`width`).
    ext: &'w mut [A],
    /// The state posteriors (`width`).
    post: &'w mut [A],
    /// The exponentials of streamed rows (`width`).
    emit: &'w mut [A],
    /// The class posteriors (`classes`).
    acc: &'w mut [A],
    /// A row copy (`classes`).
    row: &'w mut [A],
}

fn scratch_parts<A>(scratch: &mut [A], width: usize, classes: usize) -> SampleScratch<'_, A> {
    let (ext, rest) = scratch.split_at_mut(width);
    let (post, rest) = rest.split_at_mut(width);
    let (emit, rest) = rest.split_at_mut(width);
    let (acc, rest) = rest.split_at_mut(classes);
    SampleScratch {
        ext,
        post,
        emit,
        acc,
        row: &mut rest[..classes],
    }
}

/// The workspace and gradient of a run of consecutive samples `first..`.
struct GroupParts<'w, E: Element> {
    /// Index of the group's first sample.
    first: usize,
    grad: ArrayViewMut3<'w, E>,
    log_alpha: &'w mut [E::Acc],
    log_beta: &'w mut [E::Acc],
    scratch: &'w mut [E::Acc],
    nll: &'w mut [E::Acc],
    labels: &'w [u32],
    skip: &'w mut [u8],
    pending: &'w mut [u8],
    /// Logits only: the frame shifts (empty otherwise).
    shifts: &'w mut [E::Acc],
}

/// The first `n` elements of `rest` (at most all of them), leaving `rest` the others.
fn take_front<'a, A>(rest: &mut &'a mut [A], n: usize) -> &'a mut [A] {
    let n = n.min(rest.len());
    let (front, back) = std::mem::take(rest).split_at_mut(n);
    *rest = back;
    front
}

/// Splits the workspace and the gradient into groups of `size` consecutive samples.
fn groups<'w, E: Element>(
    parts: &'w mut Parts<'_, E::Acc>,
    grad: &'w mut ArrayViewMut3<'_, E>,
    layout: &Layout,
    size: usize,
) -> impl ExactSizeIterator<Item = GroupParts<'w, E>> + Send {
    let (l, shifts_stride) = (layout, layout.shifts_stride);
    let mut shifts = &mut *parts.shifts;
    grad.axis_chunks_iter_mut(Axis(1), size)
        .zip(parts.log_alpha.chunks_mut(l.alpha_stride * size))
        .zip(parts.log_beta.chunks_mut(l.beta_stride * size))
        .zip(parts.scratch.chunks_mut(l.scratch_stride * size))
        .zip(parts.nll.chunks_mut(size))
        .zip(parts.labels.chunks(l.labels_stride * size))
        .zip(parts.skip.chunks_mut(l.width * size))
        .zip(parts.pending.chunks_mut(size))
        .enumerate()
        .map(
            move |(
                i,
                (((((((grad, log_alpha), log_beta), scratch), nll), labels), skip), pending),
            )| {
                GroupParts {
                    first: i * size,
                    grad,
                    log_alpha,
                    log_beta,
                    scratch,
                    nll,
                    labels,
                    skip,
                    pending,
                    shifts: take_front(&mut shifts, shifts_stride * size),
                }
            },
        )
}

/// How the samples of a batch are computed.
struct Plan {
    /// Groups of `lanes::GROUP` samples side by side (`lanes.rs`).
    lanes: bool,
    /// Gradient rows in a pass of their own (`planar::Phase::Gradient`).
    deferred: bool,
    /// Rows of the alpha table kept per sample.
    rows: usize,
    threads: usize,
}

/// Runs the kernels; returns the per-sample negative log-likelihoods (in the workspace).
fn compute<'w, 'g, E: CpuElement>(
    batch: &Batch<'_, E>,
    layout: &Layout,
    mut parts: Parts<'w, E::Acc>,
    grad: Option<ArrayViewMut3<'_, E>>,
    grad_loss: Option<Floats1<'g>>,
) -> Result<&'w [E::Acc], Error> {
    let stride = layout.labels_stride;
    for_each_label(
        &batch.targets,
        &batch.target_lengths,
        batch.sizes.batch,
        |b, j, _, label| {
            parts.labels[b * stride + j] = label as u32;
            Ok(())
        },
    )?;
    let want_grad = grad.is_some();
    let mut no_grad: [E; 0] = [];
    let mut grad = match grad {
        Some(g) => g,
        None => ArrayViewMut3::from_shape((0, batch.sizes.batch, 0), &mut no_grad[..])
            .map_err(|e| Error::Internal(format!("empty gradient view: {e}")))?,
    };
    let plan = Plan {
        lanes: layout.lanes_stride > 0,
        deferred: want_grad && batch.sizes.classes >= planar::DEFER_CLASSES,
        rows: if want_grad { layout.alpha_rows } else { 2 },
        threads: pool::effective_threads(batch.options.num_threads),
    };
    let run = Runner {
        batch,
        layout,
        plan: &plan,
        want_grad,
        grad_loss,
        isa: isa::detect(),
    };
    if plan.lanes {
        run.lanes(&mut parts, &mut grad)?;
    } else {
        run.planar(&mut parts, &mut grad)?;
    }
    Ok(parts.nll)
}

/// What every task of a call shares.
struct Runner<'r, 'a, 'g, E: Element> {
    batch: &'r Batch<'a, E>,
    layout: &'r Layout,
    plan: &'r Plan,
    want_grad: bool,
    grad_loss: Option<Floats1<'g>>,
    isa: isa::Isa,
}

impl<E: CpuElement> Runner<'_, '_, '_, E> {
    /// The planar kernel: the sweeps, one sample at a time (each sample's alpha table stays in
    /// the core's cache); then, for a deferred gradient, the gradient rows, a group of
    /// neighbouring samples at a time.
    fn planar(
        &self,
        parts: &mut Parts<'_, E::Acc>,
        grad: &mut ArrayViewMut3<'_, E>,
    ) -> Result<(), Error> {
        let n = self.batch.sizes.batch;
        let gradient_group = n.div_ceil(self.plan.threads).clamp(1, MAX_GROUP);
        let phases = [
            (1, planar::Phase::Sweeps),
            (gradient_group, planar::Phase::Gradient),
        ];
        for (size, phase) in phases.into_iter().take(1 + self.plan.deferred as usize) {
            let chunks = groups::<E>(parts, grad, self.layout, size);
            pool::for_each(self.plan.threads, chunks, |g| {
                self.planar_group(g, phase, None)
            })?;
        }
        Ok(())
    }

    /// Short targets: groups of `lanes::GROUP` samples side by side in the vector lanes; the
    /// samples of an incomplete last group, and any sample whose gradient needs the scalar
    /// fallback, in the planar kernel.
    fn lanes(
        &self,
        parts: &mut Parts<'_, E::Acc>,
        grad: &mut ArrayViewMut3<'_, E>,
    ) -> Result<(), Error> {
        let stride = self.layout.lanes_stride;
        let work = std::mem::take(&mut parts.lanes);
        let chunks =
            groups::<E>(parts, grad, self.layout, lanes::GROUP).zip(work.chunks_mut(stride));
        pool::for_each(self.plan.threads, chunks, |(g, work)| {
            if g.nll.len() < lanes::GROUP {
                return self.planar_group(g, planar::Phase::Sweeps, None);
            }
            self.lanes_group(g, work);
        })
    }

    /// One group of the lanes kernel, and the planar kernel for its samples that need it.
    fn lanes_group(&self, mut g: GroupParts<'_, E>, work: &mut [E::Acc]) {
        let (b, l) = (self.batch, self.layout);
        let first = g.first;
        let mut copy: [&mut [E::Acc]; lanes::GROUP] = Default::default();
        for (c, sc) in copy.iter_mut().zip(g.scratch.chunks_mut(l.scratch_stride)) {
            *c = scratch_parts(sc, l.width, b.sizes.classes).row;
        }
        let group = lanes::Group {
            log_probs: b
                .log_probs
                .slice(ndarray::s![.., first..first + lanes::GROUP, ..]),
            labels: std::array::from_fn(|j| {
                &g.labels[j * l.labels_stride..][..b.target_length(first + j)]
            }),
            blank: b.sizes.blank,
            input_lengths: std::array::from_fn(|j| b.input_length(first + j)),
            width: l.width,
            rows: self.plan.rows,
            log_alpha: &mut *g.log_alpha,
            log_beta: &mut *g.log_beta,
            work,
            copy,
            grad: self.want_grad.then(|| {
                (
                    g.grad.view_mut(),
                    std::array::from_fn(|j| self.upstream(first + j)),
                    b.options.zero_infinity,
                )
            }),
        };
        let rerun = lanes::process(group, g.nll, self.isa);
        if rerun.contains(&true) {
            self.planar_group(g, planar::Phase::Sweeps, Some(rerun));
        }
    }

    fn upstream(&self, b: usize) -> Upstream<E::Acc> {
        upstream(self.batch, self.grad_loss.as_ref(), b)
    }

    /// A group of samples in the planar kernel, each with its slices split off the group's
    /// (`only`: the samples of the group to run, all when `None`).
    fn planar_group(
        &self,
        g: GroupParts<'_, E>,
        phase: planar::Phase,
        only: Option<[bool; lanes::GROUP]>,
    ) {
        let (b, l) = (self.batch, self.layout);
        let mut jobs: [Option<planar::Job<'_, '_, E>>; MAX_GROUP] = Default::default();
        let GroupParts {
            first,
            mut grad,
            log_alpha,
            log_beta,
            scratch,
            nll,
            labels,
            skip,
            pending,
            mut shifts,
        } = g;
        let per_sample = grad
            .axis_iter_mut(Axis(1))
            .zip(log_alpha.chunks_mut(l.alpha_stride))
            .zip(log_beta.chunks_mut(l.beta_stride))
            .zip(scratch.chunks_mut(l.scratch_stride))
            .zip(labels.chunks(l.labels_stride))
            .zip(skip.chunks_mut(l.width))
            .zip(pending.iter_mut());
        for (i, (slot, sample)) in jobs.iter_mut().zip(per_sample).enumerate() {
            if only.is_some_and(|o| !o.get(i).copied().unwrap_or(false)) {
                continue;
            }
            let ((((((grad_b, log_alpha), log_beta), scratch), labels), skip), pending) = sample;
            let s = first + i;
            let shifts = take_front(&mut shifts, l.shifts_stride);
            let sc = scratch_parts(scratch, l.width, b.sizes.classes);
            *slot = Some(planar::Job {
                log_probs: b.sample_log_probs(s),
                labels: &labels[..b.target_length(s)],
                blank: b.sizes.blank,
                input_length: b.input_length(s),
                width: l.width,
                rows: self.plan.rows,
                scratch: planar::Scratch {
                    log_alpha,
                    log_beta,
                    ext: sc.ext,
                    post: sc.post,
                    emit: sc.emit,
                    acc: sc.acc,
                    row: sc.row,
                    skip,
                    pending,
                    shifts: (l.shifts_stride > 0).then_some(shifts),
                },
                grad: self
                    .want_grad
                    .then(|| (grad_b, self.upstream(s), b.options.zero_infinity)),
                deferred: self.plan.deferred,
                f16c: self.isa.f16c(),
            });
        }
        planar::process(&mut jobs, nll, phase, self.isa);
    }
}

/// Two distinct rows `a` (shared) and `b` (mutable) of a row-major table with `width` columns.
pub(crate) fn rows_pair<A>(table: &mut [A], a: usize, b: usize, width: usize) -> (&[A], &mut [A]) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = table.split_at_mut(b * width);
        (&lo[a * width..][..width], &mut hi[..width])
    } else {
        let (lo, hi) = table.split_at_mut(a * width);
        (&hi[..width], &mut lo[b * width..][..width])
    }
}

#[cfg(test)]
mod tests;
