// Runs the CUDA kernels of src/cuda/kernels/ctc.cu on the CPU through tests/cuda_emu/emu.h.
//
//   run_emu golden DATA OUT CONFIGS
//       DATA: the cases tests/cuda_emulation.rs writes (format below); OUT: binary results;
//       CONFIGS: BLOCK:LAYOUT pairs, comma-separated (e.g. 32:0,32:1,128:0).
//       For every case, dtype (float64 then float32) and config, in that order, appends to OUT
//       the loss (N doubles for reduction none, else 1) then the gradient (T * N * C doubles,
//       logical (T, N, C) order), little-endian float64. The first config of each case and
//       dtype also runs twice more (other workspace garbage; the loss alone).
//   run_emu align DATA OUT CONFIGS
//       Forced alignment (offsets, prepare, ctc_align_<t>) of the same cases (REDUCTION,
//       ZERO_INFINITY and the upstream gradients unused): for every case, dtype (float64 then
//       float32) and config, appends to OUT the path (T * N int64, logical (T, N) order) then
//       the scores (N float64: the kernel's, widened; NaN in layout 3, which passes none). The
//       first config of each case and dtype also runs again over other workspace garbage.
//       Layouts as below for log_probs, targets and lengths, and for the alignment:
//         0 int64 path (T, N) contiguous, scores in T; the host's segment length K for the
//           longest input (src/cpu/layout.rs segment_frames)
//         1 int32 path batch-first (strides 1, T), float32 scores; K = 1 (every frame a
//           checkpoint)
//         2 int64 path and scores in T every other element (gaps must stay untouched); row width
//           and code row padded; K = 3, a spare checkpoint row
//         3 int32 path (T, N), no scores (NULL); one segment longer than T
//   run_emu fuzz SEED COUNT
//       COUNT random small problems (repeated labels, -inf entries, every reduction, padded and
//       concatenated targets, garbage device-side lengths and labels in half of them), each in a
//       random layout and block size (1 to 64), float64 and float32, against a scalar reference
//       written here from src/algorithm.rs and against the invalid-sample rule of ctc.cu.
//
// Checked here, on top of the numbers the Rust test checks: the guard elements around every
// output and workspace buffer and the gaps of strided outputs stay untouched; the results do not
// depend on what the workspace held before (two runs with different garbage give the same bits);
// the loss computed with a ring of two alpha rows has the same bits as with the full table.
// Every check prints "ok ..." or "FAIL ..."; the last line is "emu tests: P passed, F failed".
//
// DATA format (whitespace-separated tokens; reals as strtod reads them, inf/-inf/nan included):
//   ctc-emu-data 1
//   <number of cases>
//   then per case:
//   case NAME T N C BLANK REDUCTION(0 none, 1 mean, 2 sum) ZERO_INFINITY PADDED S NTARGETS NGRAD
//   NTARGETS targets (padded: (N, S) row-major), N input lengths, N target lengths,
//   NGRAD upstream gradients (N for reduction none, else 1), T*N*C log-probabilities.
//
// Layouts (the int dtypes and strides vary too, as a real caller's would):
//   0 contiguous (T, N, C); int64 targets, int32 input lengths, int64 target lengths; tight
//     capacities (lmax = max L_b, alpha_rows = max T_b)
//   1 (N, T, C) memory seen through strides; int32 targets, int64 input lengths, int32 target
//     lengths; no upstream gradient pointer when it is all ones; capacities S (or total) and T
//   2 log_probs rows padded to C + 3 (NaN in the gaps); padded targets stored (S, N), so that
//     tn = 1, ts = N (concatenated: stride 2); lengths and upstream gradient strided; the loss
//     every other element; row width rounded up to 32; alpha_rows = T + 1
//   3 class-major (C, N, T) log_probs; the gradient class-major with a gap after every element
//     (gaps must stay untouched); padded targets with a garbage column

#include "emu.h"

#include "../../src/cuda/kernels/ctc.cu"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
    if (ok) {
        ++g_passed;
        std::printf("ok %s\n", what.c_str());
    } else {
        ++g_failed;
        std::printf("FAIL %s\n", what.c_str());
    }
}

struct Case {
    std::string name;
    int T = 0, N = 0, C = 0, blank = 0, reduction = 0, zero_infinity = 0, padded = 1;
    long long S = 0;
    std::vector<long long> targets, input_lengths, target_lengths;
    std::vector<double> grad_out, log_probs;  // log_probs: logical (T, N, C)
};

// ---------------------------------------------------------------------------------------------
// Reading the data file.

struct Tokens {
    std::istringstream in;
    std::string next() {
        std::string s;
        if (!(in >> s)) {
            std::fprintf(stderr, "run_emu: the data file ends early\n");
            std::exit(2);
        }
        return s;
    }
    long long integer() { return std::stoll(next()); }
    double real() {
        const std::string s = next();
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0') {
            std::fprintf(stderr, "run_emu: %s is not a number\n", s.c_str());
            std::exit(2);
        }
        return v;
    }
};

std::vector<Case> read_cases(const char* path) {
    std::ifstream f(path);
    if (!f) {
        std::fprintf(stderr, "run_emu: cannot open %s\n", path);
        std::exit(2);
    }
    std::stringstream ss;
    ss << f.rdbuf();
    Tokens tk{std::istringstream(ss.str())};
    if (tk.next() != "ctc-emu-data" || tk.integer() != 1) {
        std::fprintf(stderr, "run_emu: %s is not a ctc-emu-data 1 file\n", path);
        std::exit(2);
    }
    const long long n = tk.integer();
    std::vector<Case> cases;
    for (long long i = 0; i < n; ++i) {
        if (tk.next() != "case") {
            std::fprintf(stderr, "run_emu: case %lld does not start with `case`\n", i);
            std::exit(2);
        }
        Case c;
        c.name = tk.next();
        c.T = static_cast<int>(tk.integer());
        c.N = static_cast<int>(tk.integer());
        c.C = static_cast<int>(tk.integer());
        c.blank = static_cast<int>(tk.integer());
        c.reduction = static_cast<int>(tk.integer());
        c.zero_infinity = static_cast<int>(tk.integer());
        c.padded = static_cast<int>(tk.integer());
        c.S = tk.integer();
        const long long nt = tk.integer();
        const long long ng = tk.integer();
        for (long long k = 0; k < nt; ++k) c.targets.push_back(tk.integer());
        for (int k = 0; k < c.N; ++k) c.input_lengths.push_back(tk.integer());
        for (int k = 0; k < c.N; ++k) c.target_lengths.push_back(tk.integer());
        for (long long k = 0; k < ng; ++k) c.grad_out.push_back(tk.real());
        const long long nv = static_cast<long long>(c.T) * c.N * c.C;
        for (long long k = 0; k < nv; ++k) c.log_probs.push_back(tk.real());
        cases.push_back(std::move(c));
    }
    return cases;
}

