//! Samples side by side in vector lanes, for short targets.
//!
//! The planar kernel (`planar/`) vectorizes across the states of one sample. With a short target
//! a frame is two to four vectors whose log-add-exp chain (sort, `exp`, `ln`) the processor waits
//! on: about 300 cycles a frame, however little work it holds. Here a group of [`GROUP`]
//! consecutive samples runs together, lane j of every vector holding sample j, so that a frame is
//! tens of independent vectors. Entry i of a row is the [`GROUP`] values at `i * GROUP ..`, with
//! the planar layout of `planar/` for i: `b_k` at k (k = 0..=Lg), `l_k` at P + 1 + k
//! (k = 0..Lg), -inf pads `l_{-1}` at P and `l_{Lg}` at P + 1 + Lg, where P = W / 2 and Lg is the
//! group's longest target; the recurrences are those of the `planar/` module doc, with the same
//! element functions (`logadd::lae2_parts`, `logadd::pair_value`, `logadd::lae_with_pair`).
//!
//! Each frame computes the union of the group's windows (the states of `planar/`'s window
//! `[S' - 2 (T_b - t), 2 t + 2)` of any sample with a frame t; a blank-label step may add one
//! state on either side, which gets its own value computed from the previous row, or -inf), and
//! every other entry of the row is -inf, so nothing computed ever reads a value left by another
//! frame, sample or call. A
//! lane past its sample's labels or input length holds -inf emissions, so its extra states stay
//! -inf; a state inside the union but outside its own sample's window either cannot be reached
//! (alpha = -inf) or cannot complete (beta = -inf), so its posterior is 0, and a state a sample
//! can use reads only states of that sample that it can use: each sample gets the values of its
//! own recurrence whatever its neighbours, its loss extracted at its own last frame and its beta
//! started there. The class posteriors of a sample are summed in a fixed order (blank states in
//! order of k, then labels in order of k), and a frame's gradient rows are written in one flat
//! pass over the group's block (or row by row, with the planar kernel's row writer, when the
//! block is not contiguous). A sample of a group always runs in the same lanes with the same
//! neighbours, and which samples form groups depends only on the batch, so results are the same
//! bits for every thread count.
//!
//! A sample whose gradient needs the scalar fallback (a loss of -inf, from `+inf` inputs) is
//! recomputed by the planar kernel after the group.

use super::isa::{self, Isa, Kernel};
use super::logadd::{lae2_parts, lae_with_pair, pair_value};
use super::math::{CpuElement, FastReal};
use super::planar::{grad_row_acc, grad_value, row_of, Form, Upstream};
use super::rows_pair;
use crate::algorithm::{can_skip, log_add_exp};
use crate::types::{Element, Real};
use ndarray::{s, ArrayView3, ArrayViewMut3, Axis};
use num_traits::{Float, One, Zero};

/// Samples per group, side by side in the vector lanes.
pub(crate) const GROUP: usize = 8;

/// The longest target (labels) of a batch this kernel takes: beyond it a frame of one sample
/// fills enough vectors for the planar kernel (the crossover measured is in
/// docs/benchmarks.md).
pub(crate) const MAX_TARGET: usize = 96;

/// Whether a batch runs in groups of [`GROUP`] (the last `batch % GROUP` samples, and every
/// sample whose gradient needs the scalar fallback, run in the planar kernel).
pub(crate) fn applies(batch: usize, classes: usize, max_target_length: usize) -> bool {
    batch >= GROUP && classes < super::planar::DEFER_CLASSES && max_target_length <= MAX_TARGET
}

/// Accumulator elements of the `lanes` workspace region per group, for row width `width` and
/// `classes` classes (in entries of [`GROUP`] values): the emissions of two frames (the next one
/// is gathered before the current one is computed, W each), the posteriors of a frame (W), the
/// skip mask and the losses (W / 2 each); then the class posteriors of the group's samples and
/// their upstream factors (C each).
pub(crate) fn work_stride(width: usize, classes: usize) -> Option<usize> {
    width
        .checked_mul(4)?
        .checked_add(classes.checked_mul(2)?)?
        .checked_mul(GROUP)
}

