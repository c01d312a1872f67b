// CTC loss kernels (torch.nn.functional.ctc_loss semantics) for the CUDA backend.
//
// Compiled at run time by NVRTC, so this file includes no header and uses only what NVRTC
// provides built in (expf, logf, exp, log, __int_as_float, __longlong_as_double,
// __syncthreads, __syncthreads_or). The same file compiles as C++20 on the host against
// tests/cuda_emu/emu.h, which emulates those built-ins (tests/cuda_emulation.rs), and
// tests/cuda/nvrtc_compile.py compiles it with NVRTC for sm_70, sm_80 and sm_90.
//
// The recurrence, the notation and the names (log_alpha, log_beta, target_prime, log_add_exp,
// T_b, L, S', nll, g_b) are those of src/algorithm.rs; the state window and the linear-space
// posteriors are those of src/cpu/fast.rs.
//
// =============================================================================================
// Kernels and launch configuration
// =============================================================================================
//
// Every kernel takes a 1-D block of blockDim.x threads, blockDim.x a power of two in [1, 1024]
// chosen by the host; any such value works and gives the same bits (no sum depends on it).
// No dynamic shared memory. Sizes are `int`, offsets `long long`.
//
//   ctc_prepare                          grid = N blocks (block b: sample b)
//   ctc_alpha_f32 / ctc_alpha_f64        grid = N blocks
//   ctc_backward_f32 / ctc_backward_f64  grid = N blocks
//   ctc_reduce_f32 / ctc_reduce_f64      grid = 1 block
//
// Run them in this order on one stream: prepare, alpha, then reduce and/or backward (both only
// read nll; backward overwrites log_alpha, so run it after anything else that reads the table).
// Blocks with blockIdx.x >= N return at once.
//
// Strides are in elements, never bytes, and may be any value (zero or negative included) that
// keeps the addressed elements inside the caller's tensor.
//
// ---------------------------------------------------------------------------------------------
// ctc_prepare(targets, targets_bytes, padded, targets_size, tn, ts,
//             input_lengths, input_lengths_bytes, il_stride,
//             target_lengths, target_lengths_bytes, tl_stride,
//             N, max_time, C, blank, lmax,
//             labels, next_same, is_first, class_head, in_len, tgt_len)
//
//   const void* targets          int32 or int64 labels (targets_bytes = 4 or 8)
//   int padded                   1: padded (N, S), element [b][j] at b*tn + j*ts
//                                0: concatenated (total,), element i at i*ts (tn unused)
//   long long targets_size       padded: S; concatenated: total (its number of elements)
//   long long tn, ts             element strides of the targets
//   const void* input_lengths    int32 or int64 (input_lengths_bytes = 4 or 8), [b] at
//                                b*il_stride (0 for the scalar of unbatched input)
//   const void* target_lengths   int32 or int64 (target_lengths_bytes), [b] at b*tl_stride
//   int N, max_time, C, blank    batch, the T of log_probs, classes, the blank class
//   int lmax                     label capacity per sample (>= 0): the host's bound on the
//                                target lengths (max L_b when known, else S or total)
//   int* labels     [N][lmax]    the sample's labels, compact
//   int* next_same  [N][lmax]    index of the next label of the same class, or -1
//   int* is_first   [N][lmax]    1 where label j is the first of its class in the sample
//   int* class_head [N][C]       index of the first label of class c, or -1
//   int* in_len     [N]          T_b, or -1 for an invalid sample
//   int* tgt_len    [N]          L_b, or -1 for an invalid sample (this is the sample status)
//
//   Entries j >= L_b of labels/next_same/is_first and every entry of an invalid sample other
//   than in_len/tgt_len are left unwritten.
//
// ---------------------------------------------------------------------------------------------
// ctc_alpha_<t>(log_probs, st, sn, sc, N, max_time, blank,
//               labels, in_len, tgt_len, lmax,
//               log_alpha, alpha_rows, width, nll)
//
//   const T* log_probs           (T, N, C): element [t][b][c] at t*st + b*sn + c*sc
//   int N, max_time, blank       as above
//   const int* labels, in_len, tgt_len, int lmax    ctc_prepare's output and capacity
//   T* log_alpha  [N][alpha_rows][width]  row t of sample b at (b*alpha_rows + t % alpha_rows)
//                                * width, state s at offset s; width >= 2*lmax + 1 (any larger
//                                value, e.g. rounded up for alignment, works).
//                                alpha_rows >= max_b T_b (e.g. max_time) when ctc_backward
//                                follows; alpha_rows = 2 for the loss alone (a ring of two rows).
//   T* nll        [N]            the negative log-likelihood of each sample
//
// ---------------------------------------------------------------------------------------------
// ctc_backward_<t>(log_probs, st, sn, sc, N, max_time, C, blank,
//                  labels, next_same, class_head, in_len, tgt_len, lmax,
//                  log_alpha, alpha_rows, width, work, nll,
//                  grad_loss, grad_loss_stride, reduction, zero_infinity,
//                  grad, gt, gn, gc)
//
//   log_probs ... lmax           as above (C: the number of classes)
//   T* log_alpha, int alpha_rows, long long width   ctc_alpha's table, alpha_rows >= T_b for
//                                every sample (else that sample gets NaN). Consumed: each
//                                state's entry is replaced by its posterior.
//   T* work       [N][2][width]  two rows of log_beta (frame t in row t % 2)
//   const T* nll  [N]            ctc_alpha's output
//   const T* grad_loss           the upstream gradient, or NULL for 1: reduction none: [b] at
//                                b*grad_loss_stride; sum and mean: the scalar grad_loss[0]
//   int reduction                0 none, 1 mean, 2 sum
//   int zero_infinity            0 or 1
//   T* grad                      (T, N, C): element [t][b][c] at t*gt + b*gn + c*gc; every
//                                element with t < max_time is written exactly once (no memset
//                                needed), nothing else (gaps between strided elements stay)
//
// ---------------------------------------------------------------------------------------------
// ctc_reduce_<t>(nll, tgt_len, N, reduction, zero_infinity, loss, loss_stride)
//
//   T* loss                      reduction none: loss[b*loss_stride] = nll_b (0 where
//                                zero_infinity and nll_b = +inf); sum: loss[0] = sum_b nll_b;
//                                mean: loss[0] = (1/N) sum_b nll_b / max(L_b, 1). The sum and
//                                the mean accumulate in double in increasing b, from -0.0 (as
//                                Rust's f64 `sum`), then round once to T.
//
// Host-side preconditions (trusted, not checked): 0 <= blank < C; lmax < 2^30 (so that state
// indices 2 lmax + 3 fit an int); N, max_time, C <= 2^31 - 1; the strides address elements
// inside the tensors for every t < max_time, b < N, c < C (and j < S for padded targets);
// alpha_rows >= 1 and width >= 2 lmax + 1.
//
// Workspace, in elements: labels, next_same, is_first: N * lmax int32 each; class_head: N * C
// int32; in_len, tgt_len: N int32 each; log_alpha: N * alpha_rows * width T; work: N * 2 * width
// T; nll: N T. Nothing needs initializing.
//
// =============================================================================================
// Invalid device-side values
// =============================================================================================
//
// The host may pass lengths and targets it has not read. ctc_prepare marks sample b invalid
// (in_len[b] = tgt_len[b] = -1) when any of these holds:
//   - input_length < 0 or input_length > max_time;
//   - target_length < 0 or target_length > lmax;
//   - padded targets: target_length > S;
//   - concatenated targets: the target length of an earlier sample is negative (the offset of
//     sample b is then undefined, so every later sample is invalid too), or
//     offset_b + target_length > total, where offset_b = sum of the earlier target lengths;
//   - a label outside [0, C) or equal to blank.
// An invalid sample gets nll = NaN, loss NaN (so the sum and the mean are NaN too) and a NaN
// gradient over its whole (max_time, C) slice. The other samples keep the bits they would have
// with valid values there (concatenated targets: through the offsets, a wrong length moves the
// labels of every later sample). No kernel reads or writes outside the tensors and the
// workspace described above, whatever the device-side values: only the host arguments (sizes,
// strides, capacities) are trusted.
//
// =============================================================================================
// Determinism
// =============================================================================================
//
// No atomics. Every sum has a fixed order that depends neither on the schedule nor on
// blockDim.x, so results are bitwise identical from run to run and for every block size:
//   - concatenated offsets: an integer sum (exact in any order), a shared-memory tree;
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
//     the states emitting c (0 if none), NaN where lp[t][c] = -inf; t >= T_b: 0.
//   - nll = +inf with zero_infinity: the sample's whole gradient is 0 (and its loss 0).
//     nll = +inf or NaN otherwise: NaN for t < T_b (every class), 0 for t >= T_b.
//   - g_b = grad_loss[b] (none), grad_loss[0] (sum), grad_loss[0] / N / max(L_b, 1) (mean),
//     computed in T; grad_loss = NULL means 1.
//   - nll = -inf (only from +inf log-probabilities) follows the same linear-space formula, whose
//     inf - inf cases may differ from torch's log-space lcab (torch's result is NaN/inf noise
//     there as well).