// ---------------------------------------------------------------------------------------------
// Buffers.

/// `n` elements with `kGuard` guard elements on each side, all set to a sentinel, which must
/// still be there after the kernels ran.
template <typename V>
struct Guarded {
    static constexpr size_t kGuard = 16;
    std::vector<V> buf;
    size_t n;
    V sentinel;
    Guarded(size_t n_, V fill, V sentinel_) : buf(n_ + 2 * kGuard, sentinel_), n(n_), sentinel(sentinel_) {
        std::fill(buf.begin() + kGuard, buf.begin() + kGuard + n, fill);
    }
    V* data() { return buf.data() + kGuard; }
    V& operator[](size_t i) { return buf[kGuard + i]; }
    bool guards_intact() const {
        for (size_t i = 0; i < kGuard; ++i) {
            if (std::memcmp(&buf[i], &sentinel, sizeof(V)) != 0) return false;
            if (std::memcmp(&buf[kGuard + n + i], &sentinel, sizeof(V)) != 0) return false;
        }
        return true;
    }
};

/// 1 + the largest offset of a (d0, d1, d2) array with non-negative strides (0 when empty).
long long extent(long long d0, long long d1, long long d2, long long s0, long long s1, long long s2) {
    if (d0 == 0 || d1 == 0 || d2 == 0) return 0;
    return (d0 - 1) * s0 + (d1 - 1) * s1 + (d2 - 1) * s2 + 1;
}

/// An int32 or int64 buffer of exactly `n` elements (so that a sanitizer sees any overrun).
struct IntBuffer {
    int bytes = 8;
    std::vector<int32_t> v32;
    std::vector<int64_t> v64;
    IntBuffer(int bytes_, size_t n, long long fill) : bytes(bytes_) {
        if (bytes == 4)
            v32.assign(n, static_cast<int32_t>(fill));
        else
            v64.assign(n, fill);
    }
    void set(size_t i, long long x) {
        if (bytes == 4)
            v32[i] = static_cast<int32_t>(x);
        else
            v64[i] = x;
    }
    const void* ptr() const {
        return bytes == 4 ? static_cast<const void*>(v32.data()) : static_cast<const void*>(v64.data());
    }
};

struct Outcome {
    std::vector<double> loss;  // N (reduction none) or 1
    std::vector<double> grad;  // logical (T, N, C)
    std::vector<double> nll;   // the kernel's nll, N
    bool intact = true;        // guards and gaps untouched
    std::string damage;        // which ones were not
};

template <typename T>
bool same_bits(T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

bool same_bits_vec(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!same_bits(a[i], b[i])) return false;
    return true;
}

/// The kernels' inputs of `cs` in memory layout `layout` (see the header): log_probs, targets
/// and lengths with the strides and integer types of the layout, and the largest lengths given
/// (garbage included).
template <typename T>
struct Inputs {
    std::vector<T> lp;
    long long st = 0, sn = 0, sc = 0;
    IntBuffer targets{8, 0, 0};
    int tbytes = 8;
    long long tn = 0, ts = 1, tsize = 0;
    IntBuffer il{4, 0, 0}, tl{8, 0, 0};
    int il_bytes = 4, tl_bytes = 8;
    long long il_stride = 1, tl_stride = 1;
    long long max_il = 0, max_tl = 0;
};

template <typename T>
Inputs<T> lay_out(const Case& cs, int layout) {
    const long long Tn = cs.T, N = cs.N, C = cs.C;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Inputs<T> in;
    // log_probs
    switch (layout) {
        case 1: in.st = C; in.sn = Tn * C; in.sc = 1; break;
        case 2: in.st = N * (C + 3); in.sn = C + 3; in.sc = 1; break;
        case 3: in.st = 1; in.sn = Tn; in.sc = Tn * N; break;
        default: in.st = N * C; in.sn = C; in.sc = 1; break;
    }
    const long long st = in.st, sn = in.sn, sc = in.sc;
    in.lp.assign(static_cast<size_t>(extent(Tn, N, C, st, sn, sc)), static_cast<T>(nan));
    for (long long t = 0; t < Tn; ++t)
        for (long long b = 0; b < N; ++b)
            for (long long c = 0; c < C; ++c)
                in.lp[t * st + b * sn + c * sc] = static_cast<T>(cs.log_probs[(t * N + b) * C + c]);

    // targets
    in.tbytes = (layout == 0 || layout == 2) ? 8 : 4;
    long long& tn = in.tn;
    long long& ts = in.ts;
    long long& tsize = in.tsize;
    size_t tcount;
    if (cs.padded) {
        tsize = cs.S;
        if (layout == 2) {
            tn = 1;
            ts = N;
            tcount = static_cast<size_t>(N * cs.S);
        } else if (layout == 3) {
            tn = cs.S + 1;
            ts = 1;
            tcount = static_cast<size_t>(N * (cs.S + 1));
        } else {
            tn = cs.S;
            ts = 1;
            tcount = static_cast<size_t>(N * cs.S);
        }
    } else {
        tsize = static_cast<long long>(cs.targets.size());
        ts = layout == 2 ? 2 : 1;
        tcount = static_cast<size_t>(tsize * ts);
    }
    in.targets = IntBuffer(in.tbytes, tcount, 12345);  // the garbage in gaps is a bad label
    if (cs.padded) {
        for (long long b = 0; b < N; ++b)
            for (long long j = 0; j < cs.S; ++j)
                in.targets.set(static_cast<size_t>(b * tn + j * ts), cs.targets[b * cs.S + j]);
    } else {
        for (long long i = 0; i < tsize; ++i) in.targets.set(static_cast<size_t>(i * ts), cs.targets[i]);
    }

    // lengths
    in.il_bytes = (layout == 1 || layout == 2) ? 8 : 4;
    in.tl_bytes = (layout == 0 || layout == 2) ? 8 : 4;
    in.il_stride = layout == 2 ? 2 : 1;
    in.tl_stride = layout == 2 ? 3 : 1;
    in.il = IntBuffer(in.il_bytes, static_cast<size_t>(N == 0 ? 0 : (N - 1) * in.il_stride + 1), -99);
    in.tl = IntBuffer(in.tl_bytes, static_cast<size_t>(N == 0 ? 0 : (N - 1) * in.tl_stride + 1), -99);
    for (long long b = 0; b < N; ++b) {
        in.il.set(static_cast<size_t>(b * in.il_stride), cs.input_lengths[b]);
        in.tl.set(static_cast<size_t>(b * in.tl_stride), cs.target_lengths[b]);
        in.max_il = std::max(in.max_il, cs.input_lengths[b]);
        in.max_tl = std::max(in.max_tl, cs.target_lengths[b]);
    }
    return in;
}

