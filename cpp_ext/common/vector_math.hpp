// Vector pow/log over contiguous arrays, shared by the kernels of every model.
//
// With DELTA_USE_LIBMVEC (x86_64 glibc, set by CMake) the SSE2 vector variants of glibc's libmvec
// are looked up once at run time with dlopen (no link-time dependency; <= 4 ULP); otherwise, or
// when the environment variable DELTA_NO_LIBMVEC is set to a non-zero value, scalar std::pow and
// std::log. DELTA_SIMD marks loops for `omp simd` vectorisation where the compiler supports it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdlib>

#ifdef DELTA_USE_LIBMVEC
#include <dlfcn.h>
#include <emmintrin.h>
#endif

#if defined(_OPENMP) || defined(DELTA_OMP_SIMD)
#define DELTA_SIMD _Pragma("omp simd")
#else
#define DELTA_SIMD
#endif

namespace delta {

#ifdef DELTA_USE_LIBMVEC
// Vector variants of powf/logf/pow/log from glibc's libmvec (x86_64 vector ABI, SSE2 'b'
// variants, resolved by the library to its best implementation for the CPU). Looked up at run
// time, so the module has no link-time dependency on libmvec; absent it, scalar std::pow/log.
struct Mvec {
  using PowF = __m128 (*)(__m128, __m128);
  using LogF = __m128 (*)(__m128);
  using PowD = __m128d (*)(__m128d, __m128d);
  using LogD = __m128d (*)(__m128d);
  PowF powf = nullptr;
  LogF logf = nullptr;
  PowD pow = nullptr;
  LogD log = nullptr;
  Mvec() {
    if (const char* e = std::getenv("DELTA_NO_LIBMVEC"))
      if (e[0] && e[0] != '0') return;
    void* h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    auto pf = reinterpret_cast<PowF>(dlsym(h, "_ZGVbN4vv_powf"));
    auto lf = reinterpret_cast<LogF>(dlsym(h, "_ZGVbN4v_logf"));
    auto pd = reinterpret_cast<PowD>(dlsym(h, "_ZGVbN2vv_pow"));
    auto ld = reinterpret_cast<LogD>(dlsym(h, "_ZGVbN2v_log"));
    if (pf && lf && pd && ld) {
      powf = pf; logf = lf; pow = pd; log = ld;
    }
  }
};
inline const Mvec& mvec() {
  static const Mvec m;
  return m;
}

inline void vpow(const float* x, const float* e, float* out, std::size_t n) {
  const auto f = mvec().powf;
  if (!f) {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::pow(x[i], e[i]);
    return;
  }
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    _mm_storeu_ps(out + i, f(_mm_loadu_ps(x + i), _mm_loadu_ps(e + i)));
  if (i < n) {
    alignas(16) float xb[4] = {1, 1, 1, 1}, eb[4] = {1, 1, 1, 1}, ob[4];
    for (std::size_t j = i; j < n; ++j) { xb[j - i] = x[j]; eb[j - i] = e[j]; }
    _mm_store_ps(ob, f(_mm_load_ps(xb), _mm_load_ps(eb)));
    for (std::size_t j = i; j < n; ++j) out[j] = ob[j - i];
  }
}
inline void vpow(const double* x, const double* e, double* out, std::size_t n) {
  const auto f = mvec().pow;
  if (!f) {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::pow(x[i], e[i]);
    return;
  }
  std::size_t i = 0;
  for (; i + 2 <= n; i += 2)
    _mm_storeu_pd(out + i, f(_mm_loadu_pd(x + i), _mm_loadu_pd(e + i)));
  if (i < n) {
    const __m128d r = f(_mm_set_pd(1.0, x[i]), _mm_set_pd(1.0, e[i]));
    out[i] = _mm_cvtsd_f64(r);
  }
}
inline void vlog(const float* x, float* out, std::size_t n) {
  const auto f = mvec().logf;
  if (!f) {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::log(x[i]);
    return;
  }
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, f(_mm_loadu_ps(x + i)));
  if (i < n) {
    alignas(16) float xb[4] = {1, 1, 1, 1}, ob[4];
    for (std::size_t j = i; j < n; ++j) xb[j - i] = x[j];
    _mm_store_ps(ob, f(_mm_load_ps(xb)));
    for (std::size_t j = i; j < n; ++j) out[j] = ob[j - i];
  }
}
inline void vlog(const double* x, double* out, std::size_t n) {
  const auto f = mvec().log;
  if (!f) {
    for (std::size_t i = 0; i < n; ++i) out[i] = std::log(x[i]);
    return;
  }
  std::size_t i = 0;
  for (; i + 2 <= n; i += 2) _mm_storeu_pd(out + i, f(_mm_loadu_pd(x + i)));
  if (i < n) out[i] = _mm_cvtsd_f64(f(_mm_set_pd(1.0, x[i])));
}
#else
template <typename T>
inline void vpow(const T* x, const T* e, T* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = std::pow(x[i], e[i]);
}
template <typename T>
inline void vlog(const T* x, T* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = std::log(x[i]);
}
#endif

}  // namespace delta