/// One group's work: `GROUP` samples in the workspace of all of them.
pub(crate) struct Group<'j, 'w, E: CpuElement> {
    /// (T, GROUP, C) log-probabilities of the group.
    pub log_probs: ArrayView3<'j, E>,
    pub labels: [&'j [u32]; GROUP],
    pub blank: u32,
    pub input_lengths: [usize; GROUP],
    /// W, as in `planar/`.
    pub width: usize,
    /// Rows of the alpha table (Tmax with a gradient, else a ring of 2).
    pub rows: usize,
    /// `rows * W * GROUP`.
    pub log_alpha: &'w mut [E::Acc],
    /// `2 * W * GROUP` (gradient only).
    pub log_beta: &'w mut [E::Acc],
    /// [`work_stride`] elements.
    pub work: &'w mut [E::Acc],
    /// Per sample: a `C` row copy (for rows whose class stride is not 1).
    pub copy: [&'w mut [E::Acc]; GROUP],
    /// (T, GROUP, C) gradient, the upstream factor of each sample and zero_infinity.
    pub grad: Option<GroupGrad<'j, E>>,
}

/// A group's gradient (T, GROUP, C), each sample's upstream factor and zero_infinity.
pub(crate) type GroupGrad<'j, E> = (
    ArrayViewMut3<'j, E>,
    [Upstream<<E as Element>::Acc>; GROUP],
    bool,
);

/// `x` as whole vectors of [`GROUP`] (a trailing remainder is left out).
#[inline(always)]
fn vecs<A: bytemuck::Pod>(x: &[A]) -> &[[A; GROUP]] {
    bytemuck::cast_slice(&x[..x.len() / GROUP * GROUP])
}

/// `x` as whole vectors of [`GROUP`], mutable.
#[inline(always)]
fn vecs_mut<A: bytemuck::Pod>(x: &mut [A]) -> &mut [[A; GROUP]] {
    let n = x.len() / GROUP * GROUP;
    bytemuck::cast_slice_mut(&mut x[..n])
}

/// Where a group's emissions lie in a frame of log-probabilities, when the frame's `GROUP * C`
/// values are contiguous (the usual (T, N, C) layout): label k of sample j at
/// `labels[k * GROUP + j]`, its blank at `blank[j]`; an index past the frame (`u32::MAX`) where
/// sample j has no label k.
struct Offsets {
    labels: [u32; MAX_TARGET * GROUP],
    blank: [u32; GROUP],
}

impl Offsets {
    fn new(labels: &[&[u32]; GROUP], blank: u32, classes: usize) -> Offsets {
        let mut o = Offsets {
            labels: [u32::MAX; MAX_TARGET * GROUP],
            blank: [u32::MAX; GROUP],
        };
        // `applies` bounds C below 256 and the labels by MAX_TARGET: every index fits.
        for (j, l) in labels.iter().enumerate() {
            let base = (j * classes) as u32;
            o.blank[j] = base + blank;
            for (k, &c) in l.iter().enumerate().take(MAX_TARGET) {
                o.labels[k * GROUP + j] = base + c;
            }
        }
        o
    }
}

/// What the emissions of a frame are gathered from.
struct Emitter<'g, 'j, E> {
    log_probs: &'g ArrayView3<'j, E>,
    labels: &'g [&'j [u32]; GROUP],
    offsets: &'g Offsets,
    blank: u32,
    lengths: &'g [usize; GROUP],
    /// Lg, and P = W / 2.
    lg: usize,
    plane: usize,
}

impl<E: CpuElement> Emitter<'_, '_, E> {
    /// The emissions of frame t into `out`: label k of sample j at `(k + 1) * GROUP + j`
    /// (k < Lg; -inf at k = -1 and k = Lg), its blank at `(P + k) * GROUP + j` for every k <= Lg
    /// (repeated, so that every loop over a row is one flat loop); -inf where sample j has no
    /// label k or no frame t.
    #[inline(always)]
    fn frame(&self, t: usize, out: &mut [E::Acc]) {
        let Emitter {
            log_probs,
            labels,
            offsets,
            blank,
            lengths,
            lg,
            plane,
        } = *self;
        let ninf = E::Acc::neg_infinity();
        let (e_l, e_bs) = out.split_at_mut(plane * GROUP);
        let (pad, e_l) = e_l.split_at_mut(GROUP);
        // The entries around the labels: -inf (see `Step`).
        pad.fill(ninf);
        e_l[lg * GROUP..(lg + 1) * GROUP].fill(ninf);
        let mut e_b = [ninf; GROUP];
        let frame = log_probs.index_axis(Axis(0), t.min(log_probs.dim().0.saturating_sub(1)));
        let active: [bool; GROUP] = std::array::from_fn(|j| t < lengths[j]);
        if let (Some(fs), true) = (frame.as_slice(), active.iter().all(|&a| a)) {
            // One load per label, the lanes side by side; the index past the frame gives -inf.
            let at = |o: u32| fs.get(o as usize).map_or(ninf, |v| v.to_acc());
            for (e, &o) in e_l[..lg * GROUP].iter_mut().zip(&offsets.labels) {
                *e = at(o);
            }
            for (e, &o) in e_b.iter_mut().zip(&offsets.blank) {
                *e = at(o);
            }
        } else {
            let rows: [_; GROUP] = std::array::from_fn(|j| frame.index_axis(Axis(0), j));
            let at = |j: usize, c: u32| -> E::Acc { rows[j][c as usize].to_acc() };
            for j in 0..GROUP {
                if active[j] {
                    e_b[j] = at(j, blank);
                }
            }
            for (k, e) in vecs_mut(&mut e_l[..lg * GROUP]).iter_mut().enumerate() {
                for j in 0..GROUP {
                    e[j] = match labels[j].get(k) {
                        Some(&c) if active[j] => at(j, c),
                        _ => ninf,
                    };
                }
            }
        }
        for v in vecs_mut(&mut e_bs[..(lg + 1) * GROUP]) {
            *v = e_b;
        }
    }
}

