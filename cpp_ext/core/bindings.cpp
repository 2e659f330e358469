// pybind11 bindings of the model-agnostic sequential loops of a BMI's spin-up: module
// delta_core._core. Each equals a Python reference (delta_core.networks.LSTMStepper.step,
// delta_core.snow.degree_day_step on floats), checked by tests/core/test_core_kernel.py.
// Buffers are C-contiguous float64 numpy arrays; no torch dependency.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pybind_helpers.hpp"
#include "vector_math.hpp"

namespace py = pybind11;

namespace {

using delta::Arr;
using delta::check_shape;
using delta::fail;

// Gate order of the packed LSTM weights (delta_core.networks._prepared): one sigmoid over the
// first three blocks of H rows, one tanh over the last.
const char* const kGateOrder[] = {"i", "f", "o", "g"};

// x = exp(x) in place: glibc's libmvec (2 lanes, <= 4 ULP) where found at run time, else
// std::exp (vector_math.hpp).
inline void exp_array(double* x, py::ssize_t n) {
  py::ssize_t i = 0;
#ifdef DELTA_USE_LIBMVEC
  if (const auto f = delta::mvec().exp)
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, f(_mm_loadu_pd(x + i)));
#endif
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

// The step loop of lstm_sequence over transposed weights (wi_t [F, H], wg_t [2H, 4H],
// wh_t [H, O]): each product accumulates over independent output rows, a loop the compiler
// vectorises without reassociating any sum. Built for AVX2 and baseline x86-64, chosen at load
// time (GCC function multiversioning); the same operations in the same order either way.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void lstm_loop(const double* wi_t, const double* bi, const double* wg_t, const double* bg,
               const double* wh_t, const double* bh, const double* xs, py::ssize_t n,
               py::ssize_t F, py::ssize_t H, py::ssize_t O, double* h, double* c, double* o) {
  std::vector<double> zh(2 * H), g(4 * H), e(H);
  for (py::ssize_t s = 0; s < n; ++s) {
    const double* xf = xs + s * F;
    for (py::ssize_t r = 0; r < H; ++r) zh[r] = 0.0;
    for (py::ssize_t k = 0; k < F; ++k) {
      const double xk = xf[k];
      const double* w = wi_t + k * H;
      for (py::ssize_t r = 0; r < H; ++r) zh[r] += w[r] * xk;
    }
    for (py::ssize_t r = 0; r < H; ++r) {
      const double z = zh[r] + bi[r];
      zh[r] = z > 0.0 ? z : 0.0;
      zh[H + r] = h[r];
    }
    for (py::ssize_t r = 0; r < 4 * H; ++r) g[r] = 0.0;
    py::ssize_t k = 0;
    for (; k + 4 <= 2 * H; k += 4) {  // four inputs per pass over g: a quarter of its loads
      const double z0 = zh[k], z1 = zh[k + 1], z2 = zh[k + 2], z3 = zh[k + 3];
      const double *w0 = wg_t + k * 4 * H, *w1 = w0 + 4 * H, *w2 = w1 + 4 * H, *w3 = w2 + 4 * H;
      for (py::ssize_t r = 0; r < 4 * H; ++r)
        g[r] += (w0[r] * z0 + w1[r] * z1) + (w2[r] * z2 + w3[r] * z3);
    }
    for (; k < 2 * H; ++k) {
      const double zk = zh[k];
      const double* w = wg_t + k * 4 * H;
      for (py::ssize_t r = 0; r < 4 * H; ++r) g[r] += w[r] * zk;
    }
    // sigmoid(x) = 1 / (exp(-x) + 1), tanh(x) = 1 - 2 / (exp(2 x) + 1): two vector exp calls
    for (py::ssize_t r = 0; r < 3 * H; ++r) g[r] = -(g[r] + bg[r]);
    for (py::ssize_t r = 3 * H; r < 4 * H; ++r) g[r] = 2.0 * (g[r] + bg[r]);
    exp_array(g.data(), 4 * H);
    for (py::ssize_t r = 0; r < H; ++r) {
      const double i_g = 1.0 / (g[r] + 1.0), f_g = 1.0 / (g[H + r] + 1.0);
      c[r] = f_g * c[r] + i_g * (1.0 - 2.0 / (g[3 * H + r] + 1.0));
      e[r] = 2.0 * c[r];
    }
    exp_array(e.data(), H);
    for (py::ssize_t r = 0; r < H; ++r)
      h[r] = (1.0 / (g[2 * H + r] + 1.0)) * (1.0 - 2.0 / (e[r] + 1.0));
    double* os = o + s * O;
    for (py::ssize_t r = 0; r < O; ++r) os[r] = 0.0;
    for (py::ssize_t k = 0; k < H; ++k) {
      const double hk = h[k];
      const double* w = wh_t + k * O;
      for (py::ssize_t r = 0; r < O; ++r) os[r] += w[r] * hk;
    }
    for (py::ssize_t r = 0; r < O; ++r) os[r] += bh[r];
  }
}