#define CTC_MAX_THREADS 1024

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
/// -inf + inf there).
template <typename T> __device__ __forceinline__ T grad_value(T lp, T p, T g) {
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

// ---------------------------------------------------------------------------------------------
// ctc_prepare

__device__ __forceinline__ void prepare(const void* targets, int targets_bytes, int padded,
                                        long long targets_size, long long tn, long long ts,
                                        const void* input_lengths, int input_lengths_bytes,
                                        long long il_stride, const void* target_lengths,
                                        int target_lengths_bytes, long long tl_stride, int N,
                                        int max_time, int C, int blank, int lmax, int* labels,
                                        int* next_same, int* is_first, int* class_head,
                                        int* in_len, int* tgt_len) {
    __shared__ unsigned long long offset_part[CTC_MAX_THREADS];
    const int b = static_cast<int>(blockIdx.x);
    if (b >= N) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);

    // Every thread reads the same two lengths, so every branch below is uniform over the block.
    const long long input_length =
        load_int(input_lengths, input_lengths_bytes, static_cast<long long>(b) * il_stride);
    const long long L =
        load_int(target_lengths, target_lengths_bytes, static_cast<long long>(b) * tl_stride);
    bool ok = input_length >= 0 && input_length <= max_time && L >= 0 && L <= lmax;

    unsigned long long offset = 0;
    if (padded) {
        ok = ok && L <= targets_size;
    } else {
        // offset_b = sum of the earlier target lengths: an integer sum, exact in any order.
        unsigned long long part = 0;
        int negative = 0;
        for (int i = tid; i < b; i += nth) {
            const long long v = load_int(target_lengths, target_lengths_bytes,
                                         static_cast<long long>(i) * tl_stride);
            if (v < 0) {
                negative = 1;
            } else {
                const unsigned long long u = static_cast<unsigned long long>(v);
                part = sat_add(part, u > CTC_LENGTH_CAP ? CTC_LENGTH_CAP : u);
            }
        }
        offset_part[tid] = part;
        negative = __syncthreads_or(negative);
        for (int half = nth / 2; half > 0; half /= 2) {
            if (tid < half) offset_part[tid] = sat_add(offset_part[tid], offset_part[tid + half]);
            __syncthreads();
        }
        offset = offset_part[0];
        const unsigned long long total =
            targets_size > 0 ? static_cast<unsigned long long>(targets_size) : 0ULL;
        ok = ok && !negative && offset <= total &&
             static_cast<unsigned long long>(L) <= total - offset;
    }

    // The labels: read only when the sample's range lies inside the targets.
    int bad = 0;
    int* lab = labels + static_cast<long long>(b) * lmax;
    if (ok) {
        for (int j = tid; j < L; j += nth) {
            const long long at = padded ? static_cast<long long>(b) * tn + j * ts
                                        : (static_cast<long long>(offset) + j) * ts;
            const long long c = load_int(targets, targets_bytes, at);
            const bool good = c >= 0 && c < C && c != blank;
            if (!good) bad = 1;
            lab[j] = good ? static_cast<int>(c) : 0;
        }
    }
    // Also the barrier that makes the labels visible to the whole block (and that keeps the
    // offset tree's reads of offset_part before any later use of it).
    bad = __syncthreads_or(bad);
    ok = ok && !bad;
    if (tid == 0) {
        in_len[b] = ok ? static_cast<int>(input_length) : -1;
        tgt_len[b] = ok ? static_cast<int>(L) : -1;
    }
    if (!ok) return;

    // Repeats of a class form a chain in increasing index: next_same links it, is_first marks
    // its head and class_head maps the class to the head. Each non-head is the next of exactly
    // one label and each class has one head, so every element has a single writer.
    const int len = static_cast<int>(L);
    int* next = next_same + static_cast<long long>(b) * lmax;
    int* first = is_first + static_cast<long long>(b) * lmax;
    int* head = class_head + static_cast<long long>(b) * C;
    for (int j = tid; j < len; j += nth) {
        const int c = lab[j];
        int k = j + 1;
        while (k < len && lab[k] != c) ++k;
        next[j] = k < len ? k : -1;
        first[j] = 1;
    }
    for (int c = tid; c < C; c += nth) head[c] = -1;
    __syncthreads();
    for (int j = tid; j < len; j += nth) {
        const int k = next[j];
        if (k >= 0) first[k] = 0;
    }
    __syncthreads();
    for (int j = tid; j < len; j += nth) {
        if (first[j]) head[lab[j]] = j;
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_alpha

template <typename T>
__device__ __forceinline__ void alpha(const T* log_probs, long long st, long long sn, long long sc,
                                      int N, int max_time, int blank, const int* labels,
                                      const int* in_len, const int* tgt_len, int lmax,
                                      T* log_alpha, int alpha_rows, long long width, T* nll) {
    const int b = static_cast<int>(blockIdx.x);
    if (b >= N) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    const T ninf = -Limits<T>::inf();
    const int L = tgt_len[b];
    const int T_b = in_len[b];

    const bool valid = L >= 0 && L <= lmax && T_b >= 0 && T_b <= max_time &&
                       (alpha_rows >= 2 || (alpha_rows == 1 && T_b <= 1)) &&
                       width >= 2 * static_cast<long long>(L) + 1;
    if (!valid) {
        if (tid == 0) nll[b] = Limits<T>::nan();
        return;
    }
    if (T_b == 0) {
        if (tid == 0) nll[b] = L == 0 ? T(0) : Limits<T>::inf();
        return;
    }
    if (L > T_b) {
        // Every window is empty: no alignment exists.
        if (tid == 0) nll[b] = Limits<T>::inf();
        return;
    }

    const int s_prime = 2 * L + 1;
    const int* lab = labels + static_cast<long long>(b) * lmax;
    const T* lp_b = log_probs + static_cast<long long>(b) * sn;
    T* table = log_alpha + static_cast<long long>(b) * alpha_rows * width;

    // One barrier per frame: row t - 1 is complete before row t is computed (with a ring of two
    // rows, row t - 1 is also read completely before frame t + 1 overwrites it).
    for (int t = 0; t < T_b; ++t) {
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const T* lp = lp_b + static_cast<long long>(t) * st;
        T* cur = table + static_cast<long long>(t % alpha_rows) * width;
        if (t == 0) {
            // log_alpha[0][0] = lp[0][blank], log_alpha[0][1] = lp[0][l[0]].
            for (int s = lo + tid; s < hi; s += nth) {
                const int c = (s & 1) ? lab[s >> 1] : blank;
                cur[s] = lp[c * sc];
            }
        } else {
            const T* prev = table + static_cast<long long>((t - 1) % alpha_rows) * width;
            const int plo = window_lo(t - 1, T_b, s_prime);
            const int phi = window_hi(t - 1, s_prime);
            for (int s = lo + tid; s < hi; s += nth) {
                const T a1 = (s >= plo && s < phi) ? prev[s] : ninf;
                const T a2 = (s - 1 >= plo && s - 1 < phi) ? prev[s - 1] : ninf;
                int c = blank;  // target_prime(s)
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
        const T* last = table + static_cast<long long>(t % alpha_rows) * width;
        const T a_end = (s_prime - 1 >= lo && s_prime - 1 < hi) ? last[s_prime - 1] : ninf;
        if (L == 0) {
            nll[b] = -a_end;
        } else {
            const T a_label = (s_prime - 2 >= lo && s_prime - 2 < hi) ? last[s_prime - 2] : ninf;
            nll[b] = -log_add_exp(a_end, a_label);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_backward

template <typename T>
__device__ __forceinline__ void backward(const T* log_probs, long long st, long long sn,
                                         long long sc, int N, int max_time, int C, int blank,
                                         const int* labels, const int* next_same,
                                         const int* class_head, const int* in_len,
                                         const int* tgt_len, int lmax, T* log_alpha,
                                         int alpha_rows, long long width, T* work, const T* nll,
                                         const T* grad_loss, long long grad_loss_stride,
                                         int reduction, int zero_infinity, T* grad, long long gt,
                                         long long gn, long long gc) {
    const int b = static_cast<int>(blockIdx.x);
    if (b >= N) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    const T ninf = -Limits<T>::inf();
    const int L = tgt_len[b];
    const int T_b = in_len[b];
    T* grad_b = grad + static_cast<long long>(b) * gn;

    const bool valid = L >= 0 && L <= lmax && T_b >= 0 && T_b <= max_time &&
                       T_b <= alpha_rows && width >= 2 * static_cast<long long>(L) + 1;
    if (!valid) {
        fill_rows(grad_b, gt, gc, 0, max_time, C, Limits<T>::nan());
        return;
    }
    fill_rows(grad_b, gt, gc, T_b, max_time, C, T(0));
    const T nll_b = nll[b];
    if (T_b == 0 || (zero_infinity && nll_b == Limits<T>::inf())) {
        fill_rows(grad_b, gt, gc, 0, T_b, C, T(0));
        return;
    }
    if (nll_b != nll_b || nll_b == Limits<T>::inf()) {
        // torch's formula: lcab + nll - lp is NaN for every class of every frame below T_b.
        fill_rows(grad_b, gt, gc, 0, T_b, C, Limits<T>::nan());
        return;
    }

    // g_b, the upstream gradient of the sample's loss.
    T g = grad_loss == nullptr
              ? T(1)
              : (reduction == 0 ? grad_loss[static_cast<long long>(b) * grad_loss_stride]
                                : grad_loss[0]);
    if (reduction == 1) g = g / static_cast<T>(N) / static_cast<T>(imax(L, 1));

    const int s_prime = 2 * L + 1;
    const int* lab = labels + static_cast<long long>(b) * lmax;
    const int* next = next_same + static_cast<long long>(b) * lmax;
    const int* head = class_head + static_cast<long long>(b) * C;
    const T* lp_b = log_probs + static_cast<long long>(b) * sn;
    // The alpha table: the sweep replaces each state's log_alpha (dead once the state's
    // posterior is known) with that posterior.
    T* table = log_alpha + static_cast<long long>(b) * alpha_rows * width;
    T* log_beta = work + static_cast<long long>(b) * 2 * width;

    // The beta sweep: row t of beta from row t + 1 (a ring of two rows), and each state's
    // posterior exp(log_alpha + log_beta + nll - lp). One barrier per frame: row t + 1 is
    // complete before row t is computed, and read completely before frame t - 1 overwrites it.
    for (int t = T_b - 1; t >= 0; --t) {
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const T* lp = lp_b + static_cast<long long>(t) * st;
        T* row = table + static_cast<long long>(t) * width;  // alpha_rows >= T_b
        T* cur = log_beta + (t & 1) * width;
        const T* nxt = log_beta + ((t + 1) & 1) * width;
        const int nlo = window_lo(t + 1, T_b, s_prime);
        const int nhi = window_hi(t + 1, s_prime);
        for (int s = lo + tid; s < hi; s += nth) {
            const int k = s >> 1;
            const int c = (s & 1) ? lab[k] : blank;  // target_prime(s)
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

    // The gradient, every (t, c) with t < T_b on its own, each written once. P_c adds the
    // posteriors of the window's states that emit c in increasing state: the even states for
    // the blank, the chain of repeats from class_head for a label class, none otherwise.
    const long long count = static_cast<long long>(T_b) * C;
    const bool narrow = count <= 0x7fffffffLL;
    for (long long i = tid; i < count; i += nth) {
        int t, c;
        if (narrow) {
            // 32-bit division where it suffices (the common case).
            t = static_cast<int>(static_cast<unsigned>(i) / static_cast<unsigned>(C));
            c = static_cast<int>(static_cast<unsigned>(i) % static_cast<unsigned>(C));
        } else {
            t = static_cast<int>(i / C);
            c = static_cast<int>(i % C);
        }
        const int lo = window_lo(t, T_b, s_prime);
        const int hi = window_hi(t, s_prime);
        const T* post = table + static_cast<long long>(t) * width;
        T p = T(0);
        if (c == blank) {
            for (int s = lo + (lo & 1); s < hi; s += 2) p = p + post[s];
        } else {
            for (int k = head[c]; k >= 0; k = next[k]) {
                const int s = 2 * k + 1;
                if (s >= hi) break;
                if (s >= lo) p = p + post[s];
            }
        }
        grad_b[static_cast<long long>(t) * gt + c * gc] =
            grad_value(lp_b[static_cast<long long>(t) * st + c * sc], p, g);
    }
}

// ---------------------------------------------------------------------------------------------
// ctc_reduce

template <typename T>
__device__ __forceinline__ void reduce(const T* nll, const int* tgt_len, int N, int reduction,
                                       int zero_infinity, T* loss, long long loss_stride) {
    __shared__ double chunk[CTC_MAX_THREADS];
    if (blockIdx.x != 0) return;
    const int tid = static_cast<int>(threadIdx.x);
    const int nth = static_cast<int>(blockDim.x);
    if (reduction == 0) {
        for (int b = tid; b < N; b += nth) {
            const T v = nll[b];
            loss[static_cast<long long>(b) * loss_stride] =
                (zero_infinity && v == Limits<T>::inf()) ? T(0) : v;
        }
        return;
    }
    // The block stages a chunk of terms in shared memory; thread 0 adds them in increasing b.
    double total = -0.0;
    for (int base = 0; base < N; base += nth) {
        const int b = base + tid;
        if (b < N) {
            const T v = nll[b];
            double x = (zero_infinity && v == Limits<T>::inf()) ? 0.0 : static_cast<double>(v);
            if (reduction == 1) x = x / static_cast<double>(imax(tgt_len[b], 1));
            chunk[tid] = x;
        }
        __syncthreads();
        if (tid == 0) {
            const int m = imin(nth, N - base);
            for (int i = 0; i < m; ++i) total = total + chunk[i];
        }
        __syncthreads();
    }
    if (tid == 0) {
        loss[0] = static_cast<T>(reduction == 1 ? total / static_cast<double>(N) : total);
    }
}

}  // namespace ctc_kernels

// ---------------------------------------------------------------------------------------------
// The entry points: unmangled names for cuModuleGetFunction.

extern "C" __global__ void __launch_bounds__(CTC_MAX_THREADS, 1)
    ctc_prepare(const void* targets, int targets_bytes, int padded, long long targets_size,
                long long tn, long long ts, const void* input_lengths, int input_lengths_bytes,
                long long il_stride, const void* target_lengths, int target_lengths_bytes,
                long long tl_stride, int N, int max_time, int C, int blank, int lmax, int* labels,
                int* next_same, int* is_first, int* class_head, int* in_len, int* tgt_len) {
    ctc_kernels::prepare(targets, targets_bytes, padded, targets_size, tn, ts, input_lengths,
                         input_lengths_bytes, il_stride, target_lengths, target_lengths_bytes,
                         tl_stride, N, max_time, C, blank, lmax, labels, next_same, is_first,
                         class_head, in_len, tgt_len);
}

#define CTC_FLOAT_KERNELS(T, SUFFIX)                                                            \
    extern "C" __global__ void __launch_bounds__(CTC_MAX_THREADS, 1) ctc_alpha_##SUFFIX(          \
        const T* log_probs, long long st, long long sn, long long sc, int N, int max_time,      \
        int blank, const int* labels, const int* in_len, const int* tgt_len, int lmax,          \
        T* log_alpha, int alpha_rows, long long width, T* nll) {                                \
        ctc_kernels::alpha<T>(log_probs, st, sn, sc, N, max_time, blank, labels, in_len,        \
                              tgt_len, lmax, log_alpha, alpha_rows, width, nll);                \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_MAX_THREADS, 1) ctc_backward_##SUFFIX(       \
        const T* log_probs, long long st, long long sn, long long sc, int N, int max_time,      \
        int C, int blank, const int* labels, const int* next_same, const int* class_head,       \
        const int* in_len, const int* tgt_len, int lmax, T* log_alpha, int alpha_rows,          \
        long long width, T* work, const T* nll, const T* grad_loss,                             \
        long long grad_loss_stride, int reduction, int zero_infinity, T* grad, long long gt,    \
        long long gn, long long gc) {                                                           \
        ctc_kernels::backward<T>(log_probs, st, sn, sc, N, max_time, C, blank, labels,          \
                                 next_same, class_head, in_len, tgt_len, lmax, log_alpha,       \
                                 alpha_rows, width, work, nll, grad_loss, grad_loss_stride,     \
                                 reduction, zero_infinity, grad, gt, gn, gc);                   \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(CTC_MAX_THREADS, 1) ctc_reduce_##SUFFIX(         \
        const T* nll, const int* tgt_len, int N, int reduction, int zero_infinity, T* loss,     \
        long long loss_stride) {                                                                \
        ctc_kernels::reduce<T>(nll, tgt_len, N, reduction, zero_infinity, loss, loss_stride);   \
    }

CTC_FLOAT_KERNELS(float, f32)
CTC_FLOAT_KERNELS(double, f64)