/// Runs offsets (concatenated targets), prepare, alpha, beta, grad and reduce on `cs` in `layout`
/// with blocks of `bs` threads.
/// `garbage` picks what the workspace holds beforehand. With `ring`, alpha keeps two rows
/// (the loss alone: no backward).
template <typename T>
Outcome run(const Case& cs, int layout, int bs, int garbage, bool ring = false) {
    const long long Tn = cs.T, N = cs.N, C = cs.C;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Outcome out;
    auto damaged = [&](const char* what) {
        out.intact = false;
        out.damage += std::string(" ") + what;
    };

    // log_probs, targets and lengths
    Inputs<T> in = lay_out<T>(cs, layout);
    const std::vector<T>& lp = in.lp;
    const long long st = in.st, sn = in.sn, sc = in.sc;
    const IntBuffer &targets = in.targets, &il = in.il, &tl = in.tl;
    const int tbytes = in.tbytes, il_bytes = in.il_bytes, tl_bytes = in.tl_bytes;
    const long long tn = in.tn, ts = in.ts, tsize = in.tsize;
    const long long il_stride = in.il_stride, tl_stride = in.tl_stride;
    const long long max_il = in.max_il, max_tl = in.max_tl;

    // gradient: gaps (layout 3) hold a sentinel that must survive
    long long gt, gn, gc;
    switch (layout) {
        case 1: gt = C; gn = Tn * C; gc = 1; break;
        case 3: gt = 2; gn = 2 * Tn; gc = 2 * Tn * N; break;
        default: gt = N * C; gn = C; gc = 1; break;
    }
    const T grad_sentinel = static_cast<T>(-7.0);
    Guarded<T> grad(static_cast<size_t>(extent(Tn, N, C, gt, gn, gc)), grad_sentinel, grad_sentinel);

    // Capacities: what a host knows (clamped, since the lengths may be garbage).
    long long lmax;
    long long alpha_rows;
    long long width;
    switch (layout) {
        case 1:
            lmax = cs.padded ? cs.S : tsize;
            alpha_rows = Tn;
            width = 2 * lmax + 1;
            break;
        case 2:
            lmax = std::min<long long>(std::max<long long>(max_tl, 0), 1000) + 3;
            alpha_rows = Tn + 1;
            width = (2 * lmax + 1 + 31) / 32 * 32;
            break;
        default:
            lmax = std::min<long long>(std::max<long long>(max_tl, 0), 1000);
            alpha_rows = std::min<long long>(std::max<long long>(max_il, 1), Tn);
            width = 2 * lmax + 1;
            break;
    }
    if (alpha_rows < 1) alpha_rows = 1;
    if (ring) alpha_rows = 2;

    // upstream gradient
    const long long go_stride = layout == 2 ? 3 : 1;
    bool all_ones = true;
    for (double x : cs.grad_out) all_ones = all_ones && x == 1.0;
    std::vector<T> grad_out(cs.grad_out.empty() ? 0 : (cs.grad_out.size() - 1) * go_stride + 1, static_cast<T>(nan));
    for (size_t i = 0; i < cs.grad_out.size(); ++i) grad_out[i * go_stride] = static_cast<T>(cs.grad_out[i]);
    const T* grad_loss = (layout == 1 && all_ones) ? nullptr : grad_out.data();

    // outputs and workspace, pre-filled with garbage
    const long long loss_stride = layout == 2 ? 2 : 1;
    const size_t nloss = cs.reduction == 0 ? static_cast<size_t>(N) : 1;
    const T loss_sentinel = static_cast<T>(-9.0);
    Guarded<T> loss(nloss == 0 ? 0 : (nloss - 1) * loss_stride + 1, loss_sentinel, loss_sentinel);
    const T g0 = garbage == 0 ? static_cast<T>(nan) : static_cast<T>(garbage == 1 ? -1e30 : 3.25);
    const T ws_sentinel = static_cast<T>(-12345.0);
    const int iws_sentinel = -777;
    const int ig = garbage == 0 ? -1 : 0x3fffffff;
    const size_t nl = static_cast<size_t>(N * lmax);
    Guarded<long long> offsets(static_cast<size_t>(N), ig, iws_sentinel);
    Guarded<int> labels(nl, ig, iws_sentinel), next_same(nl, ig, iws_sentinel);
    Guarded<int> class_head(static_cast<size_t>(N * C), ig, iws_sentinel);
    Guarded<int> in_len(static_cast<size_t>(N), ig, iws_sentinel), tgt_len(static_cast<size_t>(N), ig, iws_sentinel);
    Guarded<T> log_alpha(static_cast<size_t>(N * alpha_rows * width), g0, ws_sentinel);
    Guarded<T> work(static_cast<size_t>(N * 2 * width), g0, ws_sentinel);
    Guarded<T> nll(static_cast<size_t>(N), g0, ws_sentinel);

    const dim3 grid(static_cast<unsigned>(N)), block(static_cast<unsigned>(bs));
    const int iN = static_cast<int>(N), iT = static_cast<int>(Tn), iC = static_cast<int>(C);
    const int ilmax = static_cast<int>(lmax), irows = static_cast<int>(alpha_rows);
    if (!cs.padded) {
        const OffsetsParams op{tl.ptr(), offsets.data(), tl_stride, tl_bytes, iN};
        emu::launch(ctc_offsets, dim3(1), block, op);
    }
    const PrepareParams pp{targets.ptr(), il.ptr(), tl.ptr(), cs.padded ? nullptr : offsets.data(),
                           labels.data(), next_same.data(), class_head.data(), in_len.data(),
                           tgt_len.data(), tsize, tn, ts, il_stride, tl_stride, tbytes, il_bytes,
                           tl_bytes, cs.padded, iN, iT, iC, cs.blank, ilmax};
    emu::launch(ctc_prepare, grid, block, pp);
    const int real = sizeof(T) == 4 ? CTC_REAL_F32 : CTC_REAL_F64;
    // shift NULL: log-probabilities (logits run through the driver stand-in, tests/cuda_gpu.rs).
    const AlphaParams<T, T> ap{lp.data(), nullptr, labels.data(), in_len.data(), tgt_len.data(), log_alpha.data(),
                            nll.data(), st, sn, sc, width, iN, iT, cs.blank, ilmax, irows};
    const BetaParams<T, T> bp{lp.data(), nullptr, labels.data(), in_len.data(), tgt_len.data(), log_alpha.data(),
                           work.data(), nll.data(), st, sn, sc, width, iN, iT, cs.blank, ilmax, irows};
    // Frames per gradient block: a few, so that several chunks and partial last chunks occur.
    const int frames = 1 + (layout + bs) % 4;
    const int chunks = iT == 0 ? 0 : (iT + frames - 1) / frames;
    const GradParams<T, T> gp{lp.data(), nullptr, next_same.data(), class_head.data(), in_len.data(), tgt_len.data(),
                           log_alpha.data(), nll.data(), grad_loss, grad.data(), st, sn, sc, width,
                           go_stride, gt, gn, gc, iN, iT, iC, cs.blank, ilmax, irows, cs.reduction,
                           cs.zero_infinity, frames, chunks,
                           /* exact: torch's form here; the exact one in tests/cuda_gpu.rs */ 0,
                           real, real};
    const ReduceParams<T> rp{nll.data(), tgt_len.data(), loss.data(), loss_stride, iN, cs.reduction,
                             cs.zero_infinity, real};
    if constexpr (sizeof(T) == 4) {
        emu::launch(ctc_alpha_f32, grid, block, ap);
        if (!ring) {
            emu::launch(ctc_beta_f32, grid, block, bp);
            emu::launch(ctc_grad_f32, dim3(static_cast<unsigned>(N * chunks)), block, gp);
        }
        emu::launch(ctc_reduce_f32, dim3(1), block, rp);
    } else {
        emu::launch(ctc_alpha_f64, grid, block, ap);
        if (!ring) {
            emu::launch(ctc_beta_f64, grid, block, bp);
            emu::launch(ctc_grad_f64, dim3(static_cast<unsigned>(N * chunks)), block, gp);
        }
        emu::launch(ctc_reduce_f64, dim3(1), block, rp);
    }

    if (!offsets.guards_intact()) damaged("offsets");
    if (!labels.guards_intact() || !next_same.guards_intact() || !class_head.guards_intact())
        damaged("labels");
    if (!in_len.guards_intact() || !tgt_len.guards_intact()) damaged("lengths");
    if (!log_alpha.guards_intact()) damaged("log_alpha");
    if (!work.guards_intact()) damaged("work");
    if (!nll.guards_intact()) damaged("nll");
    if (!loss.guards_intact()) damaged("loss");
    if (!grad.guards_intact()) damaged("grad");
    // Gaps of the strided outputs.
    for (size_t i = 0; i < loss.n; ++i)
        if (i % loss_stride != 0 && !same_bits(loss[i], loss_sentinel)) {
            damaged("loss-gap");
            break;
        }
    if (layout == 3 || ring) {
        // Layout 3: every odd element is a gap; ring: nothing is written.
        for (size_t i = 0; i < grad.n; ++i)
            if ((ring || i % 2 == 1) && !same_bits(grad[i], grad_sentinel)) {
                damaged("grad-gap");
                break;
            }
    }

    for (size_t i = 0; i < nloss; ++i) out.loss.push_back(static_cast<double>(loss[i * loss_stride]));
    for (long long b = 0; b < N; ++b) out.nll.push_back(static_cast<double>(nll[b]));
    out.grad.resize(static_cast<size_t>(Tn * N * C));
    for (long long t = 0; t < Tn; ++t)
        for (long long b = 0; b < N; ++b)
            for (long long c = 0; c < C; ++c)
                out.grad[(t * N + b) * C + c] = static_cast<double>(grad[t * gt + b * gn + c * gc]);
    return out;
}

