// CFE hourly step (classic soil scheme, Schaake partitioning) for a batch of basins: forward and a
// hand-derived reverse-mode adjoint through time. The PyTorch reference is bmi_dcfe/physics.py;
// the operation order follows it so float64 results agree to rounding. GIUH routing of the
// infiltration excess is linear and done by the caller (bmi_dcfe/kernel.py); the lateral Nash
// cascade is here. Subgradients at thresholds follow torch autograd on the reference (the
// selected branch of each where/min gets the gradient).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "parallel.hpp"

namespace cfe {

// Per-basin parameters, in this order (derived constants, computed by the caller).
enum Param {
  kStorageMax, kFieldCapacity, kWiltingPoint, kCoeffPercolation, kSchaakeKdt, kKlf, kExponSoil,
  kExponSoilSecondary, kMaxGw, kCgw, kExponGw, kKNash, kNumParams
};
inline const char* const kParamNames[] = {
    "storage_max", "field_capacity", "wilting_point", "coeff_percolation", "schaake_kdt", "k_lf",
    "expon_soil", "expon_soil_secondary", "max_gw_storage", "cgw", "expon_gw", "k_nash"};

// Outputs [kNumOutputs, T, B]; the first kNumGradOutputs carry gradients.
enum Output {
  kExcess, kLateral, kBaseflow, kOverflow, kAet, kSoil, kGw, kPerc, kNumGradOutputs,
  kInfil = kNumGradOutputs, kLatFlux, kEtRain, kEtSoil, kSoilChange, kNumOutputs
};
inline const char* const kOutputNames[] = {
    "INFILTRATION_EXCESS", "NASH_LATERAL_RUNOFF", "DEEP_GW_TO_CHANNEL_FLUX", "GW_OVERFLOW",
    "ACTUAL_ET", "SOIL_STORAGE", "GW_STORAGE", "SOIL_TO_GW_FLUX", "INFILTRATION", "LATERAL_FLUX",
    "ET_FROM_RAIN", "ET_FROM_SOIL", "SOIL_STORAGE_CHANGE"};

// Scalar state (soil, gw, last percolation) before the Nash reservoirs in a state vector.
enum State { kSoilState, kGwState, kPercState, kNumScalarStates };
inline const char* const kStateNames[] = {"soil", "gw", "percolation"};

constexpr double kStepSeconds = 3600.0;

// Everything one step computes, kept for the adjoint.
template <typename T>
struct Step {
  T pet_step, et_rain, rain_eff, rpet, et_soil, s_b, deficit0, ic, e_kdt, denom, infil_a;
  T excess0, infil0, excess1, infil1, deficit1, excess2, infil2, s_c, s_d, above, frac, pw_p;
  T perc0, pw_l, lat;
  T room, perc, overflow, s_f, g_b, bf_e, bf;
  bool raining, rain_gt, et_active, wet, mid, et_min_rpet, et_min_b, schaake, neg_deficit;
  bool excess_pos, too_much, prev, active, perc_cap, lat_cap, clipped, bf_cap;
};

struct Options {
  bool mass_conserving = false;
};

// One hour for one basin: state (soil, gw, perc, nash[n]) in place; s = intermediates.
template <typename T>
inline void step_forward(const T* p, T rain, T pet, T* st, T* nash, int n_nash, const Options& o,
                         Step<T>& s, T& lateral) {
  const T zero = T(0);
  T soil = st[kSoilState];
  const T soil_a = soil;
  // 1. ET from rain, then soil
  s.pet_step = pet * T(kStepSeconds);
  s.raining = rain > zero;
  s.rain_gt = rain > s.pet_step;
  s.et_rain = s.raining ? (s.rain_gt ? s.pet_step : rain) : zero;
  s.rain_eff = s.raining ? (s.rain_gt ? rain - s.et_rain : zero) : rain;
  s.rpet = s.raining ? s.pet_step - s.et_rain : s.pet_step;
  const T fc = p[kFieldCapacity], wp = p[kWiltingPoint], smax = p[kStorageMax];
  s.wet = soil >= fc;
  s.mid = soil > wp && soil < fc;
  s.et_active = soil > wp && s.rpet > zero;
  s.et_soil = zero;
  if (s.et_active) {
    if (s.wet) {
      s.et_min_rpet = s.rpet < soil;
      s.et_soil = s.et_min_rpet ? s.rpet : soil;
    } else if (s.mid) {
      const T b = (soil - wp) / (fc - wp);
      s.et_min_b = b * s.rpet < soil;
      s.et_soil = s.et_min_b ? b * s.rpet : soil;
    }
  }
  soil = soil - s.et_soil;
  s.s_b = soil;
  s.deficit0 = smax - soil;
  // 2. Schaake partitioning
  s.schaake = s.rain_eff > zero;
  s.neg_deficit = s.deficit0 < zero;
  T excess = zero, infil = zero;
  if (s.schaake) {
    s.e_kdt = std::exp(-p[kSchaakeKdt] * T(1.0 / 24.0));
    s.ic = s.deficit0 * (T(1) - s.e_kdt);
    s.denom = s.rain_eff + s.ic;
    s.infil_a = s.denom > zero ? s.rain_eff * (s.ic / s.denom) : zero;
    s.excess_pos = s.rain_eff - s.infil_a > zero;
    T ex = s.excess_pos ? s.rain_eff - s.infil_a : zero;
    T in = s.rain_eff - ex;
    if (s.neg_deficit) { ex = s.rain_eff; in = zero; }
    in = T(1) * in;
    ex = s.rain_eff - in;
    excess = ex;
    infil = in;
  }
  s.excess0 = excess;
  s.infil0 = infil;
  // 3. infiltration that does not fit
  T deficit = s.deficit0;
  s.too_much = deficit < infil;
  if (s.too_much) {
    excess = excess + (infil - deficit);
    infil = deficit;
    if (!o.mass_conserving) soil = smax;
    deficit = zero;
  }
  s.excess1 = excess;
  s.infil1 = infil;
  s.deficit1 = deficit;
  s.prev = false;
  if (!o.mass_conserving) {
    s.prev = st[kPercState] > deficit;
    if (s.prev) {
      excess = excess + (st[kPercState] - deficit);
      infil = deficit;
      deficit = zero;
    }
  }
  s.excess2 = excess;
  s.infil2 = infil;
  s.s_c = soil;
  soil = soil + infil;
  s.s_d = soil;
  // 4. percolation and lateral flow above field capacity
  s.above = soil - fc;
  s.active = s.above > zero;
  s.perc0 = zero;
  s.lat = zero;
  if (s.active) {
    s.frac = s.above / (smax - fc);
    s.pw_p = std::pow(s.frac, p[kExponSoil]);
    T f = p[kCoeffPercolation] * s.pw_p;
    s.perc_cap = f > s.above;
    s.perc0 = s.perc_cap ? s.above : f;
    s.pw_l = std::pow(s.frac, p[kExponSoilSecondary]);
    const T avail = soil - fc - s.perc0;
    T l = p[kKlf] * s.pw_l;
    s.lat_cap = l > avail;
    s.lat = s.lat_cap ? avail : l;
  }
  // 5. groundwater
  s.room = p[kMaxGw] - st[kGwState];
  s.clipped = s.perc0 > s.room;
  s.overflow = s.clipped ? s.perc0 - s.room : zero;
  s.perc = s.clipped ? s.room : s.perc0;
  T gw = st[kGwState] + s.perc;
  s.g_b = gw;
  if (o.mass_conserving) soil = soil - (s.perc + s.overflow);
  else soil = soil - s.perc;
  soil = soil - s.lat;
  s.s_f = soil;
  s.bf_e = std::exp(p[kExponGw] * gw / p[kMaxGw]);
  const T bf = p[kCgw] * (s.bf_e - T(1));
  s.bf_cap = bf > gw;
  s.bf = s.bf_cap ? gw : bf;
  gw = gw - s.bf;
  // 6. lateral Nash cascade
  T q_prev = s.lat;
  for (int i = 0; i < n_nash; ++i) {
    const T q = p[kKNash] * nash[i];
    nash[i] = nash[i] - q + q_prev;
    q_prev = q;
  }
  lateral = q_prev;
  (void)soil_a;
  st[kSoilState] = soil;
  st[kGwState] = gw;
  st[kPercState] = s.perc;
}

struct Problem {
  std::ptrdiff_t n_steps = 0, n_basins = 0;
  // Parameters come in rows of `period` steps: params [kNumParams, n_rows, B], row t / period
  // at step t (one row with period >= n_steps: static parameters; 24: daily-dynamic ones).
  std::ptrdiff_t n_rows = 1, period = 1;
  int n_nash = 0;
  Options options;
  int n_threads = 1;
};

// Forward over all steps. params [kNumParams, n_rows, B] (see Problem); state0 [3 + n_nash, B]; rain, pet [T, B];
// out [kNumOutputs, T, B]; final_state [3 + n_nash, B]; saved [T, 3 + n_nash, B] or null.
template <typename T>
void forward(const Problem& pr, const T* params, const T* state0, const T* rain, const T* pet,
             T* out, T* final_state, T* saved) {
  const std::ptrdiff_t B = pr.n_basins, TT = pr.n_steps;
  const int ns = kNumScalarStates + pr.n_nash;
  delta::parallel_chunks(std::size_t(B), pr.n_threads, [&](std::size_t b0, std::size_t b1) {
    std::vector<T> st(ns);
    T p[kNumParams];
    Step<T> s;
    const std::ptrdiff_t R = pr.n_rows;
    for (std::size_t b = b0; b < b1; ++b) {
      for (int k = 0; k < ns; ++k) st[k] = state0[k * B + b];
      for (std::ptrdiff_t t = 0; t < TT; ++t) {
        if (t % pr.period == 0) {
          const std::ptrdiff_t r = t / pr.period;
          for (int k = 0; k < kNumParams; ++k) p[k] = params[(k * R + r) * B + b];
        }
        if (saved) for (int k = 0; k < ns; ++k) saved[(t * ns + k) * B + b] = st[k];
        const T soil_start = st[kSoilState];
        T lateral;
        step_forward<T>(p, rain[t * B + b], pet[t * B + b], st.data(), st.data() + kNumScalarStates,
                        pr.n_nash, pr.options, s, lateral);
        const std::ptrdiff_t o = t * B + b, stride = TT * B;
        out[kExcess * stride + o] = s.excess2;
        out[kLateral * stride + o] = lateral;
        out[kBaseflow * stride + o] = s.bf;
        out[kOverflow * stride + o] = s.overflow;
        out[kAet * stride + o] = s.et_rain + s.et_soil;
        out[kSoil * stride + o] = st[kSoilState];
        out[kGw * stride + o] = st[kGwState];
        out[kPerc * stride + o] = s.perc;
        out[kInfil * stride + o] = s.infil2;
        out[kLatFlux * stride + o] = s.lat;
        out[kEtRain * stride + o] = s.et_rain;
        out[kEtSoil * stride + o] = s.et_soil;
        out[kSoilChange * stride + o] = s.s_f - soil_start;
      }
      for (int k = 0; k < ns; ++k) final_state[k * B + b] = st[k];
    }
  });
}

// Adjoint of one step. st/nash: state before the step (nash is overwritten by the recompute);
// g: output adjoints [kNumGradOutputs]; a_st: adjoint of the state after the step on entry,
// before it on exit; a_p: parameter adjoints (accumulated); a_rain, a_pet: input adjoints.
template <typename T>
inline void step_backward(const T* p, T rain, T pet, const T* st_before, T* work, int n_nash,
                          const Options& o, const T* g, T* a_st, T* a_p, T& a_rain, T& a_pet) {
  Step<T> s;
  T lateral;
  const int ns = kNumScalarStates + n_nash;
  for (int k = 0; k < ns; ++k) work[k] = st_before[k];
  step_forward<T>(p, rain, pet, work, work + kNumScalarStates, n_nash, o, s, lateral);
  const T* nash0 = st_before + kNumScalarStates;
  T* a_nash = a_st + kNumScalarStates;
  const T fc = p[kFieldCapacity], wp = p[kWiltingPoint], smax = p[kStorageMax];
  const T soil_a = st_before[kSoilState];
  T aS = a_st[kSoilState] + g[kSoil];
  T aG = a_st[kGwState] + g[kGw];
  const T aPerc = a_st[kPercState] + g[kPerc];
  // lateral Nash cascade
  T a_lat_flux = n_nash > 0 ? a_nash[0] : g[kLateral];
  const T kn = p[kKNash];
  for (int i = 0; i < n_nash; ++i) {
    const T a_q = -a_nash[i] + (i + 1 < n_nash ? a_nash[i + 1] : g[kLateral]);
    a_p[kKNash] += nash0[i] * a_q;
    a_nash[i] = a_nash[i] + kn * a_q;  // in place: a_nash[i+1] was read above before its update
  }
  // baseflow
  const T a_bf = g[kBaseflow] - aG;
  T aGb = aG;
  if (s.bf_cap) {
    aGb += a_bf;
  } else {
    const T gmax = p[kMaxGw], exg = p[kExponGw];
    a_p[kCgw] += (s.bf_e - T(1)) * a_bf;
    const T a_x = p[kCgw] * s.bf_e * a_bf;
    a_p[kExponGw] += s.g_b / gmax * a_x;
    aGb += exg / gmax * a_x;
    a_p[kMaxGw] -= exg * s.g_b / (gmax * gmax) * a_x;
  }
  // soil after percolation and lateral flow
  T a_lat = a_lat_flux - aS;
  T aSd = aS;
  const T a_perc = aPerc - aS + aGb;
  const T a_over = g[kOverflow] - (o.mass_conserving ? aS : T(0));
  T aGa = aGb;
  T a_perc0, a_room = T(0);
  if (s.clipped) {
    a_perc0 = a_over;
    a_room = -a_over + a_perc;
  } else {
    a_perc0 = a_perc;
  }
  a_p[kMaxGw] += a_room;
  aGa -= a_room;
  if (s.active) {
    T a_frac = T(0), a_above = T(0);
    if (s.lat_cap) {
      aSd += a_lat;
      a_p[kFieldCapacity] -= a_lat;
      a_perc0 -= a_lat;
    } else {
      const T el = p[kExponSoilSecondary];
      a_p[kKlf] += s.pw_l * a_lat;
      const T a_pw = p[kKlf] * a_lat;
      a_frac += el * std::pow(s.frac, el - T(1)) * a_pw;
      a_p[kExponSoilSecondary] += s.pw_l * std::log(s.frac) * a_pw;
    }
    if (s.perc_cap) {
      a_above += a_perc0;
    } else {
      const T ep = p[kExponSoil];
      a_p[kCoeffPercolation] += s.pw_p * a_perc0;
      const T a_pw = p[kCoeffPercolation] * a_perc0;
      a_frac += ep * std::pow(s.frac, ep - T(1)) * a_pw;
      a_p[kExponSoil] += s.pw_p * std::log(s.frac) * a_pw;
    }
    const T d = smax - fc;
    a_above += a_frac / d;
    const T a_d = -s.above / (d * d) * a_frac;
    a_p[kStorageMax] += a_d;
    a_p[kFieldCapacity] -= a_d;
    aSd += a_above;
    a_p[kFieldCapacity] -= a_above;
  }
  // infiltration into the soil
  const T aSc = aSd;
  const T a_infil2 = aSd;
  const T a_excess2 = g[kExcess];
  T a_excess1 = a_excess2, a_infil1 = a_infil2, a_def1 = T(0), a_pp = T(0);
  if (s.prev) {
    a_pp += a_excess2;
    a_def1 += -a_excess2 + a_infil2;
    a_infil1 = T(0);
  }
  T a_excess0 = a_excess1, a_infil0 = a_infil1, a_def0 = T(0), aSb;
  if (s.too_much) {
    a_infil0 = a_excess1;
    a_def0 += -a_excess1 + a_infil1;
    if (o.mass_conserving) {
      aSb = aSc;
    } else {
      a_p[kStorageMax] += aSc;
      aSb = T(0);
    }
  } else {
    a_def0 += a_def1;
    aSb = aSc;
  }
  // Schaake partitioning
  T a_rain_eff = T(0);
  if (s.schaake) {
    a_rain_eff += a_excess0;
    const T a_in = a_infil0 - a_excess0;
    if (!s.neg_deficit) {
      a_rain_eff += a_in;
      const T a_ex = -a_in;
      T a_infa = T(0);
      if (s.excess_pos) {
        a_rain_eff += a_ex;
        a_infa = -a_ex;
      }
      T a_ic = T(0);
      if (s.denom > T(0)) {
        const T r = s.ic / s.denom;
        a_rain_eff += r * a_infa;
        const T a_r = s.rain_eff * a_infa;
        a_ic += a_r / s.denom;
        const T a_den = -s.ic / (s.denom * s.denom) * a_r;
        a_rain_eff += a_den;
        a_ic += a_den;
      }
      a_def0 += (T(1) - s.e_kdt) * a_ic;
      const T a_e = -s.deficit0 * a_ic;
      a_p[kSchaakeKdt] += a_e * s.e_kdt * T(-1.0 / 24.0);
    }
  }
  a_p[kStorageMax] += a_def0;
  aSb -= a_def0;
  // ET from soil, then rain
  const T a_et_soil = g[kAet] - aSb;
  T aSa = aSb;
  T a_et_rain = g[kAet];
  T a_rpet = T(0);
  if (s.et_active) {
    if (s.wet) {
      if (s.et_min_rpet) a_rpet += a_et_soil;
      else aSa += a_et_soil;
    } else if (s.mid) {
      if (s.et_min_b) {
        const T dd = fc - wp;
        const T b = (soil_a - wp) / dd;
        const T a_b = s.rpet * a_et_soil;
        a_rpet += b * a_et_soil;
        aSa += a_b / dd;
        a_p[kWiltingPoint] += -a_b / dd + (soil_a - wp) / (dd * dd) * a_b;
        a_p[kFieldCapacity] += -(soil_a - wp) / (dd * dd) * a_b;
      } else {
        aSa += a_et_soil;
      }
    }
  }
  T a_ps = T(0);
  if (s.raining) {
    a_ps += a_rpet;
    a_et_rain -= a_rpet;
    if (s.rain_gt) {
      a_rain += a_rain_eff;
      a_et_rain -= a_rain_eff;
      a_ps += a_et_rain;
    } else {
      a_rain += a_et_rain;
    }
  } else {
    a_rain += a_rain_eff;
    a_ps += a_rpet;
  }
  a_pet += T(kStepSeconds) * a_ps;
  a_st[kSoilState] = aSa;
  a_st[kGwState] = aGa;
  a_st[kPercState] = a_pp;
}

// Backward over all steps (see forward for layouts). grad_out [kNumGradOutputs, T, B];
// grad_final [3 + n_nash, B]; outputs grad_params [kNumParams, n_rows, B], grad_state0 [3 + n_nash, B],
// grad_rain, grad_pet [T, B].
template <typename T>
void backward(const Problem& pr, const T* params, const T* saved, const T* rain, const T* pet,
              const T* grad_out, const T* grad_final, T* grad_params, T* grad_state0,
              T* grad_rain, T* grad_pet) {
  const std::ptrdiff_t B = pr.n_basins, TT = pr.n_steps;
  const int ns = kNumScalarStates + pr.n_nash;
  delta::parallel_chunks(std::size_t(B), pr.n_threads, [&](std::size_t b0, std::size_t b1) {
    std::vector<T> st(ns), work(ns), a_st(ns);
    T p[kNumParams], a_p[kNumParams], g[kNumGradOutputs];
    const std::ptrdiff_t R = pr.n_rows;
    for (std::size_t b = b0; b < b1; ++b) {
      for (std::ptrdiff_t r = 0; r < R; ++r)
        for (int k = 0; k < kNumParams; ++k) grad_params[(k * R + r) * B + b] = T(0);
      for (int k = 0; k < ns; ++k) a_st[k] = grad_final[k * B + b];
      std::ptrdiff_t row = -1;
      for (std::ptrdiff_t t = TT - 1; t >= 0; --t) {
        if (t / pr.period != row) {  // entering a parameter row (from its last step)
          row = t / pr.period;
          for (int k = 0; k < kNumParams; ++k) { p[k] = params[(k * R + row) * B + b]; a_p[k] = T(0); }
        }
        for (int k = 0; k < ns; ++k) st[k] = saved[(t * ns + k) * B + b];
        for (int k = 0; k < kNumGradOutputs; ++k) g[k] = grad_out[(k * TT + t) * B + b];
        T a_rain = T(0), a_pet = T(0);
        step_backward<T>(p, rain[t * B + b], pet[t * B + b], st.data(), work.data(), pr.n_nash,
                         pr.options, g, a_st.data(), a_p, a_rain, a_pet);
        grad_rain[t * B + b] = a_rain;
        grad_pet[t * B + b] = a_pet;
        if (t % pr.period == 0)  // first step of the row: its adjoint is complete
          for (int k = 0; k < kNumParams; ++k) grad_params[(k * R + row) * B + b] = a_p[k];
      }
      for (int k = 0; k < ns; ++k) grad_state0[k * B + b] = a_st[k];
    }
  });
}

}  // namespace cfe
