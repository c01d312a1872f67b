//! Fuzzes every exported function of libctc's C ABI.
//!
//! The input is read as a small program (see [`Program::build`]): a header picks a problem
//! (T, N, C, S <= 16, dtypes, memory layouts, values), then a sequence of opcodes mutates the
//! `CtcTensor`s, `CtcOptions` and the buffers they describe: any dtype, device, device index,
//! ndim, shape and stride (negative, huge, overflowing values included), NULL tensor pointers,
//! NULL data, pointers into another tensor's buffer (overlap), misaligned pointers, options with
//! an arbitrary `struct_size`, trailing bytes, blank, reduction, `zero_infinity` byte, input kind
//! (log-probabilities, logits, unknown values), gradient kind, thread count (0..=4) and
//! workspace. Then every entry point is called, `ctc_align` (and its size query) included.
//!
//! Memory is only ever described honestly: the library cannot check that a pointer and a shape
//! really lie inside an allocation (the documented limit of any C API), so before each call the
//! target computes the byte span of every tensor from its description and hands the library a
//! data pointer only when the buffer it points into holds that span (or the tensor is empty, or
//! the description is one the contract makes invalid: negative or overflowing extents, bad
//! ndim/dtype/device, a span larger than the address space). Otherwise the data pointer is NULL,
//! which exercises the NULL check. Pointers are NULL or point into buffers this target owns.
//!
//! Properties checked on every call:
//! - no crash, no sanitizer report, no hang (libFuzzer's -timeout);
//! - the status is one of the documented values; `CTC_STATUS_INTERNAL_ERROR` (a caught panic) is
//!   a finding, and so is `CTC_STATUS_DEVICE_ERROR` on a machine without a CUDA device (with
//!   one, host buffers are never described as CUDA memory: such tensors get NULL data);
//! - on failure `ctc_last_error_message()` is non-empty and no byte of any buffer changed (the
//!   workspace excepted); on success it is "" and only the output elements changed;
//! - a success never accepts a tensor the target described as invalid or NULL-with-elements, nor
//!   (without a CUDA device) one on a CUDA device;
//! - `ctc_loss_forward` / `ctc_loss_backward` give the bits of `ctc_loss_forward_backward`, and
//!   another thread count or no caller workspace gives the same status and bits (of the loss
//!   entry points and of `ctc_align`);
//! - a successful `ctc_align` writes only -1 or classes of `log_probs` into the path;
//! - `ctc_status_string` returns its static text for every int and leaves the last error alone.
#![no_main]

use ctc::ffi::*;
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_void, CStr};
use std::ptr;

/// Largest extent / element count a tensor may have and still get a data pointer: keeps every
/// call to a few million operations even when stride-0 tricks describe huge honest tensors.
const MAX_ELEMENTS: u128 = 1024;
/// Bytes of the options buffer: the library reads up to 4096 bytes of a larger `struct_size`.
const OPTIONS_BYTES: usize = 4096 + 64;

// Tensor slots.
const LP: usize = 0;
const TG: usize = 1;
const IL: usize = 2;
const TL: usize = 3;
const GO: usize = 4;
const LOSS: usize = 5;
const GRAD: usize = 6;
const PATH: usize = 7;
const SCORES: usize = 8;
const NT: usize = 9;

/// Reads the fuzz input as a byte stream; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    /// In [0, n).
    fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    /// An integer from a table of interesting values, or a raw one.
    fn int(&mut self, small: &[i64]) -> i64 {
        const EDGES: [i64; 22] = [
            0,
            1,
            -1,
            2,
            -2,
            i32::MAX as i64,
            i32::MIN as i64,
            u32::MAX as i64,
            1 << 31,
            1 << 32,
            (1 << 32) + 1,
            1 << 40,
            1 << 61,
            1 << 62,
            (1 << 62) + 1,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX / 2,
            i64::MAX / 4 + 1,
            i64::MAX / 8 + 1,
        ];
        match self.u8() % 4 {
            0 | 1 if !small.is_empty() => small[self.below(small.len())],
            2 => EDGES[self.below(EDGES.len())],
            3 => self.u64() as i64,
            _ => self.u8() as i64 - 8,
        }
    }
}

/// A deterministic generator for bulk values (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Special floating values the kernels must survive.
const SPECIAL: [f64; 16] = [
    0.0,
    -0.0,
    -1.0,
    f64::NEG_INFINITY,
    f64::INFINITY,
    f64::NAN,
    -1e30,
    1e30,
    -1e300,
    1e300,
    f64::MAX,
    -f64::MAX,
    1e-45,
    -1e-310,
    -88.0,
    -745.0,
];

/// An owned, 8-byte aligned buffer.
struct Buf(Vec<u64>);

impl Buf {
    fn new(bytes: usize) -> Buf {
        Buf(vec![0; bytes.div_ceil(8).max(1)])
    }
    fn len(&self) -> usize {
        self.0.len() * 8
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: u64 storage seen as bytes, same length.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.len()) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as bytes, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.len()) }
    }
    fn base(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast()
    }
    fn put(&mut self, at: usize, v: &[u8]) {
        if let Some(dst) = self.bytes_mut().get_mut(at..at + v.len()) {
            dst.copy_from_slice(v);
        }
    }
}

