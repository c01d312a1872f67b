// A stand-in for the CUDA driver (libcuda.so.1) that runs the kernels of
// src/cuda/kernels/ctc.cu on the CPU, so that libctc's whole CUDA host path (contexts, streams,
// workspace, staging copies, module cache, launches) runs on a machine without a GPU
// (tests/cuda_gpu.rs, tests/common/cuda.rs). Built by the tests as a shared library with the
// soname libcuda.so.1; never used where a real driver loads.
//
// What it models, and checks, beyond the driver's documented results:
// - "Device memory" is host memory, one allocation per cuMemAlloc (so AddressSanitizer, in the
//   ASan build, sees any access past its end), with guard bytes checked in the plain build.
//   Freed memory is poisoned (0xff) and kept (plain build) or freed (ASan build).
// - Streams are queues: work runs only when its stream or context is synchronized, a
//   synchronous copy runs the legacy stream, or a test calls ctc_standin_flush. So a result read
//   before its stream ran, a buffer freed before its last use in stream order, or work left on
//   another stream shows up as wrong numbers or a recorded violation. The legacy default stream
//   (NULL, CU_STREAM_LEGACY) waits for earlier work of the context's blocking streams and they
//   for it; CU_STREAM_PER_THREAD is a blocking stream per thread and context.
// - A copy from page-locked host memory (cuMemHostAlloc) reads the host bytes when it runs in
//   stream order; a copy from pageable memory is staged at the call, as the driver does.
// - cuModuleLoadData accepts a cubin (ELF) or PTX from NVRTC, or the image of the NVRTC
//   stand-in, and only if it holds every kernel name; cuLaunchKernel takes the kernel's one
//   parameter struct, checks that its device pointers lie in live allocations when it runs,
//   that the block fits the kernel's __launch_bounds__, and that function, stream and current
//   context agree.
// - Per calling thread it counts synchronizations (stream or context synchronize, synchronous
//   copies) and records the stream of every enqueued operation, for the tests to check that
//   libctc makes none and uses only the caller's stream.
// - Contexts get increasing ids (cuCtxGetId); a destroyed context's memory is released, so a
//   new context may get the same address, as on a real driver.

#include "../cuda_emu/emu.h"

#include "../../src/cuda/kernels/ctc.cu"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define STANDIN_ASAN 1
#else
#define STANDIN_ASAN 0
#endif

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

