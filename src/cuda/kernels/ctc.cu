// CTC loss kernels (torch.nn.functional.ctc_loss semantics) for the CUDA backend.
//
// Compiled at run time by NVRTC, so this file includes no header and uses only what NVRTC
// provides built in (expf, logf, exp, log, __int_as_float, __float_as_int,
// __longlong_as_double, __syncthreads, __syncthreads_or). The same file compiles as C++20 on the
// host against tests/cuda_emu/emu.h, which emulates those built-ins (tests/cuda_emulation.rs and
// the driver stand-in of tests/cuda_driver/), and tests/cuda/nvrtc_compile.py compiles it with
// NVRTC for sm_70, sm_80 and sm_90.
//
// The recurrence, the notation and the names (log_alpha, log_beta, target_prime, log_add_exp,
// T_b, L, S', nll, g_b) are those of src/algorithm.rs; the state window and the linear-space
// posteriors are those of src/cpu/fast.rs.
//
// =============================================================================================
// Kernels and launch configuration
// =============================================================================================
//
// Every kernel takes one parameter, a struct of plain values (pointers, `long long`, `int`)
// mirrored field for field by a `#[repr(C)]` struct of src/cuda/launch.rs. The CTC_FIELD lines
// below pin every offset and size; the Rust side asserts the same numbers at compile time and a
// test compares the two lists, so a field order that differs fails to build on either side.
//
// Every kernel takes a 1-D block of blockDim.x threads, a power of two in [1, its maximum]
// (CTC_SWEEP_THREADS for alpha, beta and align, CTC_GRID_THREADS for the others) chosen by the
// host; any such value gives the same bits (no sum depends on it: see "Determinism"). No dynamic shared memory.
//
//   ctc_offsets                       1 block        concatenated targets only
//   ctc_prepare                       N blocks       block b: sample b
//   ctc_shift_<t>                     any            logits only: frame f = b * max_time + t
//                                                    in block f, f + grid, ...
//   ctc_alpha_<t>                     N blocks
//   ctc_beta_<t>                      N blocks       only for a gradient
//   ctc_grad_<t>                      N * chunks     block b * chunks + k: frames
//                                                    [k F, (k + 1) F) of sample b
//   ctc_reduce_f32 / _f64             1 block
//   ctc_align_<t>                     N blocks       forced alignment (ctc_align)
//
// <t> is the element type of log_probs: f32 and f64 compute in their own type, f16 (IEEE
// binary16) and bf16 (bfloat16) in float, widening each element exactly where it is read; the
// reduce kernel is that of the computation's type. Outputs and the upstream gradient are float32
// or log_probs' type (CTC_REAL_*); a half output is rounded once from float (src/halfconv.rs,
// the same operations, so the bits are the CPU's for the same float value).
//
// Run them in this order on one stream: offsets, prepare, shift (logits), alpha, then reduce
// and/or beta + grad (beta replaces log_alpha entries by posteriors, so run it after anything
// else reading them). Forced alignment runs offsets, prepare, shift (logits), align. Blocks
// past the grid's work return at once.
//
// Strides are in elements, never bytes, and may be any value (zero or negative included) that
// keeps the addressed elements inside the caller's tensor.
//
// ---------------------------------------------------------------------------------------------
// OffsetsParams (ctc_offsets)
//   target_lengths, target_lengths_bytes, tl_stride   int32/int64 lengths, [b] at b * tl_stride
//   offsets [N]        long long: the first label of sample b in concatenated targets (the sum
//                      of the earlier lengths, saturating at 2^62), or -1 when an earlier length
//                      is negative (its start is then undefined)
//
// PrepareParams (ctc_prepare)
//   targets, targets_bytes       int32 or int64 labels (4 or 8)
//   padded                       1: (N, S), element [b][j] at b*tn + j*ts; 0: concatenated
//                                (total,), element i at i*ts, sample b from offsets[b]
//   targets_size                 padded: S; concatenated: total (its number of elements)
//   input_lengths, target_lengths, their bytes and strides (0 for unbatched input)
//   N, max_time, C, blank        batch, the T of log_probs, classes, the blank class
//   lmax                         label capacity per sample (>= 0); the host's bound:
//                                max L_b when it knows the lengths, else min(S or total, T)
//   labels    [N][lmax] int      the sample's labels, compact
//   next_same [N][lmax] int      index of the next label of the same class, or -1
//   class_head [N][C] int        index of the first label of class c, or -1
//   in_len, tgt_len [N] int      T_b and L_b (L_b capped at 2^31 - 1), or -1 for an invalid
//                                sample (tgt_len is the sample status)
//   A sample with L_b > lmax is impossible (loss +inf, as L_b > T >= T_b) when L_b > max_time,
//   invalid otherwise; its labels are checked but not stored.
//
// AlphaParams (ctc_alpha_<t>)
//   log_probs, st, sn, sc        (T, N, C): element [t][b][c] at t*st + b*sn + c*sc
//   log_alpha [N][alpha_rows][width]   row t of sample b at (b*alpha_rows + t % alpha_rows)
//                                * width, state s at offset s; width >= 2*lmax + 1.
//                                alpha_rows >= max_b T_b when beta follows; 2 for the loss alone
//   nll [N]                      the negative log-likelihood of each sample
//   shift [N][max_time][2] T     NULL: log_probs holds log-probabilities; else it holds logits
//                                and every kernel reading it (alpha, beta, grad, align) reads
//                                (x - shift[b][t][0]) - shift[b][t][1] instead of x
//
// ShiftParams (ctc_shift_<t>): logits, st, sn, sc as log_probs; shift[b][t] = (m, lse) of the
//   frame, m = max_c x, lse = ln(sum_c exp(x - m)) (src/algorithm.rs "Logits"); (NaN, NaN) for
//   a frame holding a NaN or +inf, (-inf, 0) for a frame of -inf.
//
// BetaParams (ctc_beta_<t>): the beta sweep (two rows of log_beta per sample in `work`,
//   [N][2][width]); each state's log_alpha entry is replaced by its posterior
//   exp(log_alpha + log_beta + nll - lp). Samples that get no gradient from the table (invalid,
//   T_b = 0, nll NaN or +inf) are skipped.
//
// GradParams (ctc_grad_<t>)
//   frames (F >= 1) and chunks (= ceil(max_time / F)): the grid is N * chunks blocks
//   grad_loss, grad_loss_stride  upstream gradient or NULL for 1: reduction none: [b] at
//                                b*grad_loss_stride; sum and mean: the scalar grad_loss[0]
//   reduction 0 none, 1 mean, 2 sum; zero_infinity 0 or 1
//   grad, gt, gn, gc             (T, N, C): every element with t < max_time is written exactly
//                                once (no memset needed), nothing else (gaps stay)
//   grad_dtype, grad_loss_dtype  CTC_REAL_* of grad and grad_loss
//   exact                        1: -P_c g_b (CTC_GRADIENT_EXACT); logits (shift not NULL):
//                                (softmax - P_c) g_b whatever `exact` says
//
// ReduceParams (ctc_reduce_<t>)
//   loss, loss_stride            reduction none: loss[b*loss_stride] = nll_b (0 where
//                                zero_infinity and nll_b = +inf); sum: loss[0] = sum_b nll_b;
//                                mean: loss[0] = (1/N) sum_b nll_b / max(L_b, 1). The sum and
//                                the mean accumulate in double in increasing b, from -0.0 (as
//                                Rust's f64 `sum`), then round once to T (and from it to a
//                                half loss_dtype)
//
// AlignParams (ctc_align_<t>): the Viterbi recurrence of src/algorithm.rs "Forced alignment"
//   log_probs, st, sn, sc        as for alpha
//   rows [N][2][width] T         the current and the previous row of delta (a ring)
//   checkpoints [N][checkpoint_rows][width] T   the rows of frames 0, K, 2K, ... (K = segment)
//   codes [N][segment][code_row] bytes   one segment's back-pointers, 2 bits a state: state s
//                                of the i-th recomputed frame at byte i * code_row + s / 4,
//                                bits 2 (s % 4) and up; code_row >= (width + 3) / 4
//   path, path_st, path_sn, path_bytes   (max_time, N) int32 or int64 (4 or 8): element [t][b]
//                                at t * path_st + b * path_sn; every t < max_time is written
//   scores, scores_stride, scores_dtype  (N,) CTC_REAL_*, [b] at b * scores_stride; NULL: not
//                                written
//   segment (K >= 1), checkpoint_rows (>= 1): a sample needs ceil(T_b / K) checkpoint rows;
//                                one with more is treated as impossible (the host sizes them
//                                for its longest input)
//
// Host-side preconditions (trusted, not checked): 0 <= blank < C <= 2^30; lmax < 2^30 (so that
// state indices 2 lmax + 3 fit an int); N, max_time <= 2^31 - 1; N * chunks <= 2^31 - 1;
// F * C < 2^62; the strides address elements inside the tensors for every t < max_time, b < N,
// c < C (and j < S for padded targets); alpha_rows >= 1 and width >= 2 lmax + 1.
//
// Workspace, in elements: offsets: N long long (concatenated); labels, next_same: N * lmax int;
// class_head: N * C int; in_len, tgt_len: N int; log_alpha: N * alpha_rows * width T; work:
// N * 2 * width T (gradient); nll: N T; shift (logits): N * max_time * 2 T. Nothing needs
// initializing.
// Forced alignment: offsets, labels, next_same, class_head, in_len, tgt_len as above (prepare
// fills them); rows (in log_alpha's place): N * 2 * width T; checkpoints:
// N * checkpoint_rows * width T; codes: N * segment * code_row bytes. With K = segment =
// ceil(sqrt(4 sizeof(T) Tmax)) (src/cpu/layout.rs segment_frames, as the CPU) and
// checkpoint_rows = ceil(Tmax / K), the checkpoints (Tmax / K) width sizeof(T) and the codes
// K width / 4 bytes balance: N * width * O(sqrt(Tmax)) in all, not N * width * Tmax.
//
// =============================================================================================
// Invalid device-side values
// =============================================================================================
//
// The host may pass lengths and targets it has not read. ctc_prepare marks sample b invalid
// (in_len[b] = tgt_len[b] = -1) when any of these holds:
//   - input_length < 0 or input_length > max_time;
//   - target_length < 0, or target_length > lmax and target_length <= max_time;
//   - padded targets: target_length > S;
//   - concatenated targets: the target length of an earlier sample is negative (so every later
//     sample is invalid too), or offset_b + target_length > total;
//   - a label outside [0, C) or equal to blank.
// An invalid sample gets nll = NaN, loss NaN (so the sum and the mean are NaN too) and a NaN
// gradient over its whole (max_time, C) slice. The other samples keep the bits they would have
// with valid values there (concatenated targets: through the offsets, a wrong length moves the
// labels of every later sample). No kernel reads or writes outside the tensors and the
// workspace described above, whatever the device-side values: only the host arguments (sizes,
// strides, capacities) are trusted.
//
// ctc_align treats an invalid sample as one with no alignment: path -1 at every frame, score
// -inf; the other samples are aligned as with valid values there.
//
// =============================================================================================
// Forced alignment (ctc_align): the CPU's path and score, bit for bit (log-probabilities; for
// logits the frames' log-sum-exp is summed in another order, so to rounding)
// =============================================================================================
//
// One block per sample sweeps its frames in a loop (one barrier a frame), as alpha does, over
// the same state window, in T (the CPU's accumulator: float for float32, double for float64):
//   delta[t][s] = best(stay delta[t-1][s], from s - 1, from s - 2 under the skip rule) + lp
// with src/algorithm.rs's tie rule written as the CPU writes it (src/cpu/align.rs): a blank
// takes s - 1 iff it is > stay; a label takes s - 2 iff it is > both others, else s - 1 iff it
// is > stay, else stays; the path ends in the last label unless the final blank is > it. These
// are comparisons and one addition a state, never contracted into an FMA (there is no product),
// whatever --fmad says, so every value and every choice is the CPU's. NaN compares false, so it
// is never "better" and propagates along stays, as on the CPU.
//
// Memory: the forward sweep keeps the rows of frames 0, K, 2K, ... as checkpoints (writing those
// frames there directly, the others in the ring); the read-back then takes the segments
// [first, last] = [g K, min((g + 1) K, T_b - 1)] from the last: it recomputes frames first + 1
// ..= last from the checkpoint of frame first, storing each state's back-pointer (0 stay, 1 from
// s - 1, 2 from s - 2: one thread owns the four states of a code byte), then thread 0 walks the
// segment back from the state it holds, writing path[t] and adding (double) lp[t][path[t]] to
// the score in decreasing t from +0.0, as the CPU does; the score is rounded to T, then to the
// output's type.
//
// No alignment (path -1 everywhere, score -inf): L > T_b; or a best score of -inf or NaN (too
// few frames for the labels and the blanks between repeats gives -inf too: every unreachable
// state is -inf or NaN, so no separate count of repeats is needed). T_b = 0 and L = 0: score 0,
// path -1 everywhere. Frames t >= T_b get -1.
//
// A back-pointer walk stays inside the window: a state whose delta is neither -inf nor NaN has a
// predecessor of that kind, i.e. a computed state (the state index is still clamped at 0, so
// no code value can address outside the tables).

