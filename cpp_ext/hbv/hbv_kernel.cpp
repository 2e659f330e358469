// HBV kernel: the implementation (hbv_kernel_impl.inc) compiled for the x86-64 baseline (SSE2)
// and, with GCC on x86-64, once more for AVX2; the AVX2 build runs where the CPU has AVX2 (the
// module stays portable: no -march). See hbv_kernel.hpp for layouts and conventions.
#include "hbv_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "parallel.hpp"
#include "vector_math.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define HBV_HAVE_AVX2_BUILD 1
#else
#define HBV_HAVE_AVX2_BUILD 0
#endif

namespace hbv {

namespace isa_baseline {
#define DELTA_VEC_AVX2 0
#include "vector_math_isa.inc"
#include "hbv_kernel_impl.inc"
#undef DELTA_VEC_AVX2
}  // namespace isa_baseline

#if HBV_HAVE_AVX2_BUILD
#pragma GCC push_options
#pragma GCC target("avx2")
namespace isa_avx2 {
#define DELTA_VEC_AVX2 1
#include "vector_math_isa.inc"
#include "hbv_kernel_impl.inc"
#undef DELTA_VEC_AVX2
}  // namespace isa_avx2
#pragma GCC pop_options
#endif

namespace {

bool cpu_has_avx2() {
#if HBV_HAVE_AVX2_BUILD
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

// The instruction set forward() and backward() run: AVX2 where built and supported, unless the
// environment variable DELTA_NO_AVX2 is set to a non-zero value.
bool& use_avx2() {
  static bool on = cpu_has_avx2() && !delta::env_flag("DELTA_NO_AVX2");
  return on;
}

}  // namespace

const char* isa() { return use_avx2() ? "avx2" : "sse2"; }

bool set_isa(const char* name) {
  if (std::strcmp(name, "sse2") == 0) {
    use_avx2() = false;
    return true;
  }
  if (std::strcmp(name, "avx2") == 0 && cpu_has_avx2()) {
    use_avx2() = true;
    return true;
  }
  return false;
}

int hardware_threads() { return delta::hardware_threads(); }

int effective_threads(int requested, std::size_t n_days, std::size_t n_basins,
                      std::size_t n_comps) {
  int n = requested <= 0 ? hardware_threads() : requested;
  // Thread start-up (~tens of microseconds) only pays off for enough work per thread.
  const double work = double(n_days) * double(n_basins) * double(n_comps);
  const int by_work = int(std::max(1.0, work / 2.0e5));
  n = std::min(n, by_work);
  n = int(std::min<std::size_t>(std::size_t(std::max(n, 1)), std::max<std::size_t>(n_basins, 1)));
  return std::max(n, 1);
}

template <typename T>
void forward(const ForwardArgs<T>& a, int n_threads) {
#if HBV_HAVE_AVX2_BUILD
  if (use_avx2()) return isa_avx2::forward_impl(a, n_threads);
#endif
  isa_baseline::forward_impl(a, n_threads);
}

template <typename T>
void backward(const BackwardArgs<T>& a, int n_threads) {
#if HBV_HAVE_AVX2_BUILD
  if (use_avx2()) return isa_avx2::backward_impl(a, n_threads);
#endif
  isa_baseline::backward_impl(a, n_threads);
}

// One basin-day is too little work for wider registers to pay: always the baseline build.
template <typename T>
void step(T* states, std::size_t n_comps, T p, T t, T pet, const T* params, T* fluxes) {
  isa_baseline::step_impl(states, n_comps, p, t, pet, params, fluxes);
}

template void forward<float>(const ForwardArgs<float>&, int);
template void forward<double>(const ForwardArgs<double>&, int);
template void backward<float>(const BackwardArgs<float>&, int);
template void backward<double>(const BackwardArgs<double>&, int);
template void step<float>(float*, std::size_t, float, float, float, const float*, float*);
template void step<double>(double*, std::size_t, double, double, double, const double*, double*);

}  // namespace hbv
