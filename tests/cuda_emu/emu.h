// A small host emulation of the CUDA C++ subset that src/cuda/kernels/ctc.cu uses, so that the
// very same file compiles as C++20 with g++ or clang++ (-std=c++20 -pthread) and its kernels run
// on the CPU (tests/cuda_emulation.rs).
//
// - __global__, __device__, __forceinline__, __launch_bounds__ expand to (almost) nothing;
//   __shared__ is `static`: blocks of a launch run one after another, so one copy is enough.
// - threadIdx, blockIdx, blockDim, gridDim are thread_local.
// - emu::launch(kernel, grid, block, args...) runs the blocks in order, with one std::thread per
//   CUDA thread (the same threads serve every block of the launch, one block at a time).
//   __syncthreads() is a std::barrier of the block's threads; __syncthreads_or(p) also returns
//   the OR of the predicates (computed by the barrier's completion step).
// - After each block, the launch checks that every thread passed the same number of barriers
//   (a __syncthreads reached by only part of the block is a bug on a GPU: it aborts here).
// - The math built-ins the kernels use (expf, logf, exp, log) are those of <cmath> (<math.h>);
//   __int_as_float and __longlong_as_double are bit casts.
#pragma once

#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <tuple>
#include <vector>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

inline float __int_as_float(int i) { return std::bit_cast<float>(i); }
inline int __float_as_int(float f) { return std::bit_cast<int>(f); }
inline double __longlong_as_double(long long i) { return std::bit_cast<double>(i); }
inline long long __double_as_longlong(double d) { return std::bit_cast<long long>(d); }

namespace emu {

struct Block;

/// Runs as the completion step of every barrier phase: the OR of the predicates of
/// __syncthreads_or (harmless, and unused, after a plain __syncthreads).
struct OrStep {
    Block* block;
    void operator()() noexcept;
};

/// The state one launch's threads share.
struct Block {
    explicit Block(unsigned n) : predicates(n, 0), barriers(n, 0), bar(n, OrStep{this}) {}
    std::vector<int> predicates;
    std::vector<long> barriers;  // barriers each thread passed in the current block
    int any = 0;
    std::barrier<OrStep> bar;
};

inline void OrStep::operator()() noexcept {
    int r = 0;
    for (int p : block->predicates) r |= p;
    block->any = r;
}

inline thread_local Block* current = nullptr;
inline thread_local unsigned linear_thread = 0;

inline void sync() {
    Block* b = current;
    b->barriers[linear_thread] += 1;
    b->bar.arrive_and_wait();
}

inline int sync_or(int predicate) {
    Block* b = current;
    b->predicates[linear_thread] = predicate != 0;
    sync();
    return b->any;
}

/// Runs `kernel` on a grid of `grid` blocks of `block` threads: block after block (x fastest),
/// every block with one std::thread per CUDA thread.
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, A... args) {
    static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
    const unsigned n = block.x * block.y * block.z;
    if (n == 0 || n > 1024) {
        std::fprintf(stderr, "emu::launch: %u threads per block\n", n);
        std::abort();
    }
    const std::tuple<P...> params(static_cast<P>(args)...);
    Block state(n);
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            current = &state;
            linear_thread = i;
            threadIdx = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
            blockDim = block;
            gridDim = grid;
            for (unsigned z = 0; z < grid.z; ++z) {
                for (unsigned y = 0; y < grid.y; ++y) {
                    for (unsigned x = 0; x < grid.x; ++x) {
                        blockIdx = dim3(x, y, z);
                        std::apply(kernel, params);
                        state.bar.arrive_and_wait();
                        if (i == 0) {
                            for (unsigned k = 1; k < n; ++k) {
                                if (state.barriers[k] != state.barriers[0]) {
                                    std::fprintf(stderr,
                                                 "emu::launch: block (%u, %u, %u): thread %u "
                                                 "passed %ld barriers, thread 0 %ld\n",
                                                 x, y, z, k, state.barriers[k],
                                                 state.barriers[0]);
                                    std::abort();
                                }
                            }
                            for (long& c : state.barriers) c = 0;
                        }
                        state.bar.arrive_and_wait();
                    }
                }
            }
        });
    }
    for (std::thread& t : threads) t.join();
}

}  // namespace emu

inline void __syncthreads() { emu::sync(); }
inline int __syncthreads_or(int predicate) { return emu::sync_or(predicate); }