namespace {

enum : int {
    OK = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    NOT_INITIALIZED = 3,
    INVALID_DEVICE = 101,
    INVALID_IMAGE = 200,
    INVALID_CONTEXT = 201,
    INVALID_HANDLE = 400,
    NOT_FOUND = 500,
    LAUNCH_OUT_OF_RESOURCES = 701,
    CONTEXT_IS_DESTROYED = 709,
    NOT_SUPPORTED = 801,
};

constexpr int kDevices = 1;
constexpr int kComputeCapability = 90;
constexpr size_t kGuard = 64;
constexpr unsigned char kGuardByte = 0xcd;

struct Context;
struct Module;

struct Stream {
    Context* ctx;
    unsigned flags = 0;  // 1: CU_STREAM_NON_BLOCKING
    bool legacy = false;
    bool capturing = false;
    struct Op {
        unsigned long long seq;
        std::function<void()> run;
    };
    std::deque<Op> ops;
    bool blocking() const { return !legacy && (flags & 1) == 0; }
};

struct Context {
    unsigned long long id;
    int device;
    bool primary;
    Stream legacy_stream{};
    std::vector<std::unique_ptr<Stream>> streams;
    std::map<std::thread::id, std::unique_ptr<Stream>> per_thread;
    std::vector<Module*> modules;
};

struct Kernel {
    const char* name;
    void (*run)(dim3, dim3, const void*);
    size_t param_size;
    int pointers;           // leading pointer fields of the parameter struct
    unsigned max_threads;   // __launch_bounds__
    int nullable_mask;      // pointer fields that may be NULL
};

template <typename P, void (*K)(P)>
void run_kernel(dim3 grid, dim3 block, const void* params) {
    P p;
    std::memcpy(&p, params, sizeof(P));
    emu::launch(K, grid, block, p);
}

// The kernels reading log_probs, for one element type (ctc.cu's CTC_INPUT_KERNELS).
#define STANDIN_INPUT_KERNELS(In, T, SUFFIX)                                                     \
    {"ctc_shift_" #SUFFIX, run_kernel<ShiftParams<In, T>, ctc_shift_##SUFFIX>,                   \
     sizeof(ShiftParams<In, T>), 2, CTC_GRID_THREADS, 0},                                       \
    {"ctc_alpha_" #SUFFIX, run_kernel<AlphaParams<In, T>, ctc_alpha_##SUFFIX>,                   \
     sizeof(AlphaParams<In, T>), 7, CTC_SWEEP_THREADS, 1 << 1},                                 \
    {"ctc_beta_" #SUFFIX, run_kernel<BetaParams<In, T>, ctc_beta_##SUFFIX>,                      \
     sizeof(BetaParams<In, T>), 8, CTC_SWEEP_THREADS, 1 << 1},                                  \
    {"ctc_grad_" #SUFFIX, run_kernel<GradParams<In, T>, ctc_grad_##SUFFIX>,                      \
     sizeof(GradParams<In, T>), 10, CTC_GRID_THREADS, 1 << 1 | 1 << 8},                         \
    {"ctc_align_" #SUFFIX, run_kernel<AlignParams<In, T>, ctc_align_##SUFFIX>,                   \
     sizeof(AlignParams<In, T>), 10, CTC_SWEEP_THREADS, 1 << 1 | 3 << 8}

const Kernel kKernels[] = {
    {"ctc_offsets", run_kernel<OffsetsParams, ctc_offsets>, sizeof(OffsetsParams), 2, CTC_GRID_THREADS, 0},
    {"ctc_prepare", run_kernel<PrepareParams, ctc_prepare>, sizeof(PrepareParams), 9, CTC_GRID_THREADS, 1 << 3},
    // shift is NULL for log-probabilities; grad_loss may be NULL; path is never written when
    // T = 0 (an empty tensor's pointer); path_scores may be NULL.
    STANDIN_INPUT_KERNELS(float, float, f32),
    STANDIN_INPUT_KERNELS(double, double, f64),
    STANDIN_INPUT_KERNELS(ctc_f16, float, f16),
    STANDIN_INPUT_KERNELS(ctc_bf16, float, bf16),
    {"ctc_reduce_f32", run_kernel<ReduceParams<float>, ctc_reduce_f32>, sizeof(ReduceParams<float>), 3, CTC_GRID_THREADS, 0},
    {"ctc_reduce_f64", run_kernel<ReduceParams<double>, ctc_reduce_f64>, sizeof(ReduceParams<double>), 3, CTC_GRID_THREADS, 0},
};

struct Module {
    Context* ctx;
    bool loaded = true;
};

// A memory pool made by cuMemPoolCreate (the device's default pool is not modelled: its
// allocations are cuMemAllocAsync's).
struct Pool {
    int device;
    unsigned long long release_threshold = 0;
};

struct Function {
    Module* module;
    const Kernel* kernel;
};

struct Allocation {
    unsigned char* block;  // with guards (plain build)
    size_t size;
    bool pinned;           // host page-locked memory, else device memory
};

struct State {
    std::recursive_mutex mu;
    bool initialized = false;
    unsigned long long next_ctx_id = 1;
    unsigned long long next_seq = 1;
    Context* primary[kDevices] = {};
    int primary_refs[kDevices] = {};
    std::vector<Context*> contexts;
    std::map<CUdeviceptr, Allocation> allocations;  // by user address
    std::deque<std::pair<unsigned char*, size_t>> quarantine;
    size_t quarantined = 0;
    std::vector<std::unique_ptr<Function>> functions;
    std::vector<std::unique_ptr<Pool>> pools;
    long violations = 0;
    // Fault injection and reported versions (ctc_standin_* functions below).
    int driver_version = 12080;
    int init_failures = 0;
    std::string missing_function;
    long module_loads = 0;
};

State& S() {
    static State* s = new State();  // never destroyed: threads may call in during exit
    return *s;
}

thread_local std::vector<Context*> t_stack;
thread_local long t_syncs = 0;
thread_local bool t_pools = true;  // per thread, so that tests running side by side do not mix
thread_local std::vector<unsigned long long> t_op_streams;

void violation(const std::string& what) {
    S().violations += 1;
    std::fprintf(stderr, "CUDA stand-in: VIOLATION: %s\n", what.c_str());
}

Context* current() { return t_stack.empty() ? nullptr : t_stack.back(); }

bool alive(Context* c) {
    auto& v = S().contexts;
    return c != nullptr && std::find(v.begin(), v.end(), c) != v.end();
}

/// The stream `h` names in the current context (special handles resolved), or nullptr.
Stream* resolve(void* h, CUresult& err) {
    Context* ctx = current();
    const auto raw = reinterpret_cast<uintptr_t>(h);
    if (raw <= 2) {
        if (!ctx) {
            err = INVALID_CONTEXT;
            return nullptr;
        }
        if (raw == 2) {
            auto& slot = ctx->per_thread[std::this_thread::get_id()];
            if (!slot) {
                slot = std::make_unique<Stream>();
                slot->ctx = ctx;
            }
            return slot.get();
        }
        return &ctx->legacy_stream;
    }
    for (Context* c : S().contexts)
        for (auto& s : c->streams)
            if (s.get() == h) return s.get();
    err = INVALID_HANDLE;
    return nullptr;
}

void enqueue(Stream* s, void* handle, std::function<void()> run) {
    s->ops.push_back({S().next_seq++, std::move(run)});
    t_op_streams.push_back(reinterpret_cast<uintptr_t>(handle));
}

void drain(Stream* s, unsigned long long limit);

/// Runs what must precede operation `seq` of stream `s` on other streams.
void dependencies(Stream* s, unsigned long long seq) {
    Context* c = s->ctx;
    if (s->legacy) {
        for (auto& x : c->streams)
            if (x->blocking()) drain(x.get(), seq);
        for (auto& [_, x] : c->per_thread) drain(x.get(), seq);
    } else if (s->blocking()) {
        drain(&c->legacy_stream, seq);
    }
}

/// Runs the operations of `s` with a sequence number below `limit`, in order.
void drain(Stream* s, unsigned long long limit) {
    while (!s->ops.empty() && s->ops.front().seq < limit) {
        Stream::Op op = std::move(s->ops.front());
        s->ops.pop_front();
        dependencies(s, op.seq);
        op.run();
    }
}

void drain_context(Context* c) {
    drain(&c->legacy_stream, ~0ULL);
    for (auto& x : c->streams) drain(x.get(), ~0ULL);
    for (auto& [_, x] : c->per_thread) drain(x.get(), ~0ULL);
}

/// The allocation holding [p, p + n), or nullptr.
Pool* find_pool(void* pool) {
    for (auto& p : S().pools)
        if (p.get() == pool) return p.get();
    return nullptr;
}

Allocation* find(CUdeviceptr p, size_t n, bool pinned) {
    auto& m = S().allocations;
    auto it = m.upper_bound(p);
    if (it == m.begin()) return nullptr;
    --it;
    if (it->second.pinned != pinned) return nullptr;
    if (p < it->first || p - it->first > it->second.size || n > it->second.size - (p - it->first))
        return nullptr;
    return &it->second;
}

CUdeviceptr allocate(size_t n, bool pinned) {
    const size_t guard = STANDIN_ASAN ? 0 : kGuard;
    auto* block = static_cast<unsigned char*>(std::malloc(n + 2 * guard + 1));
    if (!block) return 0;
    std::memset(block, kGuardByte, guard);
    std::memset(block + guard, 0xa5, n);  // not zero: nothing may rely on fresh memory
    std::memset(block + guard + n, kGuardByte, guard);
    const auto user = reinterpret_cast<CUdeviceptr>(block + guard);
    S().allocations[user] = {block, n, pinned};
    return user;
}

bool guards_intact(const Allocation& a) {
    if (STANDIN_ASAN) return true;
    for (size_t i = 0; i < kGuard; ++i)
        if (a.block[i] != kGuardByte || a.block[kGuard + a.size + i] != kGuardByte) return false;
    return true;
}

CUresult release(CUdeviceptr p, bool pinned) {
    auto& m = S().allocations;
    auto it = m.find(p);
    if (it == m.end() || it->second.pinned != pinned) {
        violation("free of an address that is not a live allocation");
        return INVALID_VALUE;
    }
    Allocation a = it->second;
    m.erase(it);
    if (!guards_intact(a)) violation("a write past the end of an allocation (guard bytes)");
    if (STANDIN_ASAN) {
        std::free(a.block);
        return OK;
    }
    // Poisoned and kept for a while: a late use reads garbage instead of a recycled block.
    std::memset(a.block, 0xff, a.size + 2 * kGuard);
    S().quarantine.emplace_back(a.block, a.size);
    S().quarantined += a.size;
    while (S().quarantined > (64u << 20)) {
        std::free(S().quarantine.front().first);
        S().quarantined -= S().quarantine.front().second;
        S().quarantine.pop_front();
    }
    return OK;
}

void destroy_context(Context* c) {
    drain_context(c);
    for (Module* m : c->modules) m->loaded = false;
    auto& v = S().contexts;
    v.erase(std::find(v.begin(), v.end(), c));
    for (auto& st : t_stack)
        if (st == c) st = nullptr;
    delete c;  // its address may come back for the next context, as on a real driver
}

Context* new_context(int device, bool primary) {
    auto* c = new Context();
    c->id = S().next_ctx_id++;
    c->device = device;
    c->primary = primary;
    c->legacy_stream.ctx = c;
    c->legacy_stream.legacy = true;
    S().contexts.push_back(c);
    return c;
}

/// Whether `image` holds every kernel name (searching at most `n` bytes); `source`: the image
/// of the NVRTC stand-in, the source text, where the float kernels' names end in `##SUFFIX`.
bool holds_kernels(const unsigned char* image, size_t n, bool source) {
    for (const Kernel& k : kKernels) {
        size_t len = std::strlen(k.name);
        // The source names the typed kernels through a macro: look for their common prefix.
        const char* type = std::strrchr(k.name, '_');
        const bool typed = type && (!std::strcmp(type, "_f32") || !std::strcmp(type, "_f64") ||
                                    !std::strcmp(type, "_f16") || !std::strcmp(type, "_bf16"));
        if (source && typed) len = static_cast<size_t>(type - k.name) + 1;
        bool found = false;
        for (size_t i = 0; i + len <= n && !found; ++i)
            found = std::memcmp(image + i, k.name, len) == 0;
        if (!found) return false;
    }
    return true;
}

/// The size of an ELF image from its header (section headers come last in NVRTC's cubins).
size_t elf_size(const unsigned char* e) {
    if (e[4] != 2) return 0;  // ELFCLASS64
    unsigned long long shoff;
    unsigned short shentsize, shnum;
    std::memcpy(&shoff, e + 0x28, 8);
    std::memcpy(&shentsize, e + 0x3a, 2);
    std::memcpy(&shnum, e + 0x3c, 2);
    return static_cast<size_t>(shoff + static_cast<unsigned long long>(shentsize) * shnum);
}

#define LOCK std::lock_guard<std::recursive_mutex> lock(S().mu)
#define NEED_INIT                            \
    if (!S().initialized) return NOT_INITIALIZED

}  // namespace

