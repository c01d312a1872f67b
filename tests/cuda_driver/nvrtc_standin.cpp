// A stand-in for NVRTC (libnvrtc.so.12, or libnvrtc.so.13 built with -DSTANDIN_NVRTC_MAJOR=13),
// for tests/cuda_gpu.rs against the driver stand-in on a machine where no real NVRTC is
// installed, and for tests/cuda_faults.rs: "compiling" returns an image that the driver stand-in
// accepts ("CTC-STANDIN-IMAGE" and the source, which names every kernel). With a real NVRTC
// present tests/cuda_gpu.rs uses that one instead, and the driver stand-in loads its cubin.
// ctc_nvrtc_standin_* count compilations and make them fail.

#include <cstdio>
#include <cstring>
#include <atomic>
#include <string>

typedef int nvrtcResult;

#ifndef STANDIN_NVRTC_MAJOR
#define STANDIN_NVRTC_MAJOR 12
#endif

namespace {
std::atomic<long> g_compiles{0};
std::atomic<bool> g_fail{false};

struct Program {
    std::string source;
    std::string image;
    std::string log;
};
}  // namespace

extern "C" {

nvrtcResult nvrtcVersion(int* major, int* minor) {
    *major = STANDIN_NVRTC_MAJOR;
    *minor = 0;
    return 0;
}

nvrtcResult nvrtcGetNumSupportedArchs(int* n) {
    *n = 3;
    return 0;
}

nvrtcResult nvrtcGetSupportedArchs(int* archs) {
    archs[0] = 75;
    archs[1] = 80;
    archs[2] = 90;
    return 0;
}

const char* nvrtcGetErrorString(nvrtcResult r) {
    return r == 0 ? "NVRTC_SUCCESS" : "NVRTC_ERROR (stand-in)";
}

nvrtcResult nvrtcCreateProgram(void** prog, const char* src, const char*, int, const char* const*,
                               const char* const*) {
    if (!prog || !src) return 3;  // NVRTC_ERROR_INVALID_INPUT
    *prog = new Program{src, "", ""};
    return 0;
}

nvrtcResult nvrtcCompileProgram(void* prog, int n, const char* const* options) {
    auto* p = static_cast<Program*>(prog);
    std::string arch;
    for (int i = 0; i < n; ++i)
        if (std::strncmp(options[i], "--gpu-architecture=", 19) == 0) arch = options[i] + 19;
    g_compiles += 1;
    if (g_fail) {
        p->log = "error: the NVRTC stand-in was told to fail (ctc_nvrtc_standin_fail)";
        return 6;  // NVRTC_ERROR_COMPILATION
    }
    if (arch.empty()) {
        p->log = "no --gpu-architecture";
        return 6;  // NVRTC_ERROR_COMPILATION
    }
    p->image = "CTC-STANDIN-IMAGE " + arch + "\n" + p->source;
    return 0;
}

nvrtcResult nvrtcGetProgramLogSize(void* prog, size_t* n) {
    *n = static_cast<Program*>(prog)->log.size() + 1;
    return 0;
}

nvrtcResult nvrtcGetProgramLog(void* prog, char* log) {
    const std::string& s = static_cast<Program*>(prog)->log;
    std::memcpy(log, s.c_str(), s.size() + 1);
    return 0;
}

nvrtcResult nvrtcGetCUBINSize(void* prog, size_t* n) {
    *n = static_cast<Program*>(prog)->image.size() + 1;
    return 0;
}

nvrtcResult nvrtcGetCUBIN(void* prog, char* out) {
    const std::string& s = static_cast<Program*>(prog)->image;
    std::memcpy(out, s.c_str(), s.size() + 1);
    return 0;
}

nvrtcResult nvrtcGetPTXSize(void* prog, size_t* n) { return nvrtcGetCUBINSize(prog, n); }
nvrtcResult nvrtcGetPTX(void* prog, char* out) { return nvrtcGetCUBIN(prog, out); }

nvrtcResult nvrtcDestroyProgram(void** prog) {
    delete static_cast<Program*>(*prog);
    *prog = nullptr;
    return 0;
}

/// Compilations so far, and whether they fail from now on.
long ctc_nvrtc_standin_compiles() { return g_compiles; }
void ctc_nvrtc_standin_fail(int on) { g_fail = on != 0; }

}  // extern "C"