fn dtype_size(dtype: i32) -> Option<u128> {
    match dtype {
        CTC_DTYPE_FLOAT16 | CTC_DTYPE_BFLOAT16 => Some(2),
        CTC_DTYPE_FLOAT32 | CTC_DTYPE_INT32 => Some(4),
        CTC_DTYPE_FLOAT64 | CTC_DTYPE_INT64 => Some(8),
        _ => None,
    }
}

/// What a tensor description asks of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    /// The contract makes it invalid (bad enum, ndim, negative extent or stride): must be refused.
    Invalid,
    /// No elements: the pointer is never dereferenced.
    Empty,
    /// This many bytes from `data`, and this many elements.
    Bytes(u128, u128),
}

fn span(t: &CtcTensor) -> Span {
    if !(0..=3).contains(&t.ndim) || !(t.device == CTC_DEVICE_CPU || t.device == CTC_DEVICE_CUDA) {
        return Span::Invalid;
    }
    let Some(size) = dtype_size(t.dtype) else {
        return Span::Invalid;
    };
    let nd = t.ndim as usize;
    if t.shape[..nd].iter().chain(&t.strides[..nd]).any(|&v| v < 0) {
        return Span::Invalid;
    }
    if t.shape[..nd].contains(&0) {
        return Span::Empty;
    }
    let mut last = 0u128;
    let mut numel = 1u128;
    for i in 0..nd {
        // < 2^63 * 2^63 each, so the sum of three fits in u128.
        last += (t.shape[i] as u128 - 1) * t.strides[i] as u128;
        numel = numel.saturating_mul(t.shape[i] as u128);
    }
    Span::Bytes((last + 1).saturating_mul(size), numel)
}

/// Byte offsets (from `data`) of every element of a valid description, in index order.
fn element_offsets(t: &CtcTensor) -> Vec<usize> {
    let size = dtype_size(t.dtype).unwrap() as i64;
    let nd = t.ndim as usize;
    let mut shape = [1i64; 3];
    let mut strides = [0i64; 3];
    shape[..nd].copy_from_slice(&t.shape[..nd]);
    strides[..nd].copy_from_slice(&t.strides[..nd]);
    let mut out = Vec::new();
    for i in 0..shape[0] {
        for j in 0..shape[1] {
            for k in 0..shape[2] {
                out.push(((i * strides[0] + j * strides[1] + k * strides[2]) * size) as usize);
            }
        }
    }
    out
}

/// One tensor argument: its description and where its data pointer goes.
#[derive(Clone, Copy, Debug)]
struct Arg {
    t: CtcTensor,
    /// Buffer the data pointer points into.
    buf: usize,
    /// Byte offset of the data pointer in that buffer.
    offset: usize,
    /// Pass NULL as data whatever the description.
    null_data: bool,
    /// Pass the tensor itself (else a NULL `CtcTensor *`).
    present: bool,
}

/// How a resolved tensor was handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handed {
    /// A pointer into an owned buffer that holds the whole described span.
    Honest,
    /// The description has no elements.
    Empty,
    /// A description the contract forbids (any pointer).
    Invalid,
    /// NULL data for a tensor with elements.
    NullWithElements,
    /// The whole `CtcTensor *` is NULL.
    Absent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WorkspaceMode {
    None,
    NullWithBytes(usize),
    /// From `ctc_workspace_size`, plus a delta, at this misalignment.
    Sized(i64, usize),
    /// A real pointer with a length past the address space.
    Huge(usize),
    /// Into a tensor buffer (overlapping it), honest length.
    IntoTensor(usize, usize),
}

struct Program {
    bufs: Vec<Buf>,
    args: [Arg; NT],
    options: CtcOptions,
    options_offset: usize,
    options_tail: Vec<(usize, u8)>,
    options_null: bool,
    workspace: WorkspaceMode,
    bytes_null: bool,
}

