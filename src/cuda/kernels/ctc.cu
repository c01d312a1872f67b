// CTC loss kernels (torch.nn.functional.ctc_loss semantics) for the CUDA backend.
//
// Compiled at run time by NVRTC, so this file includes no header and uses only what NVRTC
// provides built in (expf, logf, exp, log, __int_as_float, __longlong_as_double,
// __syncthreads, __syncthreads_or). The same file compiles as C++20 on the
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
// host; any such value gives the same bits (no sum depends on it). No dynamic shared memory.
//
//   ctc_offsets                       1 block        concatenated targets only
//   ctc_prepare                       N blocks       block b: sample b
//   ctc_alpha_f32 / _f64              N blocks
//   ctc_beta_f32 / _f64               N blocks       only for a gradient
//   ctc_grad_f32 / _f64               N * chunks     block b * chunks + k: frames
//                                                    [k F, (k + 1) F) of sample b
//   ctc_reduce_f32 / _f64             1 block
//   ctc_align_f32 / _f64              N blocks       forced alignment (ctc_align)
//
// Run them in this order on one stream: offsets, prepare, alpha, then reduce and/or beta + grad
// (beta replaces log_alpha entries by posteriors, so run it after anything else reading them).
// Forced alignment runs offsets, prepare, align. Blocks past the grid's work return at once.
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
//
// ReduceParams (ctc_reduce_<t>)
//   loss, loss_stride            reduction none: loss[b*loss_stride] = nll_b (0 where
//                                zero_infinity and nll_b = +inf); sum: loss[0] = sum_b nll_b;
//                                mean: loss[0] = (1/N) sum_b nll_b / max(L_b, 1). The sum and
//                                the mean accumulate in double in increasing b, from -0.0 (as
//                                Rust's f64 `sum`), then round once to T.
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
//   scores, scores_stride, scores_bytes  (N,) float32 or float64 (4 or 8), [b] at
//                                b * scores_stride; NULL: not written
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
// N * 2 * width T (gradient); nll: N T. Nothing needs initializing.
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
// Forced alignment (ctc_align): the CPU's path and score, bit for bit
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
//   - the reduced loss: one thread, increasing b, in double.
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