/// Over the samples with a frame t, the union of their windows of states that are reachable and
/// can still complete (`[S' - 2 (T_b - t), min(S', 2 t + 2))`, see `planar/`), as plane
/// ranges: blanks `[bl, bh)`, labels `[ll, lh)`.
#[inline(always)]
fn union_window(t: usize, lengths: &[usize; GROUP], s_primes: &[usize; GROUP]) -> [usize; 4] {
    let (mut lo, mut hi) = (usize::MAX, 0);
    for (&t_b, &s_prime) in lengths.iter().zip(s_primes) {
        if t < t_b {
            lo = lo.min(s_prime.saturating_sub(2 * (t_b - t)));
            hi = hi.max(s_prime.min(2 * t + 2));
        }
    }
    let lo = lo.min(hi);
    [lo.div_ceil(2), hi.div_ceil(2), lo / 2, hi / 2]
}

/// One row of the recurrence over the union window, in either direction (the operands offset
/// by the caller), entry i of every slice for the blank b and the label l of one step:
/// `out_b[i] = lae2(x_b[i], y_b[i]) + e_b[i]` and
/// `out_l[i] = lae3(x_l[i], x_b[i], skip[i] ? y_b[i] : -inf) + e_l[i]`. A label state's
/// three-term log-add-exp shares two of its terms with a blank state's (forward: `l_k` and `b_k`
/// both take `b_k` and `l_{k-1}`; backward: `l_k` takes `l_{k+1}` and `b_{k+1}`, as `b_{k+1}`
/// does), so it starts from the parts of the blank's (`logadd::lae2_parts`,
/// `logadd::lae_with_pair`), as in `planar/`.
struct Step<'a, A> {
    out_b: &'a mut [A],
    x_b: &'a [A],
    y_b: &'a [A],
    e_b: &'a [A],
    out_l: &'a mut [A],
    x_l: &'a [A],
    skip: &'a [A],
    e_l: &'a [A],
}

impl<A: FastReal> Step<'_, A> {
    /// `parts` holds the label states' operands between the two loops (two short dependency
    /// chains, faster than one loop with two dependent log-add-exps an element).
    #[inline(always)]
    fn run<const FMA: bool>(self, parts: &mut [A]) {
        let n = self.out_b.len();
        let one = A::one();
        let (lm, lu) = parts.split_at_mut(parts.len() / 2);
        let (lm, lu) = (&mut lm[..n], &mut lu[..n]);
        let blanks = self.x_b[..n].iter().zip(&self.y_b[..n]).zip(&self.e_b[..n]);
        let blanks = blanks.zip(&self.skip[..n]);
        let outs = self.out_b.iter_mut().zip(lm.iter_mut().zip(lu.iter_mut()));
        for ((ob, (lm, lu)), (((&a, &b), &eb), &sk)) in outs.zip(blanks) {
            let (m, u) = lae2_parts::<_, FMA>(a, b);
            *ob = pair_value::<_, FMA>(m, u) + eb;
            (*lm, *lu) = if sk != A::zero() { (m, u) } else { (a, one) };
        }
        let labels = self.x_l[..n].iter().zip(&self.e_l[..n]);
        let inputs = labels.zip(lm.iter().zip(&*lu));
        for (ol, ((&x, &el), (&m, &u))) in self.out_l[..n].iter_mut().zip(inputs) {
            *ol = lae_with_pair::<_, FMA>(x, m, u) + el;
        }
    }
}