fn tensor(dtype: i32, shape: &[i64], strides: &[i64]) -> CtcTensor {
    let mut t = CtcTensor {
        data: ptr::null_mut(),
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

fn write_value(buf: &mut Buf, at: usize, dtype: i32, v: f64) {
    match dtype {
        CTC_DTYPE_FLOAT32 => buf.put(at, &(v as f32).to_le_bytes()),
        CTC_DTYPE_FLOAT64 => buf.put(at, &v.to_le_bytes()),
        CTC_DTYPE_INT32 => buf.put(at, &(v as i64 as i32).to_le_bytes()),
        CTC_DTYPE_INT64 => buf.put(at, &(v as i64).to_le_bytes()),
        _ => {}
    }
}

fn write_int(buf: &mut Buf, at: usize, dtype: i32, v: i64) {
    match dtype {
        CTC_DTYPE_INT32 => buf.put(at, &(v as i32).to_le_bytes()),
        _ => buf.put(at, &v.to_le_bytes()),
    }
}

impl Program {
    /// Builds a valid problem from the header of the input, then applies its mutations.
    fn build(inp: &mut Input<'_>) -> Program {
        let t = inp.below(17) as i64;
        let n = inp.below(17) as i64;
        let c = 1 + inp.below(16) as i64;
        let s = inp.below(17) as i64;
        let flags = inp.u8();
        let batched = flags & 1 == 0;
        let float = if flags & 2 == 0 {
            CTC_DTYPE_FLOAT32
        } else {
            CTC_DTYPE_FLOAT64
        };
        let tg_dtype = if flags & 4 == 0 {
            CTC_DTYPE_INT64
        } else {
            CTC_DTYPE_INT32
        };
        let len_dtype = if flags & 8 == 0 {
            CTC_DTYPE_INT64
        } else {
            CTC_DTYPE_INT32
        };
        let concatenated = batched && flags & 16 != 0;
        let reduction = inp.below(3) as i32;
        let n = if batched { n } else { 1 };
        let blank = inp.below(c as usize) as i64;
        let mut rng = Rng(inp.u64());

        // log_probs and grad layouts.
        let pad = 1 + inp.below(3) as i64;
        let lp_strides: [i64; 3] = match inp.below(5) {
            0 => [n * c, c, 1],
            1 => [c, t * c, 1],
            2 => [n * (c + pad), c + pad, 1],
            3 => [1, t, t * n],
            _ => [0, c, 1], // every frame the same row
        };
        let grad_strides: [i64; 3] = match inp.below(3) {
            0 => [n * c, c, 1],
            1 => [c, t * c, 1],
            _ => [n * (c + pad), c + pad, 1],
        };
        let (lp_t, grad_t) = if batched {
            (
                tensor(float, &[t, n, c], &lp_strides),
                tensor(float, &[t, n, c], &grad_strides),
            )
        } else {
            (
                tensor(float, &[t, c], &[lp_strides[0], lp_strides[2]]),
                tensor(float, &[t, c], &[grad_strides[0], grad_strides[2]]),
            )
        };

        // Lengths and labels.
        let mut input_lengths = Vec::new();
        let mut target_lengths = Vec::new();
        let mut labels: Vec<Vec<i64>> = Vec::new();
        for _ in 0..n {
            input_lengths.push((rng.next() % (t as u64 + 1)) as i64);
            let l = if c == 1 {
                0
            } else {
                (rng.next() % (s as u64 + 1)) as i64
            };
            target_lengths.push(l);
            labels.push(
                (0..l)
                    .map(|_| {
                        let k = (rng.next() % (c as u64 - 1)) as i64;
                        if k >= blank {
                            k + 1
                        } else {
                            k
                        }
                    })
                    .collect(),
            );
        }
        let total: i64 = target_lengths.iter().sum();
        let tg_t = if concatenated {
            tensor(tg_dtype, &[total], &[1])
        } else if batched {
            tensor(tg_dtype, &[n, s], &[s, 1])
        } else {
            tensor(tg_dtype, &[s], &[1])
        };
        let (len_shape, len_strides): (Vec<i64>, Vec<i64>) = if batched {
            (vec![n], vec![1])
        } else if flags & 32 == 0 {
            (vec![], vec![])
        } else {
            (vec![1], vec![1])
        };
        let il_t = tensor(len_dtype, &len_shape, &len_strides);
        let tl_t = tensor(
            if flags & 64 == 0 { len_dtype } else { tg_dtype },
            &len_shape,
            &len_strides,
        );
        let per_sample = batched && reduction == CTC_REDUCTION_NONE;
        let loss_stride = 1 + inp.below(2) as i64;
        let (loss_t, go_t) = if per_sample {
            (
                tensor(float, &[n], &[loss_stride]),
                tensor(float, &[n], &[1]),
            )
        } else {
            (tensor(float, &[], &[]), tensor(float, &[], &[]))
        };

        // ctc_align's outputs: the path (T, N) in either order of memory, or (T,); the scores
        // (N,) or (), in log_probs' dtype or float32.
        let path_dtype = if flags & 64 == 0 { tg_dtype } else { len_dtype };
        let path_t = if batched {
            let strides = if inp.bool() { [n, 1] } else { [1, t] };
            tensor(path_dtype, &[t, n], &strides)
        } else {
            tensor(path_dtype, &[t], &[1])
        };
        let score_dtype = if inp.bool() { float } else { CTC_DTYPE_FLOAT32 };
        let scores_t = if batched {
            tensor(score_dtype, &[n], &[loss_stride])
        } else {
            tensor(score_dtype, &[], &[])
        };

        let descs = [
            lp_t, tg_t, il_t, tl_t, go_t, loss_t, grad_t, path_t, scores_t,
        ];
        let mut bufs: Vec<Buf> = descs
            .iter()
            .map(|d| match span(d) {
                Span::Bytes(b, _) => Buf::new(b as usize + 64),
                _ => Buf::new(64),
            })
            .collect();

        // Values: log_probs log-softmax-like, or specials sprinkled in.
        let special_rate = inp.u8();
        let offs = element_offsets(&lp_t);
        for (i, &at) in offs.iter().enumerate() {
            let row = i / c as usize;
            let v = if special_rate > 200 && rng.next().is_multiple_of(8) {
                SPECIAL[(rng.next() % SPECIAL.len() as u64) as usize]
            } else {
                -(c as f64).ln() + (rng.uniform() - 0.5) * (1 + row % 3) as f64
            };
            write_value(&mut bufs[LP], at, float, v);
        }
        let tsize = dtype_size(tg_dtype).unwrap() as usize;
        for b in 0..n as usize {
            for (j, &k) in labels[b].iter().enumerate() {
                let at = if concatenated {
                    labels[..b].iter().map(Vec::len).sum::<usize>() + j
                } else {
                    b * s as usize + j
                };
                write_int(&mut bufs[TG], at * tsize, tg_dtype, k);
            }
            for j in labels[b].len()..s as usize {
                if !concatenated {
                    write_int(&mut bufs[TG], (b * s as usize + j) * tsize, tg_dtype, -1);
                }
            }
        }
        let lsize = dtype_size(len_dtype).unwrap() as usize;
        let tlsize = dtype_size(tl_t.dtype).unwrap() as usize;
        for b in 0..n as usize {
            write_int(&mut bufs[IL], b * lsize, len_dtype, input_lengths[b]);
            write_int(&mut bufs[TL], b * tlsize, tl_t.dtype, target_lengths[b]);
        }
        for &at in &element_offsets(&go_t) {
            let v = if rng.next().is_multiple_of(4) {
                SPECIAL[(rng.next() % SPECIAL.len() as u64) as usize]
            } else {
                rng.uniform() * 2.0 - 0.5
            };
            write_value(&mut bufs[GO], at, float, v);
        }
        // Outputs start as a recognisable pattern.
        for b in [LOSS, GRAD, PATH, SCORES] {
            bufs[b].bytes_mut().fill(0xA5);
        }

        let args = descs.map(|t| Arg {
            t,
            buf: 0,
            offset: 0,
            null_data: false,
            present: true,
        });
        let mut p = Program {
            bufs,
            args,
            options: CtcOptions {
                blank: blank as i32,
                reduction,
                zero_infinity: CBool(flags >> 7),
                num_threads: inp.below(5) as u32,
                ..CtcOptions::default()
            },
            options_offset: 0,
            options_tail: Vec::new(),
            options_null: false,
            workspace: WorkspaceMode::None,
            bytes_null: false,
        };
        for (i, a) in p.args.iter_mut().enumerate() {
            a.buf = i;
        }
        if inp.u8().is_multiple_of(4) {
            p.args[GO].present = false; // grad_loss = NULL means ones
        }
        p.mutate(inp, [t, n, c, s]);
        p
    }

    /// Applies the opcodes in the rest of the input.
    fn mutate(&mut self, inp: &mut Input<'_>, dims: [i64; 4]) {
        let small: Vec<i64> = dims
            .iter()
            .flat_map(|&d| [d, d + 1, d - 1, 2 * d])
            .chain([0, 1, 3])
            .collect();
        let mut ops = 0;
        while !inp.done() && ops < 64 {
            ops += 1;
            let op = inp.u8();
            let which = inp.below(NT);
            match op % 26 {
                0 => self.args[which].t.dtype = inp.int(&[0, 1, 2, 3, 4, 5, 6, -1]) as i32,
                1 => self.args[which].t.device = inp.int(&[0, 1, 2, -1]) as i32,
                2 => self.args[which].t.device_index = inp.int(&[0, 1, -1]) as i32,
                3 => self.args[which].t.ndim = inp.int(&[0, 1, 2, 3, 4, -1]) as i32,
                4..=6 => {
                    let i = inp.below(3);
                    self.args[which].t.shape[i] = inp.int(&small);
                }
                7..=9 => {
                    let i = inp.below(3);
                    self.args[which].t.strides[i] = inp.int(&small);
                }
                10 => self.args[which].null_data = inp.bool(),
                11 => self.args[which].present = !self.args[which].present,
                12 => {
                    // Point into another buffer (overlap) or at another offset (misalign).
                    self.args[which].buf = inp.below(NT);
                    self.args[which].offset = inp.below(72);
                }
                13 | 14 => {
                    // Overwrite bytes of a buffer (labels, lengths, values).
                    let b = &mut self.bufs[which];
                    let len = b.len();
                    let at = (inp.u8() as usize | (inp.u8() as usize) << 8) % len;
                    let v = match inp.below(4) {
                        0 => inp.int(&small).to_le_bytes(),
                        1 => SPECIAL[inp.below(SPECIAL.len())].to_le_bytes(),
                        2 => (inp.int(&small) as i32 as i64).to_le_bytes(),
                        _ => (SPECIAL[inp.below(SPECIAL.len())] as f32 as f64).to_le_bytes(),
                    };
                    let width = [1, 2, 4, 8][inp.below(4)];
                    b.put(at.min(len.saturating_sub(width)), &v[..width]);
                }
                15 => {
                    self.options.struct_size = match inp.below(6) {
                        0 => std::mem::size_of::<CtcOptions>() as u32 - 1 - inp.below(8) as u32,
                        1 => std::mem::size_of::<CtcOptions>() as u32 + inp.u8() as u32,
                        2 => 4096,
                        3 => 4097,
                        4 => inp.u32(),
                        _ => 0,
                    }
                }
                16 => {
                    let at = std::mem::size_of::<CtcOptions>() + inp.u8() as usize * 16;
                    let v = inp.u8();
                    self.options_tail.push((at.min(4095), v));
                }
                17 => self.options.blank = inp.int(&small) as i32,
                18 => self.options.reduction = inp.int(&[0, 1, 2, 3, -1]) as i32,
                19 => {
                    self.options.zero_infinity = CBool(match inp.below(3) {
                        0 => 0,
                        1 => 1,
                        _ => inp.u8(),
                    })
                }
                20 => self.options.num_threads = inp.below(5) as u32,
                24 => self.options.input = inp.int(&[0, 1, 2, -1]) as i32,
                25 => self.options.gradient = inp.int(&[0, 1, 2, -1]) as i32,
                21 => {
                    self.workspace = match inp.below(5) {
                        0 => WorkspaceMode::None,
                        1 => WorkspaceMode::NullWithBytes(1 + inp.u32() as usize),
                        2 => WorkspaceMode::Sized(inp.u8() as i8 as i64 % 9, inp.below(64)),
                        3 => WorkspaceMode::Huge(match inp.below(3) {
                            0 => usize::MAX,
                            1 => isize::MAX as usize + 1,
                            _ => usize::MAX - inp.u8() as usize,
                        }),
                        _ => WorkspaceMode::IntoTensor(inp.below(NT), inp.below(64)),
                    }
                }
                22 => {
                    self.options_null = inp.bool();
                    self.options.cuda_stream = ptr::null_mut();
                    self.options_offset = inp.below(8);
                }
                _ => self.bytes_null = inp.bool(),
            }
        }
    }

    /// The data pointer for `arg` under the honesty rule, and how it was handed over.
    fn resolve(&mut self, i: usize) -> (CtcTensor, Handed) {
        let a = self.args[i];
        if !a.present {
            return (a.t, Handed::Absent);
        }
        let mut t = a.t;
        let buf = &mut self.bufs[a.buf];
        let avail = buf.len().saturating_sub(a.offset) as u128;
        // SAFETY: the offset is clamped to the buffer's length (one past its end at most).
        let real = unsafe { buf.base().add(a.offset.min(buf.len())) }.cast::<c_void>();
        let (data, handed) = match span(&t) {
            Span::Invalid => (real, Handed::Invalid),
            Span::Empty => (real, Handed::Empty),
            Span::Bytes(bytes, numel) => {
                let impossible =
                    bytes > isize::MAX as u128 || real as u128 + bytes > usize::MAX as u128;
                let capped = numel > MAX_ELEMENTS
                    || t.shape[..t.ndim as usize]
                        .iter()
                        .any(|&s| s as u128 > MAX_ELEMENTS);
                // Host memory described as CUDA memory is only honest while no CUDA device
                // can be used (the call is then refused); with one, the data stays NULL.
                let host_as_device = t.device == CTC_DEVICE_CUDA && cuda_devices() > 0;
                if impossible {
                    (real, Handed::Invalid)
                } else if bytes <= avail && !capped && !host_as_device {
                    (real, Handed::Honest)
                } else {
                    (ptr::null_mut(), Handed::NullWithElements)
                }
            }
        };
        t.data = data;
        if a.null_data {
            t.data = ptr::null_mut();
            if handed == Handed::Honest {
                return (t, Handed::NullWithElements);
            }
        }
        (t, handed)
    }
}

fn message() -> String {
    let p = ctc_last_error_message();
    assert!(!p.is_null(), "ctc_last_error_message returned NULL");
    // SAFETY: a NUL-terminated string owned by the library, valid until the next call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .expect("the message is UTF-8")
        .to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Forward,
    Backward,
    Fused,
    Size,
    Align,
    AlignSize,
}

impl Entry {
    /// The tensor slots the entry point takes, and those it writes.
    fn slots(self) -> (&'static [usize], &'static [usize]) {
        match self {
            Entry::Forward => (&[LP, TG, IL, TL, LOSS], &[LOSS]),
            Entry::Backward => (&[LP, TG, IL, TL, GO, GRAD], &[GRAD]),
            Entry::Fused => (&[LP, TG, IL, TL, GO, LOSS, GRAD], &[LOSS, GRAD]),
            Entry::Align => (&[LP, TG, IL, TL, PATH, SCORES], &[PATH, SCORES]),
            Entry::Size | Entry::AlignSize => (&[LP, TG, IL, TL], &[]),
        }
    }

    /// The call whose workspace this entry point takes (`ctc_workspace_size` sizes the loss's).
    fn call_kind(self) -> CtcCall {
        match self {
            Entry::Align | Entry::AlignSize => CTC_CALL_ALIGN,
            _ => CTC_CALL_FORWARD_BACKWARD,
        }
    }
}

/// What a compute call produced: status and the bits of each output's elements, in the order
/// of [`Entry::slots`] (empty when the call failed or the output has no elements).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: i32,
    outputs: Vec<Vec<u64>>,
}

fn read_elements(bufs: &[Buf], arg: &Arg, t: &CtcTensor) -> Vec<u64> {
    let b = bufs[arg.buf].bytes();
    element_offsets(t)
        .iter()
        .map(|&o| {
            let at = arg.offset + o;
            let v = match t.dtype {
                CTC_DTYPE_FLOAT32 => f32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as f64,
                CTC_DTYPE_FLOAT64 => f64::from_le_bytes(b[at..at + 8].try_into().unwrap()),
                // Integers (the path) and half floats: their raw bits.
                _ => {
                    let size = dtype_size(t.dtype).unwrap() as usize;
                    let mut raw = [0u8; 8];
                    raw[..size].copy_from_slice(&b[at..at + size]);
                    return u64::from_le_bytes(raw);
                }
            };
            // Every NaN counts as the same value.
            if v.is_nan() {
                u64::MAX
            } else {
                v.to_bits()
            }
        })
        .collect()
}

fn same_status(a: i32, b: i32) -> bool {
    a == b || a == CTC_STATUS_OUT_OF_MEMORY || b == CTC_STATUS_OUT_OF_MEMORY
}

impl Program {
    /// Makes one call and checks the properties of the module doc. `num_threads` and `no_ws`
    /// override the program's options for the invariance runs.
    fn call(&mut self, entry: Entry, num_threads: Option<u32>, no_ws: bool) -> Outcome {
        let resolved: Vec<(CtcTensor, Handed)> = (0..NT).map(|i| self.resolve(i)).collect();

        // Options in their own buffer, with any trailing bytes.
        let mut obuf = Buf::new(OPTIONS_BYTES);
        let mut opts = self.options;
        if let Some(n) = num_threads {
            opts.num_threads = n;
        }
        let mut ws_buf = Buf::new(8);
        let mut ws_range: Option<(usize, std::ops::Range<usize>)> = None;
        opts.workspace = ptr::null_mut();
        opts.workspace_bytes = 0;
        if !no_ws {
            match self.workspace {
                WorkspaceMode::None => {}
                WorkspaceMode::NullWithBytes(n) => opts.workspace_bytes = n,
                WorkspaceMode::Sized(delta, skew) => {
                    if let Some(size) = self.size_query(entry.call_kind()) {
                        let n = (size as i64 + delta).max(0) as usize;
                        ws_buf = Buf::new(n + skew + 8);
                        // SAFETY: skew + n <= the buffer's length.
                        opts.workspace = unsafe { ws_buf.base().add(skew) }.cast();
                        opts.workspace_bytes = n;
                    }
                }
                WorkspaceMode::Huge(n) => {
                    opts.workspace = ws_buf.base().cast();
                    opts.workspace_bytes = n;
                }
                WorkspaceMode::IntoTensor(b, off) => {
                    let len = self.bufs[b].len();
                    let off = off.min(len);
                    // SAFETY: off <= the buffer's length.
                    opts.workspace = unsafe { self.bufs[b].base().add(off) }.cast();
                    opts.workspace_bytes = len - off;
                    ws_range = Some((b, off..len));
                }
            }
        }
        let oraw = obuf.bytes_mut();
        let at = self.options_offset;
        // SAFETY: CtcOptions is plain data; OPTIONS_BYTES leaves room past any offset < 8.
        unsafe {
            ptr::write_unaligned(oraw.as_mut_ptr().add(at).cast::<CtcOptions>(), opts);
        }
        for &(pos, v) in &self.options_tail {
            oraw[at + pos] = v;
        }
        let opt_ptr: *const CtcOptions = if self.options_null {
            ptr::null()
        } else {
            // SAFETY: inside obuf.
            unsafe { obuf.base().add(at) }.cast()
        };

        let mut ts: Vec<CtcTensor> = resolved.iter().map(|r| r.0).collect();
        let base = ts.as_mut_ptr();
        let tp = |i: usize| -> *mut CtcTensor {
            if resolved[i].1 == Handed::Absent {
                ptr::null_mut()
            } else {
                // SAFETY: i < NT = ts.len().
                unsafe { base.add(i) }
            }
        };
        let (lp, tg, il, tl) = (tp(LP), tp(TG), tp(IL), tp(TL));
        let (go, loss, grad) = (tp(GO), tp(LOSS), tp(GRAD));
        let (path, scores) = (tp(PATH), tp(SCORES));

        if debug() {
            eprintln!("== {entry:?}");
            for (i, (t, h)) in resolved.iter().enumerate() {
                let a = &self.args[i];
                eprintln!(
                    "  tensor {i} {h:?} buf {} offset {}: {t:?}",
                    a.buf, a.offset
                );
            }
            eprintln!(
                "  options {opts:?} (null {}) tail {:?}",
                self.options_null, self.options_tail
            );
            eprintln!("  workspace {:?}", self.workspace);
        }
        let before: Vec<Vec<u8>> = self.bufs.iter().map(|b| b.bytes().to_vec()).collect();
        let mut bytes: usize = 0xDEAD;
        let bytes_ptr: *mut usize = if self.bytes_null {
            ptr::null_mut()
        } else {
            &mut bytes
        };
        // SAFETY: every pointer is NULL or points into an owned buffer that holds what it
        // describes (see `resolve`), or describes something the contract forbids.
        let status = unsafe {
            match entry {
                Entry::Forward => ctc_loss_forward(lp, tg, il, tl, opt_ptr, loss),
                Entry::Backward => ctc_loss_backward(lp, tg, il, tl, go, opt_ptr, grad),
                Entry::Fused => ctc_loss_forward_backward(lp, tg, il, tl, go, opt_ptr, loss, grad),
                Entry::Size => ctc_workspace_size(lp, tg, il, tl, opt_ptr, bytes_ptr),
                Entry::Align => ctc_align(lp, tg, il, tl, opt_ptr, path, scores),
                Entry::AlignSize => {
                    ctc_workspace_size_for_call(CTC_CALL_ALIGN, lp, tg, il, tl, opt_ptr, bytes_ptr)
                }
            }
        };
        let msg = message();
        assert!(
            (CTC_STATUS_SUCCESS..=CTC_STATUS_INTERNAL_ERROR).contains(&status),
            "{entry:?}: undocumented status {status}"
        );
        assert_ne!(
            status, CTC_STATUS_INTERNAL_ERROR,
            "{entry:?}: internal error (a caught panic): {msg}"
        );
        assert!(
            status != CTC_STATUS_DEVICE_ERROR || cuda_devices() > 0,
            "{entry:?}: device error without a CUDA device: {msg}"
        );

        let (used, outputs) = entry.slots();
        // Bytes allowed to change: the workspace, and on success the output elements.
        let mut may_change: Vec<(usize, usize)> = Vec::new();
        if let Some((b, r)) = &ws_range {
            may_change.extend(r.clone().map(|x| (*b, x)));
        }
        let mut result = Outcome {
            status,
            outputs: vec![vec![]; outputs.len()],
        };
        if status == CTC_STATUS_SUCCESS {
            assert_eq!(msg, "", "{entry:?}: message after a success");
            for &i in used {
                let (t, handed) = &resolved[i];
                // grad_loss and path_scores may be NULL.
                let ok = matches!(handed, Handed::Honest | Handed::Empty)
                    || ((i == GO || i == SCORES) && *handed == Handed::Absent);
                assert!(
                    ok,
                    "{entry:?}: success although tensor {i} was handed over as {handed:?}: {t:?}"
                );
                assert!(
                    *handed == Handed::Absent || t.device == CTC_DEVICE_CPU || cuda_devices() > 0,
                    "{entry:?}: success with tensor {i} on device {} without a CUDA device",
                    t.device
                );
            }
            for &i in outputs {
                let (t, handed) = &resolved[i];
                if *handed == Handed::Absent {
                    continue;
                }
                let size = dtype_size(t.dtype).unwrap() as usize;
                let a = self.args[i];
                if span(t) != Span::Empty {
                    for o in element_offsets(t) {
                        may_change.extend((0..size).map(|k| (a.buf, a.offset + o + k)));
                    }
                }
            }
            if matches!(entry, Entry::Size | Entry::AlignSize) && !self.bytes_null {
                assert_ne!(bytes, 0xDEAD, "size query succeeded without writing *bytes");
            }
            for (k, &i) in outputs.iter().enumerate() {
                let (t, handed) = &resolved[i];
                if *handed != Handed::Absent && span(t) != Span::Empty {
                    result.outputs[k] = read_elements(&self.bufs, &self.args[i], t);
                }
            }
            if entry == Entry::Align {
                check_path_classes(&result.outputs[0], &resolved[PATH].0, &resolved[LP].0);
            }
        } else {
            assert!(
                !msg.is_empty(),
                "{entry:?}: status {status} without a message"
            );
            if matches!(entry, Entry::Size | Entry::AlignSize) {
                assert_eq!(bytes, 0xDEAD, "failed size query wrote *bytes");
            }
        }
        may_change.sort_unstable();
        for (b, (old, buf)) in before.iter().zip(&self.bufs).enumerate() {
            for (x, (o, n)) in old.iter().zip(buf.bytes()).enumerate() {
                if o != n {
                    assert!(
                        may_change.binary_search(&(b, x)).is_ok(),
                        "{entry:?} (status {status}, {msg:?}) changed byte {x} of buffer {b}"
                    );
                }
            }
        }
        // Put the buffers back for the next call.
        for (b, old) in self.bufs.iter_mut().zip(before) {
            b.bytes_mut().copy_from_slice(&old);
        }
        result
    }

    /// The workspace size of `call` with the program's (honest) arguments, without any checks.
    fn size_query(&mut self, call: CtcCall) -> Option<usize> {
        let mut ts: Vec<CtcTensor> = (0..NT).map(|i| self.resolve(i).0).collect();
        let base = ts.as_mut_ptr();
        let mut opts = self.options;
        opts.struct_size = std::mem::size_of::<CtcOptions>() as u32;
        opts.workspace = ptr::null_mut();
        opts.workspace_bytes = 0;
        let mut bytes = 0usize;
        let p = |i: usize| -> *const CtcTensor {
            if self.args[i].present {
                // SAFETY: i < NT = ts.len().
                unsafe { base.add(i) }
            } else {
                ptr::null()
            }
        };
        let (lp, tg, il, tl) = (p(LP), p(TG), p(IL), p(TL));
        // SAFETY: as in `call`.
        let st = unsafe {
            if call == CTC_CALL_ALIGN {
                ctc_workspace_size_for_call(call, lp, tg, il, tl, &opts, &mut bytes)
            } else {
                ctc_workspace_size(lp, tg, il, tl, &opts, &mut bytes)
            }
        };
        (st == CTC_STATUS_SUCCESS && bytes < (1 << 26)).then_some(bytes)
    }
}

/// Every class on a successful path is -1 (past the input length or an impossible sample) or a
/// class of `log_probs` (its last extent).
fn check_path_classes(bits: &[u64], path: &CtcTensor, log_probs: &CtcTensor) {
    let classes = log_probs.shape[(log_probs.ndim.max(1) - 1) as usize];
    for &b in bits {
        let k = if path.dtype == CTC_DTYPE_INT32 {
            b as u32 as i32 as i64
        } else {
            b as i64
        };
        assert!(
            k == -1 || (0..classes).contains(&k),
            "ctc_align wrote class {k} with {classes} classes"
        );
    }
}

/// ASan's defaults for this target: an allocation above 256 MiB fails (malloc returns NULL, as on
/// a small machine) instead of aborting, so that honest but huge requests (a `T = 0` batch with
/// a million classes needs scratch per class) exercise the library's CTC_STATUS_OUT_OF_MEMORY
/// path. scripts/fuzz.sh passes `-malloc_limit_mb` above that, so libFuzzer's own limit never
/// fires first. ASAN_OPTIONS in the environment still override these.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"allocator_may_return_null=1:max_allocation_size_mb=256".as_ptr()
}