// =============================================================================================
// Determinism
// =============================================================================================
//
// No atomics. Every sum has a fixed order that depends neither on the schedule nor on the
// launch shape, so results are bitwise identical from run to run and for every block size:
//   - concatenated offsets: integer sums (exact, saturating, in any order);
//   - the posterior mass of the blank at frame t: one thread adds the window's even states in
//     increasing s;
//   - the posterior mass of a label class at frame t: one thread adds the states of the chain
//     of its repeats (class_head, next_same) in increasing label index;
//   - the reduced loss: one thread, increasing b, in double;
//   - a frame's log-sum-exp (logits): class c in partial c % CTC_SHIFT_PARTS in increasing c,
//     then one thread adds the partials in increasing order.
//
// =============================================================================================
// Numerical rules (as src/algorithm.rs and src/cpu/fast.rs)
// =============================================================================================
//
//   - log_add_exp shifts by the largest term, replaced by 0 when it is -inf; NaN propagates.
//     States without the skip move use the two-term form, which gives the same bits as the
//     three-term one with a -inf term.
//   - Only the states of the window [max(0, S' - 2 (T_b - t)), min(S', 2 t + 2)) are computed;
//     every other state is -inf and is never read. The window is empty (and the loss +inf) iff
//     L > T_b.
//   - T_b = 0: nll = 0 for an empty target, +inf otherwise; its gradient is zero.
//   - Gradient, t < T_b: grad[t][c] = (exp(lp[t][c]) - P_c) * g_b, P_c the posterior mass of
//     the states emitting c (0 if none), NaN where lp[t][c] = -inf; exact (GradParams.exact):
//     (0 - P_c) * g_b, finite everywhere; t >= T_b: 0.
//   - nll = +inf with zero_infinity: the sample's whole gradient is 0 (and its loss 0).
//     nll = +inf or NaN otherwise: NaN for t < T_b (every class), 0 for t >= T_b.
//   - g_b = grad_loss[b] (none), grad_loss[0] (sum), grad_loss[0] / N / max(L_b, 1) (mean),
//     computed in T; grad_loss = NULL means 1.
//   - nll = -inf (only from +inf log-probabilities) follows the same linear-space formula, whose
//     inf - inf cases may differ from torch's log-space lcab (torch's result is NaN/inf noise
//     there as well).

// The largest blocks the host launches (src/cuda/launch.rs has the same numbers).
#define CTC_SWEEP_THREADS 512
#define CTC_GRID_THREADS 256

// ---------------------------------------------------------------------------------------------
// Parameter structs: one per kernel, the same field order and offsets as src/cuda/launch.rs.

struct OffsetsParams {
    const void* target_lengths;
    long long* offsets;
    long long tl_stride;
    int target_lengths_bytes;
    int N;
};

struct PrepareParams {
    const void* targets;
    const void* input_lengths;
    const void* target_lengths;
    const long long* offsets;
    int* labels;
    int* next_same;
    int* class_head;
    int* in_len;
    int* tgt_len;
    long long targets_size;
    long long tn;
    long long ts;
    long long il_stride;
    long long tl_stride;
    int targets_bytes;
    int input_lengths_bytes;
    int target_lengths_bytes;
    int padded;
    int N;
    int max_time;
    int C;
    int blank;
    int lmax;
};

/// float16 and bfloat16 elements, as their bits (NVRTC without headers has no cuda_fp16.h).
struct ctc_f16 {
    unsigned short bits;
};
struct ctc_bf16 {
    unsigned short bits;
};

/// The floating types of outputs and of the upstream gradient (GradParams.grad_dtype,
/// grad_loss_dtype, ReduceParams.loss_dtype, AlignParams.scores_dtype); src/cuda/params.rs has
/// the same numbers.
#define CTC_REAL_F32 0
#define CTC_REAL_F64 1
#define CTC_REAL_F16 2
#define CTC_REAL_BF16 3

// `In` is the element type of log_probs (float, double, ctc_f16, ctc_bf16) and `T` the type of
// every computation (float for the half types). `shift` is NULL for log-probabilities; for
// logits it holds each frame's (max, lse) (ctc_shift), [b][t][2] at (b * max_time + t) * 2.

template <typename In, typename T> struct ShiftParams {
    const In* logits;
    T* shift;
    long long st;
    long long sn;
    long long sc;
    int N;
    int max_time;
    int C;
};

template <typename In, typename T> struct AlphaParams {
    const In* log_probs;
    const T* shift;
    const int* labels;
    const int* in_len;
    const int* tgt_len;
    T* log_alpha;
    T* nll;
    long long st;
    long long sn;
    long long sc;
    long long width;
    int N;
    int max_time;
    int blank;
    int lmax;
    int alpha_rows;
};

template <typename In, typename T> struct BetaParams {
    const In* log_probs;
    const T* shift;
    const int* labels;
    const int* in_len;
    const int* tgt_len;
    T* log_alpha;
    T* work;
    const T* nll;
    long long st;
    long long sn;
    long long sc;
    long long width;
    int N;
    int max_time;
    int blank;
    int lmax;
    int alpha_rows;
};

template <typename In, typename T> struct GradParams {
    const In* log_probs;
    const T* shift;
    const int* next_same;
    const int* class_head;
    const int* in_len;
    const int* tgt_len;
    const T* log_alpha;
    const T* nll;
    const void* grad_loss;
    void* grad;
    long long st;
    long long sn;
    long long sc;
    long long width;
    long long grad_loss_stride;
    long long gt;
    long long gn;
    long long gc;
    int N;
    int max_time;
    int C;
    int blank;
    int lmax;
    int alpha_rows;
    int reduction;
    int zero_infinity;
    int frames;
    int chunks;
    int exact;  // CTC_GRADIENT_EXACT: -P_c g_b instead of torch's formula
    int grad_dtype;
    int grad_loss_dtype;
};