/// Below this log-posterior a state's posterior counts 0: ln(f32::MIN_POSITIVE), where its
/// share of any gradient entry is below 1e-38 (and `exp` would be subnormal).
const MIN_LOG_POSTERIOR: f64 = -87.33;

/// The group's per-frame buffers (the `lanes` workspace region, see [`work_stride`]), but for
/// the emissions of two frames.
struct Work<'w, A> {
    /// The posteriors of a frame; also the label states' operands between the two loops of a
    /// step.
    post: &'w mut [A],
    /// 1 where the skip rule allows label k - 1 -> label k, at `k * GROUP + j`.
    skip: &'w mut [A],
    /// The losses repeated at every entry (a flat loop for the posteriors).
    nlls: &'w mut [A],
    /// Sample j's class posteriors at `j * C`.
    acc: &'w mut [A],
    /// Sample j's upstream factor repeated at `j * C`.
    upstream: &'w mut [A],
}

/// Splits the `lanes` region into the emissions of two frames (read alternately) and the rest.
fn split_work<A>(work: &mut [A], width: usize, classes: usize) -> ([&mut [A]; 2], Work<'_, A>) {
    let (rw, plane) = (width * GROUP, width / 2);
    let (em0, rest) = work.split_at_mut(rw);
    let (em1, rest) = rest.split_at_mut(rw);
    let (post, rest) = rest.split_at_mut(rw);
    let (skip, rest) = rest.split_at_mut(plane * GROUP);
    let (nlls, rest) = rest.split_at_mut(plane * GROUP);
    let (acc, rest) = rest.split_at_mut(classes * GROUP);
    let (upstream, _) = rest.split_at_mut(classes * GROUP);
    let work = Work {
        post,
        skip,
        nlls,
        acc,
        upstream,
    };
    ([em0, em1], work)
}

/// What every phase of a group reads.
struct Ctx<'c, 'j, E> {
    log_probs: &'c ArrayView3<'j, E>,
    labels: &'c [&'j [u32]; GROUP],
    blank: u32,
    lengths: &'c [usize; GROUP],
    /// W, and W / 2.
    width: usize,
    plane: usize,
    /// Entries of a row: W * GROUP.
    rw: usize,
    /// Rows of the alpha table.
    rows: usize,
    classes: usize,
    /// Lg: the group's longest target.
    lg: usize,
    /// The group's longest input.
    tmax: usize,
    s_primes: [usize; GROUP],
    offsets: Offsets,
}

impl<E: CpuElement> Group<'_, '_, E> {
    /// Forward and, when asked, backward for the group; `nll[j]` gets sample j's negative
    /// log-likelihood. Returns which samples need the planar kernel's scalar fallback for their
    /// gradient (a loss of -inf): nothing of their gradient is written, and their workspace
    /// slices are free for the planar kernel once this returns.
    #[inline(always)]
    pub(crate) fn process<const FMA: bool>(self, nll_out: &mut [E::Acc]) -> [bool; GROUP] {
        let Group {
            log_probs,
            labels,
            blank,
            input_lengths: lengths,
            width,
            rows,
            log_alpha,
            log_beta,
            work,
            mut copy,
            grad,
        } = self;
        let classes = log_probs.dim().2;
        let cx = Ctx {
            log_probs: &log_probs,
            labels: &labels,
            blank,
            lengths: &lengths,
            width,
            plane: width / 2,
            rw: width * GROUP,
            rows,
            classes,
            lg: labels.iter().map(|l| l.len()).max().unwrap_or(0),
            tmax: lengths.iter().copied().max().unwrap_or(0),
            s_primes: std::array::from_fn(|j| 2 * labels[j].len() + 1),
            offsets: Offsets::new(&labels, blank, classes),
        };
        let (mut em, mut work) = split_work(work, width, classes);
        cx.mark_skips(work.skip);
        let nll = cx.forward::<FMA>(log_alpha, &mut em, &mut work);
        nll_out[..GROUP].copy_from_slice(&nll);
        let Some((mut grad, upstream, zero_infinity)) = grad else {
            return [false; GROUP];
        };
        let (normal, planar) = settle(&lengths, &nll, &mut grad, zero_infinity);
        if normal.contains(&true) {
            for v in vecs_mut(work.nlls) {
                *v = nll;
            }
            // The class posteriors start at zero (the workspace holds whatever the last call
            // left).
            work.acc.fill(E::Acc::zero());
            for (g, u) in work.upstream.chunks_exact_mut(classes).zip(&upstream) {
                g.fill(u.g);
            }
            let sweep = Sweep {
                log_alpha,
                log_beta,
                copy: &mut copy,
                grad,
                normal,
                upstream,
            };
            cx.backward::<FMA>(sweep, &mut em, &mut work);
        }
        planar
    }
}