/// "32:0,128:1" -> {(32, 0), (128, 1)}.
std::vector<std::pair<int, int>> parse_configs(const char* s) {
    std::vector<std::pair<int, int>> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const size_t colon = item.find(':');
        if (colon == std::string::npos) {
            std::fprintf(stderr, "run_emu: config %s is not BLOCK:LAYOUT\n", item.c_str());
            std::exit(2);
        }
        v.emplace_back(std::stoi(item.substr(0, colon)), std::stoi(item.substr(colon + 1)));
    }
    return v;
}

template <typename T>
void golden_case(const Case& cs, const std::vector<std::pair<int, int>>& configs, std::ofstream& out) {
    const char* dtype = sizeof(T) == 4 ? "f32" : "f64";
    for (size_t k = 0; k < configs.size(); ++k) {
        const auto [bs, layout] = configs[k];
        const auto t0 = std::chrono::steady_clock::now();
        Outcome o = run<T>(cs, layout, bs, 0);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::ostringstream what;
        what << cs.name << " " << dtype << " block " << bs << " layout " << layout;
        check(o.intact, what.str() + ": guards and gaps untouched" + o.damage + " (" +
                            std::to_string(static_cast<int>(ms)) + " ms)");
        out.write(reinterpret_cast<const char*>(o.loss.data()), static_cast<std::streamsize>(o.loss.size() * 8));
        out.write(reinterpret_cast<const char*>(o.grad.data()), static_cast<std::streamsize>(o.grad.size() * 8));
        if (k == 0) {
            // Other garbage in the workspace: the same bits.
            Outcome again = run<T>(cs, layout, bs, 1);
            check(again.intact && same_bits_vec(again.loss, o.loss) && same_bits_vec(again.grad, o.grad),
                  what.str() + ": same bits with other workspace garbage");
            // The loss alone with a ring of two alpha rows: the same bits.
            Outcome ring = run<T>(cs, layout, bs, 2, true);
            check(ring.intact && same_bits_vec(ring.loss, o.loss) && same_bits_vec(ring.nll, o.nll),
                  what.str() + ": loss with two alpha rows has the same bits");
        }
    }
}