template <typename T> struct ReduceParams {
    const T* nll;
    const int* tgt_len;
    void* loss;
    long long loss_stride;
    int N;
    int reduction;
    int zero_infinity;
    int loss_dtype;
};

template <typename In, typename T> struct AlignParams {
    const In* log_probs;
    const T* shift;
    const int* labels;
    const int* in_len;
    const int* tgt_len;
    T* rows;
    T* checkpoints;
    unsigned char* codes;
    void* path;
    void* scores;
    long long st;
    long long sn;
    long long sc;
    long long width;
    long long code_row;
    long long path_st;
    long long path_sn;
    long long scores_stride;
    int N;
    int max_time;
    int blank;
    int lmax;
    int segment;
    int checkpoint_rows;
    int path_bytes;
    int scores_dtype;
};

// Offsets and sizes, in bytes; src/cuda/params.rs asserts the same numbers. Every instantiation
// of a template has the offsets of its float one, named below (the types appear only behind
// pointers). NVRTC has no offsetof: the offsets are checked by the host compilers (the emulation and the
// driver stand-in), the sizes by all.
#if defined(__CUDACC_RTC__)
#define CTC_FIELD(S, f, at) static_assert(true, "")
#else
#define CTC_FIELD(S, f, at) static_assert(__builtin_offsetof(S, f) == at, #S "." #f)
#endif
#define CTC_SIZE(S, n) static_assert(sizeof(S) == n, "sizeof " #S)
typedef ShiftParams<float, float> ShiftParams_f32;
typedef AlphaParams<float, float> AlphaParams_f32;
typedef BetaParams<float, float> BetaParams_f32;
typedef GradParams<float, float> GradParams_f32;
typedef ReduceParams<float> ReduceParams_f32;
typedef AlignParams<float, float> AlignParams_f32;
CTC_FIELD(OffsetsParams, target_lengths, 0);
CTC_FIELD(OffsetsParams, offsets, 8);
CTC_FIELD(OffsetsParams, tl_stride, 16);
CTC_FIELD(OffsetsParams, target_lengths_bytes, 24);
CTC_FIELD(OffsetsParams, N, 28);
CTC_SIZE(OffsetsParams, 32);
CTC_FIELD(PrepareParams, targets, 0);
CTC_FIELD(PrepareParams, input_lengths, 8);
CTC_FIELD(PrepareParams, target_lengths, 16);
CTC_FIELD(PrepareParams, offsets, 24);
CTC_FIELD(PrepareParams, labels, 32);
CTC_FIELD(PrepareParams, next_same, 40);
CTC_FIELD(PrepareParams, class_head, 48);
CTC_FIELD(PrepareParams, in_len, 56);
CTC_FIELD(PrepareParams, tgt_len, 64);
CTC_FIELD(PrepareParams, targets_size, 72);
CTC_FIELD(PrepareParams, tn, 80);
CTC_FIELD(PrepareParams, ts, 88);
CTC_FIELD(PrepareParams, il_stride, 96);
CTC_FIELD(PrepareParams, tl_stride, 104);
CTC_FIELD(PrepareParams, targets_bytes, 112);
CTC_FIELD(PrepareParams, input_lengths_bytes, 116);
CTC_FIELD(PrepareParams, target_lengths_bytes, 120);
CTC_FIELD(PrepareParams, padded, 124);
CTC_FIELD(PrepareParams, N, 128);
CTC_FIELD(PrepareParams, max_time, 132);
CTC_FIELD(PrepareParams, C, 136);
CTC_FIELD(PrepareParams, blank, 140);
CTC_FIELD(PrepareParams, lmax, 144);
CTC_SIZE(PrepareParams, 152);
CTC_FIELD(ShiftParams_f32, logits, 0);
CTC_FIELD(ShiftParams_f32, shift, 8);
CTC_FIELD(ShiftParams_f32, st, 16);
CTC_FIELD(ShiftParams_f32, sn, 24);
CTC_FIELD(ShiftParams_f32, sc, 32);
CTC_FIELD(ShiftParams_f32, N, 40);
CTC_FIELD(ShiftParams_f32, max_time, 44);
CTC_FIELD(ShiftParams_f32, C, 48);
CTC_SIZE(ShiftParams_f32, 56);
CTC_FIELD(AlphaParams_f32, log_probs, 0);
CTC_FIELD(AlphaParams_f32, shift, 8);
CTC_FIELD(AlphaParams_f32, labels, 16);
CTC_FIELD(AlphaParams_f32, in_len, 24);
CTC_FIELD(AlphaParams_f32, tgt_len, 32);
CTC_FIELD(AlphaParams_f32, log_alpha, 40);
CTC_FIELD(AlphaParams_f32, nll, 48);
CTC_FIELD(AlphaParams_f32, st, 56);
CTC_FIELD(AlphaParams_f32, sn, 64);
CTC_FIELD(AlphaParams_f32, sc, 72);
CTC_FIELD(AlphaParams_f32, width, 80);
CTC_FIELD(AlphaParams_f32, N, 88);
CTC_FIELD(AlphaParams_f32, max_time, 92);
CTC_FIELD(AlphaParams_f32, blank, 96);
CTC_FIELD(AlphaParams_f32, lmax, 100);
CTC_FIELD(AlphaParams_f32, alpha_rows, 104);
CTC_SIZE(AlphaParams_f32, 112);
CTC_FIELD(BetaParams_f32, log_probs, 0);
CTC_FIELD(BetaParams_f32, shift, 8);
CTC_FIELD(BetaParams_f32, labels, 16);
CTC_FIELD(BetaParams_f32, in_len, 24);
CTC_FIELD(BetaParams_f32, tgt_len, 32);
CTC_FIELD(BetaParams_f32, log_alpha, 40);
CTC_FIELD(BetaParams_f32, work, 48);
CTC_FIELD(BetaParams_f32, nll, 56);
CTC_FIELD(BetaParams_f32, st, 64);
CTC_FIELD(BetaParams_f32, sn, 72);
CTC_FIELD(BetaParams_f32, sc, 80);
CTC_FIELD(BetaParams_f32, width, 88);
CTC_FIELD(BetaParams_f32, N, 96);
CTC_FIELD(BetaParams_f32, max_time, 100);
CTC_FIELD(BetaParams_f32, blank, 104);
CTC_FIELD(BetaParams_f32, lmax, 108);
CTC_FIELD(BetaParams_f32, alpha_rows, 112);
CTC_SIZE(BetaParams_f32, 120);
CTC_FIELD(GradParams_f32, log_probs, 0);
CTC_FIELD(GradParams_f32, shift, 8);
CTC_FIELD(GradParams_f32, next_same, 16);
CTC_FIELD(GradParams_f32, class_head, 24);
CTC_FIELD(GradParams_f32, in_len, 32);
CTC_FIELD(GradParams_f32, tgt_len, 40);
CTC_FIELD(GradParams_f32, log_alpha, 48);
CTC_FIELD(GradParams_f32, nll, 56);
CTC_FIELD(GradParams_f32, grad_loss, 64);
CTC_FIELD(GradParams_f32, grad, 72);
CTC_FIELD(GradParams_f32, st, 80);
CTC_FIELD(GradParams_f32, sn, 88);
CTC_FIELD(GradParams_f32, sc, 96);
CTC_FIELD(GradParams_f32, width, 104);
CTC_FIELD(GradParams_f32, grad_loss_stride, 112);
CTC_FIELD(GradParams_f32, gt, 120);
CTC_FIELD(GradParams_f32, gn, 128);
CTC_FIELD(GradParams_f32, gc, 136);
CTC_FIELD(GradParams_f32, N, 144);
CTC_FIELD(GradParams_f32, max_time, 148);
CTC_FIELD(GradParams_f32, C, 152);
CTC_FIELD(GradParams_f32, blank, 156);
CTC_FIELD(GradParams_f32, lmax, 160);
CTC_FIELD(GradParams_f32, alpha_rows, 164);
CTC_FIELD(GradParams_f32, reduction, 168);
CTC_FIELD(GradParams_f32, zero_infinity, 172);
CTC_FIELD(GradParams_f32, frames, 176);
CTC_FIELD(GradParams_f32, chunks, 180);
CTC_FIELD(GradParams_f32, exact, 184);
CTC_FIELD(GradParams_f32, grad_dtype, 188);
CTC_FIELD(GradParams_f32, grad_loss_dtype, 192);
CTC_SIZE(GradParams_f32, 200);
CTC_FIELD(ReduceParams_f32, nll, 0);
CTC_FIELD(ReduceParams_f32, tgt_len, 8);
CTC_FIELD(ReduceParams_f32, loss, 16);
CTC_FIELD(ReduceParams_f32, loss_stride, 24);
CTC_FIELD(ReduceParams_f32, N, 32);
CTC_FIELD(ReduceParams_f32, reduction, 36);
CTC_FIELD(ReduceParams_f32, zero_infinity, 40);
CTC_FIELD(ReduceParams_f32, loss_dtype, 44);
CTC_SIZE(ReduceParams_f32, 48);
CTC_FIELD(AlignParams_f32, log_probs, 0);
CTC_FIELD(AlignParams_f32, shift, 8);
CTC_FIELD(AlignParams_f32, labels, 16);
CTC_FIELD(AlignParams_f32, in_len, 24);
CTC_FIELD(AlignParams_f32, tgt_len, 32);
CTC_FIELD(AlignParams_f32, rows, 40);
CTC_FIELD(AlignParams_f32, checkpoints, 48);
CTC_FIELD(AlignParams_f32, codes, 56);
CTC_FIELD(AlignParams_f32, path, 64);
CTC_FIELD(AlignParams_f32, scores, 72);
CTC_FIELD(AlignParams_f32, st, 80);
CTC_FIELD(AlignParams_f32, sn, 88);
CTC_FIELD(AlignParams_f32, sc, 96);
CTC_FIELD(AlignParams_f32, width, 104);
CTC_FIELD(AlignParams_f32, code_row, 112);
CTC_FIELD(AlignParams_f32, path_st, 120);
CTC_FIELD(AlignParams_f32, path_sn, 128);
CTC_FIELD(AlignParams_f32, scores_stride, 136);
CTC_FIELD(AlignParams_f32, N, 144);
CTC_FIELD(AlignParams_f32, max_time, 148);
CTC_FIELD(AlignParams_f32, blank, 152);
CTC_FIELD(AlignParams_f32, lmax, 156);
CTC_FIELD(AlignParams_f32, segment, 160);
CTC_FIELD(AlignParams_f32, checkpoint_rows, 164);
CTC_FIELD(AlignParams_f32, path_bytes, 168);
CTC_FIELD(AlignParams_f32, scores_dtype, 172);
CTC_SIZE(AlignParams_f32, 176);