/// What the backward sweep writes, and for which samples.
struct Sweep<'s, 'w, 'j, E: Element> {
    log_alpha: &'w mut [E::Acc],
    log_beta: &'w mut [E::Acc],
    copy: &'s mut [&'w mut [E::Acc]; GROUP],
    grad: ArrayViewMut3<'j, E>,
    /// The samples whose gradient rows the sweep writes.
    normal: [bool; GROUP],
    upstream: [Upstream<E::Acc>; GROUP],
}

impl<E: CpuElement> Ctx<'_, '_, E> {
    /// Sets the skip flags of every sample's labels.
    #[inline(always)]
    fn mark_skips(&self, skip: &mut [E::Acc]) {
        for k in 0..self.plane {
            for j in 0..GROUP {
                let on = k < self.labels[j].len() && can_skip(self.labels[j], 2 * k + 1);
                skip[k * GROUP + j] = if on { E::Acc::one() } else { E::Acc::zero() };
            }
        }
    }

    /// What the emissions of a frame are gathered from.
    fn emitter(&self) -> Emitter<'_, '_, E> {
        Emitter {
            log_probs: self.log_probs,
            labels: self.labels,
            offsets: &self.offsets,
            blank: self.blank,
            lengths: self.lengths,
            lg: self.lg,
            plane: self.plane,
        }
    }

    /// Alpha for every frame over the union of the group's windows; returns each sample's
    /// negative log-likelihood, taken at its own last frame.
    #[inline(always)]
    fn forward<const FMA: bool>(
        &self,
        log_alpha: &mut [E::Acc],
        [em0, em1]: &mut [&mut [E::Acc]; 2],
        work: &mut Work<'_, E::Acc>,
    ) -> [E::Acc; GROUP] {
        let (plane, rw, tmax) = (self.plane, self.rw, self.tmax);
        // Set at each sample's last frame; with no frame, 0 for an empty target, else +inf.
        let mut nll: [E::Acc; GROUP] = std::array::from_fn(|j| match self.lengths[j] {
            0 if self.labels[j].is_empty() => E::Acc::zero(),
            0 => E::Acc::infinity(),
            _ => E::Acc::nan(),
        });
        let emitter = self.emitter();
        if tmax > 0 {
            emitter.frame(0, em0);
        }
        for t in 0..tmax {
            let (em, next) = if t % 2 == 0 {
                (&**em0, &mut **em1)
            } else {
                (&**em1, &mut **em0)
            };
            if t + 1 < tmax {
                emitter.frame(t + 1, next);
            }
            self.alpha_row::<FMA>(log_alpha, em, work.skip, work.post, t);
            let cur = &log_alpha[(t % self.rows) * rw..][..rw];
            for j in 0..GROUP {
                if self.lengths[j] == t + 1 {
                    let n = self.labels[j].len();
                    let b = cur[n * GROUP + j];
                    nll[j] = if n == 0 {
                        -b
                    } else {
                        -log_add_exp(b, cur[(plane + n) * GROUP + j])
                    };
                }
            }
        }
        nll
    }

