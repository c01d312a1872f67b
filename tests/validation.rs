//! Validation of the C ABI: one test per rule of the contract (API.md and the doc comments of
//! `src/ffi`, which cbindgen carries into include/ctc.h).
//!
//! Every test starts from a small valid problem ([`Case::new`]: T = 6, N = 3, C = 5, padded int64
//! targets (N, S = 4), int64 lengths, float32 log-softmax log_probs), breaks exactly one thing and
//! checks, for every entry point the rule applies to:
//! - the status (`CTC_STATUS_INVALID_ARGUMENT`, or `CTC_STATUS_UNSUPPORTED` where the contract
//!   says so);
//! - that `ctc_last_error_message()` names the argument and the offending value;
//! - that nothing was written: the loss and gradient buffers keep their sentinel, `*bytes` of
//!   `ctc_workspace_size` keeps its sentinel, and no input buffer changed.

mod common;
use common::skip::skip;
use common::*;
use ctc::ffi::*;
use std::ffi::{c_void, CStr};
use std::ptr;

const T: i64 = 6;
const N: i64 = 3;
const C: i64 = 5;
const S: i64 = 4;
const NUMEL: usize = (T * N * C) as usize;
/// What the output buffers hold before every call.
const SENTINEL: f32 = 12345.0;
/// What `*bytes` holds before every call.
const BYTES_SENTINEL: usize = 0xDEAD_BEEF;
/// sizeof(CtcOptions) of this version.
const OPTIONS_SIZE: usize = std::mem::size_of::<CtcOptions>();
const VERSION: &str = env!("CARGO_PKG_VERSION");
const BIG: i64 = 1 << 62;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

use Entry::{Backward, Forward, Fused, Size, SizeForward};

/// Every entry point: for rules on log_probs, targets, lengths and options.
const ALL: &[Entry] = &[Forward, Backward, Fused, Size, SizeForward];
/// The entry points that compute (and take a workspace).
const COMPUTE: &[Entry] = &[Forward, Backward, Fused];
/// The entry points that take `loss`.
const WITH_LOSS: &[Entry] = &[Forward, Fused];
/// The entry points that take `grad_log_probs` and `grad_loss`.
const WITH_GRAD: &[Entry] = &[Backward, Fused];

/// float32 storage aligned to 8 bytes with room for as many 8-byte values, so that a test can
/// relabel it float64 or int64 without tripping the alignment check or describing memory past
/// the allocation.
struct Buf {
    store: Vec<u64>,
    len: usize,
}

impl Buf {
    fn new(values: &[f32]) -> Buf {
        let mut b = Buf {
            store: vec![0; values.len().max(1)],
            len: values.len(),
        };
        b.as_mut_slice().copy_from_slice(values);
        b
    }

    fn filled(len: usize, v: f32) -> Buf {
        Buf::new(&vec![v; len])
    }

    fn ptr(&mut self) -> *mut f32 {
        self.store.as_mut_ptr().cast()
    }

    fn as_slice(&self) -> &[f32] {
        // SAFETY: `store` holds 8 * max(len, 1) initialised bytes, aligned for f32.
        unsafe { std::slice::from_raw_parts(self.store.as_ptr().cast(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as as_slice, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.store.as_mut_ptr().cast(), self.len) }
    }

    fn bits(&self) -> Vec<u32> {
        self.as_slice().iter().map(|x| x.to_bits()).collect()
    }

    /// The whole storage (the f32 view and the room past it), to detect any write.
    fn raw(&self) -> Vec<u64> {
        self.store.clone()
    }

    fn holds_only(&self, v: f32) -> bool {
        self.as_slice().iter().all(|x| x.to_bits() == v.to_bits())
    }
}

/// log_probs: a fixed deterministic pattern, log-softmax normalised over C, (T, N, C) row-major.
fn log_probs_values() -> Vec<f32> {
    let mut out = Vec::with_capacity(NUMEL);
    for t in 0..T {
        for n in 0..N {
            let row: Vec<f64> = (0..C)
                .map(|c| {
                    ((t * 7 + n * 3 + c * c * 5) % 11) as f64 * 0.37
                        + ((t + 2 * n + c) as f64).sin()
                })
                .collect();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            out.extend(row.iter().map(|x| (x - lse) as f32));
        }
    }
    out
}

/// How the options pointer is passed.
#[derive(Clone, Copy)]
enum OptionsArg {
    /// `&case.opts`.
    Own,
    /// NULL (the defaults).
    Null,
    /// A caller-built (possibly larger) options struct.
    Raw(*const CtcOptions),
}

/// What one call did.
struct Outcome {
    status: CtcStatus,
    message: String,
    /// No output buffer, no input buffer and not `*bytes` was written.
    untouched: bool,
    /// Bits of the whole loss buffer after the call.
    loss: Vec<u32>,
    /// Bits of the whole gradient buffer after the call.
    grad: Vec<u32>,
    /// `*bytes` after the call.
    bytes: usize,
}

/// A valid problem whose descriptors a test may change before running an entry point. A `None`
/// descriptor is passed as a NULL pointer.
struct Case {
    lp_buf: Buf,
    /// Padded targets (N + 1 rows: the last one is spare, for a rows-mismatch test).
    targets_buf: Vec<i64>,
    /// The same labels concatenated, plus one spare label.
    concat_buf: Vec<i64>,
    /// N + 1 entries: the last one is spare.
    il_buf: Vec<i64>,
    tl_buf: Vec<i64>,
    loss_buf: Buf,
    grad_buf: Buf,
    grad_loss_buf: Buf,
    bytes: usize,

    log_probs: Option<CtcTensor>,
    targets: Option<CtcTensor>,
    input_lengths: Option<CtcTensor>,
    target_lengths: Option<CtcTensor>,
    grad_loss: Option<CtcTensor>,
    loss: Option<CtcTensor>,
    grad: Option<CtcTensor>,
    opts: CtcOptions,
    options_arg: OptionsArg,
    bytes_null: bool,
}

impl Case {
    /// T = 6, N = 3, C = 5, blank 0, padded targets [[1 2 3 .] [2 2 4 .] [4 1 3 2]], input lengths
    /// [6 5 6], target lengths [3 3 4], mean reduction, grad_loss () = 0.75.
    fn new() -> Case {
        let mut lp_buf = Buf::new(&log_probs_values());
        let mut targets_buf = vec![1, 2, 3, 0, 2, 2, 4, 0, 4, 1, 3, 2, 1, 1, 1, 1];
        let concat_buf = vec![1, 2, 3, 2, 2, 4, 4, 1, 3, 2, 1];
        let mut il_buf = vec![6, 5, 6, 6];
        let mut tl_buf = vec![3, 3, 4, 1];
        let mut loss_buf = Buf::filled(2 * N as usize + 2, SENTINEL);
        let mut grad_buf = Buf::filled(NUMEL, SENTINEL);
        let mut grad_loss_buf = Buf::new(&[0.75, -1.5, 2.0, 0.5]);
        let lp_shape = [T, N, C];
        let log_probs = tensor(
            lp_buf.ptr(),
            CTC_DTYPE_FLOAT32,
            &lp_shape,
            &contiguous(&lp_shape),
        );
        let targets = tensor(targets_buf.as_mut_ptr(), CTC_DTYPE_INT64, &[N, S], &[S, 1]);
        let input_lengths = tensor(il_buf.as_mut_ptr(), CTC_DTYPE_INT64, &[N], &[1]);
        let target_lengths = tensor(tl_buf.as_mut_ptr(), CTC_DTYPE_INT64, &[N], &[1]);
        let loss = tensor(loss_buf.ptr(), CTC_DTYPE_FLOAT32, &[], &[]);
        let grad = tensor(
            grad_buf.ptr(),
            CTC_DTYPE_FLOAT32,
            &lp_shape,
            &contiguous(&lp_shape),
        );
        let grad_loss = tensor(grad_loss_buf.ptr(), CTC_DTYPE_FLOAT32, &[], &[]);
        Case {
            lp_buf,
            targets_buf,
            concat_buf,
            il_buf,
            tl_buf,
            loss_buf,
            grad_buf,
            grad_loss_buf,
            bytes: BYTES_SENTINEL,
            log_probs: Some(log_probs),
            targets: Some(targets),
            input_lengths: Some(input_lengths),
            target_lengths: Some(target_lengths),
            grad_loss: Some(grad_loss),
            loss: Some(loss),
            grad: Some(grad),
            opts: ctc_options_default(),
            options_arg: OptionsArg::Own,
            bytes_null: false,
        }
    }

    fn lp(&mut self) -> &mut CtcTensor {
        self.log_probs.as_mut().expect("log_probs is set")
    }
    fn tg(&mut self) -> &mut CtcTensor {
        self.targets.as_mut().expect("targets is set")
    }
    fn il(&mut self) -> &mut CtcTensor {
        self.input_lengths.as_mut().expect("input_lengths is set")
    }
    fn tl(&mut self) -> &mut CtcTensor {
        self.target_lengths.as_mut().expect("target_lengths is set")
    }
    fn gl(&mut self) -> &mut CtcTensor {
        self.grad_loss.as_mut().expect("grad_loss is set")
    }
    fn loss(&mut self) -> &mut CtcTensor {
        self.loss.as_mut().expect("loss is set")
    }
    fn grad(&mut self) -> &mut CtcTensor {
        self.grad.as_mut().expect("grad_log_probs is set")
    }

    /// Every descriptor that is set.
    fn tensors(&mut self) -> impl Iterator<Item = &mut CtcTensor> {
        [
            &mut self.log_probs,
            &mut self.targets,
            &mut self.input_lengths,
            &mut self.target_lengths,
            &mut self.grad_loss,
            &mut self.loss,
            &mut self.grad,
        ]
        .into_iter()
        .flatten()
    }

    /// The floating descriptors that are set: log_probs, grad_loss, loss, grad_log_probs.
    fn floats(&mut self) -> impl Iterator<Item = &mut CtcTensor> {
        [
            &mut self.log_probs,
            &mut self.grad_loss,
            &mut self.loss,
            &mut self.grad,
        ]
        .into_iter()
        .flatten()
    }