int golden(const char* data, const char* out_path, const char* configs_arg) {
    const std::vector<Case> cases = read_cases(data);
    const std::vector<std::pair<int, int>> configs = parse_configs(configs_arg);
    std::ofstream out(out_path, std::ios::binary);
    for (const Case& cs : cases) {
        golden_case<double>(cs, configs, out);
        golden_case<float>(cs, configs, out);
    }
    out.close();
    check(static_cast<bool>(out), "results written");
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Forced alignment: offsets, prepare and ctc_align_<t>.

struct Aligned {
    std::vector<long long> path;  // logical (T, N)
    std::vector<double> scores;   // N: the kernel's scores, widened; NaN where the layout has none
    bool intact = true;           // guards and gaps untouched
    std::string damage;
};

/// What an alignment's workspace and outputs are sized by in `layout` (see the header).
struct AlignShape {
    long long lmax, width, code_row, segment, checkpoint_rows;
    int path_bytes, scores_bytes;  // scores_bytes 0: no scores (NULL)
    long long path_st, path_sn, path_len, scores_stride;
};

template <typename T>
AlignShape align_shape(const Case& cs, const Inputs<T>& in, int layout) {
    const long long Tn = cs.T, N = cs.N;
    AlignShape a{};
    // Capacities: what a host knows (clamped, since the lengths may be garbage).
    const long long known_tl = std::min<long long>(std::max<long long>(in.max_tl, 0), 1000);
    a.lmax = layout == 1 ? (cs.padded ? cs.S : in.tsize) : known_tl + (layout == 2 ? 3 : 0);
    a.width = 2 * a.lmax + 1;
    a.code_row = (a.width + 3) / 4;
    if (layout == 2) {
        a.width = (a.width + 31) / 32 * 32;
        a.code_row = (a.width + 3) / 4 + 5;
    }
    switch (layout) {
        case 1:  // every frame a checkpoint, segments of one frame
            a.segment = 1;
            a.checkpoint_rows = std::max<long long>(Tn, 1);
            break;
        case 2:  // segments of 3 frames, a spare checkpoint row
            a.segment = 3;
            a.checkpoint_rows = (Tn + 2) / 3 + 1;
            break;
        case 3:  // one segment longer than any input
            a.segment = Tn + 5;
            a.checkpoint_rows = 1;
            break;
        default: {  // the host's choice for the longest input (src/cpu/layout.rs segment_frames)
            const long long tmax = std::min<long long>(std::max<long long>(in.max_il, 0), Tn);
            const double k = std::ceil(std::sqrt(4.0 * sizeof(T) * static_cast<double>(tmax)));
            a.segment = std::clamp<long long>(static_cast<long long>(k), 1, std::max<long long>(tmax, 1));
            a.checkpoint_rows = std::max<long long>((tmax + a.segment - 1) / a.segment, 1);
        }
    }
    // Paths: 0 int64 time-first, 1 int32 batch-first, 2 int64 every other element, 3 int32
    // time-first. Scores: 0 and 2 in T (2 every other element), 1 float32, 3 none.
    a.path_bytes = (layout == 1 || layout == 3) ? 4 : 8;
    a.path_st = layout == 1 ? 1 : (layout == 2 ? 2 * N : N);
    a.path_sn = layout == 1 ? Tn : (layout == 2 ? 2 : 1);
    a.path_len = Tn * N * (layout == 2 ? 2 : 1);
    a.scores_bytes = layout == 3 ? 0 : (layout == 1 ? 4 : static_cast<int>(sizeof(T)));
    a.scores_stride = layout == 2 ? 2 : 1;
    return a;
}

/// Runs offsets (concatenated targets), prepare and align on `cs` in `layout` with blocks of `bs`
/// threads; `garbage` picks what the workspace holds beforehand.
template <typename T>
Aligned run_align(const Case& cs, int layout, int bs, int garbage) {
    const long long Tn = cs.T, N = cs.N, C = cs.C;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Aligned out;
    auto damaged = [&](const char* what) {
        out.intact = false;
        out.damage += std::string(" ") + what;
    };
    const Inputs<T> in = lay_out<T>(cs, layout);
    const AlignShape a = align_shape(cs, in, layout);

    // Outputs and workspace, pre-filled with garbage.
    Guarded<long long> path64(static_cast<size_t>(a.path_bytes == 8 ? a.path_len : 0), 77, -777);
    Guarded<int> path32(static_cast<size_t>(a.path_bytes == 4 ? a.path_len : 0), 77, -777);
    const size_t nscores = N == 0 ? 0 : static_cast<size_t>((N - 1) * a.scores_stride + 1);
    Guarded<double> scores64(a.scores_bytes == 8 ? nscores : 0, 12345.0, -9.0);
    Guarded<float> scores32(a.scores_bytes == 4 ? nscores : 0, 12345.0f, -9.0f);
    const T g0 = garbage == 0 ? static_cast<T>(nan) : static_cast<T>(garbage == 1 ? -1e30 : 3.25);
    const unsigned char code_garbage = garbage == 0 ? 0xff : (garbage == 1 ? 0x00 : 0x9a);
    const int ig = garbage == 0 ? -1 : 0x3fffffff;
    const T ws_sentinel = static_cast<T>(-12345.0);
    const int iws = -777;
    const size_t nl = static_cast<size_t>(N * a.lmax);
    Guarded<long long> offsets(static_cast<size_t>(N), ig, iws);
    Guarded<int> labels(nl, ig, iws), next_same(nl, ig, iws);
    Guarded<int> class_head(static_cast<size_t>(N * C), ig, iws);
    Guarded<int> in_len(static_cast<size_t>(N), ig, iws), tgt_len(static_cast<size_t>(N), ig, iws);
    Guarded<T> rows(static_cast<size_t>(N * 2 * a.width), g0, ws_sentinel);
    Guarded<T> checkpoints(static_cast<size_t>(N * a.checkpoint_rows * a.width), g0, ws_sentinel);
    Guarded<unsigned char> codes(static_cast<size_t>(N * a.segment * a.code_row), code_garbage, 0x5c);

    const dim3 grid(static_cast<unsigned>(N)), block(static_cast<unsigned>(bs));
    const int iN = static_cast<int>(N), iT = static_cast<int>(Tn), iC = static_cast<int>(C);
    if (!cs.padded) {
        const OffsetsParams op{in.tl.ptr(), offsets.data(), in.tl_stride, in.tl_bytes, iN};
        emu::launch(ctc_offsets, dim3(1), block, op);
    }
    const PrepareParams pp{in.targets.ptr(), in.il.ptr(), in.tl.ptr(), cs.padded ? nullptr : offsets.data(),
                           labels.data(), next_same.data(), class_head.data(), in_len.data(),
                           tgt_len.data(), in.tsize, in.tn, in.ts, in.il_stride, in.tl_stride, in.tbytes,
                           in.il_bytes, in.tl_bytes, cs.padded, iN, iT, iC, cs.blank, static_cast<int>(a.lmax)};
    emu::launch(ctc_prepare, grid, block, pp);
    void* path = a.path_bytes == 8 ? static_cast<void*>(path64.data()) : static_cast<void*>(path32.data());
    void* scores = a.scores_bytes == 8   ? static_cast<void*>(scores64.data())
                   : a.scores_bytes == 4 ? static_cast<void*>(scores32.data())
                                         : nullptr;
    const AlignParams<T, T> ap{in.lp.data(), nullptr, labels.data(), in_len.data(), tgt_len.data(), rows.data(),
                            checkpoints.data(), codes.data(), path, scores, in.st, in.sn, in.sc, a.width,
                            a.code_row, a.path_st, a.path_sn, a.scores_stride, iN, iT, cs.blank,
                            static_cast<int>(a.lmax), static_cast<int>(a.segment),
                            static_cast<int>(a.checkpoint_rows), a.path_bytes,
                            a.scores_bytes == 8 ? CTC_REAL_F64 : CTC_REAL_F32};
    if constexpr (sizeof(T) == 4) {
        emu::launch(ctc_align_f32, grid, block, ap);
    } else {
        emu::launch(ctc_align_f64, grid, block, ap);
    }

    if (!offsets.guards_intact()) damaged("offsets");
    if (!labels.guards_intact() || !next_same.guards_intact() || !class_head.guards_intact())
        damaged("labels");
    if (!in_len.guards_intact() || !tgt_len.guards_intact()) damaged("lengths");
    if (!rows.guards_intact()) damaged("rows");
    if (!checkpoints.guards_intact()) damaged("checkpoints");
    if (!codes.guards_intact()) damaged("codes");
    if (!path64.guards_intact() || !path32.guards_intact()) damaged("path");
    if (!scores64.guards_intact() || !scores32.guards_intact()) damaged("scores");
    if (layout == 2) {
        // Every other element of the path and of the scores is a gap.
        for (size_t i = 1; i < path64.n; i += 2)
            if (path64[i] != 77) {
                damaged("path-gap");
                break;
            }
        for (size_t i = 1; i < scores64.n + scores32.n; i += 2)
            if ((scores64.n ? scores64[i] : static_cast<double>(scores32[i])) != 12345.0) {
                damaged("scores-gap");
                break;
            }
    }

    for (long long t = 0; t < Tn; ++t)
        for (long long b = 0; b < N; ++b) {
            const long long at = t * a.path_st + b * a.path_sn;
            out.path.push_back(a.path_bytes == 8 ? path64[static_cast<size_t>(at)]
                                                 : static_cast<long long>(path32[static_cast<size_t>(at)]));
        }
    for (long long b = 0; b < N; ++b) {
        const size_t at = static_cast<size_t>(b * a.scores_stride);
        out.scores.push_back(a.scores_bytes == 8   ? scores64[at]
                             : a.scores_bytes == 4 ? static_cast<double>(scores32[at])
                                                   : nan);
    }
    return out;
}

bool same_alignment(const Aligned& a, const Aligned& b) {
    return a.path == b.path && same_bits_vec(a.scores, b.scores);
}

template <typename T>
void align_case(const Case& cs, const std::vector<std::pair<int, int>>& configs, std::ofstream& out) {
    const char* dtype = sizeof(T) == 4 ? "f32" : "f64";
    for (size_t k = 0; k < configs.size(); ++k) {
        const auto [bs, layout] = configs[k];
        const Aligned o = run_align<T>(cs, layout, bs, 0);
        std::ostringstream what;
        what << cs.name << " align " << dtype << " block " << bs << " layout " << layout;
        check(o.intact, what.str() + ": guards and gaps untouched" + o.damage);
        out.write(reinterpret_cast<const char*>(o.path.data()), static_cast<std::streamsize>(o.path.size() * 8));
        out.write(reinterpret_cast<const char*>(o.scores.data()), static_cast<std::streamsize>(o.scores.size() * 8));
        if (k == 0) {
            // Other garbage in the workspace (other stale back-pointers too): the same bits.
            const Aligned again = run_align<T>(cs, layout, bs, 2);
            check(again.intact && same_alignment(again, o), what.str() + ": same bits with other workspace garbage");
        }
    }
}

/// `run_emu align DATA OUT CONFIGS` (see the header).
int align(const char* data, const char* out_path, const char* configs_arg) {
    const std::vector<Case> cases = read_cases(data);
    const std::vector<std::pair<int, int>> configs = parse_configs(configs_arg);
    std::ofstream out(out_path, std::ios::binary);
    for (const Case& cs : cases) {
        align_case<double>(cs, configs, out);
        align_case<float>(cs, configs, out);
    }
    out.close();
    check(static_cast<bool>(out), "results written");
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Fuzzing against a scalar reference (src/algorithm.rs as written, like src/cpu/reference.rs).

double lae(double a, double b) {
    double m = b > a ? b : a;
    if (m == -INFINITY) m = 0;
    return std::log(std::exp(a - m) + std::exp(b - m)) + m;
}

double lae3(double a, double b, double c) {
    double m = a;
    if (b > m) m = b;
    if (c > m) m = c;
    if (m == -INFINITY) m = 0;
    return std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m)) + m;
}

