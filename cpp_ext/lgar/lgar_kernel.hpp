// Batched LGAR runs: B independent columns over T forcing steps, threads over basins.
//
// forward<double> is the plain model; forward<Dn> carries forward-mode sensitivities of every
// output to the kNumParams parameters of its basin (d output_t / d p, the Jacobian per step),
// with the same values bit for bit. The state of a basin is packed into kStateWidth(G) doubles
// (layout below) so that a run can be split and continued; with sensitivities its tangents
// travel alongside ([S, P] per basin). All work memory is allocated once per thread.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "lgar_step.hpp"
#include "parallel.hpp"

namespace lgar {

// -- packed state ------------------------------------------------------------------------------
enum StateScalar {
  kSN = 0, kSPonded, kSPrecipPrevious, kSCrFast, kSCrSlow, kSPreviousAet, kSPreviousPet,
  kSPreviousRecharge, kSAccumulatedPet, kSAccumulatedFd, kSRunoffInPrev, kSCacheFluxes,
  kSCacheCount, kSTimestep, kSTime, kSReserved, kNumStateScalars
};
enum FrontField { kFDepth = 0, kFTheta, kFPsi, kFK, kFDzdt, kFLayer, kFBottom, kNumFrontFields };
constexpr int kFrontsOffset = kNumStateScalars;
constexpr int kQueueOffset = kFrontsOffset + kNumFrontFields * kMaxFronts;
inline int state_width(int queue_len) { return kQueueOffset + queue_len; }
// Recorded per front per step: depth [cm], theta, layer, psi [cm].
constexpr int kRecordFields = 4;

// Value and tangents of a packed state entry.
template <typename T>
struct Packer {
  double* v;        // [S]
  double* d;        // [S, P] or nullptr
  void put(int i, const T& x) const {
    v[i] = val(x);
    if constexpr (is_dual<T>::value)
      if (d) for (int p = 0; p < kNumParams; ++p) d[std::size_t(i) * kNumParams + p] = x.d[p];
  }
  void put_int(int i, double x) const {
    v[i] = x;
    if constexpr (is_dual<T>::value)
      if (d) for (int p = 0; p < kNumParams; ++p) d[std::size_t(i) * kNumParams + p] = 0.0;
  }
};

template <typename T>
T unpack(const double* v, const double* d, int i) {
  T x(v[i]);
  if constexpr (is_dual<T>::value)
    if (d) for (int p = 0; p < kNumParams; ++p) x.d[p] = d[std::size_t(i) * kNumParams + p];
  return x;
}

template <typename T>
void pack_state(const State<T>& st, int queue_len, const Packer<T>& pk) {
  const Fronts<T>& fr = st.fronts;
  pk.put_int(kSN, fr.n);
  pk.put(kSPonded, st.ponded);
  pk.put(kSPrecipPrevious, st.precip_previous);
  pk.put(kSCrFast, st.cr_fast);
  pk.put(kSCrSlow, st.cr_slow);
  pk.put(kSPreviousAet, st.previous_aet);
  pk.put(kSPreviousPet, st.previous_pet);
  pk.put(kSPreviousRecharge, st.previous_recharge);
  pk.put(kSAccumulatedPet, st.accumulated_pet);
  pk.put(kSAccumulatedFd, st.accumulated_fd);
  pk.put_int(kSRunoffInPrev, st.runoff_in_prev_step ? 1.0 : 0.0);
  pk.put_int(kSCacheFluxes, st.cache_fluxes ? 1.0 : 0.0);
  pk.put_int(kSCacheCount, st.cache_count);
  pk.put_int(kSTimestep, st.timestep_h);
  pk.put_int(kSTime, st.time_s);
  pk.put_int(kSReserved, 0.0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int j = 0; j < kMaxFronts; ++j) {
    const bool in = j < fr.n;
    const int o = kFrontsOffset + j;
    if (in) {
      pk.put(o + kFDepth * kMaxFronts, fr.depth[j]);
      pk.put(o + kFTheta * kMaxFronts, fr.theta[j]);
      pk.put(o + kFPsi * kMaxFronts, fr.psi[j]);
      pk.put(o + kFK * kMaxFronts, fr.k[j]);
      pk.put(o + kFDzdt * kMaxFronts, fr.dzdt[j]);
      pk.put_int(o + kFLayer * kMaxFronts, fr.layer[j]);
      pk.put_int(o + kFBottom * kMaxFronts, fr.to_bottom[j] ? 1.0 : 0.0);
    } else {
      for (int f = 0; f < kNumFrontFields; ++f)
        pk.put_int(o + f * kMaxFronts, f < kFLayer ? nan : 0.0);
    }
  }
  for (int i = 0; i < queue_len; ++i) pk.put(kQueueOffset + i, st.giuh_queue[i]);
}

template <typename T>
void unpack_state(const double* v, const double* d, int queue_len, const Model<T>& m,
                  State<T>& st) {
  Fronts<T>& fr = st.fronts;
  const double n = v[kSN];
  if (!(n >= 1 && n <= kMaxFronts) || n != double(int(n)))
    throw std::invalid_argument("state: number of fronts " + std::to_string(n) +
                                " is not within 1.." + std::to_string(kMaxFronts));
  fr.n = int(n);
  st.ponded = unpack<T>(v, d, kSPonded);
  st.precip_previous = unpack<T>(v, d, kSPrecipPrevious);
  st.cr_fast = unpack<T>(v, d, kSCrFast);
  st.cr_slow = unpack<T>(v, d, kSCrSlow);
  st.previous_aet = unpack<T>(v, d, kSPreviousAet);
  st.previous_pet = unpack<T>(v, d, kSPreviousPet);
  st.previous_recharge = unpack<T>(v, d, kSPreviousRecharge);
  st.accumulated_pet = unpack<T>(v, d, kSAccumulatedPet);
  st.accumulated_fd = unpack<T>(v, d, kSAccumulatedFd);
  st.runoff_in_prev_step = v[kSRunoffInPrev] != 0.0;
  st.cache_fluxes = v[kSCacheFluxes] != 0.0;
  st.cache_count = int(v[kSCacheCount]);
  st.timestep_h = v[kSTimestep];
  st.time_s = v[kSTime];
  for (int j = 0; j < fr.n; ++j) {
    const int o = kFrontsOffset + j;
    fr.depth[j] = unpack<T>(v, d, o + kFDepth * kMaxFronts);
    fr.theta[j] = unpack<T>(v, d, o + kFTheta * kMaxFronts);
    fr.psi[j] = unpack<T>(v, d, o + kFPsi * kMaxFronts);
    fr.k[j] = unpack<T>(v, d, o + kFK * kMaxFronts);
    fr.dzdt[j] = unpack<T>(v, d, o + kFDzdt * kMaxFronts);
    const double layer = v[o + kFLayer * kMaxFronts];
    if (!(layer >= 1 && layer <= m.nl))
      throw std::invalid_argument("state: front " + std::to_string(j + 1) + " in layer " +
                                  std::to_string(layer) + " of a " + std::to_string(m.nl) +
                                  "-layer column");
    fr.layer[j] = int(layer);
    fr.to_bottom[j] = v[o + kFBottom * kMaxFronts] != 0.0;
  }
  for (int i = 0; i < queue_len; ++i) st.giuh_queue[i] = unpack<T>(v, d, kQueueOffset + i);
}

// -- a batch -----------------------------------------------------------------------------------
struct Problem {
  std::ptrdiff_t n_steps = 0, n_basins = 0;
  const Settings* settings = nullptr;  // [B]
  const double* params = nullptr;      // [B, P]
  const double* precip = nullptr;      // [T, B] mm/h
  const double* pet = nullptr;         // [T, B] mm/h
  const double* state_in = nullptr;    // [B, S] or nullptr (initial state)
  const double* tangent_in = nullptr;  // [B, S, P] or nullptr (tangents of the initial state)
  int queue_len = 1;                   // max n_giuh + 1
  int record_fronts = 0;               // K fronts recorded per step
  int n_threads = 1;
};

struct Outputs {
  double* out = nullptr;         // [T, B, V] metres per step
  double* jac = nullptr;         // [T, B, V, P] (sensitivities only)
  double* state_out = nullptr;   // [B, S]
  double* tangent_out = nullptr; // [B, S, P] (sensitivities only)
  double* fronts = nullptr;      // [T, B, K, 4] or nullptr
  int* n_fronts = nullptr;       // [T, B] or nullptr
  int* substeps = nullptr;       // [T, B] or nullptr
  // Vector-Jacobian product instead of (or besides) the Jacobian (sensitivities only):
  // vjp[b, p] = sum_t sum_k weights[t, b, k] d out[t, b, vjp_outputs[k]] / d p.
  const double* weights = nullptr;  // [T, B, n_vjp]
  const int* vjp_outputs = nullptr; // [n_vjp]
  int n_vjp = 0;
  double* vjp = nullptr;            // [B, P]
};

constexpr double kCmToM = 0.01;

template <typename T>
struct Work {
  State<T> st;
  Fronts<T> old;
  std::vector<T> queue;
};

template <typename T>
void record(const Problem& pr, const Outputs& o, std::ptrdiff_t t, std::ptrdiff_t b,
            const T* step_out, const Fronts<T>& fr, int substeps) {
  const std::ptrdiff_t tb = t * pr.n_basins + b;
  for (int v = 0; v < kNumOutputs; ++v) {
    o.out[tb * kNumOutputs + v] = val(step_out[v]) * kCmToM;
    if constexpr (is_dual<T>::value)
      if (o.jac)
        for (int p = 0; p < kNumParams; ++p)
          o.jac[(tb * kNumOutputs + v) * kNumParams + p] = step_out[v].d[p] * kCmToM;
  }
  if constexpr (is_dual<T>::value) {
    if (o.vjp) {
      double* g = o.vjp + b * kNumParams;
      for (int k = 0; k < o.n_vjp; ++k) {
        const double w = o.weights[tb * o.n_vjp + k];
        if (w == 0.0) continue;
        const T& y = step_out[o.vjp_outputs[k]];
        for (int p = 0; p < kNumParams; ++p) g[p] += w * (y.d[p] * kCmToM);
      }
    }
  }
  if (o.substeps) o.substeps[tb] = substeps;
  if (o.n_fronts) o.n_fronts[tb] = fr.n;
  if (o.fronts) {
    double* f = o.fronts + tb * pr.record_fronts * kRecordFields;
    for (int j = 0; j < pr.record_fronts; ++j) {
      const bool in = j < fr.n;
      const double nan = std::numeric_limits<double>::quiet_NaN();
      f[j * kRecordFields + 0] = in ? val(fr.depth[j]) : nan;
      f[j * kRecordFields + 1] = in ? val(fr.theta[j]) : nan;
      f[j * kRecordFields + 2] = in ? double(fr.layer[j]) : 0.0;
      f[j * kRecordFields + 3] = in ? val(fr.psi[j]) : nan;
    }
  }
}

template <typename T>
void run_basin(const Problem& pr, const Outputs& o, std::ptrdiff_t b, Work<T>& w) {
  const Settings& s = pr.settings[b];
  const std::size_t S = std::size_t(state_width(pr.queue_len));
  T p[kNumParams];
  for (int i = 0; i < kNumParams; ++i) {
    if constexpr (is_dual<T>::value) p[i] = T::seeded(pr.params[b * kNumParams + i], i);
    else p[i] = pr.params[b * kNumParams + i];
  }
  const Model<T> m(s, p);
  if (o.vjp)
    for (int i = 0; i < kNumParams; ++i) o.vjp[b * kNumParams + i] = 0.0;
  w.st.giuh_queue = w.queue.data();
  if (pr.state_in) {
    const double* tin = pr.tangent_in ? pr.tangent_in + b * S * kNumParams : nullptr;
    unpack_state(pr.state_in + b * S, tin, pr.queue_len, m, w.st);
  } else {
    initial_state(m, w.st);
  }
  T step_out[kNumOutputs];
  for (std::ptrdiff_t t = 0; t < pr.n_steps; ++t) {
    const std::ptrdiff_t tb = t * pr.n_basins + b;
    ForcingStep<T> step(m, w.st, w.old, pr.precip[tb], pr.pet[tb]);
    const int n_sub = step.run(step_out);
    record(pr, o, t, b, step_out, w.st.fronts, n_sub);
  }
  double* tout = nullptr;
  if constexpr (is_dual<T>::value)
    tout = o.tangent_out ? o.tangent_out + b * S * kNumParams : nullptr;
  pack_state(w.st, pr.queue_len, Packer<T>{o.state_out + b * S, tout});
}

// Runs the batch; errors of a basin are raised (after all threads end) naming the basin.
template <typename T>
void run(const Problem& pr, const Outputs& o) {
  std::vector<std::string> errors(std::size_t(pr.n_basins));
  std::vector<char> invalid(std::size_t(pr.n_basins), 0);
  const auto chunk = [&](std::size_t lo, std::size_t hi) {
    auto w = std::make_unique<Work<T>>();
    w->queue.assign(std::size_t(pr.queue_len), T(0.0));
    for (std::size_t b = lo; b < hi; ++b) {
      try {
        run_basin<T>(pr, o, std::ptrdiff_t(b), *w);
      } catch (const std::invalid_argument& e) {
        errors[b] = e.what();
        invalid[b] = 1;
      } catch (const std::exception& e) {
        errors[b] = e.what();
      }
    }
  };
  delta::parallel_chunks(std::size_t(pr.n_basins), pr.n_threads, chunk);
  for (std::size_t b = 0; b < errors.size(); ++b) {
    if (errors[b].empty()) continue;
    const std::string msg = "LGAR basin " + std::to_string(b) + ": " + errors[b];
    if (invalid[b]) throw std::invalid_argument(msg);
    throw std::runtime_error(msg);
  }
}

}  // namespace lgar