namespace ctc_kernels {

// ---------------------------------------------------------------------------------------------
// Floating-point helpers (NVRTC has no <cmath> and no INFINITY).

__device__ __forceinline__ float ctc_exp(float x) { return expf(x); }
__device__ __forceinline__ double ctc_exp(double x) { return exp(x); }
__device__ __forceinline__ float ctc_log(float x) { return logf(x); }
__device__ __forceinline__ double ctc_log(double x) { return log(x); }

template <typename T> struct Limits;
template <> struct Limits<float> {
    static __device__ __forceinline__ float inf() { return __int_as_float(0x7f800000); }
    static __device__ __forceinline__ float nan() { return __int_as_float(0x7fc00000); }
};
template <> struct Limits<double> {
    static __device__ __forceinline__ double inf() {
        return __longlong_as_double(0x7ff0000000000000LL);
    }
    static __device__ __forceinline__ double nan() {
        return __longlong_as_double(0x7ff8000000000000LL);
    }
};

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ long long imin_ll(long long a, long long b) { return a < b ? a : b; }

/// float16 bits to float (exact): src/halfconv.rs f16_to_f32, the same operations.
__device__ __forceinline__ float f16_to_float(unsigned short h) {
    const unsigned shifted_exp = 0x7c00u << 13;
    const unsigned bits = static_cast<unsigned>(h & 0x7fff) << 13;
    const unsigned exp = shifted_exp & bits;
    const unsigned normal = bits + ((127u - 15u) << 23);
    const unsigned special = normal + ((128u - 16u) << 23);  // infinity or NaN
    const float magic = __int_as_float(113 << 23);
    const unsigned subnormal = static_cast<unsigned>(
        __float_as_int(__int_as_float(static_cast<int>(normal + (1u << 23))) - magic));
    const unsigned quiet = (bits & 0x007fe000u) != 0 ? (1u << 22) : 0u;  // a NaN comes out quiet
    const unsigned o = exp == shifted_exp ? (special | quiet) : (exp == 0 ? subnormal : normal);
    return __int_as_float(static_cast<int>(o | (static_cast<unsigned>(h & 0x8000) << 16)));
}

/// float to float16 bits, to nearest even (src/halfconv.rs f32_to_f16, the same operations).
__device__ __forceinline__ unsigned short float_to_f16(float f) {
    const unsigned f32_infinity = 255u << 23;
    const unsigned f16_overflow = (127u + 16u) << 23;
    const unsigned denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    const unsigned bits = static_cast<unsigned>(__float_as_int(f));
    const unsigned short sign = static_cast<unsigned short>((bits & 0x80000000u) >> 16);
    const unsigned u = bits & 0x7fffffffu;
    // NaN: quiet, with the top 10 bits of its payload.
    const unsigned short overflow =
        u > f32_infinity ? static_cast<unsigned short>(0x7e00u | ((u >> 13) & 0x3ffu)) : 0x7c00;
    const float sum = __int_as_float(static_cast<int>(u)) + __int_as_float(static_cast<int>(denorm_magic));
    const unsigned short small =
        static_cast<unsigned short>(static_cast<unsigned>(__float_as_int(sum)) - denorm_magic);
    const unsigned mant_odd = (u >> 13) & 1u;
    const unsigned short normal = static_cast<unsigned short>(
        (u + ((15u - 127u) << 23) + 0xfffu + mant_odd) >> 13);
    const unsigned short o = u >= f16_overflow ? overflow : (u < (113u << 23) ? small : normal);
    return static_cast<unsigned short>(o | sign);
}

/// float to bfloat16 bits, to nearest even; NaN gives a quiet NaN (src/halfconv.rs).
__device__ __forceinline__ unsigned short float_to_bf16(float f) {
    const unsigned u = static_cast<unsigned>(__float_as_int(f));
    if (f != f) return static_cast<unsigned short>((u >> 16) | 0x40);
    return static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/// An element of log_probs as the computation's type (exact).
__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ double widen(double x) { return x; }
__device__ __forceinline__ float widen(ctc_f16 x) { return f16_to_float(x.bits); }
__device__ __forceinline__ float widen(ctc_bf16 x) {
    return __int_as_float(static_cast<int>(static_cast<unsigned>(x.bits) << 16));
}

/// The log-probability at element `at` of frame `frame_shift` (NULL: log-probabilities as given;
/// logits: (x - max) - lse, torch's log_softmax order, src/algorithm.rs "Logits").
template <typename In, typename T>
__device__ __forceinline__ T log_prob(const In* x, long long at, const T* frame_shift) {
    const T v = widen(x[at]);
    return frame_shift == nullptr ? v : (v - frame_shift[0]) - frame_shift[1];
}

/// The (max, lse) pair of frame t of sample b, or NULL for log-probabilities.
template <typename T>
__device__ __forceinline__ const T* frame_shift(const T* shift, int max_time, int b, int t) {
    if (shift == nullptr) return nullptr;
    return shift + (static_cast<long long>(b) * max_time + t) * 2;
}

/// Element i of a float32, float64, float16 or bfloat16 tensor (CTC_REAL_*), as T.
template <typename T>
__device__ __forceinline__ T load_real(const void* p, int dtype, long long i) {
    switch (dtype) {
    case CTC_REAL_F64: return static_cast<T>(static_cast<const double*>(p)[i]);
    case CTC_REAL_F16: return static_cast<T>(f16_to_float(static_cast<const unsigned short*>(p)[i]));
    case CTC_REAL_BF16:
        return static_cast<T>(widen(ctc_bf16{static_cast<const unsigned short*>(p)[i]}));
    default: return static_cast<T>(static_cast<const float*>(p)[i]);
    }
}

/// Stores v at element i of a CTC_REAL_* tensor: a half type is rounded once, from float.
template <typename T>
__device__ __forceinline__ void store_real(void* p, int dtype, long long i, T v) {
    switch (dtype) {
    case CTC_REAL_F64: static_cast<double*>(p)[i] = static_cast<double>(v); break;
    case CTC_REAL_F16:
        static_cast<unsigned short*>(p)[i] = float_to_f16(static_cast<float>(v));
        break;
    case CTC_REAL_BF16:
        static_cast<unsigned short*>(p)[i] = float_to_bf16(static_cast<float>(v));
        break;
    default: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    }
}

/// ln(exp(a) + exp(b)), stable, NaN-propagating (algorithm::log_add_exp).
template <typename T> __device__ __forceinline__ T log_add_exp(T a, T b) {
    T m = b > a ? b : a;
    if (m == -Limits<T>::inf()) m = T(0);
    return ctc_log(ctc_exp(a - m) + ctc_exp(b - m)) + m;
}

/// ln(exp(a) + exp(b) + exp(c)), stable, NaN-propagating (algorithm::log_add_exp3).
template <typename T> __device__ __forceinline__ T log_add_exp3(T a, T b, T c) {
    T m = a;
    if (b > m) m = b;
    if (c > m) m = c;
    if (m == -Limits<T>::inf()) m = T(0);
    return ctc_log(ctc_exp(a - m) + ctc_exp(b - m) + ctc_exp(c - m)) + m;
}

/// A gradient element: (exp(lp) - p) * g, NaN where lp = -inf (torch's formula gives
/// -inf + inf there); exact: (0 - p) * g, finite at lp = -inf (src/cpu/planar/gradient.rs
/// grad_value, the same operations). Logits: (softmax - p) * g whichever the option, finite
/// (the softmax is 0 at lp = -inf).
template <typename T>
__device__ __forceinline__ T grad_value(T lp, T p, T g, bool exact, bool logits) {
    if (logits) return (ctc_exp(lp) - p) * g;
    if (exact) return (T(0) - p) * g;
    if (lp == -Limits<T>::inf()) return Limits<T>::nan();
    return (ctc_exp(lp) - p) * g;
}

/// First state of the window of frame t: states below it cannot complete the target.
/// (64-bit intermediate: 2 (T_b - t) may exceed INT_MAX.)
__device__ __forceinline__ int window_lo(int t, int T_b, int s_prime) {
    const long long lo = s_prime - 2LL * (T_b - t);
    return lo > 0 ? static_cast<int>(lo) : 0;
}

/// One past the last state of the window of frame t: states from it on are unreachable.
__device__ __forceinline__ int window_hi(int t, int s_prime) {
    const long long hi = 2LL * t + 2;
    return hi < s_prime ? static_cast<int>(hi) : s_prime;
}

/// An int32 or int64 element, widened.
__device__ __forceinline__ long long load_int(const void* p, int bytes, long long i) {
    return bytes == 8 ? static_cast<const long long*>(p)[i]
                      : static_cast<long long>(static_cast<const int*>(p)[i]);
}

/// Non-negative sums of lengths saturate here, far above any real tensor size.
#define CTC_LENGTH_CAP (1ULL << 62)

__device__ __forceinline__ unsigned long long sat_add(unsigned long long a, unsigned long long b) {
    const unsigned long long s = a + b;  // both <= 2^62: no wrap
    return s > CTC_LENGTH_CAP ? CTC_LENGTH_CAP : s;
}

}  // namespace ctc_kernels

namespace ctc_kernels {

/// Writes `value` to grad[origin + t gt + c gc] (a CTC_REAL_* tensor) for t in [t0, t1), every
/// class.
template <typename T>
__device__ __forceinline__ void fill_rows(void* grad, int dtype, long long origin, long long gt,
                                          long long gc, int t0, int t1, int C, T value) {
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    if (t1 <= t0 || C <= 0) return;
    const long long count = static_cast<long long>(t1 - t0) * C;
    for (long long i = tid; i < count; i += nth) {
        const long long t = t0 + i / C;
        const long long c = i % C;
        store_real(grad, dtype, origin + t * gt + c * gc, value);
    }
}

/// Whether the sample's (in_len, tgt_len) can be used with these capacities: a valid sample
/// that either has no alignment (L > T_b: only nll is written) or fits the table.
__device__ __forceinline__ bool usable(int L, int T_b, int max_time, int lmax, long long width,
                                       int alpha_rows_needed, int alpha_rows) {
    if (L < 0 || T_b < 0 || T_b > max_time) return false;
    if (L > T_b) return true;
    return L <= lmax && width >= 2 * static_cast<long long>(L) + 1 &&
           alpha_rows >= alpha_rows_needed;
}

// ---------------------------------------------------------------------------------------------
// ctc_offsets: a block-wide exclusive scan of the target lengths (integers: any order is exact).

__device__ __forceinline__ void offsets(const OffsetsParams& p) {
    __shared__ unsigned long long part[CTC_GRID_THREADS];
    __shared__ int negative[CTC_GRID_THREADS];
    if (blockIdx.x != 0) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    // Thread tid owns the contiguous chunk [lo, hi) of samples.
    const long long per = (static_cast<long long>(p.N) + nth - 1) / nth;
    const long long lo = imin_ll(static_cast<long long>(tid) * per, p.N);
    const long long hi = imin_ll(lo + per, p.N);
    unsigned long long sum = 0;
    int neg = 0;
    for (long long b = lo; b < hi; ++b) {
        const long long v = load_int(p.target_lengths, p.target_lengths_bytes, b * p.tl_stride);
        if (v < 0) {
            neg = 1;
        } else {
            const unsigned long long u = static_cast<unsigned long long>(v);
            sum = sat_add(sum, u > CTC_LENGTH_CAP ? CTC_LENGTH_CAP : u);
        }
    }
    part[tid] = sum;
    negative[tid] = neg;
    __syncthreads();
    if (tid == 0) {
        // Exclusive prefix over the chunks, in place.
        unsigned long long run = 0;
        int run_neg = 0;
        for (int i = 0; i < nth; ++i) {
            const unsigned long long s = part[i];
            const int n = negative[i];
            part[i] = run;
            negative[i] = run_neg;
            run = sat_add(run, s);
            run_neg = run_neg | n;
        }
    }
    __syncthreads();
    unsigned long long at = part[tid];
    neg = negative[tid];
    for (long long b = lo; b < hi; ++b) {
        p.offsets[b] = neg ? -1LL : static_cast<long long>(at);
        const long long v = load_int(p.target_lengths, p.target_lengths_bytes, b * p.tl_stride);
        if (v < 0) {
            neg = 1;
        } else {
            const unsigned long long u = static_cast<unsigned long long>(v);
            at = sat_add(at, u > CTC_LENGTH_CAP ? CTC_LENGTH_CAP : u);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_prepare

__device__ __forceinline__ void prepare(const PrepareParams& p) {
    const int b = static_cast<int>(blockIdx.x);
    if (b >= p.N) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);

    // Every thread reads the same values, so every branch below is uniform over the block.
    const long long input_length =
        load_int(p.input_lengths, p.input_lengths_bytes, static_cast<long long>(b) * p.il_stride);
    const long long L = load_int(p.target_lengths, p.target_lengths_bytes,
                                 static_cast<long long>(b) * p.tl_stride);
    bool ok = input_length >= 0 && input_length <= p.max_time && L >= 0 &&
              (L <= p.lmax || L > p.max_time);
    long long start = 0;  // element index of label 0, before the stride
    if (p.padded) {
        ok = ok && L <= p.targets_size;
    } else {
        const long long offset = p.offsets[b];
        ok = ok && offset >= 0 && offset <= p.targets_size && L <= p.targets_size - offset;
        start = offset;
    }

    // The labels: read only when the sample's range lies inside the targets; stored up to lmax.
    int bad = 0;
    int* lab = p.labels + static_cast<long long>(b) * p.lmax;
    if (ok) {
        for (long long j = tid; j < L; j += nth) {
            const long long at = p.padded ? static_cast<long long>(b) * p.tn + j * p.ts
                                          : (start + j) * p.ts;
            const long long c = load_int(p.targets, p.targets_bytes, at);
            const bool good = c >= 0 && c < p.C && c != p.blank;
            if (!good) bad = 1;
            if (j < p.lmax) lab[j] = good ? static_cast<int>(c) : 0;
        }
    }
    // Also the barrier that makes the labels visible to the whole block.
    bad = __syncthreads_or(bad);
    ok = ok && !bad;
    if (tid == 0) {
        p.in_len[b] = ok ? static_cast<int>(input_length) : -1;
        p.tgt_len[b] = ok ? static_cast<int>(L < 0x7fffffffLL ? L : 0x7fffffffLL) : -1;
    }
    if (!ok || L > p.lmax) return;

    // Repeats of a class form a chain in increasing index: next_same links it and class_head
    // maps the class to its first label. One thread walks the labels backwards: O(L + C).
    const int len = static_cast<int>(L);
    int* next = p.next_same + static_cast<long long>(b) * p.lmax;
    int* head = p.class_head + static_cast<long long>(b) * p.C;
    for (int c = tid; c < p.C; c += nth) head[c] = -1;
    __syncthreads();
    if (tid == 0) {
        for (int j = len - 1; j >= 0; --j) {
            const int c = lab[j];
            next[j] = head[c];
            head[c] = j;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_shift (logits): each frame's (max, lse), src/algorithm.rs "Logits"

/// Class c of a frame goes to partial c % CTC_SHIFT_PARTS (in increasing c) and the partials
/// are folded in increasing order, so the bits depend on neither the block size nor the
/// schedule.
#define CTC_SHIFT_PARTS 128

/// One block per frame in a grid-stride loop: m = max_c x, lse = ln(sum_c exp(x - m)); NaN for
/// a frame holding a NaN or +inf, (-inf, 0) for a frame of -inf (their log-probabilities are
/// NaN, as torch's log_softmax gives; src/cpu/logits.rs). Two barriers a frame: every thread
/// folds the partial maxima itself (a broadcast read of shared memory), thread 0 the sums.
template <typename In, typename T>
__device__ __forceinline__ void shift(const ShiftParams<In, T>& p) {
    __shared__ T maxima[CTC_SHIFT_PARTS];
    __shared__ T sums[CTC_SHIFT_PARTS];
    __shared__ int poison[CTC_SHIFT_PARTS];
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    const T ninf = -Limits<T>::inf();
    const long long frames = static_cast<long long>(p.N) * p.max_time;
    for (long long f = blockIdx.x; f < frames; f += gridDim.x) {
        const long long b = f / p.max_time;
        const long long t = f % p.max_time;
        const In* x = p.logits + b * p.sn + t * p.st;
        for (int k = tid; k < CTC_SHIFT_PARTS; k += nth) {
            T m = ninf;
            int bad = 0;
            for (long long c = k; c < p.C; c += CTC_SHIFT_PARTS) {
                const T v = widen(x[c * p.sc]);
                m = v > m ? v : m;
                bad = bad | (v != v || v == Limits<T>::inf());
            }
            maxima[k] = m;
            poison[k] = bad;
        }
        __syncthreads();
        T m = ninf;
        int bad = 0;
        for (int k = 0; k < CTC_SHIFT_PARTS; ++k) {
            m = maxima[k] > m ? maxima[k] : m;
            bad = bad | poison[k];
        }
        T* out = p.shift + 2 * f;
        if (bad || m == ninf) {
            if (tid == 0) {
                out[0] = bad ? Limits<T>::nan() : ninf;
                out[1] = bad ? Limits<T>::nan() : T(0);
            }
            __syncthreads();  // the maxima are read before the next frame writes them
            continue;         // uniform over the block
        }
        for (int k = tid; k < CTC_SHIFT_PARTS; k += nth) {
            T sum = T(0);
            for (long long c = k; c < p.C; c += CTC_SHIFT_PARTS)
                sum = sum + ctc_exp(widen(x[c * p.sc]) - m);
            sums[k] = sum;
        }
        // Also orders every read of the maxima before the next frame writes them; the sums are
        // read by thread 0 before it reaches the next frame's first barrier.
        __syncthreads();
        if (tid == 0) {
            T total = T(0);
            for (int k = 0; k < CTC_SHIFT_PARTS; ++k) total = total + sums[k];
            out[0] = m;
            out[1] = ctc_log(total);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_alpha

template <typename In, typename T>
__device__ __forceinline__ void alpha(const AlphaParams<In, T>& p) {
    const int b = static_cast<int>(blockIdx.x);
    if (b >= p.N) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    const T ninf = -Limits<T>::inf();
    const int L = p.tgt_len[b];
    const int T_b = p.in_len[b];

    // With a ring of two rows (the loss alone) any T_b fits; one row holds only T_b <= 1.
    const int rows_needed = p.alpha_rows == 1 ? T_b : 0;
    if (!usable(L, T_b, p.max_time, p.lmax, p.width, rows_needed, p.alpha_rows)) {
        if (tid == 0) p.nll[b] = Limits<T>::nan();
        return;
    }
    if (L > T_b) {
        // Every window is empty (T_b = 0 included): no alignment exists.
        if (tid == 0) p.nll[b] = Limits<T>::inf();
        return;
    }
    if (T_b == 0) {
        if (tid == 0) p.nll[b] = T(0);  // L = 0
        return;
    }

    const int s_prime = 2 * L + 1;
    const int* lab = p.labels + static_cast<long long>(b) * p.lmax;
    const In* lp_b = p.log_probs + static_cast<long long>(b) * p.sn;
    T* table = p.log_alpha + static_cast<long long>(b) * p.alpha_rows * p.width;
    const long long sc = p.sc;

    // One barrier per frame: row t - 1 is complete before row t is computed (with a ring of two
    // rows, row t - 1 is also read completely before frame t + 1 overwrites it).
    for (int t = 0; t < T_b; ++t) {
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const In* lp = lp_b + static_cast<long long>(t) * p.st;
        const T* sh = frame_shift(p.shift, p.max_time, b, t);
        T* cur = table + static_cast<long long>(t % p.alpha_rows) * p.width;
        if (t == 0) {
            // log_alpha[0][0] = lp[0][blank], log_alpha[0][1] = lp[0][l[0]].
            for (int s = lo + tid; s < hi; s += nth) {
                const int c = (s & 1) ? lab[s >> 1] : p.blank;
                cur[s] = log_prob(lp, c * sc, sh);
            }
        } else {
            const T* prev = table + static_cast<long long>((t - 1) % p.alpha_rows) * p.width;
            const int plo = window_lo(t - 1, T_b, s_prime);
            const int phi = window_hi(t - 1, s_prime);
            for (int s = lo + tid; s < hi; s += nth) {
                const T a1 = (s >= plo && s < phi) ? prev[s] : ninf;
                const T a2 = (s - 1 >= plo && s - 1 < phi) ? prev[s - 1] : ninf;
                int c = p.blank;  // target_prime(s)
                T v;
                if (s & 1) {
                    const int k = s >> 1;
                    c = lab[k];
                    if (k >= 1 && lab[k - 1] != c) {
                        // Skip rule: s - 2 -> s.
                        const T a3 = (s - 2 >= plo && s - 2 < phi) ? prev[s - 2] : ninf;
                        v = log_add_exp3(a1, a2, a3);
                    } else {
                        v = log_add_exp(a1, a2);
                    }
                } else {
                    v = log_add_exp(a1, a2);
                }
                cur[s] = v + log_prob(lp, c * sc, sh);
            }
        }
        __syncthreads();
    }

    if (tid == 0) {
        const int t = T_b - 1;
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const T* last = table + static_cast<long long>(t % p.alpha_rows) * p.width;
        const T a_end = (s_prime - 1 >= lo && s_prime - 1 < hi) ? last[s_prime - 1] : ninf;
        if (L == 0) {
            p.nll[b] = -a_end;
        } else {
            const T a_label = (s_prime - 2 >= lo && s_prime - 2 < hi) ? last[s_prime - 2] : ninf;
            p.nll[b] = -log_add_exp(a_end, a_label);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_beta

template <typename In, typename T>
__device__ __forceinline__ void beta(const BetaParams<In, T>& p) {
    const int b = static_cast<int>(blockIdx.x);
    if (b >= p.N) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    const T ninf = -Limits<T>::inf();
    const int L = p.tgt_len[b];
    const int T_b = p.in_len[b];
    if (!usable(L, T_b, p.max_time, p.lmax, p.width, T_b, p.alpha_rows)) return;
    const T nll_b = p.nll[b];
    // No posteriors needed: no frame, no alignment, or a gradient that is all 0 or NaN.
    if (T_b == 0 || L > T_b || nll_b != nll_b || nll_b == Limits<T>::inf()) return;

    const int s_prime = 2 * L + 1;
    const int* lab = p.labels + static_cast<long long>(b) * p.lmax;
    const In* lp_b = p.log_probs + static_cast<long long>(b) * p.sn;
    // The alpha table: the sweep replaces each state's log_alpha (dead once the state's
    // posterior is known) with that posterior.
    T* table = p.log_alpha + static_cast<long long>(b) * p.alpha_rows * p.width;
    T* log_beta = p.work + static_cast<long long>(b) * 2 * p.width;
    const long long sc = p.sc;

    // Row t of beta from row t + 1 (a ring of two rows). One barrier per frame: row t + 1 is
    // complete before row t is computed, and read completely before frame t - 1 overwrites it.
    for (int t = T_b - 1; t >= 0; --t) {
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const In* lp = lp_b + static_cast<long long>(t) * p.st;
        const T* sh = frame_shift(p.shift, p.max_time, b, t);
        T* row = table + static_cast<long long>(t) * p.width;  // alpha_rows >= T_b
        T* cur = log_beta + (t & 1) * p.width;
        const T* nxt = log_beta + ((t + 1) & 1) * p.width;
        const int nlo = window_lo(t + 1, T_b, s_prime);
        const int nhi = window_hi(t + 1, s_prime);
        for (int s = lo + tid; s < hi; s += nth) {
            const int k = s >> 1;
            const int c = (s & 1) ? lab[k] : p.blank;  // target_prime(s)
            const T e = log_prob(lp, c * sc, sh);
            T v;
            if (t == T_b - 1) {
                // log_beta[T_b-1][S'-1] = lp[blank], log_beta[T_b-1][S'-2] = lp[l[L-1]].
                v = e;
            } else {
                const T b1 = (s >= nlo && s < nhi) ? nxt[s] : ninf;
                const T b2 = (s + 1 >= nlo && s + 1 < nhi) ? nxt[s + 1] : ninf;
                if ((s & 1) && k + 1 < L && lab[k + 1] != c) {
                    // Skip rule for s + 2.
                    const T b3 = (s + 2 >= nlo && s + 2 < nhi) ? nxt[s + 2] : ninf;
                    v = log_add_exp3(b1, b2, b3) + e;
                } else {
                    v = log_add_exp(b1, b2) + e;
                }
            }
            cur[s] = v;
            row[s] = ctc_exp(row[s] + v + nll_b - e);
        }
        __syncthreads();
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_grad

template <typename In, typename T>
__device__ __forceinline__ void grad(const GradParams<In, T>& p) {
    const long long block = blockIdx.x;
    if (block >= static_cast<long long>(p.N) * p.chunks) return;
    const int b = static_cast<int>(block / p.chunks);
    const int chunk = static_cast<int>(block % p.chunks);
    const int t0 = static_cast<int>(imin_ll(static_cast<long long>(chunk) * p.frames, p.max_time));
    const int t1 = static_cast<int>(imin_ll(static_cast<long long>(t0) + p.frames, p.max_time));
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    const int C = p.C;
    const int L = p.tgt_len[b];
    const int T_b = p.in_len[b];
    // The gradient's elements are addressed from the sample's origin; rows and classes
    // through store_real (the output may be float32 for half inputs).
    void* grad_b = p.grad;
    const long long gb = static_cast<long long>(b) * p.gn;

    if (!usable(L, T_b, p.max_time, p.lmax, p.width, T_b, p.alpha_rows)) {
        fill_rows(grad_b, p.grad_dtype, gb, p.gt, p.gc, t0, t1, C, Limits<T>::nan());
        return;
    }
    fill_rows(grad_b, p.grad_dtype, gb, p.gt, p.gc, imax(t0, T_b), t1, C, T(0));
    const int t_end = imin(t1, T_b);  // the frames of this block with a gradient
    if (t_end <= t0) return;
    const T nll_b = p.nll[b];
    if (p.zero_infinity && nll_b == Limits<T>::inf()) {
        fill_rows(grad_b, p.grad_dtype, gb, p.gt, p.gc, t0, t_end, C, T(0));
        return;
    }
    if (nll_b != nll_b || nll_b == Limits<T>::inf()) {
        // torch's formula: lcab + nll - lp is NaN for every class of every frame below T_b.
        fill_rows(grad_b, p.grad_dtype, gb, p.gt, p.gc, t0, t_end, C, Limits<T>::nan());
        return;
    }

    // g_b, the upstream gradient of the sample's loss.
    const long long g_at = p.reduction == 0 ? static_cast<long long>(b) * p.grad_loss_stride : 0;
    T g = p.grad_loss == nullptr ? T(1) : load_real<T>(p.grad_loss, p.grad_loss_dtype, g_at);
    if (p.reduction == 1) g = g / static_cast<T>(p.N) / static_cast<T>(imax(L, 1));

    // Every (t, c) of the block's frames on its own, each written once. P_c adds the posteriors
    // of the window's states that emit c in increasing state: the even states for the blank,
    // the chain of repeats from class_head for a label class, none otherwise.
    const int s_prime = 2 * L + 1;
    const int* next = p.next_same + static_cast<long long>(b) * p.lmax;
    const int* head = p.class_head + static_cast<long long>(b) * C;
    const In* lp_b = p.log_probs + static_cast<long long>(b) * p.sn;
    const bool logits = p.shift != nullptr;
    const T* table = p.log_alpha + static_cast<long long>(b) * p.alpha_rows * p.width;
    const long long count = static_cast<long long>(t_end - t0) * C;
    const bool narrow = count <= 0x7fffffffLL;
    for (long long i = tid; i < count; i += nth) {
        int t, c;
        if (narrow) {
            // 32-bit division where it suffices (the common case).
            t = t0 + static_cast<int>(static_cast<unsigned>(i) / static_cast<unsigned>(C));
            c = static_cast<int>(static_cast<unsigned>(i) % static_cast<unsigned>(C));
        } else {
            t = t0 + static_cast<int>(i / C);
            c = static_cast<int>(i % C);
        }
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const T* post = table + static_cast<long long>(t) * p.width;
        T mass = T(0);
        if (c == p.blank) {
            for (int s = lo + (lo & 1); s < hi; s += 2) mass = mass + post[s];
        } else {
            for (int k = head[c]; k >= 0; k = next[k]) {
                const int s = 2 * k + 1;
                if (s >= hi) break;
                if (s >= lo) mass = mass + post[s];
            }
        }
        const T lp = log_prob(lp_b, static_cast<long long>(t) * p.st + c * p.sc,
                              frame_shift(p.shift, p.max_time, b, t));
        store_real(grad_b, p.grad_dtype, gb + static_cast<long long>(t) * p.gt + c * p.gc,
                   grad_value(lp, mass, g, p.exact != 0, logits));
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_reduce

template <typename T> __device__ __forceinline__ void reduce(const ReduceParams<T>& p) {
    __shared__ double chunk[CTC_GRID_THREADS];
    if (blockIdx.x != 0) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    if (p.reduction == 0) {
        for (int b = tid; b < p.N; b += nth) {
            const T v = p.nll[b];
            store_real(p.loss, p.loss_dtype, static_cast<long long>(b) * p.loss_stride,
                       (p.zero_infinity && v == Limits<T>::inf()) ? T(0) : v);
        }
        return;
    }
    // The block stages a chunk of terms in shared memory; thread 0 adds them in increasing b.
    double total = -0.0;
    for (int base = 0; base < p.N; base += nth) {
        const int b = base + tid;
        if (b < p.N) {
            const T v = p.nll[b];
            double x = (p.zero_infinity && v == Limits<T>::inf()) ? 0.0 : static_cast<double>(v);
            if (p.reduction == 1) x = x / static_cast<double>(imax(p.tgt_len[b], 1));
            chunk[tid] = x;
        }
        __syncthreads();
        if (tid == 0) {
            const int m = imin(nth, p.N - base);
            for (int i = 0; i < m; ++i) total = total + chunk[i];
        }
        __syncthreads();
    }
    if (tid == 0) {
        const T value = static_cast<T>(p.reduction == 1 ? total / static_cast<double>(p.N) : total);
        store_real(p.loss, p.loss_dtype, 0, value);
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_align (see "Forced alignment" above)

/// One sample of an alignment: its log-probabilities, labels and tables.
template <typename In, typename T> struct AlignSample {
    const In* lp;           // [t][c] at t * st + c * sc
    const T* shift;         // the sample's frame shifts (logits), or NULL
    const int* lab;         // L labels
    T* rows;                // the ring: 2 rows of width
    T* checkpoints;         // checkpoint_rows rows of width
    unsigned char* codes;   // segment rows of code_row bytes
    int L;
    int T_b;
    int s_prime;
};

/// delta of a state and its back-pointer (0 stay, 1 from s - 1, 2 from s - 2); for the end of
/// the path, its best score and final state.
template <typename T> struct Cell {
    T value;
    int code;
};

/// Whether sample (L, T_b) runs the recurrence: valid, 1 <= T_b, L <= T_b (else it has no
/// alignment), and within the label capacity, the row width, the code row and the checkpoint
/// rows (ceil(T_b / K) of them).
template <typename In, typename T>
__device__ __forceinline__ bool alignable(const AlignParams<In, T>& p, int L, int T_b) {
    if (L < 0 || T_b < 1 || T_b > p.max_time || L > T_b || p.segment < 1) return false;
    const long long s_prime = 2LL * L + 1;
    return L <= p.lmax && p.width >= s_prime && 4 * p.code_row >= s_prime &&
           (T_b - 1) / p.segment < p.checkpoint_rows;
}

template <typename In, typename T>
__device__ __forceinline__ AlignSample<In, T> align_sample(const AlignParams<In, T>& p, int b, int L,
                                                      int T_b) {
    AlignSample<In, T> a;
    a.lp = p.log_probs + static_cast<long long>(b) * p.sn;
    a.shift = frame_shift(p.shift, p.max_time, b, 0);
    a.lab = p.labels + static_cast<long long>(b) * p.lmax;
    a.rows = p.rows + static_cast<long long>(b) * 2 * p.width;
    a.checkpoints = p.checkpoints + static_cast<long long>(b) * p.checkpoint_rows * p.width;
    a.codes = p.codes + static_cast<long long>(b) * p.segment * p.code_row;
    a.L = L;
    a.T_b = T_b;
    a.s_prime = 2 * L + 1;
    return a;
}

/// target_prime(s): the blank for even states, label s / 2 for odd ones.
template <typename In, typename T>
__device__ __forceinline__ int target_class(const AlignParams<In, T>& p, const AlignSample<In, T>& a,
                                            int s) {
    return (s & 1) ? a.lab[s >> 1] : p.blank;
}

/// lp[t][target_prime(s)].
template <typename In, typename T>
__device__ __forceinline__ T emission(const AlignParams<In, T>& p, const AlignSample<In, T>& a, int t,
                                      int s) {
    const long long c = target_class(p, a, s);
    const T* sh = a.shift == nullptr ? nullptr : a.shift + 2LL * t;
    return log_prob(a.lp, static_cast<long long>(t) * p.st + c * p.sc, sh);
}

/// Row t of the forward sweep: a checkpoint for t = 0, K, 2K, ..., else the ring.
template <typename In, typename T>
__device__ __forceinline__ T* forward_row(const AlignParams<In, T>& p, const AlignSample<In, T>& a,
                                          int t) {
    if (t % p.segment == 0) return a.checkpoints + static_cast<long long>(t / p.segment) * p.width;
    return a.rows + static_cast<long long>(t & 1) * p.width;
}

/// The step of state s at a frame t >= 1 from `prev`, the row of frame t - 1 (its window
/// [plo, phi); every other state is -inf), with emission e, by the tie rule as
/// src/cpu/align.rs writes it (blank_step, label_step): a comparison and an addition, nothing
/// an FMA could contract.
template <typename T>
__device__ __forceinline__ Cell<T> viterbi_cell(const T* prev, int plo, int phi, const int* lab,
                                                int s, T e) {
    const T ninf = -Limits<T>::inf();
    const T x0 = (s >= plo && s < phi) ? prev[s] : ninf;
    const T x1 = (s - 1 >= plo && s - 1 < phi) ? prev[s - 1] : ninf;
    if (!(s & 1)) {
        const bool take = x1 > x0;
        return Cell<T>{(take ? x1 : x0) + e, take ? 1 : 0};
    }
    const int k = s >> 1;
    const bool skip = k >= 1 && lab[k - 1] != lab[k];
    const T x2 = (skip && s - 2 >= plo && s - 2 < phi) ? prev[s - 2] : ninf;
    const bool two = x2 > x1 && x2 > x0;
    const bool one = !two && x1 > x0;
    const T best = two ? x2 : (one ? x1 : x0);
    return Cell<T>{best + e, two ? 2 : (one ? 1 : 0)};
}

/// delta over frames 0 .. T_b - 1, keeping the rows of frames 0, K, 2K, ... One barrier per
/// frame: row t - 1 is complete before row t is computed, and read completely before frame
/// t + 1 overwrites its ring slot.
template <typename In, typename T>
__device__ __forceinline__ void viterbi_forward(const AlignParams<In, T>& p, const AlignSample<In, T>& a) {
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    for (int t = 0; t < a.T_b; ++t) {
        const int lo = window_lo(t, a.T_b, a.s_prime);
        const int hi = window_hi(t, a.s_prime);
        T* cur = forward_row(p, a, t);
        if (t == 0) {
            // delta[0][0] = lp[0][blank], delta[0][1] = lp[0][l[0]].
            for (int s = lo + tid; s < hi; s += nth) cur[s] = emission(p, a, 0, s);
        } else {
            const T* prev = forward_row(p, a, t - 1);
            const int plo = window_lo(t - 1, a.T_b, a.s_prime);
            const int phi = window_hi(t - 1, a.s_prime);
            for (int s = lo + tid; s < hi; s += nth)
                cur[s] = viterbi_cell(prev, plo, phi, a.lab, s, emission(p, a, t, s)).value;
        }
        __syncthreads();
    }
}

/// The end of the path at frame T_b - 1 (value: its score, code: its state): the last label
/// unless the final blank is strictly better (a state outside the window is -inf).
template <typename In, typename T>
__device__ __forceinline__ Cell<T> path_end(const AlignParams<In, T>& p, const AlignSample<In, T>& a) {
    const int t = a.T_b - 1;
    const int hi = window_hi(t, a.s_prime);
    const T* last = forward_row(p, a, t);
    const T blank = a.s_prime - 1 < hi ? last[a.s_prime - 1] : -Limits<T>::inf();
    if (a.L > 0) {
        const T label = last[a.s_prime - 2];  // always in the window when L <= T_b
        if (!(blank > label)) return Cell<T>{label, a.s_prime - 2};
    }
    return Cell<T>{blank, a.s_prime - 1};
}

/// Frames first + 1 ..= last again, from the checkpoint of frame first (a multiple of K), into
/// the ring, with the back-pointers of each frame in the segment's code row t - first - 1. One
/// thread owns a code byte (four states), so no byte has two writers.
template <typename In, typename T>
__device__ __forceinline__ void recompute_segment(const AlignParams<In, T>& p,
                                                  const AlignSample<In, T>& a, int first, int last) {
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    for (int t = first + 1; t <= last; ++t) {
        const T* prev = t - 1 == first
                            ? a.checkpoints + static_cast<long long>(first / p.segment) * p.width
                            : a.rows + static_cast<long long>((t - 1) & 1) * p.width;
        T* cur = a.rows + static_cast<long long>(t & 1) * p.width;
        unsigned char* codes = a.codes + static_cast<long long>(t - first - 1) * p.code_row;
        const int lo = window_lo(t, a.T_b, a.s_prime);
        const int hi = window_hi(t, a.s_prime);
        const int plo = window_lo(t - 1, a.T_b, a.s_prime);
        const int phi = window_hi(t - 1, a.s_prime);
        const int bytes_end = (hi >> 2) + ((hi & 3) != 0);
        for (int i = (lo >> 2) + tid; i < bytes_end; i += nth) {
            unsigned byte = 0;
            for (int j = 0; j < 4; ++j) {
                const int s = 4 * i + j;
                if (s < lo || s >= hi) continue;
                const Cell<T> c = viterbi_cell(prev, plo, phi, a.lab, s, emission(p, a, t, s));
                cur[s] = c.value;
                byte |= static_cast<unsigned>(c.code) << (2 * j);
            }
            codes[i] = static_cast<unsigned char>(byte);
        }
        __syncthreads();
    }
}

/// path[t][b] = v, int32 or int64.
template <typename In, typename T>
__device__ __forceinline__ void set_path(const AlignParams<In, T>& p, int b, long long t, long long v) {
    const long long at = t * p.path_st + static_cast<long long>(b) * p.path_sn;
    if (p.path_bytes == 8) {
        static_cast<long long*>(p.path)[at] = v;
    } else {
        static_cast<int*>(p.path)[at] = static_cast<int>(v);
    }
}

/// Thread 0: frames last down to first + 1 of the path from the segment's back-pointers, each
/// log-probability added to `score` in double; returns the state of frame first.
template <typename In, typename T>
__device__ __forceinline__ int walk_segment(const AlignParams<In, T>& p, const AlignSample<In, T>& a,
                                            int b, int first, int last, int state,
                                            double& score) {
    for (int t = last; t > first; --t) {
        set_path(p, b, t, target_class(p, a, state));
        score = score + static_cast<double>(emission(p, a, t, state));
        const unsigned char byte =
            a.codes[static_cast<long long>(t - first - 1) * p.code_row + (state >> 2)];
        state -= (byte >> (2 * (state & 3))) & 3;
        if (state < 0) state = 0;  // never taken (see "Forced alignment"); keeps reads inside
    }
    return state;
}

/// The path of frames T_b - 1 down to 0, ending in `state`, one segment at a time from the last;
/// returns its score (on thread 0; the other threads only recompute).
template <typename In, typename T>
__device__ __forceinline__ double read_back(const AlignParams<In, T>& p, const AlignSample<In, T>& a,
                                            int b, int state) {
    double score = 0.0;
    const int segments = (a.T_b - 1) / p.segment + ((a.T_b - 1) % p.segment != 0);
    for (int g = segments - 1; g >= 0; --g) {
        const int first = g * p.segment;  // < T_b - 1
        const int last = a.T_b - 1 - first > p.segment ? first + p.segment : a.T_b - 1;
        recompute_segment(p, a, first, last);
        if (threadIdx.x == 0) state = walk_segment(p, a, b, first, last, state, score);
        __syncthreads();  // the codes are read before the next segment overwrites them
    }
    if (threadIdx.x == 0) {
        set_path(p, b, 0, target_class(p, a, state));
        score = score + static_cast<double>(emission(p, a, 0, state));
    }
    return score;
}

/// Frames [from, max_time) of sample b get -1 (the block shares them); thread 0 writes the
/// score, rounded to T (the CPU's accumulator) and then to the output's type.
template <typename In, typename T>
__device__ __forceinline__ void finish_sample(const AlignParams<In, T>& p, int b, int from,
                                              double score) {
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    for (long long t = from + tid; t < p.max_time; t += nth) set_path(p, b, t, -1);
    if (tid != 0 || p.scores == nullptr) return;
    const T rounded = static_cast<T>(score);
    store_real(p.scores, p.scores_dtype, static_cast<long long>(b) * p.scores_stride, rounded);
}

template <typename In, typename T> __device__ __forceinline__ void align(const AlignParams<In, T>& p) {
    const int b = static_cast<int>(blockIdx.x);
    if (b >= p.N) return;
    const double no_alignment = -Limits<double>::inf();
    // Every thread reads the same values, so every branch below is uniform over the block.
    const int L = p.tgt_len[b];
    const int T_b = p.in_len[b];
    if (!alignable(p, L, T_b)) {
        // No frame and no label: the empty path, score 0. Else (invalid, L > T_b, or past the
        // capacities) no alignment.
        finish_sample(p, b, 0, L == 0 && T_b == 0 ? 0.0 : no_alignment);
        return;
    }
    const AlignSample<In, T> a = align_sample(p, b, L, T_b);
    viterbi_forward(p, a);
    const Cell<T> end = path_end(p, a);
    __syncthreads();  // every thread has read the last row before the read-back reuses the ring
    if (end.value == -Limits<T>::inf() || end.value != end.value) {
        finish_sample(p, b, 0, no_alignment);
        return;
    }
    const double score = read_back(p, a, b, end.code);
    finish_sample(p, b, T_b, score);
}

}  // namespace ctc_kernels

// ---------------------------------------------------------------------------------------------
// The entry points: unmangled names for cuModuleGetFunction, one struct parameter each.

extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)
    ctc_offsets(const OffsetsParams p) {
    ctc_kernels::offsets(p);
}

extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)
    ctc_prepare(const PrepareParams p) {
    ctc_kernels::prepare(p);
}

#define CTC_INPUT_KERNELS(In, T, SUFFIX)                                                        \
    extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)                              \
        ctc_shift_##SUFFIX(const ShiftParams<In, T> p) {                                        \
        ctc_kernels::shift<In, T>(p);                                                           \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_SWEEP_THREADS, 1)                             \
        ctc_alpha_##SUFFIX(const AlphaParams<In, T> p) {                                        \
        ctc_kernels::alpha<In, T>(p);                                                           \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_SWEEP_THREADS, 1)                             \
        ctc_beta_##SUFFIX(const BetaParams<In, T> p) {                                          \
        ctc_kernels::beta<In, T>(p);                                                            \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)                              \
        ctc_grad_##SUFFIX(const GradParams<In, T> p) {                                          \
        ctc_kernels::grad<In, T>(p);                                                            \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_SWEEP_THREADS, 1)                             \
        ctc_align_##SUFFIX(const AlignParams<In, T> p) {                                        \
        ctc_kernels::align<In, T>(p);                                                           \
    }

#define CTC_REDUCE_KERNEL(T, SUFFIX)                                                            \
    extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)                              \
        ctc_reduce_##SUFFIX(const ReduceParams<T> p) {                                          \
        ctc_kernels::reduce<T>(p);                                                              \
    }

CTC_INPUT_KERNELS(float, float, f32)
CTC_INPUT_KERNELS(double, double, f64)
CTC_INPUT_KERNELS(ctc_f16, float, f16)
CTC_INPUT_KERNELS(ctc_bf16, float, bf16)
CTC_REDUCE_KERNEL(float, f32)
CTC_REDUCE_KERNEL(double, f64)