template <typename T> struct AlphaParams {
    const T* log_probs;
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

template <typename T> struct BetaParams {
    const T* log_probs;
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

template <typename T> struct GradParams {
    const T* log_probs;
    const int* next_same;
    const int* class_head;
    const int* in_len;
    const int* tgt_len;
    const T* log_alpha;
    const T* nll;
    const T* grad_loss;
    T* grad;
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
};

template <typename T> struct ReduceParams {
    const T* nll;
    const int* tgt_len;
    T* loss;
    long long loss_stride;
    int N;
    int reduction;
    int zero_infinity;
};

template <typename T> struct AlignParams {
    const T* log_probs;
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
    int scores_bytes;
};

// Offsets and sizes, in bytes; src/cuda/launch.rs asserts the same numbers (T appears only
// behind pointers, so every instantiation of a template has the offsets of the float one).
// NVRTC has no offsetof: the offsets are checked by the host compilers (the emulation and the
// driver stand-in), the sizes by all.
#if defined(__CUDACC_RTC__)
#define CTC_FIELD(S, f, at) static_assert(true, "")
#else
#define CTC_FIELD(S, f, at) static_assert(__builtin_offsetof(S, f) == at, #S "." #f)
#endif
#define CTC_SIZE(S, n) static_assert(sizeof(S) == n, "sizeof " #S)
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
CTC_FIELD(AlphaParams<float>, log_probs, 0);
CTC_FIELD(AlphaParams<float>, labels, 8);
CTC_FIELD(AlphaParams<float>, in_len, 16);
CTC_FIELD(AlphaParams<float>, tgt_len, 24);
CTC_FIELD(AlphaParams<float>, log_alpha, 32);
CTC_FIELD(AlphaParams<float>, nll, 40);
CTC_FIELD(AlphaParams<float>, st, 48);
CTC_FIELD(AlphaParams<float>, sn, 56);
CTC_FIELD(AlphaParams<float>, sc, 64);
CTC_FIELD(AlphaParams<float>, width, 72);
CTC_FIELD(AlphaParams<float>, N, 80);
CTC_FIELD(AlphaParams<float>, max_time, 84);
CTC_FIELD(AlphaParams<float>, blank, 88);
CTC_FIELD(AlphaParams<float>, lmax, 92);
CTC_FIELD(AlphaParams<float>, alpha_rows, 96);
CTC_SIZE(AlphaParams<float>, 104);
CTC_FIELD(BetaParams<float>, log_probs, 0);
CTC_FIELD(BetaParams<float>, labels, 8);
CTC_FIELD(BetaParams<float>, in_len, 16);
CTC_FIELD(BetaParams<float>, tgt_len, 24);
CTC_FIELD(BetaParams<float>, log_alpha, 32);
CTC_FIELD(BetaParams<float>, work, 40);
CTC_FIELD(BetaParams<float>, nll, 48);
CTC_FIELD(BetaParams<float>, st, 56);
CTC_FIELD(BetaParams<float>, sn, 64);
CTC_FIELD(BetaParams<float>, sc, 72);
CTC_FIELD(BetaParams<float>, width, 80);
CTC_FIELD(BetaParams<float>, N, 88);
CTC_FIELD(BetaParams<float>, max_time, 92);
CTC_FIELD(BetaParams<float>, blank, 96);
CTC_FIELD(BetaParams<float>, lmax, 100);
CTC_FIELD(BetaParams<float>, alpha_rows, 104);
CTC_SIZE(BetaParams<float>, 112);
CTC_FIELD(GradParams<float>, log_probs, 0);
CTC_FIELD(GradParams<float>, next_same, 8);
CTC_FIELD(GradParams<float>, class_head, 16);
CTC_FIELD(GradParams<float>, in_len, 24);
CTC_FIELD(GradParams<float>, tgt_len, 32);
CTC_FIELD(GradParams<float>, log_alpha, 40);
CTC_FIELD(GradParams<float>, nll, 48);
CTC_FIELD(GradParams<float>, grad_loss, 56);
CTC_FIELD(GradParams<float>, grad, 64);
CTC_FIELD(GradParams<float>, st, 72);
CTC_FIELD(GradParams<float>, sn, 80);
CTC_FIELD(GradParams<float>, sc, 88);
CTC_FIELD(GradParams<float>, width, 96);
CTC_FIELD(GradParams<float>, grad_loss_stride, 104);
CTC_FIELD(GradParams<float>, gt, 112);
CTC_FIELD(GradParams<float>, gn, 120);
CTC_FIELD(GradParams<float>, gc, 128);
CTC_FIELD(GradParams<float>, N, 136);
CTC_FIELD(GradParams<float>, max_time, 140);
CTC_FIELD(GradParams<float>, C, 144);
CTC_FIELD(GradParams<float>, blank, 148);
CTC_FIELD(GradParams<float>, lmax, 152);
CTC_FIELD(GradParams<float>, alpha_rows, 156);
CTC_FIELD(GradParams<float>, reduction, 160);
CTC_FIELD(GradParams<float>, zero_infinity, 164);
CTC_FIELD(GradParams<float>, frames, 168);
CTC_FIELD(GradParams<float>, chunks, 172);
CTC_FIELD(GradParams<float>, exact, 176);
CTC_SIZE(GradParams<float>, 184);
CTC_FIELD(ReduceParams<float>, nll, 0);
CTC_FIELD(ReduceParams<float>, tgt_len, 8);
CTC_FIELD(ReduceParams<float>, loss, 16);
CTC_FIELD(ReduceParams<float>, loss_stride, 24);
CTC_FIELD(ReduceParams<float>, N, 32);
CTC_FIELD(ReduceParams<float>, reduction, 36);
CTC_FIELD(ReduceParams<float>, zero_infinity, 40);
CTC_SIZE(ReduceParams<float>, 48);
CTC_FIELD(AlignParams<float>, log_probs, 0);
CTC_FIELD(AlignParams<float>, labels, 8);
CTC_FIELD(AlignParams<float>, in_len, 16);
CTC_FIELD(AlignParams<float>, tgt_len, 24);
CTC_FIELD(AlignParams<float>, rows, 32);
CTC_FIELD(AlignParams<float>, checkpoints, 40);
CTC_FIELD(AlignParams<float>, codes, 48);
CTC_FIELD(AlignParams<float>, path, 56);
CTC_FIELD(AlignParams<float>, scores, 64);
CTC_FIELD(AlignParams<float>, st, 72);
CTC_FIELD(AlignParams<float>, sn, 80);
CTC_FIELD(AlignParams<float>, sc, 88);
CTC_FIELD(AlignParams<float>, width, 96);
CTC_FIELD(AlignParams<float>, code_row, 104);
CTC_FIELD(AlignParams<float>, path_st, 112);
CTC_FIELD(AlignParams<float>, path_sn, 120);
CTC_FIELD(AlignParams<float>, scores_stride, 128);
CTC_FIELD(AlignParams<float>, N, 136);
CTC_FIELD(AlignParams<float>, max_time, 140);
CTC_FIELD(AlignParams<float>, blank, 144);
CTC_FIELD(AlignParams<float>, lmax, 148);
CTC_FIELD(AlignParams<float>, segment, 152);
CTC_FIELD(AlignParams<float>, checkpoint_rows, 156);
CTC_FIELD(AlignParams<float>, path_bytes, 160);
CTC_FIELD(AlignParams<float>, scores_bytes, 164);
CTC_SIZE(AlignParams<float>, 168);

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
/// grad_value, the same operations).
template <typename T> __device__ __forceinline__ T grad_value(T lp, T p, T g, bool exact) {
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

/// Writes `value` to grad[t][c] for t in [t0, t1), every class.
template <typename T>
__device__ __forceinline__ void fill_rows(T* grad_b, long long gt, long long gc, int t0, int t1,
                                          int C, T value) {
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    if (t1 <= t0 || C <= 0) return;
    const long long count = static_cast<long long>(t1 - t0) * C;
    for (long long i = tid; i < count; i += nth) {
        const long long t = t0 + i / C;
        const long long c = i % C;
        grad_b[t * gt + c * gc] = value;
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
// ctc_alpha

template <typename T> __device__ __forceinline__ void alpha(const AlphaParams<T>& p) {
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
    const T* lp_b = p.log_probs + static_cast<long long>(b) * p.sn;
    T* table = p.log_alpha + static_cast<long long>(b) * p.alpha_rows * p.width;
    const long long sc = p.sc;

    // One barrier per frame: row t - 1 is complete before row t is computed (with a ring of two
    // rows, row t - 1 is also read completely before frame t + 1 overwrites it).
    for (int t = 0; t < T_b; ++t) {
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const T* lp = lp_b + static_cast<long long>(t) * p.st;
        T* cur = table + static_cast<long long>(t % p.alpha_rows) * p.width;
        if (t == 0) {
            // log_alpha[0][0] = lp[0][blank], log_alpha[0][1] = lp[0][l[0]].
            for (int s = lo + tid; s < hi; s += nth) {
                const int c = (s & 1) ? lab[s >> 1] : p.blank;
                cur[s] = lp[c * sc];
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
                cur[s] = v + lp[c * sc];
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

template <typename T> __device__ __forceinline__ void beta(const BetaParams<T>& p) {
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
    const T* lp_b = p.log_probs + static_cast<long long>(b) * p.sn;
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
        const T* lp = lp_b + static_cast<long long>(t) * p.st;
        T* row = table + static_cast<long long>(t) * p.width;  // alpha_rows >= T_b
        T* cur = log_beta + (t & 1) * p.width;
        const T* nxt = log_beta + ((t + 1) & 1) * p.width;
        const int nlo = window_lo(t + 1, T_b, s_prime);
        const int nhi = window_hi(t + 1, s_prime);
        for (int s = lo + tid; s < hi; s += nth) {
            const int k = s >> 1;
            const int c = (s & 1) ? lab[k] : p.blank;  // target_prime(s)
            const T e = lp[c * sc];
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

template <typename T> __device__ __forceinline__ void grad(const GradParams<T>& p) {
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
    T* grad_b = p.grad + static_cast<long long>(b) * p.gn;

    if (!usable(L, T_b, p.max_time, p.lmax, p.width, T_b, p.alpha_rows)) {
        fill_rows(grad_b, p.gt, p.gc, t0, t1, C, Limits<T>::nan());
        return;
    }
    fill_rows(grad_b, p.gt, p.gc, imax(t0, T_b), t1, C, T(0));
    const int t_end = imin(t1, T_b);  // the frames of this block with a gradient
    if (t_end <= t0) return;
    const T nll_b = p.nll[b];
    if (p.zero_infinity && nll_b == Limits<T>::inf()) {
        fill_rows(grad_b, p.gt, p.gc, t0, t_end, C, T(0));
        return;
    }
    if (nll_b != nll_b || nll_b == Limits<T>::inf()) {
        // torch's formula: lcab + nll - lp is NaN for every class of every frame below T_b.
        fill_rows(grad_b, p.gt, p.gc, t0, t_end, C, Limits<T>::nan());
        return;
    }

    // g_b, the upstream gradient of the sample's loss.
    T g = p.grad_loss == nullptr
              ? T(1)
              : (p.reduction == 0 ? p.grad_loss[static_cast<long long>(b) * p.grad_loss_stride]
                                  : p.grad_loss[0]);
    if (p.reduction == 1) g = g / static_cast<T>(p.N) / static_cast<T>(imax(L, 1));

    // Every (t, c) of the block's frames on its own, each written once. P_c adds the posteriors
    // of the window's states that emit c in increasing state: the even states for the blank,
    // the chain of repeats from class_head for a label class, none otherwise.
    const int s_prime = 2 * L + 1;
    const int* next = p.next_same + static_cast<long long>(b) * p.lmax;
    const int* head = p.class_head + static_cast<long long>(b) * C;
    const T* lp_b = p.log_probs + static_cast<long long>(b) * p.sn;
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
        grad_b[static_cast<long long>(t) * p.gt + c * p.gc] =
            grad_value(lp_b[static_cast<long long>(t) * p.st + c * p.sc], mass, g, p.exact != 0);
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
            p.loss[static_cast<long long>(b) * p.loss_stride] =
                (p.zero_infinity && v == Limits<T>::inf()) ? T(0) : v;
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
        p.loss[0] = static_cast<T>(p.reduction == 1 ? total / static_cast<double>(p.N) : total);
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_align (see "Forced alignment" above)

/// One sample of an alignment: its log-probabilities, labels and tables.
template <typename T> struct AlignSample {
    const T* lp;            // [t][c] at t * st + c * sc
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
template <typename T>
__device__ __forceinline__ bool alignable(const AlignParams<T>& p, int L, int T_b) {
    if (L < 0 || T_b < 1 || T_b > p.max_time || L > T_b || p.segment < 1) return false;
    const long long s_prime = 2LL * L + 1;
    return L <= p.lmax && p.width >= s_prime && 4 * p.code_row >= s_prime &&
           (T_b - 1) / p.segment < p.checkpoint_rows;
}

template <typename T>
__device__ __forceinline__ AlignSample<T> align_sample(const AlignParams<T>& p, int b, int L,
                                                      int T_b) {
    AlignSample<T> a;
    a.lp = p.log_probs + static_cast<long long>(b) * p.sn;
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
template <typename T>
__device__ __forceinline__ int target_class(const AlignParams<T>& p, const AlignSample<T>& a,
                                            int s) {
    return (s & 1) ? a.lab[s >> 1] : p.blank;
}

/// lp[t][target_prime(s)].
template <typename T>
__device__ __forceinline__ T emission(const AlignParams<T>& p, const AlignSample<T>& a, int t,
                                      int s) {
    const long long c = target_class(p, a, s);
    return a.lp[static_cast<long long>(t) * p.st + c * p.sc];
}

/// Row t of the forward sweep: a checkpoint for t = 0, K, 2K, ..., else the ring.
template <typename T>
__device__ __forceinline__ T* forward_row(const AlignParams<T>& p, const AlignSample<T>& a,
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
template <typename T>
__device__ __forceinline__ void viterbi_forward(const AlignParams<T>& p, const AlignSample<T>& a) {
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
template <typename T>
__device__ __forceinline__ Cell<T> path_end(const AlignParams<T>& p, const AlignSample<T>& a) {
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
template <typename T>
__device__ __forceinline__ void recompute_segment(const AlignParams<T>& p,
                                                  const AlignSample<T>& a, int first, int last) {
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
template <typename T>
__device__ __forceinline__ void set_path(const AlignParams<T>& p, int b, long long t, long long v) {
    const long long at = t * p.path_st + static_cast<long long>(b) * p.path_sn;
    if (p.path_bytes == 8) {
        static_cast<long long*>(p.path)[at] = v;
    } else {
        static_cast<int*>(p.path)[at] = static_cast<int>(v);
    }
}

/// Thread 0: frames last down to first + 1 of the path from the segment's back-pointers, each
/// log-probability added to `score` in double; returns the state of frame first.
template <typename T>
__device__ __forceinline__ int walk_segment(const AlignParams<T>& p, const AlignSample<T>& a,
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
template <typename T>
__device__ __forceinline__ double read_back(const AlignParams<T>& p, const AlignSample<T>& a,
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
template <typename T>
__device__ __forceinline__ void finish_sample(const AlignParams<T>& p, int b, int from,
                                              double score) {
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    for (long long t = from + tid; t < p.max_time; t += nth) set_path(p, b, t, -1);
    if (tid != 0 || p.scores == nullptr) return;
    const T rounded = static_cast<T>(score);
    const long long at = static_cast<long long>(b) * p.scores_stride;
    if (p.scores_bytes == 8) {
        static_cast<double*>(p.scores)[at] = static_cast<double>(rounded);
    } else {
        static_cast<float*>(p.scores)[at] = static_cast<float>(rounded);
    }
}

template <typename T> __device__ __forceinline__ void align(const AlignParams<T>& p) {
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
    const AlignSample<T> a = align_sample(p, b, L, T_b);
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

#define CTC_FLOAT_KERNELS(T, SUFFIX)                                                            \
    extern "C" __global__ void __launch_bounds__(CTC_SWEEP_THREADS, 1)                             \
        ctc_alpha_##SUFFIX(const AlphaParams<T> p) {                                            \
        ctc_kernels::alpha<T>(p);                                                               \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_SWEEP_THREADS, 1)                             \
        ctc_beta_##SUFFIX(const BetaParams<T> p) {                                              \
        ctc_kernels::beta<T>(p);                                                                \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)                              \
        ctc_grad_##SUFFIX(const GradParams<T> p) {                                              \
        ctc_kernels::grad<T>(p);                                                                \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_GRID_THREADS, 1)                              \
        ctc_reduce_##SUFFIX(const ReduceParams<T> p) {                                          \
        ctc_kernels::reduce<T>(p);                                                              \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_SWEEP_THREADS, 1)                             \
        ctc_align_##SUFFIX(const AlignParams<T> p) {                                            \
        ctc_kernels::align<T>(p);                                                               \
    }

CTC_FLOAT_KERNELS(float, f32)
CTC_FLOAT_KERNELS(double, f64)
