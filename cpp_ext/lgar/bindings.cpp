// pybind11 bindings of the LGAR kernel: module bmi_lgar._core (float64 numpy buffers).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "lgar_kernel.hpp"
#include "pybind_helpers.hpp"

namespace py = pybind11;

namespace {

using delta::Arr;
using delta::check_shape;
using delta::fail;

const char* const kParamNames[] = {
    "alpha_1", "n_1", "ks_1", "theta_e_1", "theta_r_1", "alpha_2", "n_2", "ks_2", "theta_e_2",
    "theta_r_2", "alpha_3", "n_3", "ks_3", "theta_e_3", "theta_r_3", "alpha_4", "n_4", "ks_4",
    "theta_e_4", "theta_r_4", "ponded_depth_max", "a", "b", "frac_to_cr", "a_slow", "b_slow",
    "frac_slow"};
const char* const kOutputNames[] = {
    "precipitation", "potential_evapotranspiration", "actual_evapotranspiration",
    "surface_runoff", "giuh_runoff", "soil_storage", "total_discharge", "infiltration",
    "percolation", "conceptual_reservoir_to_stream_discharge", "mass_balance",
    "mass_balance_closed", "ponded", "reservoir_storage"};
const char* const kScalarNames[] = {"initial_psi_cm", "timestep_h", "forcing_resolution_h",
                                    "endtime_s", "wilting_point_psi_cm", "field_capacity_psi_cm",
                                    "spf_factor", "mbal_tol"};
const char* const kFlagNames[] = {"use_closed_form_g", "adaptive_timestep", "allow_flux_caching",
                                  "pet_affects_precip", "free_drainage_enabled",
                                  "free_drainage_to_cr"};
static_assert(sizeof(kParamNames) / sizeof(kParamNames[0]) == lgar::kNumParams, "params");
static_assert(sizeof(kOutputNames) / sizeof(kOutputNames[0]) == lgar::kNumOutputs, "outputs");
constexpr int kNumScalars = 8, kNumFlags = 6;

std::string where(py::ssize_t b) { return "basin " + std::to_string(b); }

void check_soils(const double* p, int nl, py::ssize_t b) {
  for (int l = 0; l < nl; ++l) {
    const double* q = p + l * lgar::kPerLayer;
    const std::string at = where(b) + ", layer " + std::to_string(l + 1) + ": ";
    for (int k = 0; k < lgar::kPerLayer; ++k)
      if (!std::isfinite(q[k])) fail("params: " + at + std::string(kParamNames[l * 5 + k]) +
                                     " is not finite");
    if (!(q[lgar::kN] > 1.0)) fail("params: " + at + "van Genuchten n must be > 1");
    if (!(q[lgar::kAlpha] > 0.0 && q[lgar::kKs] > 0.0))
      fail("params: " + at + "alpha and Ks must be positive");
    const double tr = q[lgar::kThetaR], te = q[lgar::kThetaE];
    if (!(0.0 <= tr && tr < te && te <= 1.0))
      fail("params: " + at + "need 0 <= theta_r < theta_e <= 1");
  }
  for (int i = lgar::kPondedMax; i < lgar::kNumParams; ++i)
    if (!std::isfinite(p[i]))
      fail("params: " + where(b) + ": " + kParamNames[i] + " is not finite");
}

void check_forcing(const Arr<double>& a, const char* name) {
  const double* x = a.data();
  const py::ssize_t B = a.shape(1);
  for (py::ssize_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(x[i]))
      fail(std::string(name) + ": not finite (" + std::to_string(x[i]) + ") at step " +
           std::to_string(i / B) + ", " + where(i % B));
}

struct Batch {
  std::vector<lgar::Settings> settings;
  lgar::Problem pr;
};

Batch make_batch(const Arr<int>& layers, const Arr<double>& cum, const Arr<double>& scalars,
                 const Arr<int>& flags, const Arr<double>& giuh, const Arr<int>& n_giuh,
                 const Arr<double>& params, const Arr<double>& precip, const Arr<double>& pet,
                 int n_threads) {
  if (precip.ndim() != 2) fail("precip: expected [T, B]");
  const py::ssize_t T = precip.shape(0), B = precip.shape(1);
  check_shape<double>(pet, {T, B}, "pet");
  check_shape<int>(layers, {B}, "num_layers");
  check_shape<double>(cum, {B, lgar::kMaxLayers + 1}, "cum_depth");
  check_shape<double>(scalars, {B, kNumScalars}, "scalars");
  check_shape<int>(flags, {B, kNumFlags}, "flags");
  if (giuh.ndim() != 2 || giuh.shape(0) != B || giuh.shape(1) < 1)
    fail("giuh: expected [B, G] with G >= 1");
  check_shape<int>(n_giuh, {B}, "n_giuh");
  check_shape<double>(params, {B, lgar::kNumParams}, "params");
  check_forcing(precip, "precip");
  check_forcing(pet, "pet");
  Batch bt;
  bt.settings.resize(std::size_t(B));
  const py::ssize_t G = giuh.shape(1);
  for (py::ssize_t b = 0; b < B; ++b) {
    lgar::Settings& s = bt.settings[std::size_t(b)];
    const int nl = layers.data()[b];
    if (nl < 1 || nl > lgar::kMaxLayers)
      fail("num_layers: " + where(b) + " has " + std::to_string(nl) + " layers; LGAR holds 1 to " +
           std::to_string(lgar::kMaxLayers));
    s.num_layers = nl;
    const double* c = cum.data() + b * (lgar::kMaxLayers + 1);
    if (c[0] != 0.0) fail("cum_depth: " + where(b) + ": the first entry must be 0");
    for (int l = 0; l <= lgar::kMaxLayers; ++l) s.cum[l] = c[l];
    for (int l = 1; l <= nl; ++l)
      if (!(c[l] > c[l - 1]) || !std::isfinite(c[l]))
        fail("cum_depth: " + where(b) + ": layer bottoms must increase (layer " +
             std::to_string(l) + ")");
    const double* x = scalars.data() + b * kNumScalars;
    for (int k = 0; k < kNumScalars; ++k)
      if (!std::isfinite(x[k]) && k != 3)
        fail("scalars: " + where(b) + ": " + kScalarNames[k] + " is not finite");
    s.initial_psi = x[0];
    s.timestep_h = x[1];
    s.forcing_h = x[2];
    s.endtime_s = x[3];
    s.wilting_point_psi = x[4];
    s.field_capacity_psi = x[5];
    s.spf_factor = x[6];
    s.mbal_tol = x[7];
    if (!(s.timestep_h > 0.0) || int(s.forcing_h / s.timestep_h + 1.0e-08) < 1)
      fail("scalars: " + where(b) + ": the substep must be positive and not longer than the "
           "forcing step (0 substeps)");
    const int* f = flags.data() + b * kNumFlags;
    s.closed_form = f[0] != 0;
    s.adaptive = f[1] != 0;
    s.caching = f[2] != 0;
    s.pet_affects_precip = f[3] != 0;
    s.free_drainage = f[4] != 0;
    s.free_drainage_to_cr = f[5] != 0;
    s.n_giuh = n_giuh.data()[b];
    if (s.n_giuh < 1 || s.n_giuh > G)
      fail("n_giuh: " + where(b) + ": expected 1.." + std::to_string(G) + " ordinates");
    s.giuh = giuh.data() + b * G;
    check_soils(params.data() + b * lgar::kNumParams, nl, b);
  }
  lgar::Problem& pr = bt.pr;
  pr.n_steps = T;
  pr.n_basins = B;
  pr.settings = bt.settings.data();
  pr.params = params.data();
  pr.precip = precip.data();
  pr.pet = pet.data();
  pr.queue_len = int(G) + 1;
  pr.n_threads = n_threads;
  return bt;
}

template <typename T>
py::dict run(const Arr<int>& layers, const Arr<double>& cum, const Arr<double>& scalars,
             const Arr<int>& flags, const Arr<double>& giuh, const Arr<int>& n_giuh,
             const Arr<double>& params, const Arr<double>& precip, const Arr<double>& pet,
             py::object state_in, py::object tangent_in, int record_fronts, int n_threads,
             bool jacobian, py::object vjp_weights, py::object vjp_outputs) {
  constexpr bool sens = lgar::is_dual<T>::value;
  Batch bt = make_batch(layers, cum, scalars, flags, giuh, n_giuh, params, precip, pet, n_threads);
  lgar::Problem& pr = bt.pr;
  const py::ssize_t TT = pr.n_steps, B = pr.n_basins, V = lgar::kNumOutputs,
                    P = lgar::kNumParams, S = lgar::state_width(pr.queue_len);
  if (record_fronts < 0) fail("record_fronts: expected >= 0");
  pr.record_fronts = record_fronts;
  Arr<double> st_in, tg_in;
  if (!state_in.is_none()) {
    st_in = state_in.cast<Arr<double>>();
    check_shape<double>(st_in, {B, S}, "state");
    pr.state_in = st_in.data();
  }
  if (!tangent_in.is_none()) {
    if (!sens) fail("state_tangent: only with sensitivities");
    if (state_in.is_none()) fail("state_tangent: given without a state");
    tg_in = tangent_in.cast<Arr<double>>();
    check_shape<double>(tg_in, {B, S, P}, "state_tangent");
    pr.tangent_in = tg_in.data();
  }
  py::array_t<double> out({TT, B, V});
  py::array_t<double> state_out({B, S});
  py::array_t<int> n_fronts({TT, B});
  py::array_t<int> substeps({TT, B});
  py::array_t<double> fronts({TT, B, py::ssize_t(record_fronts), py::ssize_t(lgar::kRecordFields)});
  lgar::Outputs o;
  o.out = out.mutable_data();
  o.state_out = state_out.mutable_data();
  o.n_fronts = n_fronts.mutable_data();
  o.substeps = substeps.mutable_data();
  o.fronts = record_fronts > 0 ? fronts.mutable_data() : nullptr;
  py::dict d;
  Arr<double> w;
  Arr<int> wo;
  if constexpr (sens) {
    py::array_t<double> tangent_out({B, S, P});
    o.tangent_out = tangent_out.mutable_data();
    d["state_tangent"] = tangent_out;
    if (jacobian) {
      py::array_t<double> jac({TT, B, V, P});
      o.jac = jac.mutable_data();
      d["jacobian"] = jac;
    }
    if (!vjp_weights.is_none()) {
      if (vjp_outputs.is_none()) fail("vjp_outputs: needed with vjp_weights");
      wo = vjp_outputs.cast<Arr<int>>();
      if (wo.ndim() != 1) fail("vjp_outputs: expected [K] output indices");
      for (py::ssize_t k = 0; k < wo.size(); ++k)
        if (wo.data()[k] < 0 || wo.data()[k] >= V) fail("vjp_outputs: index out of range");
      w = vjp_weights.cast<Arr<double>>();
      check_shape<double>(w, {TT, B, wo.size()}, "vjp_weights");
      py::array_t<double> vjp({B, P});
      o.weights = w.data();
      o.vjp_outputs = wo.data();
      o.n_vjp = int(wo.size());
      o.vjp = vjp.mutable_data();
      d["vjp"] = vjp;
    }
  } else {
    if (jacobian || !vjp_weights.is_none()) fail("jacobian / vjp_weights: only with sensitivities");
  }
  {
    py::gil_scoped_release release;
    lgar::run<T>(pr, o);
  }
  d["outputs"] = out;
  d["state"] = state_out;
  d["n_fronts"] = n_fronts;
  d["substeps"] = substeps;
  if (record_fronts > 0) d["fronts"] = fronts;
  return d;
}

template <typename T>
void bind(py::module_& m, const char* name, const char* doc) {
  m.def(name, &run<T>, py::arg("num_layers"), py::arg("cum_depth"), py::arg("scalars"),
        py::arg("flags"), py::arg("giuh"), py::arg("n_giuh"), py::arg("params"),
        py::arg("precip"), py::arg("pet"), py::arg("state") = py::none(),
        py::arg("state_tangent") = py::none(), py::arg("record_fronts") = 0,
        py::arg("n_threads") = 1, py::arg("jacobian") = lgar::is_dual<T>::value,
        py::arg("vjp_weights") = py::none(), py::arg("vjp_outputs") = py::none(), doc);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "LGAR kernel (Layered Green-Ampt with Redistribution): batched float64 forward and "
            "forward-mode sensitivities to the soil and reservoir parameters";
  m.attr("PARAMETER_NAMES") = delta::names_tuple(kParamNames);
  m.attr("OUTPUT_NAMES") = delta::names_tuple(kOutputNames);
  m.attr("SCALAR_NAMES") = delta::names_tuple(kScalarNames);
  m.attr("FLAG_NAMES") = delta::names_tuple(kFlagNames);
  m.attr("MAX_FRONTS") = lgar::kMaxFronts;
  m.attr("MAX_LAYERS") = lgar::kMaxLayers;
  m.attr("STATE_SCALARS") = int(lgar::kNumStateScalars);
  m.attr("BUILD_INFO") = delta::build_info();
  m.def("state_width", &lgar::state_width, py::arg("queue_len"),
        "Length of a basin's packed state for a GIUH queue of queue_len values.");
  bind<double>(m, "run", "Run B columns over T forcing steps (values).");
  bind<lgar::Dn>(m, "run_sensitivities",
                 "Run B columns with d(output)/d(params) per step (jacobian [T, B, V, P]).");
}