extern "C" {

// ---------------------------------------------------------------------------------------------
// Initialization, devices, errors.

CUresult cuInit(unsigned flags) {
    LOCK;
    if (flags != 0) return INVALID_VALUE;
    if (S().init_failures > 0) {
        S().init_failures -= 1;
        return NOT_INITIALIZED;
    }
    S().initialized = true;
    return OK;
}

CUresult cuDriverGetVersion(int* v) {
    if (!v) return INVALID_VALUE;
    LOCK;
    *v = S().driver_version;
    return OK;
}

CUresult cuDeviceGetCount(int* n) {
    LOCK;
    NEED_INIT;
    *n = kDevices;
    return OK;
}

CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    LOCK;
    NEED_INIT;
    if (ordinal < 0 || ordinal >= kDevices) return INVALID_DEVICE;
    *d = ordinal;
    return OK;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
    if (d < 0 || d >= kDevices || len <= 0) return INVALID_VALUE;
    std::snprintf(name, static_cast<size_t>(len), "libctc CUDA driver stand-in%s",
                  STANDIN_ASAN ? " (AddressSanitizer)" : "");
    return OK;
}

CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
    LOCK;
    NEED_INIT;
    if (d < 0 || d >= kDevices) return INVALID_DEVICE;
    switch (attr) {
        case 1: *v = 1024; return OK;                         // MAX_THREADS_PER_BLOCK
        case 16: *v = 4; return OK;                           // MULTIPROCESSOR_COUNT
        case 75: *v = kComputeCapability / 10; return OK;     // COMPUTE_CAPABILITY_MAJOR
        case 76: *v = kComputeCapability % 10; return OK;     // COMPUTE_CAPABILITY_MINOR
        case 115: *v = t_pools ? 1 : 0; return OK;            // MEMORY_POOLS_SUPPORTED
        default:
            violation("cuDeviceGetAttribute(" + std::to_string(attr) + ") is not modelled");
            return INVALID_VALUE;
    }
}