/// nll and the (T, C) gradient of one valid sample (g: its upstream factor).
void reference_sample(const Case& cs, int b, const std::vector<int>& l, int T_b, double g, double& nll,
                      std::vector<double>& grad) {
    const int C = cs.C, N = cs.N, L = static_cast<int>(l.size()), Sp = 2 * L + 1;
    auto lp = [&](int t, int c) { return cs.log_probs[(static_cast<size_t>(t) * N + b) * C + c]; };
    auto tp = [&](int s) { return (s % 2 == 0) ? cs.blank : l[s / 2]; };
    auto skip = [&](int s) { return s % 2 == 1 && s >= 2 && l[s / 2] != l[s / 2 - 1]; };
    grad.assign(static_cast<size_t>(cs.T) * C, 0.0);
    if (T_b == 0) {
        nll = L == 0 ? 0.0 : INFINITY;
        return;
    }
    std::vector<double> a(static_cast<size_t>(T_b) * Sp, -INFINITY), be(static_cast<size_t>(T_b) * Sp, -INFINITY);
    a[0] = lp(0, cs.blank);
    if (L > 0) a[1] = lp(0, l[0]);
    for (int t = 1; t < T_b; ++t)
        for (int s = 0; s < Sp; ++s) {
            const double x = a[(t - 1) * Sp + s];
            const double y = s > 0 ? a[(t - 1) * Sp + s - 1] : -INFINITY;
            const double z = skip(s) ? a[(t - 1) * Sp + s - 2] : -INFINITY;
            a[t * Sp + s] = lae3(x, y, z) + lp(t, tp(s));
        }
    const double* last = &a[(T_b - 1) * Sp];
    nll = L == 0 ? -last[0] : -lae(last[Sp - 1], last[Sp - 2]);
    if (cs.zero_infinity && nll == INFINITY) return;
    be[(T_b - 1) * Sp + Sp - 1] = lp(T_b - 1, cs.blank);
    if (L > 0) be[(T_b - 1) * Sp + Sp - 2] = lp(T_b - 1, l[L - 1]);
    for (int t = T_b - 2; t >= 0; --t)
        for (int s = Sp - 1; s >= 0; --s) {
            const double x = be[(t + 1) * Sp + s];
            const double y = s + 1 < Sp ? be[(t + 1) * Sp + s + 1] : -INFINITY;
            const double z = (s + 2 < Sp && skip(s + 2)) ? be[(t + 1) * Sp + s + 2] : -INFINITY;
            be[t * Sp + s] = lae3(x, y, z) + lp(t, tp(s));
        }
    for (int t = 0; t < T_b; ++t) {
        std::vector<double> lcab(static_cast<size_t>(C), -INFINITY);
        for (int s = 0; s < Sp; ++s) {
            double& slot = lcab[tp(s)];
            const double v = a[t * Sp + s] + be[t * Sp + s];
            slot = slot == -INFINITY ? v : lae(slot, v);
        }
        for (int c = 0; c < C; ++c)
            grad[static_cast<size_t>(t) * C + c] = (std::exp(lp(t, c)) - std::exp(lcab[c] + nll - lp(t, c))) * g;
    }
}