    /// Row `t` of alpha over the union of the group's windows; every other entry of the row is
    /// -inf (so nothing computed ever reads a value of another frame).
    #[inline(always)]
    fn alpha_row<const FMA: bool>(
        &self,
        log_alpha: &mut [E::Acc],
        em: &[E::Acc],
        skip: &[E::Acc],
        parts: &mut [E::Acc],
        t: usize,
    ) {
        let ninf = E::Acc::neg_infinity();
        let (plane, rw) = (self.plane, self.rw);
        let (e_lp, e_bs) = em.split_at(plane * GROUP);
        let e_l = &e_lp[GROUP..];
        if t == 0 {
            let cur = &mut log_alpha[..rw];
            cur.fill(ninf);
            cur[..GROUP].copy_from_slice(&e_bs[..GROUP]);
            if self.lg > 0 {
                cur[(plane + 1) * GROUP..(plane + 2) * GROUP].copy_from_slice(&e_l[..GROUP]);
            }
            return;
        }
        let [_, bh, ll, _] = union_window(t, self.lengths, &self.s_primes);
        let (prev, cur) = rows_pair(log_alpha, (t - 1) % self.rows, t % self.rows, rw);
        cur.fill(ninf);
        let (pb, pl) = prev.split_at(plane * GROUP);
        let (cb, cl) = cur.split_at_mut(plane * GROUP);
        // Step k: b_k from b_k and l_{k-1} (at pl[k]); l_k (at cl[k + 1]) from l_k and those
        // two, for k in [ll, bh) (the window's blanks [bl, bh) and labels [ll, lh); the one more
        // entry on either side gets the value of its state, or -inf for the label l_Lg).
        let (k0, k1) = (ll, bh);
        Step {
            out_b: &mut cb[k0 * GROUP..k1 * GROUP],
            x_b: &pb[k0 * GROUP..],
            y_b: &pl[k0 * GROUP..],
            e_b: &e_bs[k0 * GROUP..],
            out_l: &mut cl[(k0 + 1) * GROUP..(k1 + 1) * GROUP],
            x_l: &pl[(k0 + 1) * GROUP..],
            skip: &skip[k0 * GROUP..],
            e_l: &e_l[k0 * GROUP..],
        }
        .run::<FMA>(parts);
    }

    /// Beta frame by frame from the last, the posteriors of the union window's states, each
    /// sample's class posteriors and the frame's gradient rows of the sweep's samples.
    #[inline(always)]
    fn backward<const FMA: bool>(
        &self,
        mut sweep: Sweep<'_, '_, '_, E>,
        [em0, em1]: &mut [&mut [E::Acc]; 2],
        work: &mut Work<'_, E::Acc>,
    ) {
        let (rw, tmax) = (self.rw, self.tmax);
        // Beta in two rows (all -inf to start: no sample has a frame past its end).
        sweep.log_beta[..2 * rw].fill(E::Acc::neg_infinity());
        let emitter = self.emitter();
        emitter.frame(tmax - 1, em0);
        for t in (0..tmax).rev() {
            let (em, next) = if (tmax - 1 - t) % 2 == 0 {
                (&**em0, &mut **em1)
            } else {
                (&**em1, &mut **em0)
            };
            if t > 0 {
                emitter.frame(t - 1, next);
            }
            self.beta_row::<FMA>(sweep.log_beta, em, work.skip, work.post, t);
            let alpha = &sweep.log_alpha[t * rw..][..rw];
            let beta = &sweep.log_beta[(t % 2) * rw..][..rw];
            let window = union_window(t, self.lengths, &self.s_primes);
            self.state_posteriors::<FMA>(alpha, beta, work.nlls, em, work.post, window);
            let writes: [bool; GROUP] =
                std::array::from_fn(|j| sweep.normal[j] && t < self.lengths[j]);
            self.class_posteriors(work, window, &writes);
            self.gradient_rows::<FMA>(t, &mut sweep, work, &writes);
        }
    }

    /// Row `t` of beta over the union window, and the start of beta for every sample whose
    /// last frame is t.
    #[inline(always)]
    fn beta_row<const FMA: bool>(
        &self,
        log_beta: &mut [E::Acc],
        em: &[E::Acc],
        skip: &[E::Acc],
        parts: &mut [E::Acc],
        t: usize,
    ) {
        let ninf = E::Acc::neg_infinity();
        let (plane, rw) = (self.plane, self.rw);
        let (e_lp, e_bs) = em.split_at(plane * GROUP);
        let e_l = &e_lp[GROUP..];
        let [bl, _, _, lh] = union_window(t, self.lengths, &self.s_primes);
        let (next, cur) = rows_pair(log_beta, (t + 1) % 2, t % 2, rw);
        cur.fill(ninf);
        let (nb_, nl_) = next.split_at(plane * GROUP);
        let (cb, cl) = cur.split_at_mut(plane * GROUP);
        // Step k: b_k from b_k and l_k (at nl_[k + 1]); l_{k-1} (at cl[k]) from l_{k-1} and
        // those two, for k in [bl, lh + 1) (the window's blanks [bl, bh) and labels [ll, lh);
        // the one more entry on either side gets the value of its state, or -inf for the label
        // l_{-1}, which the backward sweep never reads).
        let (k0, k1) = (bl, lh + 1);
        Step {
            out_b: &mut cb[k0 * GROUP..k1 * GROUP],
            x_b: &nb_[k0 * GROUP..],
            y_b: &nl_[(k0 + 1) * GROUP..],
            e_b: &e_bs[k0 * GROUP..],
            out_l: &mut cl[k0 * GROUP..k1 * GROUP],
            x_l: &nl_[k0 * GROUP..],
            skip: &skip[k0 * GROUP..],
            e_l: &e_lp[k0 * GROUP..],
        }
        .run::<FMA>(parts);
        // A sample whose last frame is t starts its beta here: its final blank and final label.
        for j in 0..GROUP {
            if self.lengths[j] == t + 1 {
                let n = self.labels[j].len();
                for i in 0..self.width {
                    cur[i * GROUP + j] = ninf;
                }
                cur[n * GROUP + j] = e_bs[j];
                if n > 0 {
                    cur[(plane + n) * GROUP + j] = e_l[(n - 1) * GROUP + j];
                }
            }
        }
    }

