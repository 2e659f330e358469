// pybind11 bindings of the HBV kernel: module bmi_dhbv._core.
// Buffers are numpy arrays (C-contiguous float32 or float64); no torch dependency.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hbv_kernel.hpp"
#include "pybind_helpers.hpp"

namespace py = pybind11;

namespace {

using delta::Arr;
using delta::check_shape;
using delta::fail;

struct Dims {
  py::ssize_t T, B, C;
};

template <typename T>
Dims forcing_dims(const Arr<T>& p, const Arr<T>& t, const Arr<T>& pet, const Arr<T>& states0) {
  if (p.ndim() != 2) fail("p: expected [T, B]");
  if (states0.ndim() != 3 || states0.shape(0) != hbv::kNumStates) fail("states0: expected [5, B, C]");
  Dims d{p.shape(0), p.shape(1), states0.shape(2)};
  check_shape<T>(t, {d.T, d.B}, "t");
  check_shape<T>(pet, {d.T, d.B}, "pet");
  check_shape<T>(states0, {hbv::kNumStates, d.B, d.C}, "states0");
  if (d.C < 1) fail("n_components must be >= 1");
  return d;
}

// params: list of 13 arrays, each [B, C] (static) or [T, B, C] (dynamic).
template <typename T>
std::vector<Arr<T>> convert_params(const py::sequence& params, const Dims& d, bool* dynamic) {
  if (py::len(params) != hbv::kNumParams) fail("params: expected a list of 13 arrays");
  std::vector<Arr<T>> out;
  out.reserve(hbv::kNumParams);
  for (int k = 0; k < hbv::kNumParams; ++k) {
    Arr<T> a = Arr<T>::ensure(params[k]);
    if (!a) fail("params[" + std::to_string(k) + "]: not convertible to an array");
    if (a.ndim() == 2) {
      check_shape<T>(a, {d.B, d.C}, "static parameter");
      dynamic[k] = false;
    } else {
      check_shape<T>(a, {d.T, d.B, d.C}, "dynamic parameter");
      dynamic[k] = true;
    }
    out.push_back(std::move(a));
  }
  return out;
}

// Sizes, forcing and parameter pointers common to forward and backward.
template <typename T, typename P>
void fill_problem(hbv::ProblemArgs<T>& a, const Dims& d, const Arr<T>& p, const Arr<T>& t,
                  const Arr<T>& pet, const P& pars) {
  a.n_days = d.T;
  a.n_basins = d.B;
  a.n_comps = d.C;
  a.p = p.data();
  a.t = t.data();
  a.pet = pet.data();
  for (int k = 0; k < hbv::kNumParams; ++k) a.params[k] = pars[k].data();
}

// Allocates the outputs, runs the forward without the GIL, returns (fluxes, storages or None,
// final_states, saved or None).
template <typename T>
py::tuple run_forward(hbv::ForwardArgs<T>& a, const Dims& d, bool save_states,
                      bool keep_storages, int n_threads) {
  py::array_t<T> fluxes({py::ssize_t(hbv::kNumFluxes), d.T, d.B});
  py::array_t<T> final_states({py::ssize_t(hbv::kNumStates), d.B, d.C});
  a.fluxes = fluxes.mutable_data();
  a.final_states = final_states.mutable_data();
  py::object storages = py::none(), saved = py::none();
  if (keep_storages) {
    py::array_t<T> s({py::ssize_t(hbv::kNumStates), d.T, d.B});
    a.storages = s.mutable_data();
    storages = s;
  }
  if (save_states) {
    py::array_t<T> s({d.T + 1, py::ssize_t(hbv::kNumStates), d.B, d.C});
    a.saved = s.mutable_data();
    saved = s;
  }
  {
    py::gil_scoped_release release;
    hbv::forward<T>(a, n_threads);
  }
  return py::make_tuple(fluxes, storages, final_states, saved);
}

template <typename T>
py::tuple forward(const Arr<T>& p, const Arr<T>& t, const Arr<T>& pet, const py::sequence& params,
                  const Arr<T>& states0, bool save_states, bool keep_storages, int n_threads) {
  const Dims d = forcing_dims<T>(p, t, pet, states0);
  hbv::ForwardArgs<T> a;
  auto pars = convert_params<T>(params, d, a.dynamic);
  fill_problem<T>(a, d, p, t, pet, pars);
  a.states0 = states0.data();
  return run_forward(a, d, save_states, keep_storages, n_threads);
}

// forward without saved states on buffers given by address: the per-call cost of small problems
// (kernel.py's no-gradient path, which has checked dtype, device, contiguity and shapes: forcing
// [T, B], each parameter [B, C] or, where dynamic[k], [T, B, C], states0 [5, B, C]).
template <typename T>
py::tuple forward_at(py::ssize_t n_days, py::ssize_t n_basins, py::ssize_t n_comps,
                     std::uintptr_t p, std::uintptr_t t, std::uintptr_t pet,
                     const std::vector<std::uintptr_t>& params, const std::vector<bool>& dynamic,
                     std::uintptr_t states0, bool keep_storages, int n_threads) {
  if (n_days < 0 || n_basins < 0 || n_comps < 1) fail("forward_at: invalid sizes");
  if (params.size() != std::size_t(hbv::kNumParams) || dynamic.size() != params.size())
    fail("forward_at: expected 13 parameter addresses and flags");
  const Dims d{n_days, n_basins, n_comps};
  hbv::ForwardArgs<T> a;
  a.n_days = d.T;
  a.n_basins = d.B;
  a.n_comps = d.C;
  a.p = reinterpret_cast<const T*>(p);
  a.t = reinterpret_cast<const T*>(t);
  a.pet = reinterpret_cast<const T*>(pet);
  for (int k = 0; k < hbv::kNumParams; ++k) {
    a.params[k] = reinterpret_cast<const T*>(params[k]);
    a.dynamic[k] = dynamic[k];
  }
  a.states0 = reinterpret_cast<const T*>(states0);
  return run_forward(a, d, false, keep_storages, n_threads);
}

template <typename T>
py::tuple backward(const Arr<T>& p, const Arr<T>& t, const Arr<T>& pet, const py::sequence& params,
                   const Arr<T>& saved, const py::object& g_fluxes, const py::object& g_storages,
                   const py::object& g_final, int n_threads) {
  if (saved.ndim() != 4 || saved.shape(1) != hbv::kNumStates) fail("saved: expected [T+1, 5, B, C]");
  if (p.ndim() != 2) fail("p: expected [T, B]");
  const Dims d{p.shape(0), p.shape(1), saved.shape(3)};
  check_shape<T>(saved, {d.T + 1, hbv::kNumStates, d.B, d.C}, "saved");
  check_shape<T>(t, {d.T, d.B}, "t");
  check_shape<T>(pet, {d.T, d.B}, "pet");
  hbv::BackwardArgs<T> a;
  auto pars = convert_params<T>(params, d, a.dynamic);
  fill_problem<T>(a, d, p, t, pet, pars);
  a.saved = saved.data();
  Arr<T> gf, gs, gfin;
  if (!g_fluxes.is_none()) {
    gf = Arr<T>::ensure(g_fluxes);
    check_shape<T>(gf, {hbv::kNumFluxes, d.T, d.B}, "g_fluxes");
    a.g_fluxes = gf.data();
  }
  if (!g_storages.is_none()) {
    gs = Arr<T>::ensure(g_storages);
    check_shape<T>(gs, {hbv::kNumStates, d.T, d.B}, "g_storages");
    a.g_storages = gs.data();
  }
  if (!g_final.is_none()) {
    gfin = Arr<T>::ensure(g_final);
    check_shape<T>(gfin, {hbv::kNumStates, d.B, d.C}, "g_final");
    a.g_final = gfin.data();
  }
  py::list g_params;
  for (int k = 0; k < hbv::kNumParams; ++k) {
    std::vector<py::ssize_t> shape = a.dynamic[k] ? std::vector<py::ssize_t>{d.T, d.B, d.C}
                                                  : std::vector<py::ssize_t>{d.B, d.C};
    py::array_t<T> g(shape);
    std::fill(g.mutable_data(), g.mutable_data() + g.size(), T(0));
    a.g_params[k] = g.mutable_data();
    g_params.append(g);
  }
  py::array_t<T> g_states0({py::ssize_t(hbv::kNumStates), d.B, d.C});
  a.g_states0 = g_states0.mutable_data();
  {
    py::gil_scoped_release release;
    hbv::backward<T>(a, n_threads);
  }
  return py::make_tuple(g_params, g_states0);
}

// Single-basin day for BMI use: states [5, C] updated in place, params [13, C]; returns fluxes [12]
// (written into `out` when given, avoiding an allocation).
template <typename T>
py::array step(py::array states, double p, double t, double pet, py::array params, py::object out) {
  constexpr int flags = py::array::c_style;
  if (!py::isinstance<py::array_t<T, flags>>(states) || states.ndim() != 2 ||
      states.shape(0) != hbv::kNumStates || !states.writeable())
    fail("states: expected a writeable C-contiguous [5, C] array of the kernel dtype");
  const py::ssize_t C = states.shape(1);
  if (!py::isinstance<py::array_t<T, flags>>(params) || params.ndim() != 2 ||
      params.shape(0) != hbv::kNumParams || params.shape(1) != C)
    fail("params: expected a C-contiguous [13, C] array of the kernel dtype");
  py::array result;
  if (out.is_none()) {
    result = py::array_t<T>(hbv::kNumFluxes);
  } else {
    result = py::reinterpret_borrow<py::array>(out);
    if (!py::isinstance<py::array_t<T, flags>>(result) || result.size() != hbv::kNumFluxes ||
        !result.writeable())
      fail("out: expected a writeable contiguous array of 12 values of the kernel dtype");
  }
  hbv::step<T>(static_cast<T*>(states.mutable_data()), std::size_t(C), T(p), T(t), T(pet),
               static_cast<const T*>(params.data()), static_cast<T*>(result.mutable_data()));
  return result;
}

template <typename T>
void bind_dtype(py::module_& m, const std::string& suffix) {
  m.def(("forward_" + suffix).c_str(), &forward<T>, py::arg("p"), py::arg("t"), py::arg("pet"),
        py::arg("params"), py::arg("states0"), py::arg("save_states") = false,
        py::arg("keep_storages") = true, py::arg("n_threads") = 0,
        "Run HBV over T days. Returns (fluxes [12,T,B], storages [5,T,B] or None, "
        "final_states [5,B,C], saved_states [T+1,5,B,C] or None).");
  m.def(("forward_at_" + suffix).c_str(), &forward_at<T>, py::arg("n_days"),
        py::arg("n_basins"), py::arg("n_comps"), py::arg("p"), py::arg("t"), py::arg("pet"),
        py::arg("params"), py::arg("dynamic"), py::arg("states0"),
        py::arg("keep_storages") = true, py::arg("n_threads") = 0,
        "forward (no saved states) on buffers given by address, for callers that have checked "
        "dtype, contiguity and shapes. Returns (fluxes, storages or None, final_states, None).");
  m.def(("backward_" + suffix).c_str(), &backward<T>, py::arg("p"), py::arg("t"), py::arg("pet"),
        py::arg("params"), py::arg("saved_states"), py::arg("g_fluxes") = py::none(),
        py::arg("g_storages") = py::none(), py::arg("g_final") = py::none(),
        py::arg("n_threads") = 0,
        "Adjoint of forward. Returns (list of 13 parameter gradients, states0 gradient).");
  m.def(("step_" + suffix).c_str(), &step<T>, py::arg("states"), py::arg("p"), py::arg("t"),
        py::arg("pet"), py::arg("params"), py::arg("out") = py::none(),
        "One day of one basin; states [5,C] updated in place; returns fluxes [12].");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled HBV time-stepping kernel (forward, adjoint, single step).";
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
  m.def("hardware_threads", &hbv::hardware_threads, "Hardware concurrency (>= 1).");
  m.def("isa", &hbv::isa, "Instruction set of the batched kernels: 'avx2' or 'sse2'.");
  m.def("set_isa", [](const std::string& name) { return hbv::set_isa(name.c_str()); },
        py::arg("name"),
        "Select the instruction set of the batched kernels ('avx2', 'sse2'); False if it is "
        "unknown or unsupported here (nothing changed).");
  m.def("effective_threads", &hbv::effective_threads, py::arg("requested"), py::arg("n_days"),
        py::arg("n_basins"), py::arg("n_comps"), "Threads used for a problem of this size.");
  m.attr("N_PARAMS") = hbv::kNumParams;
  m.attr("N_STATES") = hbv::kNumStates;
  m.attr("N_FLUXES") = hbv::kNumFluxes;
  m.attr("BUILD_INFO") = delta::build_info();
  m.attr("PARAMETER_NAMES") = delta::names_tuple(hbv::kParamNames);
  m.attr("STATE_NAMES") = delta::names_tuple(hbv::kStateNames);
  m.attr("FLUX_NAMES") = delta::names_tuple(hbv::kFluxNames);
}
