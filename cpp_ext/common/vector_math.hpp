// Vector log/exp over contiguous arrays, shared by the kernels of every model: what every
// instruction set shares (loop pragmas, the run-time lookup of glibc's libmvec). The loops
// themselves are in vector_math_isa.inc, compiled once per instruction set.
//
// With DELTA_USE_LIBMVEC (x86_64 glibc, set by CMake) the vector variants of glibc's libmvec
// (SSE2 'b' and AVX2 'd' variants, <= 4 ULP) are looked up once at run time with dlopen (no
// link-time dependency); otherwise, or when the environment variable DELTA_NO_LIBMVEC is set to
// a non-zero value, scalar std::log and std::exp. DELTA_SIMD marks loops for `omp simd`
// vectorisation where the compiler supports it; DELTA_SIMD_SUM(a, b) one whose iterations add
// into the scalars a, b.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <limits>

#ifdef DELTA_USE_LIBMVEC
#include <dlfcn.h>
#include <immintrin.h>
#endif

#define DELTA_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) || defined(DELTA_OMP_SIMD)
#define DELTA_SIMD _Pragma("omp simd")
// A vectorised loop that adds into the listed scalars (the order of the additions is the
// compiler's: lanes first, then across lanes).
#define DELTA_SIMD_SUM(...) DELTA_PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define DELTA_SIMD
#define DELTA_SIMD_SUM(...)
#endif

// The loop bodies of a kernel's day, inlined into its time loop whatever the size of the
// translation unit (they run for every basin-day; a call costs the compiler what it knows of
// their arguments).
#if defined(__GNUC__)
#define DELTA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define DELTA_ALWAYS_INLINE inline
#endif

namespace delta {

// Whether a non-empty environment variable is set to something other than "0".
inline bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && e[0] && !(e[0] == '0' && e[1] == 0);
}

#ifdef DELTA_USE_LIBMVEC
// libmvec's log and exp (x86_64 vector ABI), each null unless all of its set were found:
// SSE2 variants (_ZGVb: 4 float or 2 double lanes, resolved by the library to its best
// implementation for the CPU) and AVX2 variants (_ZGVd: 8 float or 4 double lanes; called only
// from code compiled for AVX2, hence untyped here).
struct Mvec {
  __m128 (*logf)(__m128) = nullptr;
  __m128 (*expf)(__m128) = nullptr;
  __m128d (*log)(__m128d) = nullptr;
  __m128d (*exp)(__m128d) = nullptr;
  void* logf8 = nullptr;
  void* expf8 = nullptr;
  void* log4 = nullptr;
  void* exp4 = nullptr;
  Mvec() {
    if (env_flag("DELTA_NO_LIBMVEC")) return;
    void* h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    void* b[4] = {dlsym(h, "_ZGVbN4v_logf"), dlsym(h, "_ZGVbN4v_expf"), dlsym(h, "_ZGVbN2v_log"),
                  dlsym(h, "_ZGVbN2v_exp")};
    void* d[4] = {dlsym(h, "_ZGVdN8v_logf"), dlsym(h, "_ZGVdN8v_expf"), dlsym(h, "_ZGVdN4v_log"),
                  dlsym(h, "_ZGVdN4v_exp")};
    if (b[0] && b[1] && b[2] && b[3]) {
      logf = reinterpret_cast<decltype(logf)>(b[0]);
      expf = reinterpret_cast<decltype(expf)>(b[1]);
      log = reinterpret_cast<decltype(log)>(b[2]);
      exp = reinterpret_cast<decltype(exp)>(b[3]);
    }
    if (d[0] && d[1] && d[2] && d[3]) {
      logf8 = d[0]; expf8 = d[1]; log4 = d[2]; exp4 = d[3];
    }
  }
};
inline const Mvec& mvec() {
  static const Mvec m;
  return m;
}
#endif

}  // namespace delta
