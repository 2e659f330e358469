// Vector pow/log/exp over contiguous arrays, shared by the kernels of every model.
//
// With DELTA_USE_LIBMVEC (x86_64 glibc, set by CMake) the SSE2 vector variants of glibc's libmvec
// are looked up once at run time with dlopen (no link-time dependency; <= 4 ULP); otherwise, or
// when the environment variable DELTA_NO_LIBMVEC is set to a non-zero value, scalar std::pow,
// std::log and std::exp. DELTA_SIMD marks loops for `omp simd` vectorisation where the compiler
// supports it; DELTA_SIMD_SUM(a, b) one whose iterations add into the scalars a, b.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <limits>

#ifdef DELTA_USE_LIBMVEC
#include <dlfcn.h>
#include <emmintrin.h>
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

namespace delta {

#ifdef DELTA_USE_LIBMVEC
// SSE2 registers of float (4 lanes) and double (2 lanes).
template <typename T>
struct Sse;
template <>
struct Sse<float> {
  using V = __m128;
  static constexpr std::size_t kWidth = 4;
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, V v) { _mm_storeu_ps(p, v); }
};
template <>
struct Sse<double> {
  using V = __m128d;
  static constexpr std::size_t kWidth = 2;
  static V load(const double* p) { return _mm_loadu_pd(p); }
  static void store(double* p, V v) { _mm_storeu_pd(p, v); }
};

// Vector variants of pow/log/exp from glibc's libmvec (x86_64 vector ABI, SSE2 'b' variants,
// resolved by the library to its best implementation for the CPU), all null unless every one
// was found.
template <typename T>
struct MvecFns {
  using V = typename Sse<T>::V;
  V (*pow)(V, V) = nullptr;
  V (*log)(V) = nullptr;
  V (*exp)(V) = nullptr;
};

struct Mvec {
  MvecFns<float> f32;
  MvecFns<double> f64;
  Mvec() {
    if (const char* e = std::getenv("DELTA_NO_LIBMVEC"))
      if (e[0] && e[0] != '0') return;
    void* h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    MvecFns<float> f;
    MvecFns<double> d;
    f.pow = reinterpret_cast<decltype(f.pow)>(dlsym(h, "_ZGVbN4vv_powf"));
    f.log = reinterpret_cast<decltype(f.log)>(dlsym(h, "_ZGVbN4v_logf"));
    f.exp = reinterpret_cast<decltype(f.exp)>(dlsym(h, "_ZGVbN4v_expf"));
    d.pow = reinterpret_cast<decltype(d.pow)>(dlsym(h, "_ZGVbN2vv_pow"));
    d.log = reinterpret_cast<decltype(d.log)>(dlsym(h, "_ZGVbN2v_log"));
    d.exp = reinterpret_cast<decltype(d.exp)>(dlsym(h, "_ZGVbN2v_exp"));
    if (f.pow && f.log && f.exp && d.pow && d.log && d.exp) {
      f32 = f;
      f64 = d;
    }
  }
};
inline const Mvec& mvec() {
  static const Mvec m;
  return m;
}
inline const MvecFns<float>& mvec_fns(float) { return mvec().f32; }
inline const MvecFns<double>& mvec_fns(double) { return mvec().f64; }

// out[i] = f(x[i]) (and f(x[i], e[i])) in whole registers; the tail padded with 1.
template <typename T, typename F>
inline void map1(F f, const T* x, T* out, std::size_t n) {
  using S = Sse<T>;
  std::size_t i = 0;
  for (; i + S::kWidth <= n; i += S::kWidth) S::store(out + i, f(S::load(x + i)));
  if (i == n) return;
  alignas(16) T xb[S::kWidth], ob[S::kWidth];
  for (std::size_t j = 0; j < S::kWidth; ++j) xb[j] = i + j < n ? x[i + j] : T(1);
  S::store(ob, f(S::load(xb)));
  for (std::size_t j = i; j < n; ++j) out[j] = ob[j - i];
}
template <typename T, typename F>
inline void map2(F f, const T* x, const T* e, T* out, std::size_t n) {
  using S = Sse<T>;
  std::size_t i = 0;
  for (; i + S::kWidth <= n; i += S::kWidth)
    S::store(out + i, f(S::load(x + i), S::load(e + i)));
  if (i == n) return;
  alignas(16) T xb[S::kWidth], eb[S::kWidth], ob[S::kWidth];
  for (std::size_t j = 0; j < S::kWidth; ++j) {
    xb[j] = i + j < n ? x[i + j] : T(1);
    eb[j] = i + j < n ? e[i + j] : T(1);
  }
  S::store(ob, f(S::load(xb), S::load(eb)));
  for (std::size_t j = i; j < n; ++j) out[j] = ob[j - i];
}

// out = x^e, log(x), exp(x) element-wise over n values.
template <typename T>
inline void vpow(const T* x, const T* e, T* out, std::size_t n) {
  if (const auto f = mvec_fns(T()).pow) return map2(f, x, e, out, n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::pow(x[i], e[i]);
}
template <typename T>
inline void vlog(const T* x, T* out, std::size_t n) {
  if (const auto f = mvec_fns(T()).log) return map1(f, x, out, n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::log(x[i]);
}
template <typename T>
inline void vexp(const T* x, T* out, std::size_t n) {
  if (const auto f = mvec_fns(T()).exp) return map1(f, x, out, n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::exp(x[i]);
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
template <typename T>
inline void vexp(const T* x, T* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = std::exp(x[i]);
}
#endif

// out = x^e as exp(e log x) (two cheap vector calls instead of one costly pow; the error stays
// within a few ULP of x^e <= 1 where it matters), with log x in lx; std::pow wherever the
// identity fails or pow has its own convention: x <= 0, x infinite or NaN, e not finite.
// n <= kMaxPowBlock.
constexpr std::size_t kMaxPowBlock = 64;
template <typename T>
inline void vpow_exp_log(const T* x, const T* e, T* lx, T* out, std::size_t n) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  alignas(64) T arg[kMaxPowBlock];
  vlog(x, lx, n);
  int n_bad = 0;
  DELTA_PRAGMA(omp simd reduction(+ : n_bad))
  for (std::size_t i = 0; i < n; ++i) {
    arg[i] = e[i] * lx[i];
    n_bad += !((x[i] > T(0)) & (x[i] < inf) & (std::fabs(e[i]) < inf));
  }
  vexp(arg, out, n);
  if (n_bad)
    for (std::size_t i = 0; i < n; ++i)
      if (!((x[i] > T(0)) & (x[i] < inf) & (std::fabs(e[i]) < inf))) out[i] = std::pow(x[i], e[i]);
}

}  // namespace delta