/// `ctc_cuda_device_count()` at the first call (0 on machines without a CUDA driver or device).
fn cuda_devices() -> i32 {
    static COUNT: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        let n = ctc_cuda_device_count();
        assert!(n >= 0, "ctc_cuda_device_count() = {n}");
        n
    })
}

/// Whether `CTC_FUZZ_DEBUG=1`: print every call's arguments to stderr (to read a finding).
fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var("CTC_FUZZ_DEBUG").is_ok_and(|v| v == "1"))
}

fn check_static_functions(inp: &mut Input<'_>) {
    let before = message();
    for _ in 0..2 {
        let s = inp.int(&[0, 1, 2, 3, 4, 5, 6, -1]) as i32;
        let p = ctc_status_string(s);
        assert!(!p.is_null());
        // SAFETY: static NUL-terminated text.
        let text = unsafe { CStr::from_ptr(p) }.to_str().unwrap();
        let want = match s {
            0 => "success",
            1 => "invalid argument",
            2 => "unsupported",
            3 => "out of memory",
            4 => "device error",
            5 => "internal error",
            _ => "unknown status",
        };
        assert_eq!(text, want, "ctc_status_string({s})");
    }
    // SAFETY: static NUL-terminated text.
    let v = unsafe { CStr::from_ptr(ctc_version_string()) };
    let n = ctc_version_number();
    let want = format!("{}.{}.{}", n / 10000, n / 100 % 100, n % 100);
    assert_eq!(
        v.to_str().unwrap(),
        want,
        "ctc_version_string vs ctc_version_number"
    );
    assert_eq!(
        ctc_cuda_device_count(),
        cuda_devices(),
        "the CUDA device count changed"
    );
    let d = ctc_options_default();
    assert_eq!(d.struct_size as usize, std::mem::size_of::<CtcOptions>());
    assert_eq!(
        (d.blank, d.reduction, d.zero_infinity),
        (0, CTC_REDUCTION_MEAN, CBool(0))
    );
    assert_eq!(
        message(),
        before,
        "the static functions changed the last error"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input { data, pos: 0 };
    let order = inp.u8();
    let mut p = Program::build(&mut inp);
    let mut tail = Input { data, pos: 0 };
    check_static_functions(&mut tail);

    p.call(Entry::Size, None, false);
    let forward = p.call(Entry::Forward, None, false);
    let backward = p.call(Entry::Backward, None, false);
    let fused = p.call(Entry::Fused, None, false);

    p.call(Entry::AlignSize, None, false);
    let align = p.call(Entry::Align, None, false);

    // The separate calls give the fused call's bits.
    if fused.status == CTC_STATUS_SUCCESS {
        if forward.status == CTC_STATUS_SUCCESS {
            assert_eq!(
                forward.outputs[0], fused.outputs[0],
                "forward loss differs from fused"
            );
        }
        if backward.status == CTC_STATUS_SUCCESS {
            assert_eq!(
                backward.outputs[0], fused.outputs[1],
                "backward grad differs from fused"
            );
        }
    }
    // Another thread count, or no caller workspace: the same status and bits.
    let threads = (p.options.num_threads + 1 + order as u32 % 4) % 5;
    let entry = [Entry::Forward, Entry::Backward, Entry::Fused, Entry::Align][order as usize % 4];
    let first = match entry {
        Entry::Forward => &forward,
        Entry::Backward => &backward,
        Entry::Align => &align,
        _ => &fused,
    };
    let again = p.call(entry, Some(threads), false);
    assert!(
        same_status(again.status, first.status),
        "{entry:?}: status {} with {threads} threads, {} with {}",
        again.status,
        first.status,
        p.options.num_threads
    );
    if again.status == CTC_STATUS_SUCCESS && first.status == CTC_STATUS_SUCCESS {
        assert_eq!(&again, first, "{entry:?}: bits depend on the thread count");
    }
    if p.workspace != WorkspaceMode::None && first.status == CTC_STATUS_SUCCESS {
        let plain = p.call(entry, None, true);
        if plain.status == CTC_STATUS_SUCCESS {
            assert_eq!(
                &plain, first,
                "{entry:?}: bits depend on the caller workspace"
            );
        }
    }
    check_static_functions(&mut inp);
});