CUresult cuGetErrorString(CUresult r, const char** s) {
    switch (r) {
        case OK: *s = "no error"; return OK;
        case INVALID_VALUE: *s = "invalid argument"; return OK;
        case OUT_OF_MEMORY: *s = "out of memory"; return OK;
        case NOT_INITIALIZED: *s = "initialization error"; return OK;
        case INVALID_DEVICE: *s = "invalid device ordinal"; return OK;
        case INVALID_IMAGE: *s = "device kernel image is invalid"; return OK;
        case INVALID_CONTEXT: *s = "invalid device context"; return OK;
        case INVALID_HANDLE: *s = "invalid resource handle"; return OK;
        case NOT_FOUND: *s = "named symbol not found"; return OK;
        case LAUNCH_OUT_OF_RESOURCES: *s = "too many resources requested for launch"; return OK;
        case CONTEXT_IS_DESTROYED: *s = "context is destroyed"; return OK;
        case NOT_SUPPORTED: *s = "operation not supported"; return OK;
        default: *s = nullptr; return INVALID_VALUE;
    }
}

CUresult cuGetErrorName(CUresult r, const char** s) { return cuGetErrorString(r, s); }

/// The driver's private tables: NVRTC opens libcuda.so.1 and asks for one when the driver is
/// there (a missing symbol made it call a null pointer). None here.
CUresult cuGetExportTable(const void** table, const void*) {
    if (table) *table = nullptr;
    return NOT_SUPPORTED;
}