// An LSTM (input layer with ReLU, one LSTM layer, linear head) over n steps from (h, c), which
// are advanced in place; returns the head outputs [n, O]. Weights as LSTMStepper holds them:
// w_in [H, F] and b_in [H] (attributes folded into the bias), w_gates [4H, 2H] acting on
// [relu(input layer); h], b_gates [4H], w_head [O, H], b_head [O].
py::array_t<double> lstm_sequence(const Arr<double>& w_in, const Arr<double>& b_in,
                                  const Arr<double>& w_gates, const Arr<double>& b_gates,
                                  const Arr<double>& w_head, const Arr<double>& b_head,
                                  const Arr<double>& x, py::array_t<double> h_arr,
                                  py::array_t<double> c_arr) {
  if (w_in.ndim() != 2) fail("w_in: expected [H, F]");
  const py::ssize_t H = w_in.shape(0), F = w_in.shape(1);
  if (w_head.ndim() != 2) fail("w_head: expected [O, H]");
  const py::ssize_t O = w_head.shape(0);
  if (x.ndim() != 2) fail("x: expected [n, F]");
  const py::ssize_t n = x.shape(0);
  check_shape<double>(x, {n, F}, "x");
  check_shape<double>(b_in, {H}, "b_in");
  check_shape<double>(w_gates, {4 * H, 2 * H}, "w_gates");
  check_shape<double>(b_gates, {4 * H}, "b_gates");
  check_shape<double>(w_head, {O, H}, "w_head");
  check_shape<double>(b_head, {O}, "b_head");
  auto state_ok = [H](const py::array_t<double>& a) {
    return a.ndim() == 1 && a.shape(0) == H && (a.flags() & py::array::c_style) && a.writeable();
  };
  if (!state_ok(h_arr) || !state_ok(c_arr))
    fail("h, c: expected writable contiguous float64 arrays [H]");
  py::array_t<double> out({n, O});
  const double *wi = w_in.data(), *bi = b_in.data(), *wg = w_gates.data(), *bg = b_gates.data();
  const double *wh = w_head.data(), *bh = b_head.data(), *xs = x.data();
  double *h = h_arr.mutable_data(), *c = c_arr.mutable_data(), *o = out.mutable_data();
  // Transposed copies for lstm_loop.
  std::vector<double> wi_t(F * H), wg_t(2 * H * 4 * H), wh_t(H * O);
  for (py::ssize_t r = 0; r < H; ++r)
    for (py::ssize_t k = 0; k < F; ++k) wi_t[k * H + r] = wi[r * F + k];
  for (py::ssize_t r = 0; r < 4 * H; ++r)
    for (py::ssize_t k = 0; k < 2 * H; ++k) wg_t[k * 4 * H + r] = wg[r * 2 * H + k];
  for (py::ssize_t r = 0; r < O; ++r)
    for (py::ssize_t k = 0; k < H; ++k) wh_t[k * O + r] = wh[r * H + k];
  {
    py::gil_scoped_release release;
    lstm_loop(wi_t.data(), bi, wg_t.data(), bg, wh_t.data(), bh, xs, n, F, H, O, h, c, o);
  }
  return out;
}

// The degree-day snow routine over n steps from (snowpack, meltwater) [mm], the same operations
// in the same order as delta_core.snow.degree_day_step on floats (bit for bit). Rates per step
// (cfmax [mm degC-1 per step]). Returns (liquid [n] = rain + outflow, melt [n], snowpack,
// meltwater).
py::tuple snow_series(const Arr<double>& p, const Arr<double>& t, double tt, double cfmax,
                      double cfr, double cwh, double snowpack, double meltwater) {
  if (p.ndim() != 1) fail("p: expected [n]");
  const py::ssize_t n = p.shape(0);
  check_shape<double>(t, {n}, "t");
  py::array_t<double> liquid(n), melt_out(n);
  const double *ps = p.data(), *ts = t.data();
  double *lq = liquid.mutable_data(), *ml = melt_out.mutable_data();
  for (py::ssize_t s = 0; s < n; ++s) {
    const double rain = ps[s] * (ts[s] >= tt ? 1.0 : 0.0);
    const double snow = ps[s] - rain;
    snowpack = snowpack + snow;
    const double melt = std::min(std::max(cfmax * (ts[s] - tt), 0.0), snowpack);
    meltwater = meltwater + melt;
    snowpack = snowpack - melt;
    const double refreeze = std::min(std::max(cfr * cfmax * (tt - ts[s]), 0.0), meltwater);
    snowpack = snowpack + refreeze;
    meltwater = meltwater - refreeze;
    const double outflow = std::max(meltwater - cwh * snowpack, 0.0);
    meltwater = meltwater - outflow;
    lq[s] = rain + outflow;
    ml[s] = melt;
  }
  return py::make_tuple(liquid, melt_out, snowpack, meltwater);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Sequential loops of a BMI spin-up (LSTM over days, degree-day snow), float64";
  m.attr("LSTM_GATE_ORDER") = delta::names_tuple(kGateOrder);
  m.def("build_info", &delta::build_info, "compiler and flags of this build");
  m.def("lstm_sequence", &lstm_sequence, py::arg("w_in"), py::arg("b_in"), py::arg("w_gates"),
        py::arg("b_gates"), py::arg("w_head"), py::arg("b_head"), py::arg("x"), py::arg("h"),
        py::arg("c"));
  m.def("snow_series", &snow_series, py::arg("p"), py::arg("t"), py::arg("tt"),
        py::arg("cfmax"), py::arg("cfr"), py::arg("cwh"), py::arg("snowpack"),
        py::arg("meltwater"));
}
