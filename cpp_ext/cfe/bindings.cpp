// pybind11 bindings of the CFE kernel: module bmi_dcfe._core.
// Buffers are numpy arrays (C-contiguous float32 or float64); no torch dependency.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cfe_kernel.hpp"
#include "pybind_helpers.hpp"

namespace py = pybind11;

namespace {

using delta::Arr;
using delta::check_shape;
using delta::fail;

template <typename T>
cfe::Problem problem(const Arr<T>& params, const Arr<T>& state, const Arr<T>& rain,
                     const Arr<T>& pet, py::ssize_t period, bool mass_conserving, int n_threads) {
  if (rain.ndim() != 2) fail("rain: expected [T, B]");
  cfe::Problem pr;
  pr.n_steps = rain.shape(0);
  pr.n_basins = rain.shape(1);
  if (state.ndim() != 2 || state.shape(0) < cfe::kNumScalarStates)
    fail("state: expected [3 + n_nash, B]");
  pr.n_nash = int(state.shape(0)) - cfe::kNumScalarStates;
  check_shape<T>(pet, {pr.n_steps, pr.n_basins}, "pet");
  if (params.ndim() != 3) fail("params: expected [12, n_rows, B]");
  if (period < 1) fail("period: expected >= 1 steps per parameter row");
  pr.period = period;
  pr.n_rows = params.shape(1);
  const py::ssize_t rows = pr.n_steps > 0 ? (pr.n_steps + period - 1) / period : 1;
  if (pr.n_rows != rows)
    fail("params: " + std::to_string(pr.n_rows) + " rows for " + std::to_string(pr.n_steps) +
         " steps of period " + std::to_string(period) + " (expected " + std::to_string(rows) + ")");
  check_shape<T>(params, {cfe::kNumParams, pr.n_rows, pr.n_basins}, "params");
  check_shape<T>(state, {cfe::kNumScalarStates + pr.n_nash, pr.n_basins}, "state");
  pr.options.mass_conserving = mass_conserving;
  pr.n_threads = n_threads;
  return pr;
}

template <typename T>
py::tuple forward(const Arr<T>& params, const Arr<T>& state0, const Arr<T>& rain,
                  const Arr<T>& pet, py::ssize_t period, bool mass_conserving, bool save,
                  int n_threads) {
  const cfe::Problem pr = problem<T>(params, state0, rain, pet, period, mass_conserving, n_threads);
  const py::ssize_t ns = state0.shape(0);
  py::array_t<T> out({py::ssize_t(cfe::kNumOutputs), py::ssize_t(pr.n_steps), py::ssize_t(pr.n_basins)});
  py::array_t<T> final_state({ns, py::ssize_t(pr.n_basins)});
  py::object saved = py::none();
  T* saved_ptr = nullptr;
  if (save) {
    py::array_t<T> s({py::ssize_t(pr.n_steps), ns, py::ssize_t(pr.n_basins)});
    saved_ptr = s.mutable_data();
    saved = s;
  }
  {
    py::gil_scoped_release release;
    cfe::forward<T>(pr, params.data(), state0.data(), rain.data(), pet.data(), out.mutable_data(),
                    final_state.mutable_data(), saved_ptr);
  }
  return py::make_tuple(out, final_state, saved);
}

template <typename T>
py::tuple backward(const Arr<T>& params, const Arr<T>& saved, const Arr<T>& rain,
                   const Arr<T>& pet, const Arr<T>& grad_out, const Arr<T>& grad_final,
                   py::ssize_t period, bool mass_conserving, int n_threads) {
  const cfe::Problem pr = problem<T>(params, grad_final, rain, pet, period, mass_conserving,
                                     n_threads);
  const py::ssize_t ns = grad_final.shape(0), TT = pr.n_steps, B = pr.n_basins;
  check_shape<T>(saved, {TT, ns, B}, "saved");
  check_shape<T>(grad_out, {py::ssize_t(cfe::kNumGradOutputs), TT, B}, "grad_out");
  py::array_t<T> gp({py::ssize_t(cfe::kNumParams), py::ssize_t(pr.n_rows), B});
  py::array_t<T> gs({ns, B});
  py::array_t<T> gr({TT, B});
  py::array_t<T> ge({TT, B});
  {
    py::gil_scoped_release release;
    cfe::backward<T>(pr, params.data(), saved.data(), rain.data(), pet.data(), grad_out.data(),
                     grad_final.data(), gp.mutable_data(), gs.mutable_data(), gr.mutable_data(),
                     ge.mutable_data());
  }
  return py::make_tuple(gp, gs, gr, ge);
}

// One hour of one basin in place (the BMI path): state [3 + n_nash] is updated, out [8] receives
// the gradient-carrying outputs (excess, lateral, baseflow, overflow, aet, soil, gw, perc).
void step(py::array_t<double, py::array::c_style> params, py::array_t<double, py::array::c_style> state,
          double rain, double pet, bool mass_conserving, py::array_t<double, py::array::c_style> out) {
  if (params.size() != cfe::kNumParams) fail("params: expected 12 values");
  if (state.size() < cfe::kNumScalarStates) fail("state: expected 3 + n_nash values");
  if (out.size() != cfe::kNumGradOutputs) fail("out: expected 8 values");
  cfe::Options o;
  o.mass_conserving = mass_conserving;
  cfe::Step<double> s;
  double lateral;
  double* st = state.mutable_data();
  cfe::step_forward<double>(params.data(), rain, pet, st, st + cfe::kNumScalarStates,
                            int(state.size()) - cfe::kNumScalarStates, o, s, lateral);
  double* r = out.mutable_data();
  r[cfe::kExcess] = s.excess2;
  r[cfe::kLateral] = lateral;
  r[cfe::kBaseflow] = s.bf;
  r[cfe::kOverflow] = s.overflow;
  r[cfe::kAet] = s.et_rain + s.et_soil;
  r[cfe::kSoil] = st[cfe::kSoilState];
  r[cfe::kGw] = st[cfe::kGwState];
  r[cfe::kPerc] = s.perc;
}

template <typename T>
void bind_dtype(py::module_& m, const char* suffix) {
  m.def((std::string("forward_") + suffix).c_str(), &forward<T>, py::arg("params"),
        py::arg("state0"), py::arg("rain"), py::arg("pet"), py::arg("period"),
        py::arg("mass_conserving"), py::arg("save"), py::arg("n_threads") = 1);
  m.def((std::string("backward_") + suffix).c_str(), &backward<T>, py::arg("params"),
        py::arg("saved"), py::arg("rain"), py::arg("pet"), py::arg("grad_out"),
        py::arg("grad_final"), py::arg("period"), py::arg("mass_conserving"),
        py::arg("n_threads") = 1);
}

}  // namespace