// ---------------------------------------------------------------------------------------------
// Contexts.

CUresult cuDevicePrimaryCtxRetain(void** pctx, CUdevice d) {
    LOCK;
    NEED_INIT;
    if (d < 0 || d >= kDevices) return INVALID_DEVICE;
    if (!S().primary[d]) S().primary[d] = new_context(d, true);
    S().primary_refs[d] += 1;
    *pctx = S().primary[d];
    return OK;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    LOCK;
    NEED_INIT;
    if (d < 0 || d >= kDevices || S().primary_refs[d] == 0) return INVALID_VALUE;
    if (--S().primary_refs[d] == 0) {
        destroy_context(S().primary[d]);
        S().primary[d] = nullptr;
    }
    return OK;
}

CUresult cuCtxCreate_v2(void** pctx, unsigned, CUdevice d) {
    LOCK;
    NEED_INIT;
    if (d < 0 || d >= kDevices) return INVALID_DEVICE;
    Context* c = new_context(d, false);
    t_stack.push_back(c);
    *pctx = c;
    return OK;
}

CUresult cuCtxDestroy_v2(void* ctx) {
    LOCK;
    auto* c = static_cast<Context*>(ctx);
    if (!alive(c) || c->primary) return INVALID_CONTEXT;
    destroy_context(c);
    return OK;
}

CUresult cuCtxGetCurrent(void** pctx) {
    LOCK;
    NEED_INIT;
    *pctx = current();
    return OK;
}

CUresult cuCtxSetCurrent(void* ctx) {
    LOCK;
    auto* c = static_cast<Context*>(ctx);
    if (c && !alive(c)) return INVALID_CONTEXT;
    if (!c) {
        if (!t_stack.empty()) t_stack.pop_back();
    } else if (t_stack.empty()) {
        t_stack.push_back(c);
    } else {
        t_stack.back() = c;
    }
    return OK;
}

CUresult cuCtxPushCurrent_v2(void* ctx) {
    LOCK;
    auto* c = static_cast<Context*>(ctx);
    if (!alive(c)) return INVALID_CONTEXT;
    t_stack.push_back(c);
    return OK;
}

CUresult cuCtxPopCurrent_v2(void** pctx) {
    LOCK;
    if (t_stack.empty()) return INVALID_CONTEXT;
    if (pctx) *pctx = t_stack.back();
    t_stack.pop_back();
    return OK;
}

CUresult cuCtxGetDevice(CUdevice* d) {
    LOCK;
    Context* c = current();
    if (!c) return INVALID_CONTEXT;
    *d = c->device;
    return OK;
}