    /// The posteriors of the union window's states (blanks at k, labels at plane + k). Outside a
    /// sample's own window a state has beta = -inf (it cannot complete) or alpha = -inf; a NaN
    /// there (from a NaN or +inf log-probability nothing valid reads) counts 0.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn state_posteriors<const FMA: bool>(
        &self,
        alpha: &[E::Acc],
        beta: &[E::Acc],
        nlls: &[E::Acc],
        em: &[E::Acc],
        post: &mut [E::Acc],
        [bl, bh, ll, lh]: [usize; 4],
    ) {
        let plane = self.plane;
        let (e_lp, e_bs) = em.split_at(plane * GROUP);
        let e_l = &e_lp[GROUP..];
        let (post_b, post_l) = post.split_at_mut(plane * GROUP);
        let zero = E::Acc::zero();
        // exp(x) of a log-posterior x <= 0 (up to rounding); see MIN_LOG_POSTERIOR.
        let min = E::Acc::from_f64(MIN_LOG_POSTERIOR);
        let posterior = |x: E::Acc| {
            if x.is_nan() || x < min {
                zero
            } else {
                x.fexp_nonpositive::<FMA>()
            }
        };
        let (r, inputs) = (bl * GROUP..bh * GROUP, alpha.iter().zip(beta));
        let inputs = inputs.zip(nlls).zip(e_bs);
        for (p, (((&a, &b), &n), &e)) in post_b[r.clone()].iter_mut().zip(inputs.skip(r.start)) {
            *p = posterior(a + b + n - e);
        }
        let (al, be) = (&alpha[(plane + 1) * GROUP..], &beta[(plane + 1) * GROUP..]);
        let (r, inputs) = (ll * GROUP..lh * GROUP, al.iter().zip(be));
        let inputs = inputs.zip(nlls).zip(e_l);
        for (p, (((&a, &b), &n), &e)) in post_l[r.clone()].iter_mut().zip(inputs.skip(r.start)) {
            *p = posterior(a + b + n - e);
        }
    }

    /// Adds the posteriors of the window's states to each writing sample's class posteriors:
    /// the blank states in order of k, then the labels in order of k.
    #[inline(always)]
    fn class_posteriors(
        &self,
        work: &mut Work<'_, E::Acc>,
        [bl, bh, ll, lh]: [usize; 4],
        writes: &[bool; GROUP],
    ) {
        let (post_b, post_l) = work.post.split_at(self.plane * GROUP);
        let mut blank_sum = [E::Acc::zero(); GROUP];
        for p in vecs(&post_b[bl * GROUP..bh * GROUP]) {
            for j in 0..GROUP {
                blank_sum[j] = blank_sum[j] + p[j];
            }
        }
        let (classes, blank) = (self.classes, self.blank as usize);
        for j in (0..GROUP).filter(|&j| writes[j]) {
            let acc = &mut work.acc[j * classes..(j + 1) * classes];
            acc[blank] = acc[blank] + blank_sum[j];
            let own = &self.labels[j][..lh.min(self.labels[j].len())];
            for (k, &c) in own.iter().enumerate().skip(ll) {
                acc[c as usize] = acc[c as usize] + post_l[k * GROUP + j];
            }
        }
    }

    /// The gradient rows of frame `t`: with the usual layout the group's rows of log_probs and
    /// of the gradient are two contiguous blocks, written in one flat pass.
    #[inline(always)]
    fn gradient_rows<const FMA: bool>(
        &self,
        t: usize,
        sweep: &mut Sweep<'_, '_, '_, E>,
        work: &mut Work<'_, E::Acc>,
        writes: &[bool; GROUP],
    ) {
        let zero = E::Acc::zero();
        let classes = self.classes;
        let lp_t = self.log_probs.index_axis(Axis(0), t);
        let mut out_t = sweep.grad.index_axis_mut(Axis(0), t);
        let accs = work.acc.chunks_exact_mut(classes);
        if let (Some(lp), Some(out)) = (lp_t.as_slice(), out_t.as_slice_mut()) {
            if writes.iter().all(|&w| w) {
                let inputs = lp.iter().zip(work.acc.iter_mut()).zip(&*work.upstream);
                // The mode is tested once a frame, so that the loop vectorizes alone.
                if sweep.upstream[0].form == Form::Exact {
                    for (o, ((_, a), &g)) in out.iter_mut().zip(inputs) {
                        *o = E::from_acc((zero - *a) * g);
                        *a = zero;
                    }
                } else {
                    for (o, ((&x, a), &g)) in out.iter_mut().zip(inputs) {
                        let u = Upstream {
                            g,
                            form: Form::Torch,
                            shift: super::planar::Shift::none(),
                        };
                        *o = E::from_acc(grad_value::<_, FMA>(x.to_acc(), *a, u));
                        *a = zero;
                    }
                }
            } else {
                let rows = lp.chunks_exact(classes).zip(out.chunks_exact_mut(classes));
                for (j, ((lp, out), acc)) in rows.zip(accs).enumerate() {
                    if writes[j] {
                        grad_row_acc::<_, _, _, FMA>(lp, acc, sweep.upstream[j], out.iter_mut());
                    }
                }
            }
        } else {
            for (j, acc) in accs.enumerate().filter(|&(j, _)| writes[j]) {
                let mut out = out_t.row_mut(j);
                let copy = &mut *sweep.copy[j];
                let row = row_of(&lp_t, j, copy, super::planar::Shift::none(), None);
                row.write_grad::<FMA>(Some(acc), sweep.upstream[j], &mut out);
            }
        }
    }
}