    /// Reduction none: loss and grad_loss become (N,).
    fn reduction_none(&mut self) {
        self.opts.reduction = CTC_REDUCTION_NONE;
        reshape(self.loss(), &[N], &[1]);
        reshape(self.gl(), &[N], &[1]);
    }

    /// Concatenated targets (sum(target_lengths) = 10,).
    fn concatenated(&mut self) {
        let data = self.concat_buf.as_mut_ptr();
        self.targets = Some(tensor(data, CTC_DTYPE_INT64, &[10], &[1]));
    }

    /// Unbatched: sample 0 alone, log_probs (T, C), targets (S,), lengths (), loss (), grad (T, C).
    fn unbatched(&mut self) {
        reshape(self.lp(), &[T, C], &[N * C, 1]);
        reshape(self.tg(), &[S], &[1]);
        reshape(self.il(), &[], &[]);
        reshape(self.tl(), &[], &[]);
        reshape(self.loss(), &[], &[]);
        reshape(self.gl(), &[], &[]);
        reshape(self.grad(), &[T, C], &[C, 1]);
    }

    /// The bits of every input buffer and of the room past every output view.
    fn snapshot(&self) -> Vec<u64> {
        let mut v = self.lp_buf.raw();
        v.extend(
            self.targets_buf
                .iter()
                .chain(&self.concat_buf)
                .chain(&self.il_buf)
                .chain(&self.tl_buf)
                .map(|&x| x as u64),
        );
        v.extend(self.grad_loss_buf.raw());
        v
    }

    /// Runs one entry point with the current descriptors, sentinels in the outputs.
    fn run(&mut self, entry: Entry) -> Outcome {
        self.loss_buf.as_mut_slice().fill(SENTINEL);
        self.grad_buf.as_mut_slice().fill(SENTINEL);
        self.bytes = BYTES_SENTINEL;
        let loss_room = self.loss_buf.raw();
        let grad_room = self.grad_buf.raw();
        let before = self.snapshot();

        let cst = |t: &Option<CtcTensor>| t.as_ref().map_or(ptr::null(), |t| t as *const CtcTensor);
        let (lp, tg, il, tl, gl) = (
            cst(&self.log_probs),
            cst(&self.targets),
            cst(&self.input_lengths),
            cst(&self.target_lengths),
            cst(&self.grad_loss),
        );
        let mut loss = self.loss;
        let mut grad = self.grad;
        let loss_p = loss
            .as_mut()
            .map_or(ptr::null_mut(), |t| t as *mut CtcTensor);
        let grad_p = grad
            .as_mut()
            .map_or(ptr::null_mut(), |t| t as *mut CtcTensor);
        let options: *const CtcOptions = match self.options_arg {
            OptionsArg::Own => &self.opts as *const CtcOptions,
            OptionsArg::Null => ptr::null(),
            OptionsArg::Raw(p) => p,
        };
        let bytes: *mut usize = if self.bytes_null {
            ptr::null_mut()
        } else {
            &mut self.bytes as *mut usize
        };
        // SAFETY: every non-NULL pointer points to a live descriptor or options struct; every
        // descriptor a test did not break on purpose describes live memory of its shape and dtype,
        // and the library must reject a broken one before touching its memory, which is what these
        // tests check.
        let status =
            unsafe { call_entry(entry, lp, tg, il, tl, gl, options, loss_p, grad_p, bytes) };
        let message = last_error();
        let untouched = self.loss_buf.holds_only(SENTINEL)
            && self.grad_buf.holds_only(SENTINEL)
            && self.loss_buf.raw() == loss_room
            && self.grad_buf.raw() == grad_room
            && self.bytes == BYTES_SENTINEL
            && self.snapshot() == before;
        Outcome {
            status,
            message,
            untouched,
            loss: self.loss_buf.bits(),
            grad: self.grad_buf.bits(),
            bytes: self.bytes,
        }
    }

    /// Runs each of `entries` and checks status, message and untouched outputs.
    #[track_caller]
    fn expect(&mut self, entries: &[Entry], status: CtcStatus, needles: &[&str]) {
        for &e in entries {
            let o = self.run(e);
            assert_eq!(
                o.status,
                status,
                "{e:?}: status {} ({}) instead of {} ({}); message {:?}",
                o.status,
                status_text(o.status),
                status,
                status_text(status),
                o.message
            );
            for needle in needles {
                assert!(
                    o.message.contains(needle),
                    "{e:?}: message {:?} does not contain {needle:?}",
                    o.message
                );
            }
            assert!(
                o.untouched,
                "{e:?}: a failing call wrote to an output or an input; message {:?}",
                o.message
            );
        }
    }