CUresult cuCtxGetId(void* ctx, unsigned long long* id) {
    LOCK;
    auto* c = ctx ? static_cast<Context*>(ctx) : current();
    if (!alive(c)) return INVALID_CONTEXT;
    *id = c->id;
    return OK;
}

CUresult cuCtxSynchronize() {
    LOCK;
    Context* c = current();
    if (!c) return INVALID_CONTEXT;
    t_syncs += 1;
    drain_context(c);
    return OK;
}

// ---------------------------------------------------------------------------------------------
// Streams.

CUresult cuStreamCreate(void** ps, unsigned flags) {
    LOCK;
    Context* c = current();
    if (!c) return INVALID_CONTEXT;
    auto s = std::make_unique<Stream>();
    s->ctx = c;
    s->flags = flags;
    *ps = s.get();
    c->streams.push_back(std::move(s));
    return OK;
}

CUresult cuStreamDestroy_v2(void* h) {
    LOCK;
    CUresult err = OK;
    if (reinterpret_cast<uintptr_t>(h) <= 2) return INVALID_HANDLE;
    Stream* s = resolve(h, err);
    if (!s) return err;
    drain(s, ~0ULL);  // pending work completes, as on the driver
    auto& v = s->ctx->streams;
    v.erase(std::find_if(v.begin(), v.end(), [&](auto& p) { return p.get() == s; }));
    return OK;
}

CUresult cuStreamGetCtx(void* h, void** pctx) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    *pctx = s->ctx;
    return OK;
}

CUresult cuStreamSynchronize(void* h) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    t_syncs += 1;
    drain(s, ~0ULL);
    return OK;
}

CUresult cuStreamIsCapturing(void* h, int* status) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    *status = s->capturing ? 1 : 0;
    return OK;
}

// ---------------------------------------------------------------------------------------------
// Memory.

CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
    LOCK;
    if (!current()) return INVALID_CONTEXT;
    if (n == 0) return INVALID_VALUE;
    *p = allocate(n, false);
    return *p ? OK : OUT_OF_MEMORY;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
    LOCK;
    return release(p, false);
}

CUresult cuMemAllocAsync(CUdeviceptr* p, size_t n, void* h) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    if (!t_pools) return NOT_SUPPORTED;
    if (n == 0) return INVALID_VALUE;
    *p = allocate(n, false);
    enqueue(s, h, [] {});
    return *p ? OK : OUT_OF_MEMORY;
}

CUresult cuMemPoolCreate(void** pool, const void* props) {
    LOCK;
    NEED_INIT;
    if (!pool || !props) return INVALID_VALUE;
    // CUmemPoolProps: allocType, handleTypes, location {type, id}, ...
    int head[4];
    std::memcpy(head, props, sizeof head);
    const bool pinned = head[0] == 1, no_handles = head[1] == 0, on_device = head[2] == 1;
    if (!pinned || !no_handles || !on_device) return INVALID_VALUE;
    if (head[3] < 0 || head[3] >= kDevices) return INVALID_DEVICE;
    if (!t_pools) return NOT_SUPPORTED;
    S().pools.push_back(std::make_unique<Pool>(Pool{head[3]}));
    *pool = S().pools.back().get();
    return OK;
}

CUresult cuMemPoolSetAttribute(void* pool, int attr, void* value) {
    LOCK;
    Pool* p = find_pool(pool);
    if (!p || !value) return INVALID_VALUE;
    if (attr != 4) return NOT_SUPPORTED;  // CU_MEMPOOL_ATTR_RELEASE_THRESHOLD only
    std::memcpy(&p->release_threshold, value, sizeof p->release_threshold);
    return OK;
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr* ptr, size_t n, void* pool, void* h) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    Pool* p = find_pool(pool);
    if (!p) return INVALID_VALUE;
    if (p->device != s->ctx->device) violation("a pool of another device than the stream's");
    if (n == 0) return INVALID_VALUE;
    *ptr = allocate(n, false);
    enqueue(s, h, [] {});
    return *ptr ? OK : OUT_OF_MEMORY;
}

CUresult cuMemFreeAsync(CUdeviceptr p, void* h) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    if (!find(p, 0, false)) return INVALID_VALUE;
    enqueue(s, h, [p] { release(p, false); });
    return OK;
}