bool close(double got, double want, double rel, double abs_tol) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    if (!std::isfinite(got)) return false;
    return std::fabs(got - want) <= abs_tol + rel * std::fabs(want);
}

/// Sample validity exactly as ctc.cu documents it, for the lmax `layout` uses.
std::vector<bool> expected_valid(const Case& cs, long long lmax) {
    std::vector<bool> ok(static_cast<size_t>(cs.N));
    long long offset = 0;
    bool negative_before = false;
    for (int b = 0; b < cs.N; ++b) {
        const long long il = cs.input_lengths[b], L = cs.target_lengths[b];
        bool v = il >= 0 && il <= cs.T && L >= 0 && (L <= lmax || L > cs.T);
        long long start = 0;
        if (cs.padded) {
            v = v && L <= cs.S;
            start = static_cast<long long>(b) * cs.S;
        } else {
            const long long total = static_cast<long long>(cs.targets.size());
            v = v && !negative_before && offset <= total && L <= total - offset;
            start = offset;
        }
        if (v)
            for (long long j = 0; j < L; ++j) {
                const long long c = cs.targets[start + j];
                if (c < 0 || c >= cs.C || c == cs.blank) v = false;
            }
        if (!cs.padded) {
            if (L < 0)
                negative_before = true;
            else
                offset += L;
        }
        ok[b] = v;
    }
    return ok;
}

template <typename T>
int fuzz_one(const Case& cs, int layout, int bs, const std::string& what) {
    // The capacity the layout uses (see run()).
    long long max_tl = 0;
    for (long long x : cs.target_lengths) max_tl = std::max(max_tl, x);
    long long lmax;
    if (layout == 1)
        lmax = cs.padded ? cs.S : static_cast<long long>(cs.targets.size());
    else
        lmax = std::min<long long>(std::max<long long>(max_tl, 0), 1000) + (layout == 2 ? 3 : 0);
    const std::vector<bool> valid = expected_valid(cs, lmax);
    const Outcome o = run<T>(cs, layout, bs, layout % 2);
    const bool f32 = sizeof(T) == 4;
    const double rel = f32 ? 2e-4 : 1e-9, abs_tol = f32 ? 2e-4 : 1e-9;
    bool ok = o.intact;
    std::string why = o.intact ? "" : " damaged:" + o.damage;
    bool any_invalid = false;
    std::vector<double> nlls(static_cast<size_t>(cs.N));
    const int C = cs.C, N = cs.N;
    for (int b = 0; b < N && ok; ++b) {
        if (!valid[b]) {
            any_invalid = true;
            for (int t = 0; t < cs.T; ++t)
                for (int c = 0; c < C; ++c)
                    if (!std::isnan(o.grad[(static_cast<size_t>(t) * N + b) * C + c])) {
                        ok = false;
                        why = " invalid sample " + std::to_string(b) + " has a non-NaN gradient";
                    }
            if (!std::isnan(o.nll[b])) {
                ok = false;
                why = " invalid sample " + std::to_string(b) + " has a non-NaN nll";
            }
            continue;
        }
        std::vector<int> l;
        const long long L = cs.target_lengths[b];
        long long start = 0;
        if (cs.padded) {
            start = static_cast<long long>(b) * cs.S;
        } else {
            for (int i = 0; i < b; ++i) start += cs.target_lengths[i];
        }
        for (long long j = 0; j < L; ++j) l.push_back(static_cast<int>(cs.targets[start + j]));
        const double go = cs.reduction == 0 ? cs.grad_out[b] : cs.grad_out[0];
        const double lf = static_cast<double>(std::max<long long>(L, 1));
        const double g = cs.reduction == 1 ? go / N / lf : go;
        double nll;
        std::vector<double> grad;
        reference_sample(cs, b, l, static_cast<int>(cs.input_lengths[b]), g, nll, grad);
        nlls[b] = nll;
        if (!close(o.nll[b], nll, rel, abs_tol)) {
            ok = false;
            why = " sample " + std::to_string(b) + " nll " + std::to_string(o.nll[b]) + " want " + std::to_string(nll);
        }
        for (int t = 0; t < cs.T && ok; ++t)
            for (int c = 0; c < C; ++c) {
                const double got = o.grad[(static_cast<size_t>(t) * N + b) * C + c];
                const double want = grad[static_cast<size_t>(t) * C + c];
                if (!close(got, want, rel, abs_tol)) {
                    ok = false;
                    why = " sample " + std::to_string(b) + " grad[" + std::to_string(t) + "][" + std::to_string(c) +
                          "] " + std::to_string(got) + " want " + std::to_string(want);
                    break;
                }
            }
    }
    if (ok) {
        auto value = [&](int b) { return (cs.zero_infinity && nlls[b] == INFINITY) ? 0.0 : nlls[b]; };
        if (cs.reduction == 0) {
            for (int b = 0; b < N; ++b) {
                const bool good = valid[b] ? close(o.loss[b], value(b), rel, abs_tol) : std::isnan(o.loss[b]);
                if (!good) {
                    ok = false;
                    why = " loss[" + std::to_string(b) + "]";
                }
            }
        } else {
            double total = 0;
            for (int b = 0; b < N; ++b)
                total += cs.reduction == 1 ? value(b) / std::max<long long>(cs.target_lengths[b], 1) : value(b);
            if (cs.reduction == 1) total /= N;
            const bool good = any_invalid ? std::isnan(o.loss[0]) : close(o.loss[0], total, rel, abs_tol);
            if (!good) {
                ok = false;
                why = " reduced loss " + std::to_string(o.loss[0]) + " want " + std::to_string(total);
            }
        }
    }
    check(ok, what + (f32 ? " f32" : " f64") + why);
    return ok;
}