    /// Runs `entry`, which must succeed and leave "" as the message.
    #[track_caller]
    fn ok(&mut self, entry: Entry) -> Outcome {
        let o = self.run(entry);
        assert_eq!(
            o.status,
            CTC_STATUS_SUCCESS,
            "{entry:?}: status {} ({}); message {:?}",
            o.status,
            status_text(o.status),
            o.message
        );
        assert_eq!(
            o.message, "",
            "{entry:?}: a success leaves an empty message"
        );
        o
    }
}

/// A change to a valid case.
type Mutation = fn(&mut Case);
/// Picks one descriptor of a case.
type Descriptor = fn(&mut Case) -> &mut CtcTensor;

/// Replaces the dimensions of `t`, keeping data, dtype and device.
fn reshape(t: &mut CtcTensor, shape: &[i64], strides: &[i64]) {
    let mut n = tensor(t.data, t.dtype, shape, strides);
    n.device = t.device;
    n.device_index = t.device_index;
    *t = n;
}

/// A fresh valid case with `mutate` applied must fail on every entry of `entries` with `status`
/// and a message containing every needle, writing nothing.
#[track_caller]
fn check(entries: &[Entry], status: CtcStatus, needles: &[&str], mutate: impl FnOnce(&mut Case)) {
    let mut p = Case::new();
    mutate(&mut p);
    p.expect(entries, status, needles);
}

/// [`check`] with `CTC_STATUS_INVALID_ARGUMENT`.
#[track_caller]
fn invalid(entries: &[Entry], needles: &[&str], mutate: impl FnOnce(&mut Case)) {
    check(entries, CTC_STATUS_INVALID_ARGUMENT, needles, mutate)
}

fn status_text(s: CtcStatus) -> String {
    // SAFETY: ctc_status_string returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ctc_status_string(s)) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// `p` displaced by `bytes` bytes (not dereferenced here).
fn shifted<P>(p: *mut P, bytes: usize) -> *mut c_void {
    p.cast::<u8>().wrapping_add(bytes).cast()
}

/// An options struct of a newer header: this version's fields and `K` more bytes.
#[repr(C)]
struct Extended<const K: usize> {
    base: CtcOptions,
    extra: [u8; K],
}

impl<const K: usize> Extended<K> {
    fn new(struct_size: usize) -> Self {
        let mut base = ctc_options_default();
        base.struct_size = struct_size as u32;
        Extended {
            base,
            extra: [0; K],
        }
    }

    fn ptr(&self) -> OptionsArg {
        OptionsArg::Raw((self as *const Self).cast())
    }
}

// ---------------------------------------------------------------------------------------------
// The valid starting point
// ---------------------------------------------------------------------------------------------

/// The problem every test breaks is valid in each of its variants, on every entry point.
#[test]
fn baseline_problem_is_valid() {
    let variants: [(&str, Mutation); 5] = [
        ("padded mean", |_| {}),
        ("padded none", |p| p.reduction_none()),
        ("concatenated sum", |p| {
            p.concatenated();
            p.opts.reduction = CTC_REDUCTION_SUM;
        }),
        ("unbatched", |p| p.unbatched()),
        ("no grad_loss", |p| p.grad_loss = None),
    ];
    for (name, setup) in variants {
        let mut p = Case::new();
        setup(&mut p);
        let f = p.ok(Fused);
        assert!(!f.untouched, "{name}: the fused call wrote its outputs");
        assert!(
            f.loss[0] != SENTINEL.to_bits() && f32::from_bits(f.loss[0]).is_finite(),
            "{name}"
        );
        assert!(
            p.ok(Forward).loss == f.loss,
            "{name}: forward and fused losses differ"
        );
        assert!(
            p.ok(Backward).grad == f.grad,
            "{name}: backward and fused gradients differ"
        );
        let size = p.ok(Size).bytes;
        assert!(
            size > 0 && size != BYTES_SENTINEL,
            "{name}: workspace size {size}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pointers
// ---------------------------------------------------------------------------------------------

/// NULL log_probs / targets / input_lengths / target_lengths / loss / grad_log_probs / bytes.
/// (A NULL grad_loss means ones and a NULL options means the defaults: both are valid.)
#[test]
fn null_pointers() {
    invalid(ALL, &["log_probs is NULL"], |p| p.log_probs = None);
    invalid(ALL, &["targets is NULL"], |p| p.targets = None);
    invalid(ALL, &["input_lengths is NULL"], |p| p.input_lengths = None);
    invalid(ALL, &["target_lengths is NULL"], |p| {
        p.target_lengths = None
    });
    invalid(WITH_LOSS, &["loss is NULL"], |p| p.loss = None);
    invalid(WITH_GRAD, &["grad_log_probs is NULL"], |p| p.grad = None);
    invalid(&[Size, SizeForward], &["bytes is NULL"], |p| {
        p.bytes_null = true
    });
    // Control: a NULL grad_loss is "ones".
    let mut p = Case::new();
    p.grad_loss = None;
    for &e in ALL {
        p.ok(e);
    }
}

/// `data` NULL for a tensor with elements.
#[test]
fn null_data_with_elements_is_rejected() {
    invalid(
        ALL,
        &["log_probs.data is NULL but log_probs has 90 elements"],
        |p| p.lp().data = ptr::null_mut(),
    );
    invalid(
        ALL,
        &["targets.data is NULL but targets has 12 elements"],
        |p| p.tg().data = ptr::null_mut(),
    );
    invalid(
        ALL,
        &["input_lengths.data is NULL but input_lengths has 3 elements"],
        |p| p.il().data = ptr::null_mut(),
    );
    invalid(
        ALL,
        &["target_lengths.data is NULL but target_lengths has 3 elements"],
        |p| p.tl().data = ptr::null_mut(),
    );
    // A 0-dimensional tensor has one element.
    invalid(
        WITH_LOSS,
        &["loss.data is NULL but loss has 1 element"],
        |p| p.loss().data = ptr::null_mut(),
    );
    invalid(
        WITH_LOSS,
        &["loss.data is NULL but loss has 3 elements"],
        |p| {
            p.reduction_none();
            p.loss().data = ptr::null_mut();
        },
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs.data is NULL but grad_log_probs has 90 elements"],
        |p| p.grad().data = ptr::null_mut(),
    );
    invalid(
        WITH_GRAD,
        &["grad_loss.data is NULL but grad_loss has 1 element"],
        |p| p.gl().data = ptr::null_mut(),
    );
}

/// `data` NULL for a tensor without elements is fine: an empty batch, empty input (T = 0),
/// empty concatenated targets, empty padded rows (S = 0).
#[test]
fn null_data_with_zero_elements_is_accepted() {
    // N = 0: every tensor empty, every data NULL.
    let mut p = Case::new();
    p.reduction_none();
    for t in p.tensors() {
        t.data = ptr::null_mut();
    }
    p.lp().shape[1] = 0;
    p.tg().shape[0] = 0;
    p.il().shape[0] = 0;
    p.tl().shape[0] = 0;
    p.loss().shape[0] = 0;
    p.gl().shape[0] = 0;
    p.grad().shape[1] = 0;
    for &e in ALL {
        p.ok(e);
    }

    // Empty concatenated targets (all target lengths 0).
    let mut p = Case::new();
    p.reduction_none();
    p.concatenated();
    p.tl_buf[..3].fill(0);
    p.tg().shape[0] = 0;
    p.tg().data = ptr::null_mut();
    for &e in ALL {
        p.ok(e);
    }
    let loss = &p.ok(Forward).loss;
    assert!((0..N as usize).all(|b| f32::from_bits(loss[b]).is_finite()));

    // Padded targets with S = 0.
    let mut p = Case::new();
    p.tl_buf[..3].fill(0);
    p.tg().shape[1] = 0;
    p.tg().data = ptr::null_mut();
    for &e in ALL {
        p.ok(e);
    }

    // T = 0: no frames, no labels; log_probs and grad empty.
    let mut p = Case::new();
    p.reduction_none();
    p.concatenated();
    p.il_buf[..3].fill(0);
    p.tl_buf[..3].fill(0);
    p.lp().shape[0] = 0;
    p.lp().data = ptr::null_mut();
    p.grad().shape[0] = 0;
    p.grad().data = ptr::null_mut();
    p.tg().shape[0] = 0;
    p.tg().data = ptr::null_mut();
    for &e in ALL {
        p.ok(e);
    }
    let loss = &p.ok(Forward).loss;
    assert!(
        (0..N as usize).all(|b| f32::from_bits(loss[b]) == 0.0),
        "empty alignments cost 0"
    );
}

/// `data` not aligned to the element size.
#[test]
fn misaligned_data_pointer() {
    let mut p = Case::new();
    let lp = shifted(p.lp_buf.ptr(), 1);
    p.lp().data = lp;
    p.expect(
        ALL,
        CTC_STATUS_INVALID_ARGUMENT,
        &[
            &format!("log_probs.data = {lp:p}"),
            "is not aligned to the 4 bytes of float32",
        ],
    );

    let mut p = Case::new();
    let tg = shifted(p.targets_buf.as_mut_ptr(), 4);
    p.tg().data = tg;
    p.expect(
        ALL,
        CTC_STATUS_INVALID_ARGUMENT,
        &[
            &format!("targets.data = {tg:p}"),
            "is not aligned to the 8 bytes of int64",
        ],
    );

    let mut p = Case::new();
    let il = shifted(p.il_buf.as_mut_ptr(), 2);
    p.il().data = il;
    p.expect(
        ALL,
        CTC_STATUS_INVALID_ARGUMENT,
        &[&format!("input_lengths.data = {il:p} is not aligned")],
    );

    let mut p = Case::new();
    let loss = shifted(p.loss_buf.ptr(), 2);
    p.loss().data = loss;
    p.expect(
        WITH_LOSS,
        CTC_STATUS_INVALID_ARGUMENT,
        &[&format!("loss.data = {loss:p} is not aligned")],
    );

    let mut p = Case::new();
    let grad = shifted(p.grad_buf.ptr(), 3);
    p.grad().data = grad;
    p.expect(
        WITH_GRAD,
        CTC_STATUS_INVALID_ARGUMENT,
        &[&format!("grad_log_probs.data = {grad:p} is not aligned")],
    );

    let mut p = Case::new();
    let gl = shifted(p.grad_loss_buf.ptr(), 1);
    p.gl().data = gl;
    p.expect(
        WITH_GRAD,
        CTC_STATUS_INVALID_ARGUMENT,
        &[&format!("grad_loss.data = {gl:p} is not aligned")],
    );
}

// ---------------------------------------------------------------------------------------------
// Enumerations, ndim, shapes and strides of a single descriptor
// ---------------------------------------------------------------------------------------------

/// A dtype that is not a CtcDType value.
#[test]
fn unknown_dtype_value() {
    for v in [9, -1, 6, i32::MIN] {
        let needle = format!("log_probs.dtype = {v} is not one of");
        invalid(ALL, &[&needle], |p| p.lp().dtype = v);
    }
    invalid(ALL, &["targets.dtype = -1 is not one of"], |p| {
        p.tg().dtype = -1
    });
    invalid(ALL, &["input_lengths.dtype = 6 is not one of"], |p| {
        p.il().dtype = 6
    });
    invalid(ALL, &["target_lengths.dtype = 100 is not one of"], |p| {
        p.tl().dtype = 100
    });
    invalid(WITH_LOSS, &["loss.dtype = 9 is not one of"], |p| {
        p.loss().dtype = 9
    });
    invalid(
        WITH_GRAD,
        &["grad_log_probs.dtype = -1 is not one of"],
        |p| p.grad().dtype = -1,
    );
    invalid(WITH_GRAD, &["grad_loss.dtype = 7 is not one of"], |p| {
        p.gl().dtype = 7
    });
}

/// A device that is not a CtcDevice value.
#[test]
fn unknown_device_value() {
    for v in [2, -1, i32::MAX] {
        let needle = format!("log_probs.device = {v} is not one of");
        invalid(ALL, &[&needle], |p| p.lp().device = v);
    }
    invalid(ALL, &["targets.device = 7 is not one of"], |p| {
        p.tg().device = 7
    });
    invalid(ALL, &["input_lengths.device = 2 is not one of"], |p| {
        p.il().device = 2
    });
    invalid(ALL, &["target_lengths.device = -3 is not one of"], |p| {
        p.tl().device = -3
    });
    invalid(WITH_LOSS, &["loss.device = 2 is not one of"], |p| {
        p.loss().device = 2
    });
    invalid(
        WITH_GRAD,
        &["grad_log_probs.device = 3 is not one of"],
        |p| p.grad().device = 3,
    );
    invalid(WITH_GRAD, &["grad_loss.device = -5 is not one of"], |p| {
        p.gl().device = -5
    });
}

/// ndim outside [0, 3].
#[test]
fn ndim_out_of_range() {
    for v in [-1, 4, i32::MIN, i32::MAX] {
        let needle = format!("log_probs.ndim = {v} is out of range [0, 3]");
        invalid(ALL, &[&needle], |p| p.lp().ndim = v);
    }
    invalid(ALL, &["targets.ndim = 4 is out of range [0, 3]"], |p| {
        p.tg().ndim = 4
    });
    invalid(ALL, &["input_lengths.ndim = -1 is out of range"], |p| {
        p.il().ndim = -1
    });
    invalid(ALL, &["target_lengths.ndim = 4 is out of range"], |p| {
        p.tl().ndim = 4
    });
    invalid(WITH_LOSS, &["loss.ndim = 4 is out of range"], |p| {
        p.loss().ndim = 4
    });
    invalid(
        WITH_GRAD,
        &["grad_log_probs.ndim = -1 is out of range"],
        |p| p.grad().ndim = -1,
    );
    invalid(WITH_GRAD, &["grad_loss.ndim = 5 is out of range"], |p| {
        p.gl().ndim = 5
    });
}

/// An ndim in [0, 3] that is wrong for the argument.
#[test]
fn wrong_ndim_per_argument() {
    let lp_msg = "but log_probs must be (T, N, C) or unbatched (T, C)";
    invalid(ALL, &["log_probs.ndim = 1", lp_msg], |p| {
        reshape(p.lp(), &[T * N * C], &[1])
    });
    invalid(ALL, &["log_probs.ndim = 0", lp_msg], |p| {
        reshape(p.lp(), &[], &[])
    });
    invalid(
        ALL,
        &["targets.ndim = 3 but targets must be padded (N, S) or concatenated"],
        |p| reshape(p.tg(), &[N, S, 1], &[S, 1, 1]),
    );
    invalid(ALL, &["targets.ndim = 0 but"], |p| {
        reshape(p.tg(), &[], &[])
    });
    invalid(
        ALL,
        &["input_lengths.ndim = 2 but input_lengths must be (N,)"],
        |p| reshape(p.il(), &[N, 1], &[1, 1]),
    );
    invalid(
        ALL,
        &["target_lengths.ndim = 0 but target_lengths must be (N,)"],
        |p| reshape(p.tl(), &[], &[]),
    );
    invalid(
        WITH_LOSS,
        &["loss.ndim = 1 but a reduced or unbatched loss has shape ()"],
        |p| reshape(p.loss(), &[1], &[1]),
    );
    invalid(
        WITH_LOSS,
        &["loss.ndim = 0 but reduction none on a batch gives loss of shape (N,)"],
        |p| {
            p.reduction_none();
            reshape(p.loss(), &[], &[]);
        },
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs.ndim = 2 but grad_log_probs must have the shape of log_probs"],
        |p| reshape(p.grad(), &[T * N, C], &[C, 1]),
    );
    // Unbatched.
    invalid(
        ALL,
        &["targets.ndim = 2 but unbatched targets must be (S,)"],
        |p| {
            p.unbatched();
            reshape(p.tg(), &[1, S], &[S, 1]);
        },
    );
    invalid(
        ALL,
        &["input_lengths.ndim = 2 but unbatched input_lengths must be () or (1,)"],
        |p| {
            p.unbatched();
            reshape(p.il(), &[1, 1], &[1, 1]);
        },
    );
    invalid(
        WITH_LOSS,
        &["loss.ndim = 1 but a reduced or unbatched loss has shape ()"],
        |p| {
            p.unbatched();
            p.opts.reduction = CTC_REDUCTION_NONE;
            reshape(p.loss(), &[1], &[1]);
        },
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs.ndim = 3 but grad_log_probs must have the shape of log_probs"],
        |p| {
            p.unbatched();
            reshape(p.grad(), &[T, 1, C], &[C, C, 1]);
        },
    );
    // Control: unbatched lengths may also be (1,).
    let mut p = Case::new();
    p.unbatched();
    reshape(p.il(), &[1], &[1]);
    reshape(p.tl(), &[1], &[1]);
    for &e in ALL {
        p.ok(e);
    }
}

/// A negative shape entry (entries past ndim are ignored).
#[test]
fn negative_shape_entry() {
    invalid(ALL, &["log_probs.shape[1] = -3 is negative"], |p| {
        p.lp().shape[1] = -3
    });
    invalid(
        ALL,
        &["log_probs.shape[0] = -9223372036854775808 is negative"],
        |p| p.lp().shape[0] = i64::MIN,
    );
    invalid(ALL, &["targets.shape[0] = -1 is negative"], |p| {
        p.tg().shape[0] = -1
    });
    invalid(ALL, &["target_lengths.shape[0] = -3 is negative"], |p| {
        p.tl().shape[0] = -3
    });
    invalid(WITH_LOSS, &["loss.shape[0] = -1 is negative"], |p| {
        p.reduction_none();
        p.loss().shape[0] = -1;
    });
    invalid(
        WITH_GRAD,
        &["grad_log_probs.shape[2] = -5 is negative"],
        |p| p.grad().shape[2] = -5,
    );
    // Control: entries past ndim are ignored.
    let mut p = Case::new();
    p.il().shape[1] = -7;
    p.il().strides[2] = -7;
    p.loss().shape[0] = -1;
    p.loss().strides[0] = -1;
    for &e in ALL {
        p.ok(e);
    }
}

/// A negative stride.
#[test]
fn negative_stride() {
    invalid(ALL, &["log_probs.strides[0] = -15 is negative"], |p| {
        p.lp().strides[0] = -15
    });
    invalid(ALL, &["log_probs.strides[2] = -1 is negative"], |p| {
        p.lp().strides[2] = -1
    });
    invalid(ALL, &["targets.strides[1] = -1 is negative"], |p| {
        p.tg().strides[1] = -1
    });
    invalid(ALL, &["target_lengths.strides[0] = -1 is negative"], |p| {
        p.tl().strides[0] = -1
    });
    invalid(
        WITH_GRAD,
        &["grad_log_probs.strides[2] = -1 is negative"],
        |p| p.grad().strides[2] = -1,
    );
    invalid(WITH_GRAD, &["grad_loss.strides[0] = -2 is negative"], |p| {
        p.reduction_none();
        p.gl().strides[0] = -2;
    });
}

/// shape * stride arithmetic that overflows 64 bits (or isize, or wraps the address space) is
/// rejected from the descriptor alone: `data` points at a two-element buffer (or at nothing), so
/// any read would be out of bounds.
#[test]
fn span_overflow_rejected_before_memory_is_touched() {
    let mut tiny = [0f32; 2];
    let tiny: *mut c_void = tiny.as_mut_ptr().cast();
    let spans = "spans more bytes than the address space holds";
    // (shape[0] - 1) * strides[0] overflows.
    invalid(ALL, &["log_probs with shape [4611686018427387904, 1, 1] and strides [4611686018427387904, 1, 1]", spans], |p| {
        reshape(p.lp(), &[BIG, 1, 1], &[BIG, 1, 1]);
        p.lp().data = tiny;
    });
    // The element count overflows.
    invalid(
        ALL,
        &["log_probs with shape [4611686018427387904, 3, 5]", spans],
        |p| {
            reshape(p.lp(), &[BIG, N, C], &[N * C, C, 1]);
            p.lp().data = tiny;
        },
    );
    // Elements fit but bytes exceed isize::MAX.
    invalid(
        ALL,
        &["log_probs with shape [2305843009213693952, 1, 1]", spans],
        |p| {
            reshape(p.lp(), &[1 << 61, 1, 1], &[1, 1, 1]);
            p.lp().data = tiny;
        },
    );
    // The offset of the last element fits but the byte count overflows.
    invalid(
        ALL,
        &[
            "log_probs with shape [2, 1, 1] and strides [9223372036854775807, 1, 1]",
            spans,
        ],
        |p| {
            reshape(p.lp(), &[2, 1, 1], &[i64::MAX, 1, 1]);
            p.lp().data = tiny;
        },
    );
    // A small tensor at an address where its span wraps around the address space.
    invalid(
        ALL,
        &[
            "log_probs with shape [6, 3, 5] and strides [15, 5, 1]",
            spans,
        ],
        |p| {
            p.lp().data = (usize::MAX - 15) as *mut c_void;
        },
    );
    invalid(
        ALL,
        &[
            "targets with shape [4611686018427387904, 4] and strides [4611686018427387904, 1]",
            spans,
        ],
        |p| {
            reshape(p.tg(), &[BIG, S], &[BIG, 1]);
            p.tg().data = tiny;
        },
    );
    invalid(
        WITH_LOSS,
        &[
            "loss with shape [3] and strides [4611686018427387904]",
            spans,
        ],
        |p| {
            p.reduction_none();
            reshape(p.loss(), &[N], &[BIG]);
            p.loss().data = tiny;
        },
    );
    let big3 = "strides [4611686018427387904, 4611686018427387904, 4611686018427387904]";
    invalid(
        WITH_GRAD,
        &["grad_log_probs with shape [6, 3, 5] and", big3, spans],
        |p| {
            reshape(p.grad(), &[T, N, C], &[BIG, BIG, BIG]);
            p.grad().data = tiny;
        },
    );
}

// ---------------------------------------------------------------------------------------------
// dtypes and devices across arguments
// ---------------------------------------------------------------------------------------------

/// Integer log_probs.
#[test]
fn integer_log_probs_dtype() {
    invalid(
        ALL,
        &["log_probs.dtype = int32 but log_probs must be floating point"],
        |p| p.lp().dtype = CTC_DTYPE_INT32,
    );
    invalid(
        ALL,
        &["log_probs.dtype = int64 but log_probs must be floating point"],
        |p| p.lp().dtype = CTC_DTYPE_INT64,
    );
}

/// float16 and bfloat16 log_probs (the values are tested in tests/half.rs): accepted with
/// outputs of their dtype, and with a float32 loss, grad_loss and gradient; a float64 output is
/// refused.
#[test]
fn half_precision_log_probs_rules() {
    for (dtype, name) in [
        (CTC_DTYPE_FLOAT16, "float16"),
        (CTC_DTYPE_BFLOAT16, "bfloat16"),
    ] {
        let half = |p: &mut Case| {
            for t in p.floats() {
                t.dtype = dtype;
            }
        };
        let mut p = Case::new();
        half(&mut p);
        for &e in ALL {
            p.ok(e);
        }
        let mut p = Case::new();
        half(&mut p);
        p.loss().dtype = CTC_DTYPE_FLOAT32;
        p.gl().dtype = CTC_DTYPE_FLOAT32;
        for &e in COMPUTE {
            p.ok(e);
        }
        let want = format!("loss.dtype = float64 but log_probs.dtype = {name}: it must be float32 or log_probs' dtype");
        invalid(WITH_LOSS, &[&want], |p| {
            half(p);
            p.loss().dtype = CTC_DTYPE_FLOAT64;
        });
        let want = format!("grad_loss.dtype = float64 but log_probs.dtype = {name}");
        invalid(WITH_GRAD, &[&want], |p| {
            half(p);
            p.gl().dtype = CTC_DTYPE_FLOAT64;
        });
        let mut p = Case::new();
        half(&mut p);
        p.grad().dtype = CTC_DTYPE_FLOAT32;
        for &e in WITH_GRAD {
            p.ok(e);
        }
        let want = format!("grad_log_probs.dtype = float64 but log_probs.dtype = {name}");
        invalid(WITH_GRAD, &[&want], |p| {
            half(p);
            p.grad().dtype = CTC_DTYPE_FLOAT64;
        });
    }
}

/// Targets or lengths with a floating dtype.
#[test]
fn float_targets_or_lengths_dtype() {
    invalid(
        ALL,
        &["targets.dtype = float32 but targets must be int32 or int64"],
        |p| p.tg().dtype = CTC_DTYPE_FLOAT32,
    );
    invalid(
        ALL,
        &["targets.dtype = float64 but targets must be int32 or int64"],
        |p| p.tg().dtype = CTC_DTYPE_FLOAT64,
    );
    invalid(
        ALL,
        &["input_lengths.dtype = float64 but input_lengths must be int32 or int64"],
        |p| p.il().dtype = CTC_DTYPE_FLOAT64,
    );
    invalid(
        ALL,
        &["target_lengths.dtype = bfloat16 but target_lengths must be int32 or int64"],
        |p| p.tl().dtype = CTC_DTYPE_BFLOAT16,
    );
}

/// loss, grad_log_probs or grad_loss with a dtype other than log_probs'.
#[test]
fn output_dtype_differs_from_log_probs() {
    invalid(
        WITH_LOSS,
        &["loss.dtype = float64 but log_probs.dtype = float32: they must match"],
        |p| p.loss().dtype = CTC_DTYPE_FLOAT64,
    );
    invalid(
        WITH_LOSS,
        &["loss.dtype = int32 but log_probs.dtype = float32"],
        |p| p.loss().dtype = CTC_DTYPE_INT32,
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs.dtype = float64 but log_probs.dtype = float32: they must match"],
        |p| p.grad().dtype = CTC_DTYPE_FLOAT64,
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs.dtype = float16 but log_probs.dtype = float32"],
        |p| p.grad().dtype = CTC_DTYPE_FLOAT16,
    );
    invalid(
        WITH_GRAD,
        &["grad_loss.dtype = float64 but log_probs.dtype = float32: they must match"],
        |p| p.gl().dtype = CTC_DTYPE_FLOAT64,
    );
}

/// Whether this process has a CUDA driver with a device: then the CUDA tensors of these tests
/// (which point at host memory) must not reach the backend, and the tests that expect
/// `CTC_STATUS_UNSUPPORTED` say why they skip.
fn cuda_present(test: &str) -> bool {
    let n = ctc_cuda_device_count();
    if n > 0 {
        skip(
            test,
            &format!("{n} CUDA device(s) present; it checks the answer without one"),
        );
    }
    n > 0
}

/// Every tensor on CUDA, without a CUDA driver: a valid request this machine cannot serve.
#[test]
fn cuda_log_probs_is_unsupported() {
    if cuda_present("cuda_log_probs_is_unsupported") {
        return;
    }
    for index in [0, 1] {
        let needle = format!("log_probs is on CUDA device {index}");
        check(ALL, CTC_STATUS_UNSUPPORTED, &[&needle], |p| {
            for t in p.tensors() {
                t.device = CTC_DEVICE_CUDA;
                t.device_index = index;
            }
        });
    }
}

/// API.md: "Targets and lengths may live on the host or on that device", so CUDA log_probs (and
/// outputs) with host targets and lengths is a valid request, which a machine without a CUDA
/// driver cannot serve: CTC_STATUS_UNSUPPORTED.
#[test]
fn cuda_log_probs_with_host_targets_and_lengths_is_unsupported() {
    if cuda_present("cuda_log_probs_with_host_targets_and_lengths_is_unsupported") {
        return;
    }
    check(
        ALL,
        CTC_STATUS_UNSUPPORTED,
        &["log_probs is on CUDA device 0"],
        |p| {
            for t in p.floats() {
                t.device = CTC_DEVICE_CUDA;
            }
        },
    );
}

/// A badly shaped call with CUDA tensors is an invalid argument on any machine, with or without
/// a driver, decided from the descriptors alone (no tensor memory is read): gradient, loss and
/// grad_loss extents, the number of lengths and of padded rows, the blank and C. With targets
/// and lengths on the device or on the host.
#[test]
fn cuda_tensors_with_bad_shapes_are_invalid_everywhere() {
    type Break = fn(&mut Case);
    let cases: [(&[Entry], &str, Break); 7] = [
        (
            WITH_GRAD,
            "grad_log_probs has shape (6, 3, 4) but log_probs has shape (6, 3, 5)",
            |p| p.grad().shape[2] = C - 1,
        ),
        (ALL, "options.blank = 5 is out of range [0, 5)", |p| {
            p.opts.blank = C as i32
        }),
        (ALL, "log_probs has C = 0 classes", |p| {
            p.lp().shape[2] = 0;
            p.grad().shape[2] = 0;
        }),
        (
            ALL,
            "input_lengths has 4 elements but log_probs has batch size N = 3",
            |p| p.il().shape[0] = N + 1,
        ),
        (
            ALL,
            "target_lengths has 2 elements but log_probs has batch size N = 3",
            |p| p.tl().shape[0] = N - 1,
        ),
        (
            ALL,
            "targets has 4 rows but log_probs has batch size N = 3",
            |p| p.tg().shape[0] = N + 1,
        ),
        (
            WITH_LOSS,
            "loss has 4 elements but reduction none needs N = 3",
            |p| {
                p.reduction_none();
                p.loss().shape[0] = N + 1;
            },
        ),
    ];
    for ints_on_device in [true, false] {
        for (entries, needle, broken) in cases {
            invalid(entries, &[needle], |p| {
                broken(p);
                for t in p.floats() {
                    t.device = CTC_DEVICE_CUDA;
                }
                if ints_on_device {
                    for t in p.tensors() {
                        t.device = CTC_DEVICE_CUDA;
                    }
                }
            });
        }
    }
    // grad_loss of the wrong length, on the device.
    invalid(
        WITH_GRAD,
        &["grad_loss has 2 elements but reduction none needs N = 3"],
        |p| {
            p.reduction_none();
            p.gl().shape[0] = N - 1;
            for t in p.tensors() {
                t.device = CTC_DEVICE_CUDA;
            }
        },
    );
}

/// Targets on CUDA device 1 while log_probs is on CUDA device 0 are on neither the host nor "that
/// device": an invalid argument, reported before the (unsupported) CUDA dispatch.
#[test]
fn cuda_targets_on_another_cuda_device_is_invalid() {
    invalid(ALL, &["targets"], |p| {
        for t in p.tensors() {
            t.device = CTC_DEVICE_CUDA;
        }
        p.tg().device_index = 1;
    });
}

/// CPU log_probs with targets, lengths or outputs on CUDA.
#[test]
fn cpu_log_probs_with_cuda_tensors_is_invalid() {
    invalid(
        ALL,
        &["targets is on CUDA device 0 but log_probs is on the host"],
        |p| p.tg().device = CTC_DEVICE_CUDA,
    );
    invalid(
        ALL,
        &["input_lengths is on CUDA device 0 but log_probs is on the host"],
        |p| p.il().device = CTC_DEVICE_CUDA,
    );
    invalid(
        ALL,
        &["target_lengths is on CUDA device 0 but log_probs is on the host"],
        |p| p.tl().device = CTC_DEVICE_CUDA,
    );
    invalid(
        WITH_LOSS,
        &["loss is on CUDA device 0 but log_probs is on the host: they must match"],
        |p| p.loss().device = CTC_DEVICE_CUDA,
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs is on CUDA device 0 but log_probs is on the host"],
        |p| p.grad().device = CTC_DEVICE_CUDA,
    );
    invalid(
        WITH_GRAD,
        &["grad_loss is on CUDA device 0 but log_probs is on the host"],
        |p| p.gl().device = CTC_DEVICE_CUDA,
    );
}

/// `device_index` is "CUDA ordinal; ignored on CPU" (API.md, CtcTensor): any value on any CPU
/// tensor gives the same result.
#[test]
fn cpu_device_index_is_ignored() {
    let reference: Vec<Outcome> = {
        let mut p = Case::new();
        ALL.iter().map(|&e| p.ok(e)).collect()
    };
    let pick: [(&str, Descriptor); 7] = [
        ("targets", Case::tg),
        ("input_lengths", Case::il),
        ("target_lengths", Case::tl),
        ("loss", Case::loss),
        ("grad_log_probs", Case::grad),
        ("grad_loss", Case::gl),
        ("log_probs", Case::lp),
    ];
    for (name, which) in pick {
        for index in [3, -1] {
            let mut p = Case::new();
            which(&mut p).device_index = index;
            for (&e, r) in ALL.iter().zip(&reference) {
                let o = p.run(e);
                assert_eq!(
                    o.status, CTC_STATUS_SUCCESS,
                    "{e:?}, CPU {name} with device_index {index}: {:?}",
                    o.message
                );
                assert_eq!(
                    (o.loss, o.grad, o.bytes),
                    (r.loss.clone(), r.grad.clone(), r.bytes)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes, lengths and labels
// ---------------------------------------------------------------------------------------------

/// C = 0 (no class, not even the blank).
#[test]
fn zero_classes() {
    invalid(ALL, &["log_probs has C = 0 classes"], |p| {
        p.lp().shape[2] = 0;
        p.grad().shape[2] = 0;
    });
}

/// blank < 0 or blank >= C.
#[test]
fn blank_out_of_range() {
    for blank in [-1, 5, 6, i32::MIN, i32::MAX] {
        let needle = format!("options.blank = {blank} is out of range [0, 5)");
        invalid(ALL, &[&needle], |p| p.opts.blank = blank);
    }
}

/// input_lengths[n] < 0 or > T.
#[test]
fn input_length_out_of_range() {
    invalid(
        ALL,
        &["input_lengths[0] = 7 is out of range [0, T = 6]"],
        |p| p.il_buf[0] = 7,
    );
    invalid(
        ALL,
        &["input_lengths[1] = -1 is out of range [0, T = 6]"],
        |p| p.il_buf[1] = -1,
    );
    invalid(
        ALL,
        &["input_lengths[2] = -9223372036854775808 is out of range"],
        |p| p.il_buf[2] = i64::MIN,
    );
    // int32 lengths too.
    let mut il32 = [6i32, 5, 1 << 30];
    let il32 = il32.as_mut_ptr();
    invalid(
        ALL,
        &["input_lengths[2] = 1073741824 is out of range [0, T = 6]"],
        |p| *p.il() = tensor(il32, CTC_DTYPE_INT32, &[N], &[1]),
    );
}

/// target_lengths[n] < 0.
#[test]
fn negative_target_length() {
    invalid(ALL, &["target_lengths[1] = -1 is negative"], |p| {
        p.tl_buf[1] = -1
    });
    invalid(ALL, &["target_lengths[0] = -5 is negative"], |p| {
        p.concatenated();
        p.tl_buf[0] = -5;
    });
}

/// Padded targets: target_lengths[n] > S.
#[test]
fn padded_target_length_exceeds_row_length() {
    invalid(
        ALL,
        &["target_lengths[2] = 5 exceeds the padded targets' row length S = 4"],
        |p| p.tl_buf[2] = 5,
    );
    invalid(
        ALL,
        &["target_lengths[0] = 3 exceeds the padded targets' row length S = 1"],
        |p| {
            p.tg().shape[1] = 1;
        },
    );
    // Unbatched targets (S,) are one padded row.
    invalid(
        ALL,
        &["target_lengths[0] = 5 exceeds the padded targets' row length S = 4"],
        |p| {
            p.unbatched();
            p.tl_buf[0] = 5;
        },
    );
}

/// input_lengths or target_lengths with a number of elements other than N.
#[test]
fn lengths_count_mismatch() {
    invalid(
        ALL,
        &["input_lengths has 2 elements but log_probs has batch size N = 3"],
        |p| p.il().shape[0] = 2,
    );
    invalid(
        ALL,
        &["input_lengths has 4 elements but log_probs has batch size N = 3"],
        |p| p.il().shape[0] = 4,
    );
    invalid(
        ALL,
        &["target_lengths has 4 elements but log_probs has batch size N = 3"],
        |p| p.tl().shape[0] = 4,
    );
    invalid(
        ALL,
        &["target_lengths has 0 elements but log_probs has batch size N = 3"],
        |p| p.tl().shape[0] = 0,
    );
}

/// Padded targets with a number of rows other than N.
#[test]
fn padded_target_rows_mismatch() {
    invalid(
        ALL,
        &["targets has 2 rows but log_probs has batch size N = 3"],
        |p| p.tg().shape[0] = 2,
    );
    invalid(
        ALL,
        &["targets has 4 rows but log_probs has batch size N = 3"],
        |p| p.tg().shape[0] = 4,
    );
}

/// Concatenated targets whose length is not sum(target_lengths).
#[test]
fn concatenated_targets_length_mismatch() {
    invalid(
        ALL,
        &["concatenated targets has 9 labels but sum(target_lengths) = 10"],
        |p| {
            p.concatenated();
            p.tg().shape[0] = 9;
        },
    );
    invalid(
        ALL,
        &["concatenated targets has 11 labels but sum(target_lengths) = 10"],
        |p| {
            p.concatenated();
            p.tg().shape[0] = 11;
        },
    );
}

/// A label outside [0, C), padded and concatenated.
#[test]
fn label_out_of_range() {
    invalid(ALL, &["targets[1][2] = 20 is out of range [0, 5)"], |p| {
        p.targets_buf[(S + 2) as usize] = 20
    });
    invalid(ALL, &["targets[2][0] = -3 is out of range [0, 5)"], |p| {
        p.targets_buf[(2 * S) as usize] = -3
    });
    invalid(ALL, &["targets[0][1] = 5 is out of range [0, 5)"], |p| {
        p.targets_buf[1] = 5
    });
    invalid(
        ALL,
        &["targets[5] = 20 (label 2 of sample 1) is out of range [0, 5)"],
        |p| {
            p.concatenated();
            p.concat_buf[5] = 20;
        },
    );
    invalid(
        ALL,
        &["targets[0] = -1 (label 0 of sample 0) is out of range [0, 5)"],
        |p| {
            p.concatenated();
            p.concat_buf[0] = -1;
        },
    );
    // int32 targets.
    let mut t32 = [1i32, 2, 3, 0, 2, 2, 4, 0, 4, 1, 3, i32::MAX];
    let t32 = t32.as_mut_ptr();
    invalid(
        ALL,
        &["targets[2][3] = 2147483647 is out of range [0, 5)"],
        |p| *p.tg() = tensor(t32, CTC_DTYPE_INT32, &[N, S], &[S, 1]),
    );
}

/// A label equal to the blank, padded and concatenated.
#[test]
fn label_equal_to_blank() {
    invalid(
        ALL,
        &["targets[0][1] = 0 is the blank class (options.blank = 0)"],
        |p| p.targets_buf[1] = 0,
    );
    invalid(
        ALL,
        &["targets[2] = 3 (label 2 of sample 0) is the blank class (options.blank = 3)"],
        |p| {
            p.concatenated();
            p.opts.blank = 3;
        },
    );
    invalid(
        ALL,
        &["targets[2][2] = 3 is the blank class (options.blank = 3)"],
        |p| {
            p.targets_buf[2] = 0; // row 0 [1 2 0]: 0 is a label when the blank is 3
            p.opts.blank = 3;
        },
    );
}

/// Padding past target_lengths[n] is never read: out-of-range values or the blank there are fine
/// and change nothing.
#[test]
fn padding_is_never_read() {
    let mut p = Case::new();
    p.reduction_none();
    let reference: Vec<Outcome> = ALL.iter().map(|&e| p.ok(e)).collect();
    for pad in [-1, 99, 0, C, i64::MIN, i64::MAX] {
        p.targets_buf[(S - 1) as usize] = pad;
        p.targets_buf[(2 * S - 1) as usize] = pad;
        for (&e, r) in ALL.iter().zip(&reference) {
            let o = p.ok(e);
            assert_eq!(
                (o.loss, o.grad, o.bytes),
                (r.loss.clone(), r.grad.clone(), r.bytes),
                "{e:?} pad {pad}"
            );
        }
    }
    // Unbatched targets (S,) with a label count below S.
    let mut p = Case::new();
    p.unbatched();
    p.targets_buf[3] = -42;
    for &e in ALL {
        p.ok(e);
    }
}

// ---------------------------------------------------------------------------------------------
// Output shapes, strides and overlap
// ---------------------------------------------------------------------------------------------

/// loss with a shape other than (N,) for reduction none.
#[test]
fn loss_shape_mismatch() {
    invalid(
        WITH_LOSS,
        &["loss has 2 elements but reduction none needs N = 3"],
        |p| {
            p.reduction_none();
            p.loss().shape[0] = 2;
        },
    );
    invalid(
        WITH_LOSS,
        &["loss has 4 elements but reduction none needs N = 3"],
        |p| {
            p.reduction_none();
            p.loss().shape[0] = 4;
        },
    );
}

/// grad_log_probs with a shape other than log_probs'.
#[test]
fn grad_shape_mismatch() {
    invalid(
        WITH_GRAD,
        &["grad_log_probs has shape (6, 3, 4) but log_probs has shape (6, 3, 5)"],
        |p| reshape(p.grad(), &[T, N, 4], &contiguous(&[T, N, 4])),
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs has shape (5, 3, 5) but log_probs has shape (6, 3, 5)"],
        |p| p.grad().shape[0] = 5,
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs has shape (6, 2, 5) but log_probs has shape (6, 3, 5)"],
        |p| p.grad().shape[1] = 2,
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs has shape (5, 1, 5) but log_probs has shape (6, 1, 5)"],
        |p| {
            p.unbatched();
            p.grad().shape[0] = 5;
        },
    );
}

/// grad_loss with a shape other than the loss'.
#[test]
fn grad_loss_shape_mismatch() {
    invalid(
        WITH_GRAD,
        &["grad_loss has 2 elements but reduction none needs N = 3"],
        |p| {
            p.reduction_none();
            p.gl().shape[0] = 2;
        },
    );
    invalid(
        WITH_GRAD,
        &["grad_loss.ndim = 0 but reduction none on a batch gives loss of shape (N,)"],
        |p| {
            p.reduction_none();
            reshape(p.gl(), &[], &[]);
        },
    );
    invalid(
        WITH_GRAD,
        &["grad_loss.ndim = 1 but a reduced or unbatched loss has shape ()"],
        |p| reshape(p.gl(), &[1], &[1]),
    );
}

/// Outputs whose own elements overlap (a stride 0 on an extent > 1, or strides that interleave).
/// Inputs may do so (broadcast).
#[test]
fn overlapping_output_strides() {
    invalid(
        WITH_GRAD,
        &["grad_log_probs has strides [15, 5, 0] for shape [6, 3, 5]: its elements overlap"],
        |p| p.grad().strides[2] = 0,
    );
    invalid(
        WITH_GRAD,
        &["grad_log_probs has strides [5, 5, 1] for shape [6, 3, 5]: its elements overlap"],
        |p| p.grad().strides = [5, 5, 1],
    );
    invalid(
        WITH_LOSS,
        &["loss has strides [0] for shape [3]: its elements overlap"],
        |p| {
            p.reduction_none();
            p.loss().strides[0] = 0;
        },
    );
    // Controls: a stride 0 on an extent-1 dimension is fine for an output (a batch of one), and
    // inputs may broadcast.
    let mut p = Case::new();
    p.lp().shape[1] = 1;
    p.tg().shape[0] = 1;
    p.il().shape[0] = 1;
    p.tl().shape[0] = 1;
    reshape(p.grad(), &[T, 1, C], &[C, 0, 1]);
    for &e in ALL {
        p.ok(e);
    }
    let mut p = Case::new();
    p.reduction_none();
    p.gl().strides[0] = 0;
    p.lp().strides[1] = 0;
    for &e in ALL {
        p.ok(e);
    }
}

/// Outputs (or the workspace) overlapping an input.
#[test]
fn outputs_overlapping_inputs() {
    let overlaps = |a: &str, b: &str| format!("{a} overlaps {b} in memory");
    invalid(
        WITH_GRAD,
        &[&overlaps("grad_log_probs", "log_probs")],
        |p| p.grad().data = p.lp_buf.ptr().cast(),
    );
    // One shared element suffices: grad starts at log_probs' last element.
    invalid(
        WITH_GRAD,
        &[&overlaps("grad_log_probs", "log_probs")],
        |p| p.grad().data = shifted(p.lp_buf.ptr(), 4 * (NUMEL - 1)),
    );
    invalid(WITH_LOSS, &[&overlaps("loss", "log_probs")], |p| {
        p.loss().data = shifted(p.lp_buf.ptr(), 4 * 10)
    });
    invalid(WITH_LOSS, &[&overlaps("loss", "targets")], |p| {
        p.loss().data = p.targets_buf.as_mut_ptr().cast()
    });
    invalid(WITH_LOSS, &[&overlaps("loss", "input_lengths")], |p| {
        p.loss().data = p.il_buf.as_mut_ptr().cast()
    });
    // An input lying inside an output's memory.
    invalid(
        WITH_GRAD,
        &[&overlaps("grad_log_probs", "grad_loss")],
        |p| p.gl().data = shifted(p.grad_buf.ptr(), 8),
    );
    invalid(&[Fused], &[&overlaps("loss", "grad_loss")], |p| {
        p.loss().data = p.grad_loss_buf.ptr().cast()
    });
    invalid(
        COMPUTE,
        &[&overlaps("options.workspace", "log_probs")],
        |p| {
            p.opts.workspace = p.lp_buf.ptr().cast();
            p.opts.workspace_bytes = 16;
        },
    );
    // Control: adjacent but not overlapping is fine: the loss right after the gradient's last
    // element, in the same allocation.
    let mut p = Case::new();
    let after = shifted(p.grad_buf.ptr(), 4 * NUMEL);
    p.loss().data = after;
    p.ok(Fused);
}

/// Outputs overlapping each other (loss inside grad), or the workspace.
#[test]
fn outputs_overlapping_each_other() {
    invalid(&[Fused], &["loss overlaps grad_log_probs in memory"], |p| {
        p.loss().data = shifted(p.grad_buf.ptr(), 4 * 7)
    });
    invalid(&[Fused], &["loss overlaps grad_log_probs in memory"], |p| {
        p.reduction_none();
        p.loss().data = shifted(p.grad_buf.ptr(), 4 * (NUMEL - 1))
    });
    let mut p = Case::new();
    p.opts.workspace = shifted(p.grad_buf.ptr(), 4);
    p.opts.workspace_bytes = 8;
    p.expect(
        WITH_GRAD,
        CTC_STATUS_INVALID_ARGUMENT,
        &["grad_log_probs overlaps options.workspace in memory"],
    );
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// options.struct_size smaller than sizeof(CtcOptions), other than 0.1's 48.
#[test]
fn options_struct_size_too_small() {
    for size in [OPTIONS_SIZE - 1, 52, 49, 47, 4, 0] {
        let needle = format!(
            "options.struct_size = {size} is neither sizeof(CtcOptions) = {OPTIONS_SIZE} of libctc {VERSION} nor 48 of version 0.1"
        );
        invalid(ALL, &[&needle], |p| p.opts.struct_size = size as u32);
    }
}

/// A caller built against 0.1's header (struct_size 48): accepted, the fields 0.2 appended read
/// as 0 (the bytes past 48 are not the library's to read), results as with the defaults.
#[test]
fn options_of_version_0_1_are_accepted() {
    assert_eq!(std::mem::offset_of!(CtcOptions, input), 48);
    let mut p = Case::new();
    let reference: Vec<Outcome> = ALL.iter().map(|&e| p.ok(e)).collect();
    p.opts.struct_size = 48;
    p.opts.input = 77;
    p.opts.gradient = -5;
    for (&e, r) in ALL.iter().zip(&reference) {
        let o = p.ok(e);
        assert_eq!(
            (o.loss, o.grad, o.bytes),
            (r.loss.clone(), r.grad.clone(), r.bytes),
            "{e:?}"
        );
    }
}

/// options.input not a CtcInput value.
#[test]
fn unknown_input() {
    for v in [2, -1, i32::MAX] {
        let needle = format!("options.input = {v} is not one of");
        invalid(ALL, &[&needle], |p| p.opts.input = v);
    }
}

/// options.gradient not a CtcGradient value.
#[test]
fn unknown_gradient() {
    for v in [2, -1, i32::MIN] {
        let needle = format!("options.gradient = {v} is not one of");
        invalid(ALL, &[&needle], |p| p.opts.gradient = v);
    }
}

/// Logits input and the exact gradient are served by every loss entry point on the CPU (the
/// values are tested in tests/logits.rs and tests/exact_gradient.rs).
#[test]
fn logits_input_and_exact_gradient_served() {
    for (input, gradient) in [
        (CTC_INPUT_LOGITS, CTC_GRADIENT_TORCH),
        (CTC_INPUT_LOGITS, CTC_GRADIENT_EXACT),
        (CTC_INPUT_LOG_PROBS, CTC_GRADIENT_EXACT),
    ] {
        let mut p = Case::new();
        p.opts.input = input;
        p.opts.gradient = gradient;
        for &e in ALL {
            p.ok(e);
        }
    }
}

/// A larger struct_size (a newer header): accepted when every byte past this version's fields is
/// zero, rejected otherwise; bytes past struct_size are not the library's business.
#[test]
fn options_struct_size_larger() {
    let mut p = Case::new();
    let reference: Vec<Outcome> = ALL.iter().map(|&e| p.ok(e)).collect();

    // Non-zero trailing bytes.
    for (at, value) in [(0usize, 1u8), (5, 7), (15, 255)] {
        let mut ext = Extended::<16>::new(OPTIONS_SIZE + 16);
        ext.extra[at] = value;
        let needle = format!(
            "options byte {} (past the {OPTIONS_SIZE} bytes of CtcOptions in libctc {VERSION}) is {value}, not 0",
            OPTIONS_SIZE + at
        );
        let ptr = ext.ptr();
        invalid(ALL, &[&needle], |p| p.options_arg = ptr);
    }

    // All-zero trailing bytes: accepted, same results.
    let zero = Extended::<16>::new(OPTIONS_SIZE + 16);
    p.options_arg = zero.ptr();
    for (&e, r) in ALL.iter().zip(&reference) {
        let o = p.ok(e);
        assert_eq!(
            (o.loss, o.grad, o.bytes),
            (r.loss.clone(), r.grad.clone(), r.bytes),
            "{e:?}"
        );
    }
    // Bytes past struct_size are not read: struct_size = sizeof + 1 with a non-zero byte after it.
    let mut short = Extended::<16>::new(OPTIONS_SIZE + 1);
    short.extra[1] = 9;
    p.options_arg = short.ptr();
    for &e in ALL {
        p.ok(e);
    }
}

/// struct_size > 4096.
#[test]
fn options_struct_size_above_4096() {
    for size in [4097usize, std::mem::size_of::<Extended<4096>>()] {
        let ext = Extended::<4096>::new(size);
        let needle = format!("options.struct_size = {size} is larger than 4096");
        let ptr = ext.ptr();
        invalid(ALL, &[&needle], |p| p.options_arg = ptr);
    }
    // Control: exactly 4096 with zero trailing bytes is accepted.
    let ext = Extended::<4096>::new(4096);
    let mut p = Case::new();
    p.options_arg = ext.ptr();
    for &e in ALL {
        p.ok(e);
    }
}

/// options.reduction not a CtcReduction value.
#[test]
fn unknown_reduction() {
    for v in [3, -1, i32::MAX] {
        let needle = format!("options.reduction = {v} is not one of");
        invalid(ALL, &[&needle], |p| p.opts.reduction = v);
    }
}

/// options.zero_infinity byte other than 0 or 1.
#[test]
fn zero_infinity_not_a_bool() {
    for v in [2u8, 255] {
        let needle = format!("options.zero_infinity = {v} is not a bool (0 or 1)");
        invalid(ALL, &[&needle], |p| p.opts.zero_infinity = CBool(v));
    }
    let mut p = Case::new();
    p.opts.zero_infinity = CBool(1);
    for &e in ALL {
        p.ok(e);
    }
}

/// A NULL workspace with a nonzero size.
#[test]
fn workspace_null_with_nonzero_size() {
    for n in [1usize, 64, usize::MAX] {
        let needle = format!("options.workspace is NULL but options.workspace_bytes = {n}");
        invalid(ALL, &[&needle], |p| p.opts.workspace_bytes = n);
    }
}

/// A workspace whose size runs past the end of the address space.
#[test]
fn workspace_size_past_address_space() {
    let mut ws = [0u8; 8];
    let ws = ws.as_mut_ptr();
    invalid(
        ALL,
        &["options.workspace_bytes = 18446744073709551615 runs past the end of the address space"],
        |p| {
            p.opts.workspace = ws.cast();
            p.opts.workspace_bytes = usize::MAX;
        },
    );
}

/// A workspace smaller than ctc_workspace_size reports.
#[test]
fn workspace_too_small() {
    let need = Case::new().ok(Size).bytes;
    let mut ws = vec![0u8; need];
    let base: *mut c_void = ws.as_mut_ptr().cast();
    let needle = format!(
        "options.workspace_bytes = {} is smaller than the {need} bytes",
        need - 1
    );
    invalid(WITH_GRAD, &[&needle], |p| {
        p.opts.workspace = base;
        p.opts.workspace_bytes = need - 1;
    });
    // The loss alone needs less, but not one byte.
    for n in [0usize, 1] {
        let needle = format!("options.workspace_bytes = {n} is smaller than the");
        invalid(COMPUTE, &[&needle], |p| {
            p.opts.workspace = base;
            p.opts.workspace_bytes = n;
        });
    }
    // The size query does not need a workspace, whatever is passed.
    let mut p = Case::new();
    p.opts.workspace = base;
    p.opts.workspace_bytes = 1;
    assert_eq!(p.ok(Size).bytes, need);
}

/// A panic inside a computation (forced by a test-only hook, after validation) comes back as
/// CTC_STATUS_INTERNAL_ERROR with a message, nothing written, and the next call works.
#[test]
fn a_panic_inside_an_entry_point_is_an_internal_error() {
    for &entry in COMPUTE {
        let mut p = Case::new();
        ctc::test_hooks::panic_in_next_call();
        p.expect(
            &[entry],
            CTC_STATUS_INTERNAL_ERROR,
            &["libctc panicked (a bug; please report it): a panic the test suite asked for"],
        );
        p.ok(entry);
    }
}

/// `ctc_workspace_size_for_call` with a `call` that is not a CTC_CALL_* value.
#[test]
fn workspace_size_for_unknown_call() {
    for call in [-1, 4, i32::MAX] {
        let p = Case::new();
        let mut bytes = BYTES_SENTINEL;
        let lp = p.log_probs.unwrap();
        let (tg, il, tl) = (
            p.targets.unwrap(),
            p.input_lengths.unwrap(),
            p.target_lengths.unwrap(),
        );
        // SAFETY: valid descriptors of live buffers and a writable size.
        let status =
            unsafe { ctc_workspace_size_for_call(call, &lp, &tg, &il, &tl, &p.opts, &mut bytes) };
        assert_eq!(status, CTC_STATUS_INVALID_ARGUMENT);
        let needle = format!("call = {call} is not one of CTC_CALL_FORWARD (0)");
        assert!(last_error().contains(&needle), "{}", last_error());
        assert_eq!(bytes, BYTES_SENTINEL);
    }
}

/// The loss alone needs less workspace than the gradient, says so through
/// `ctc_workspace_size_for_call`, and runs in exactly that much; the gradient does not.
#[test]
fn workspace_size_for_the_loss_alone() {
    for none in [false, true] {
        let mut p = Case::new();
        if none {
            p.reduction_none();
        }
        let reference = p.ok(Forward).loss;
        let forward = p.ok(SizeForward).bytes;
        let any = p.ok(Size).bytes;
        assert!(forward < any, "forward {forward} bytes, any call {any}");
        let mut ws = vec![0xA5u8; forward];
        p.opts.workspace = ws.as_mut_ptr().cast();
        p.opts.workspace_bytes = forward;
        assert_eq!(p.ok(Forward).loss, reference);
        let needle = format!("options.workspace_bytes = {forward} is smaller than the {any} bytes");
        p.expect(WITH_GRAD, CTC_STATUS_INVALID_ARGUMENT, &[&needle]);
    }
    // A long utterance: T = 100,000, L = 5,000 (the README's figures).
    let (t, c, l) = (100_000i64, 3i64, 5_000i64);
    let mut lp = vec![-1.0f32; (t * c) as usize];
    let mut targets: Vec<i64> = (0..l).map(|j| 1 + j % 2).collect();
    let (mut il, mut tl) = (t, l);
    let lp_t = tensor(lp.as_mut_ptr(), CTC_DTYPE_FLOAT32, &[t, c], &[c, 1]);
    let tg_t = tensor(targets.as_mut_ptr(), CTC_DTYPE_INT64, &[l], &[1]);
    let il_t = tensor(&mut il, CTC_DTYPE_INT64, &[], &[]);
    let tl_t = tensor(&mut tl, CTC_DTYPE_INT64, &[], &[]);
    let size = |call| {
        let mut bytes = 0usize;
        // SAFETY: valid descriptors of live buffers and a writable size.
        let s = unsafe {
            ctc_workspace_size_for_call(call, &lp_t, &tg_t, &il_t, &tl_t, ptr::null(), &mut bytes)
        };
        assert_eq!(s, CTC_STATUS_SUCCESS, "{}", last_error());
        bytes
    };
    let (forward, fused) = (size(CTC_CALL_FORWARD), size(CTC_CALL_FORWARD_BACKWARD));
    assert!(forward < 240_000, "the loss alone needs {forward} bytes");
    assert!(fused > 4_000_000_000, "the gradient needs {fused} bytes");
    assert_eq!(size(CTC_CALL_BACKWARD), fused);
}

/// A workspace of exactly the reported size at an odd address, holding garbage, succeeds and gives
/// bitwise the results of the library's own workspace.
#[test]
fn workspace_exact_size_at_odd_address() {
    for none in [false, true] {
        let mut p = Case::new();
        if none {
            p.reduction_none();
        }
        let reference: Vec<Outcome> = COMPUTE.iter().map(|&e| p.ok(e)).collect();
        let need = p.ok(Size).bytes;
        let mut ws = vec![0u8; need + 2];
        let base = ws.as_mut_ptr();
        let odd = if base as usize % 2 == 1 {
            base
        } else {
            base.wrapping_add(1)
        };
        assert_eq!(odd as usize % 2, 1);
        p.opts.workspace = odd.cast();
        p.opts.workspace_bytes = need;
        for fill in [0u8, 0xA5, 0xFF] {
            // SAFETY: `odd .. odd + need` lies inside `ws`.
            unsafe { ptr::write_bytes(odd, fill, need) };
            for (&e, r) in COMPUTE.iter().zip(&reference) {
                let o = p.ok(e);
                assert_eq!(
                    (&o.loss, &o.grad),
                    (&r.loss, &r.grad),
                    "{e:?} fill {fill:#x} none {none}"
                );
            }
        }
        assert_eq!(
            p.ok(Size).bytes,
            need,
            "the size does not depend on the workspace"
        );
        drop(ws);
    }
}

/// options == NULL means ctc_options_default(): mean reduction, blank 0.
#[test]
fn null_options_mean_defaults() {
    let mut p = Case::new();
    let explicit: Vec<Outcome> = ALL.iter().map(|&e| p.ok(e)).collect();
    p.options_arg = OptionsArg::Null;
    for (&e, r) in ALL.iter().zip(&explicit) {
        let o = p.ok(e);
        assert_eq!(
            (o.loss, o.grad, o.bytes),
            (r.loss.clone(), r.grad.clone(), r.bytes),
            "{e:?}"
        );
    }
    // And the default reduction is the mean of loss_b / target_length_b.
    let mean = f32::from_bits(p.ok(Forward).loss[0]) as f64;
    let mut q = Case::new();
    q.reduction_none();
    let per_sample = q.ok(Forward).loss;
    let expected: f64 = (0..N as usize)
        .map(|b| f32::from_bits(per_sample[b]) as f64 / q.tl_buf[b].max(1) as f64)
        .sum::<f64>()
        / N as f64;
    assert!(
        (mean - expected).abs() <= 1e-5 * expected.abs().max(1.0),
        "mean {mean}, expected {expected}"
    );
}

/// num_threads = u32::MAX (or any value above the cap) succeeds with the same bits.
#[test]
fn num_threads_max_is_clamped() {
    let mut p = Case::new();
    p.reduction_none();
    p.opts.num_threads = 1;
    let reference: Vec<Outcome> = ALL.iter().map(|&e| p.ok(e)).collect();
    for threads in [u32::MAX, 257, 0, 2] {
        p.opts.num_threads = threads;
        for (&e, r) in ALL.iter().zip(&reference) {
            let o = p.ok(e);
            assert_eq!(
                (o.loss, o.grad, o.bytes),
                (r.loss.clone(), r.grad.clone(), r.bytes),
                "{e:?} {threads}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages and status strings
// ---------------------------------------------------------------------------------------------

/// A succeeding call resets ctc_last_error_message() to ""; messages are per thread.
#[test]
fn last_error_is_reset_by_success_and_is_per_thread() {
    // A thread that has made no call has an empty message.
    assert_eq!(std::thread::spawn(last_error).join().unwrap(), "");

    let mut p = Case::new();
    p.opts.blank = 5;
    p.expect(
        &[Fused],
        CTC_STATUS_INVALID_ARGUMENT,
        &["options.blank = 5"],
    );
    let mine = last_error();
    assert!(mine.contains("options.blank = 5"));
    // Functions other than the compute and size calls leave it alone.
    let _ = ctc_status_string(CTC_STATUS_SUCCESS);
    let _ = ctc_options_default();
    let _ = ctc_version_string();
    let _ = ctc_cuda_device_count();
    assert_eq!(last_error(), mine);

    // Thread B sees neither A's failure, nor does A see B's.
    let (before, after) = std::thread::spawn(|| {
        let before = last_error();
        let mut q = Case::new();
        q.lp().dtype = 9;
        q.expect(
            &[Forward],
            CTC_STATUS_INVALID_ARGUMENT,
            &["log_probs.dtype = 9"],
        );
        (before, last_error())
    })
    .join()
    .unwrap();
    assert_eq!(before, "", "thread B sees thread A's failure");
    assert!(after.contains("log_probs.dtype = 9"), "{after}");
    assert_eq!(last_error(), mine, "thread A sees thread B's failure");

    // A success on another thread does not clear this thread's message.
    std::thread::spawn(|| {
        Case::new().ok(Fused);
    })
    .join()
    .unwrap();
    assert_eq!(last_error(), mine);

    // Many threads failing at once each keep their own message.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut q = Case::new();
                q.opts.blank = 10 + i;
                barrier.wait();
                for _ in 0..20 {
                    q.run(Fused);
                    std::thread::yield_now();
                    let m = last_error();
                    assert!(
                        m.contains(&format!("options.blank = {} is out", 10 + i)),
                        "thread {i}: {m}"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    // On this thread, a success on any entry point resets the message to "".
    for &e in ALL {
        p.opts.blank = 5;
        p.expect(&[e], CTC_STATUS_INVALID_ARGUMENT, &["options.blank = 5"]);
        assert_ne!(last_error(), "");
        p.opts.blank = 0;
        p.ok(e);
        assert_eq!(last_error(), "", "{e:?}");
    }
}

/// ctc_status_string: the static text of every status, "unknown status" for other values.
#[test]
fn status_strings() {
    let cases = [
        (CTC_STATUS_SUCCESS, "success"),
        (CTC_STATUS_INVALID_ARGUMENT, "invalid argument"),
        (CTC_STATUS_UNSUPPORTED, "unsupported"),
        (CTC_STATUS_OUT_OF_MEMORY, "out of memory"),
        (CTC_STATUS_DEVICE_ERROR, "device error"),
        (CTC_STATUS_INTERNAL_ERROR, "internal error"),
        (6, "unknown status"),
        (99, "unknown status"),
        (-1, "unknown status"),
        (i32::MIN, "unknown status"),
        (i32::MAX, "unknown status"),
    ];
    assert_eq!((CTC_STATUS_SUCCESS, CTC_STATUS_INTERNAL_ERROR), (0, 5));
    for (status, text) in cases {
        assert_eq!(status_text(status), text, "status {status}");
        // Static: the same pointer every time, from any thread.
        let here = ctc_status_string(status) as usize;
        let there = std::thread::spawn(move || ctc_status_string(status) as usize)
            .join()
            .unwrap();
        assert_eq!(here, there, "status {status}");
    }
}