CUresult cuMemHostAlloc(void** pp, size_t n, unsigned) {
    LOCK;
    if (n == 0) return INVALID_VALUE;
    *pp = reinterpret_cast<void*>(allocate(n, true));
    return *pp ? OK : OUT_OF_MEMORY;
}

CUresult cuMemFreeHost(void* p) {
    LOCK;
    return release(reinterpret_cast<CUdeviceptr>(p), true);
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* h) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    if (!find(dst, n, false)) {
        violation("cuMemcpyHtoDAsync to a range outside device allocations");
        return INVALID_VALUE;
    }
    if (find(reinterpret_cast<CUdeviceptr>(src), n, true)) {
        // Page-locked: the DMA reads the host bytes when the copy runs.
        enqueue(s, h, [dst, src, n] { std::memcpy(reinterpret_cast<void*>(dst), src, n); });
    } else {
        // Pageable: staged now; the caller may reuse its buffer once the call returns.
        auto staged = std::make_shared<std::vector<unsigned char>>(
            static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + n);
        enqueue(s, h, [dst, staged] {
            if (find(dst, staged->size(), false))
                std::memcpy(reinterpret_cast<void*>(dst), staged->data(), staged->size());
            else
                violation("a queued copy to device memory freed before it ran");
        });
    }
    return OK;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    LOCK;
    CUresult r = cuMemcpyHtoDAsync_v2(dst, src, n, nullptr);
    if (r != OK) return r;
    t_syncs += 1;
    drain(&current()->legacy_stream, ~0ULL);
    return OK;
}

CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    LOCK;
    Context* c = current();
    if (!c) return INVALID_CONTEXT;
    if (!find(src, n, false)) {
        violation("cuMemcpyDtoH from a range outside device allocations");
        return INVALID_VALUE;
    }
    enqueue(&c->legacy_stream, nullptr,
            [dst, src, n] { std::memcpy(dst, reinterpret_cast<const void*>(src), n); });
    t_syncs += 1;
    drain(&c->legacy_stream, ~0ULL);
    return OK;
}

// ---------------------------------------------------------------------------------------------
// Modules and launches.

CUresult cuModuleLoadData(void** pmod, const void* image) {
    LOCK;
    Context* c = current();
    if (!c) return INVALID_CONTEXT;
    const auto* bytes = static_cast<const unsigned char*>(image);
    size_t n = 0;
    bool fake = false;
    if (std::memcmp(bytes, "\x7f" "ELF", 4) == 0) {
        n = elf_size(bytes);  // a cubin
    } else {
        n = std::strlen(static_cast<const char*>(image));  // PTX, or the NVRTC stand-in's text
        const bool ptx = std::strstr(static_cast<const char*>(image), ".version") != nullptr;
        fake = std::strncmp(static_cast<const char*>(image), "CTC-STANDIN-IMAGE", 17) == 0;
        if (!ptx && !fake) return INVALID_IMAGE;
    }
    if (n == 0 || !holds_kernels(bytes, n, fake)) return INVALID_IMAGE;
    auto* m = new Module{c};
    c->modules.push_back(m);
    S().module_loads += 1;
    *pmod = m;
    return OK;
}

CUresult cuModuleUnload(void* mod) {
    LOCK;
    auto* m = static_cast<Module*>(mod);
    if (!m || !m->loaded) return INVALID_HANDLE;
    m->loaded = false;
    return OK;
}