int fuzz(unsigned long long seed, int count) {
    std::mt19937_64 rng(seed);
    auto below = [&](long long n) { return static_cast<long long>(rng() % static_cast<unsigned long long>(n)); };
    auto unit = [&]() { return static_cast<double>(rng() >> 11) / 9007199254740992.0; };
    const int block_sizes[] = {1, 2, 4, 8, 32, 64};
    for (int k = 0; k < count; ++k) {
        Case cs;
        cs.name = "fuzz" + std::to_string(k);
        cs.T = 1 + static_cast<int>(below(12));
        cs.N = 1 + static_cast<int>(below(5));
        cs.C = 1 + static_cast<int>(below(7));
        cs.blank = static_cast<int>(below(cs.C));
        cs.reduction = static_cast<int>(below(3));
        cs.zero_infinity = static_cast<int>(below(2));
        cs.padded = below(3) != 0;
        const bool garbage = below(2) == 0;  // some samples get invalid device-side values
        cs.S = below(9);
        std::vector<std::vector<long long>> rows;
        for (int b = 0; b < cs.N; ++b) {
            long long il = below(cs.T + 1);
            long long L = cs.C == 1 ? 0 : below(std::min<long long>(cs.S, cs.T + 2) + 1);
            std::vector<long long> row;
            // Few classes make repeats (and impossible alignments) common.
            for (long long j = 0; j < std::max<long long>(L, cs.padded ? cs.S : 0); ++j) {
                long long c = cs.C == 1 ? 1 : below(cs.C - 1);
                if (c >= cs.blank) c += 1;
                row.push_back(cs.C == 1 ? 0 : c);
            }
            if (garbage && below(3) == 0) {
                switch (below(8)) {
                    case 6: il = 2147483647; break;
                    case 7: L = 2147483647; break;
                    case 0: il = cs.T + 1 + below(3); break;
                    case 1: il = -1 - below(3); break;
                    case 2: L = cs.padded ? cs.S + 1 + below(2) : L + 50; break;
                    case 3: L = -1 - below(2); break;
                    case 4: if (L > 0) row[below(L)] = cs.blank; break;
                    default: if (L > 0) row[below(L)] = below(2) ? cs.C + below(3) : -1 - below(3); break;
                }
            }
            // Concatenated: the sample's labels, and at most 50 more when its length grew.
            if (!cs.padded)
                row.resize(static_cast<size_t>(
                               std::min<long long>(std::max<long long>(L, 0), static_cast<long long>(row.size()) + 50)),
                           1);
            cs.input_lengths.push_back(il);
            cs.target_lengths.push_back(L);
            rows.push_back(row);
        }
        for (int b = 0; b < cs.N; ++b) {
            if (cs.padded)
                for (long long j = 0; j < cs.S; ++j)
                    cs.targets.push_back(j < static_cast<long long>(rows[b].size()) ? rows[b][j] : -5);
            else
                for (long long x : rows[b]) cs.targets.push_back(x);
        }
        if (!cs.padded && garbage && below(2) == 0 && !cs.targets.empty()) cs.targets.pop_back();
        const bool normalize = below(3) == 0;
        for (int t = 0; t < cs.T; ++t)
            for (int b = 0; b < cs.N; ++b) {
                std::vector<double> row(static_cast<size_t>(cs.C));
                for (double& x : row) x = -4.0 * unit();
                if (normalize) {
                    double s = 0;
                    for (double x : row) s += std::exp(x);
                    for (double& x : row) x -= std::log(s);
                }
                for (double x : row) cs.log_probs.push_back(static_cast<double>(static_cast<float>(x)));
            }
        if (below(5) == 0) cs.log_probs[below(static_cast<long long>(cs.log_probs.size()))] = -INFINITY;
        const size_t ng = cs.reduction == 0 ? static_cast<size_t>(cs.N) : 1;
        for (size_t i = 0; i < ng; ++i)
            cs.grad_out.push_back(below(4) == 0 ? 1.0 : static_cast<double>(static_cast<float>(0.5 + unit())));
        const int layout = static_cast<int>(below(4));
        const int bs = block_sizes[below(6)];
        std::ostringstream what;
        what << cs.name << " T=" << cs.T << " N=" << cs.N << " C=" << cs.C << " S=" << cs.S
             << (cs.padded ? " padded" : " concatenated") << " reduction " << cs.reduction << " layout " << layout
             << " block " << bs;
        fuzz_one<double>(cs, layout, bs, what.str());
        fuzz_one<float>(cs, layout, bs, what.str());
    }
    return 0;
}

}  // namespace

/// The kernels' half conversions, for tests/cuda_emulation.rs to compare with the `half` crate:
/// writes to `out_path` (native byte order) the float bits of every float16 and every bfloat16
/// widened (65536 pairs of uint32), then for hi in [0, 2^20) and lo in {0, 1, 0x7ff, 0x800,
/// 0x801, 0xfff} the float16 and bfloat16 bits of the float with bits (hi << 12) | lo narrowed
/// (pairs of uint16).
void halfconv(const char* out_path) {
    std::FILE* f = std::fopen(out_path, "wb");
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", out_path);
        std::exit(2);
    }
    std::vector<unsigned> widened;
    for (unsigned h = 0; h < 65536; ++h) {
        const unsigned short bits = static_cast<unsigned short>(h);
        widened.push_back(std::bit_cast<unsigned>(ctc_kernels::widen(ctc_f16{bits})));
        widened.push_back(std::bit_cast<unsigned>(ctc_kernels::widen(ctc_bf16{bits})));
    }
    std::fwrite(widened.data(), sizeof(unsigned), widened.size(), f);
    const unsigned lows[] = {0, 1, 0x7ff, 0x800, 0x801, 0xfff};
    std::vector<unsigned short> narrowed;
    for (unsigned hi = 0; hi < (1u << 20); ++hi) {
        for (unsigned lo : lows) {
            const float x = std::bit_cast<float>((hi << 12) | lo);
            narrowed.push_back(ctc_kernels::float_to_f16(x));
            narrowed.push_back(ctc_kernels::float_to_bf16(x));
        }
    }
    std::fwrite(narrowed.data(), sizeof(unsigned short), narrowed.size(), f);
    std::fclose(f);
    g_passed += 1;
    std::printf("ok halfconv: %zu widened, %zu narrowed\n", widened.size(), narrowed.size());
}

int main(int argc, char** argv) {
    if (argc == 5 && std::strcmp(argv[1], "golden") == 0) {
        golden(argv[2], argv[3], argv[4]);
    } else if (argc == 5 && std::strcmp(argv[1], "align") == 0) {
        align(argv[2], argv[3], argv[4]);
    } else if (argc == 3 && std::strcmp(argv[1], "halfconv") == 0) {
        halfconv(argv[2]);
    } else if (argc == 4 && std::strcmp(argv[1], "fuzz") == 0) {
        fuzz(std::stoull(argv[2]), std::stoi(argv[3]));
    } else {
        std::fprintf(stderr, "usage: %s golden DATA OUT CONFIGS | align DATA OUT CONFIGS | halfconv OUT | fuzz SEED COUNT\n",
                     argv[0]);
        return 2;
    }
    std::printf("emu tests: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