/// Settles the gradient of the samples that need no backward sweep (no frames, zero_infinity,
/// impossible targets) and marks the others; returns (samples for the sweep, samples for the
/// planar kernel's scalar fallback).
fn settle<E: CpuElement>(
    lengths: &[usize; GROUP],
    nll: &[E::Acc; GROUP],
    grad: &mut ArrayViewMut3<'_, E>,
    zero_infinity: bool,
) -> ([bool; GROUP], [bool; GROUP]) {
    let zero = E::from_acc(E::Acc::zero());
    let mut normal = [false; GROUP];
    let mut planar = [false; GROUP];
    let mut grad_lanes = grad.axis_iter_mut(Axis(1));
    for j in 0..GROUP {
        let t_b = lengths[j];
        let Some(mut g) = grad_lanes.next() else {
            planar[j] = true;
            continue;
        };
        if nll[j] == E::Acc::neg_infinity() {
            planar[j] = true;
        } else if t_b == 0 || (zero_infinity && nll[j] == E::Acc::infinity()) {
            g.fill(zero);
        } else if nll[j].is_nan() || nll[j] == E::Acc::infinity() {
            // torch's formula: every class of every frame below T_b is NaN.
            g.slice_mut(s![..t_b, ..]).fill(E::from_acc(E::Acc::nan()));
            g.slice_mut(s![t_b.., ..]).fill(zero);
        } else {
            g.slice_mut(s![t_b.., ..]).fill(zero);
            normal[j] = true;
        }
    }
    (normal, planar)
}

/// A group with where its losses go, as one kernel run.
struct Run<'g, 'j, 'w, E: CpuElement> {
    group: Group<'j, 'w, E>,
    nll: &'g mut [E::Acc],
}

impl<E: CpuElement> Kernel for Run<'_, '_, '_, E> {
    type Output = [bool; GROUP];

    #[inline(always)]
    fn run<const FMA: bool>(self, _: Isa) -> [bool; GROUP] {
        self.group.process::<FMA>(self.nll)
    }
}

/// Runs a group with the kernel compiled for `isa`; see [`Group::process`].
pub(crate) fn process<E: CpuElement>(
    group: Group<'_, '_, E>,
    nll: &mut [E::Acc],
    isa: Isa,
) -> [bool; GROUP] {
    isa::run(isa, Run { group, nll })
}