CUresult cuModuleGetFunction(void** pf, void* mod, const char* name) {
    LOCK;
    auto* m = static_cast<Module*>(mod);
    if (!m || !m->loaded || !alive(m->ctx)) return INVALID_HANDLE;
    if (S().missing_function == name) return NOT_FOUND;
    for (const Kernel& k : kKernels) {
        if (std::strcmp(k.name, name) == 0) {
            S().functions.push_back(std::make_unique<Function>(Function{m, &k}));
            *pf = S().functions.back().get();
            return OK;
        }
    }
    return NOT_FOUND;
}

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void* h, void** params, void** extra) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    auto* fn = static_cast<Function*>(f);
    bool known = false;
    for (auto& p : S().functions) known = known || p.get() == fn;
    if (!known || !fn->module->loaded || !alive(fn->module->ctx)) return INVALID_HANDLE;
    if (fn->module->ctx != current() || s->ctx != current()) return INVALID_HANDLE;
    const Kernel& k = *fn->kernel;
    if (gx == 0 || gy != 1 || gz != 1 || by != 1 || bz != 1 || shared != 0 || extra != nullptr ||
        params == nullptr || params[0] == nullptr || bx == 0 || (bx & (bx - 1)) != 0)
        return INVALID_VALUE;
    if (bx > k.max_threads) return LAUNCH_OUT_OF_RESOURCES;
    // The driver copies the parameters at the call.
    auto copy = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(params[0]),
        static_cast<const unsigned char*>(params[0]) + k.param_size);
    enqueue(s, h, [copy, &k, gx, bx] {
        for (int i = 0; i < k.pointers; ++i) {
            CUdeviceptr p;
            std::memcpy(&p, copy->data() + 8 * i, 8);
            if (p == 0 && (k.nullable_mask >> i & 1)) continue;
            if (!find(p, 0, false))
                violation(std::string(k.name) + ": pointer field " + std::to_string(i) +
                          " is not in a live device allocation when the kernel runs");
        }
        k.run(dim3(gx), dim3(bx), copy->data());
    });
    return OK;
}

// ---------------------------------------------------------------------------------------------
// For the tests (not driver functions).

int ctc_standin_version() { return STANDIN_ASAN ? 2 : 1; }

/// Synchronizations (stream, context, synchronous copies) made by the calling thread.
long ctc_standin_thread_syncs() { return t_syncs; }

/// The streams of the operations the calling thread enqueued since the last call (at most
/// `max` written to `out`); returns how many there were, and forgets them.
int ctc_standin_take_thread_ops(unsigned long long* out, int max) {
    const int n = static_cast<int>(t_op_streams.size());
    for (int i = 0; i < n && i < max; ++i) out[i] = t_op_streams[static_cast<size_t>(i)];
    t_op_streams.clear();
    return n;
}

/// Depth of the calling thread's context stack.
int ctc_standin_context_depth() { return static_cast<int>(t_stack.size()); }

/// Runs every queued operation of every context.
void ctc_standin_flush() {
    LOCK;
    for (Context* c : S().contexts) drain_context(c);
}

/// Whether devices report memory pools (cuMemAllocAsync) to the calling thread.
void ctc_standin_set_memory_pools(int on) { t_pools = on != 0; }

/// Marks `stream` as being captured (cuStreamIsCapturing reports it) or not.
int ctc_standin_set_capturing(void* h, int on) {
    LOCK;
    CUresult err = OK;
    Stream* s = resolve(h, err);
    if (!s) return err;
    s->capturing = on != 0;
    return OK;
}

/// Violations recorded so far (each also printed to stderr).
long ctc_standin_violations() {
    LOCK;
    return S().violations;
}

/// Live device allocations (a leak check).
long ctc_standin_live_device_allocations() {
    LOCK;
    long n = 0;
    for (auto& [_, a] : S().allocations) n += a.pinned ? 0 : 1;
    return n;
}

/// The CUDA version cuDriverGetVersion reports (12080 unless set).
void ctc_standin_set_driver_version(int v) {
    LOCK;
    S().driver_version = v;
}

/// The next `n` calls of cuInit fail (CUDA_ERROR_NOT_INITIALIZED).
void ctc_standin_fail_init(int n) {
    LOCK;
    S().init_failures = n;
}

/// cuModuleGetFunction does not find `name` (NULL or "": finds every kernel again).
void ctc_standin_hide_function(const char* name) {
    LOCK;
    S().missing_function = name ? name : "";
}

/// Modules loaded so far, and those loaded and not unloaded.
long ctc_standin_module_loads() {
    LOCK;
    return S().module_loads;
}

long ctc_standin_loaded_modules() {
    LOCK;
    long n = 0;
    for (Context* c : S().contexts)
        for (Module* m : c->modules) n += m->loaded ? 1 : 0;
    return n;
}

/// Pools made by cuMemPoolCreate, and the release threshold of pool `i` (-1 past the last).
int ctc_standin_pools() {
    LOCK;
    return static_cast<int>(S().pools.size());
}

long long ctc_standin_pool_release_threshold(int i) {
    LOCK;
    if (i < 0 || static_cast<size_t>(i) >= S().pools.size()) return -1;
    return static_cast<long long>(S().pools[static_cast<size_t>(i)]->release_threshold);
}

}  // extern "C"