// GIUH convolution of the infiltration excess [T, B] with per-basin ordinates [B, n] from the
// runoff queue [B, n] (water due 0, 1, ... steps ahead): direct runoff [T, B] and the queue
// after the last step, with the additions in the order of bmi_dcfe.kernel.giuh_route (its
// PyTorch reference, bit for bit), in one pass instead of n tensor operations.
py::tuple giuh_route(const Arr<double>& excess, const Arr<double>& ordinates,
                     const Arr<double>& queue0) {
  if (excess.ndim() != 2) fail("excess: expected [T, B]");
  const py::ssize_t T = excess.shape(0), B = excess.shape(1);
  if (ordinates.ndim() != 2 || ordinates.shape(0) != B) fail("ordinates: expected [B, n]");
  const py::ssize_t n = ordinates.shape(1);
  check_shape<double>(queue0, {B, n}, "queue0");
  py::array_t<double> direct({T, B}), queue({B, n});
  const double *x = excess.data(), *o = ordinates.data(), *q0 = queue0.data();
  double *d = direct.mutable_data(), *q = queue.mutable_data();
  for (py::ssize_t b = 0; b < B; ++b) {
    const double* ob = o + b * n;
    for (py::ssize_t t = 0; t < T; ++t) {
      double v = t < n ? q0[b * n + t] : 0.0;
      for (py::ssize_t k = n - 1; k >= 0; --k) v = v + ob[k] * (t - k >= 0 ? x[(t - k) * B + b] : 0.0);
      d[t * B + b] = v;
    }
    for (py::ssize_t j = 0; j < n; ++j) {
      double v = T + j < n ? q0[b * n + T + j] : 0.0;
      for (py::ssize_t k = n - 1; k > j; --k) {
        const py::ssize_t t = T + j - k;
        if (t >= 0 && t < T) v = v + ob[k] * x[t * B + b];
      }
      q[b * n + j] = v;
    }
  }
  return py::make_tuple(direct, queue);
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "CFE kernel (classic soil scheme, Schaake, lateral Nash cascade): forward and adjoint";
  m.attr("PARAMETER_NAMES") = delta::names_tuple(cfe::kParamNames);
  m.attr("OUTPUT_NAMES") = delta::names_tuple(cfe::kOutputNames);
  m.attr("STATE_NAMES") = delta::names_tuple(cfe::kStateNames);
  m.attr("N_GRAD_OUTPUTS") = int(cfe::kNumGradOutputs);
  m.attr("BUILD_INFO") = delta::build_info();
  bind_dtype<double>(m, "f64");
  bind_dtype<float>(m, "f32");
  m.def("step", &step, py::arg("params"), py::arg("state"), py::arg("rain"), py::arg("pet"),
        py::arg("mass_conserving"), py::arg("out"),
        "One hour of one basin in place (float64): the BMI's step.");
  m.def("giuh_route", &giuh_route, py::arg("excess"), py::arg("ordinates"), py::arg("queue0"),
        "GIUH convolution without gradients (float64): direct runoff [T, B], final queue [B, n].");
}
