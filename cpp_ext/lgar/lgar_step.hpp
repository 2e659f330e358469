// One forcing step of LGAR (bmi_lgar/physics.py _ForcingStep, LGAR-C's BmiLGAR::Update) with
// its substeps, the state carried between steps, and the initial state. Internal units cm, h.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "lgar_move.hpp"

namespace lgar {

constexpr double kSmallEps = 1.0e-12;
constexpr double kPrecipThreshold = 1.0e-6;  // mm/h
constexpr double kPetEpsilon = 1.0e-8;
constexpr double kAetPetRatioThreshold = 0.75;
constexpr double kVolonThreshold = 1.0e-16;
constexpr double kBottomFluxThreshold = 1.0e-4;
constexpr double kThresholdDzdt = 1.0;
constexpr int kStepsBeforeResetCache = 24;

// State carried between forcing steps (physics.LgarState); giuh_queue points into the caller's
// buffer of n_giuh + 1 values.
template <typename T>
struct State {
  Fronts<T> fronts;
  T ponded, precip_previous, cr_fast, cr_slow;
  T previous_aet, previous_pet, previous_recharge, accumulated_pet, accumulated_fd;
  bool runoff_in_prev_step = false, cache_fluxes = false;
  int cache_count = 1;
  double timestep_h = 1.0, time_s = 0.0;
  T* giuh_queue = nullptr;
};

// Outputs of one forcing step [cm] (physics.StepFluxes), in OUTPUT_NAMES order.
enum Output {
  kPrecip = 0, kPet, kAet, kSurfaceRunoff, kGiuhRunoff, kSoilStorage, kTotalDischarge,
  kInfiltration, kPercolation, kReservoirDischarge, kMassBalance, kMassBalanceClosed, kPonded,
  kReservoirStorage, kNumOutputs
};

// One front per layer at the layer bottom, all at the initial head.
template <typename T>
void initial_state(const Model<T>& m, State<T>& st) {
  Fronts<T>& fr = st.fronts;
  fr.n = 0;
  const double psi0 = m.c.initial_psi;
  for (int layer = 1; layer <= m.nl; ++layer) {
    const Soil<T>& s = m.soil[layer];
    const T theta0 = theta_from_psi(psi0, s);
    fr.insert(fr.n, T(m.cum[layer]), theta0, layer, true);
    fr.psi[fr.n - 1] = T(psi0);
    const T se = se_from_theta(theta0, s);
    fr.k[fr.n - 1] = k_from_se(se, s);
  }
  st.ponded = st.precip_previous = st.cr_fast = st.cr_slow = T(0.0);
  st.previous_aet = st.previous_pet = st.previous_recharge = T(0.0);
  st.accumulated_pet = st.accumulated_fd = T(0.0);
  st.runoff_in_prev_step = st.cache_fluxes = false;
  st.cache_count = 1;
  st.timestep_h = m.c.timestep_h;
  st.time_s = 0.0;
  for (int i = 0; i <= m.c.n_giuh; ++i) st.giuh_queue[i] = T(0.0);
}

template <typename T>
struct Substep {
  T precip{0.0}, aet{0.0}, volstart{0.0}, volin{0.0}, volon{0.0}, runoff{0.0}, recharge{0.0},
      free_drainage_for_cr{0.0};
  bool top_near_sat = false;
};

template <typename T>
class ForcingStep {
 public:
  // old: scratch fronts (the copy at the start of a substep).
  ForcingStep(const Model<T>& model, State<T>& state, Fronts<T>& old, double precip_mm_per_h,
              double pet_mm_per_h)
      : m(model), st(state), c(model.c), old_(old), p_mm(precip_mm_per_h), pet_mm(pet_mm_per_h) {
    volend_sub = m.mass(st.fronts);
    volend_ts = volend_sub;
    volcr_end_ts = st.cr_fast + st.cr_slow;
    volon_ts = st.ponded;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    local_mb = local_mb_closed = T(nan);
  }

  // Runs the step; out: kNumOutputs amounts [cm]. Returns the number of substeps.
  int run(T* out) {
    const double dt = choose_substep();
    decide_caching(dt);
    const int subcycles = int(c.forcing_h / st.timestep_h + 1.0e-08);
    if (subcycles < 1)
      throw std::invalid_argument("substep longer than the forcing step: 0 substeps (refused)");
    clean_inputs();
    int done = 0;
    for (int i = 0; i < subcycles; ++i) {
      substep(dt);
      done += 1;
      if (st.time_s >= c.endtime_s) break;
    }
    finish(out);
    return done;
  }

 private:
  const Model<T>& m;
  State<T>& st;
  const Settings& c;
  Fronts<T>& old_;
  double p_mm, pet_mm;
  T precip_ts{0.0}, pet_ts{0.0}, aet_ts{0.0}, volin_ts{0.0}, runoff_ts{0.0}, recharge_ts{0.0},
      q_cr_ts{0.0};
  T volend_sub, volend_ts, volcr_end_ts, volon_ts, local_mb, local_mb_closed;
  T pet_sub{0.0}, aet_sub{0.0}, recharge_sub{0.0};
  bool switch_caching = false;

  double choose_substep() {
    double dt = st.timestep_h;
    if (c.adaptive) {
      dt = c.forcing_h;
      if (p_mm > 10.0 || volon_ts > 0.0)
        dt = c.timestep_h;
      else if (p_mm > 0.0)
        dt = c.timestep_h * 2.0;
      dt = fmin(dt, c.forcing_h);
      st.timestep_h = dt;
    }
    return dt;
  }

  void decide_caching(double dt) {
    const bool caching_at_start = st.cache_fluxes;
    double wf_free_drain_dzdt = 0.0;
    if (!caching_at_start)
      wf_free_drain_dzdt = val(st.fronts.dzdt[Model<T>::free_drainage_front(st.fronts)]);
    if (c.caching) {
      if (dt == c.forcing_h) {
        if (p_mm < kPrecipThreshold &&
            (val(st.previous_aet) / (val(st.previous_pet) + kPetEpsilon)) < kAetPetRatioThreshold &&
            st.cache_count != kStepsBeforeResetCache && volon_ts < kVolonThreshold &&
            st.previous_recharge < kBottomFluxThreshold)
          st.cache_fluxes = true;
        if (wf_free_drain_dzdt > kThresholdDzdt) st.cache_fluxes = false;
        if (volon_ts >= kVolonThreshold) st.cache_fluxes = false;
        if (st.cache_count == kStepsBeforeResetCache || p_mm >= kPrecipThreshold)
          st.cache_fluxes = false;
      } else {
        st.cache_fluxes = false;
      }
    }
    if (caching_at_start && !st.cache_fluxes) switch_caching = true;
    if (st.cache_fluxes) st.cache_count += 1;
  }

  void clean_inputs() {
    if (p_mm < 0.0) p_mm = 0.0;
    if (pet_mm < 0.0) pet_mm = 0.0;
    if (c.pet_affects_precip) {
      if (p_mm > pet_mm) {
        p_mm = p_mm - pet_mm;
        pet_mm = 0.0;
      } else {
        pet_mm = pet_mm - p_mm;
        p_mm = 0.0;
      }
    }
  }

  void substep(double dt) {
    Substep<T> sub;
    st.time_s += dt * 3600;
    T precip_for_cr_rate(0.0);
    T precip_rate(p_mm * 0.1);
    old_.copy_from(st.fronts);
    T ponded_flux_for_cr(0.0);
    if (st.runoff_in_prev_step) {
      const T total = precip_rate;
      precip_for_cr_rate = m.frac_to_cr * total;
      precip_rate = (1.0 - m.frac_to_cr) * total;
      ponded_flux_for_cr = volon_ts / dt * m.frac_to_cr;
      volon_ts = volon_ts * (1.0 - m.frac_to_cr);
    }
    const T pet_rate(pet_mm * 0.1);
    T ponded = precip_rate * dt;
    ponded += volon_ts;
    sub.precip = precip_rate * dt;
    pet_sub = pet_rate * dt;
    sub.volstart = m.mass(st.fronts);
    if (!st.cache_fluxes)
      soil_substep(sub, dt, precip_rate, pet_rate, precip_for_cr_rate, ponded);
    else
      cached_substep(sub);
    volend_sub = m.mass(st.fronts);
    volend_ts = volend_sub;
    st.precip_previous = sub.precip;
    reservoir_and_balance(sub, dt, precip_for_cr_rate, ponded_flux_for_cr);
  }

  void cached_substep(Substep<T>& sub) {
    pet_ts += fmax(pet_sub, T(0.0));
    st.accumulated_pet += pet_ts;
    if (!c.free_drainage_to_cr)
      sub.recharge += st.previous_recharge;
    else
      sub.free_drainage_for_cr += st.previous_recharge;
    st.accumulated_fd += st.previous_recharge;
  }

  struct Limits {
    T mass_now, min_storage, storage_fd, min_fd;
  };

  Limits limits(const Fronts<T>& fr, int i_fd) const {
    T min_storage(0.0);
    const T mass_now = m.mass(fr);
    for (int k = 1; k <= m.nl; ++k)
      min_storage += m.soil[k].theta_r * (m.cum[k] - m.cum[k - 1]);
    const T min_fd = m.min_storage_to_front(fr, i_fd);
    const T storage_fd = Model<T>::storage_to_front(fr, i_fd);
    return {mass_now, min_storage, storage_fd, min_fd};
  }

  T free_drainage(const Fronts<T>& fr, double dt, const Limits& lim) const {
    T fd(0.0);
    if (!c.free_drainage) return fd;
    fd += dt * fr.k[fr.n - 1];
    int it = 0;
    while ((lim.mass_now - fd < lim.min_storage) || (lim.storage_fd - fd < lim.min_fd)) {
      fd *= 0.5;
      if (it > 5) {
        fd = T(0.0);
        break;
      }
      it += 1;
    }
    if (fd < 1.e-7) fd = T(0.0);
    if (fr.psi[fr.n - 1] > 1.e6) fd = T(0.0);
    return fd;
  }

  static void limit_aet(T& aet, T& fd, T& corr, const Limits& lim) {
    int it = 0;
    while ((lim.mass_now - aet < lim.min_storage) || (lim.storage_fd - aet < lim.min_fd)) {
      aet *= 0.5;
      if (it > 5) {
        aet = T(0.0);
        break;
      }
      it += 1;
    }
    it = 0;
    while (((lim.mass_now - aet - fd - corr) < lim.min_storage) ||
           ((lim.storage_fd - aet - fd - corr) < lim.min_fd)) {
      aet *= 0.5;
      fd *= 0.5;
      corr *= 0.5;
      if (it > 5) {
        aet = fd = corr = T(0.0);
        break;
      }
      it += 1;
    }
  }

  void soil_substep(Substep<T>& sub, double dt, const T& precip_rate, T pet_rate,
                    const T& precip_for_cr_rate, T ponded) {
    Fronts<T>& fr = st.fronts;
    const int i_fd = Model<T>::free_drainage_front(fr);
    const Limits lim = limits(fr, i_fd);
    T corr(0.0);
    if (switch_caching) {
      pet_rate += st.accumulated_pet;
      st.accumulated_pet = T(0.0);
      corr += st.accumulated_fd;
      st.accumulated_fd = T(0.0);
    }
    T fd = free_drainage(fr, dt, lim);
    const T precip_previous = st.precip_previous;
    T aet(0.0);
    if (pet_rate > 0.0) aet = m.aet(fr, pet_rate, dt);
    limit_aet(aet, fd, corr, lim);
    precip_ts += sub.precip + precip_for_cr_rate * dt;
    pet_ts += fmax(pet_sub, T(0.0));
    volon_ts = fmax(volon_ts, T(0.0));
    volon_ts = volon_ts > kSmallEps ? volon_ts : T(0.0);
    const T theta_e = m.soil[fr.layer[0]].theta_e;
    const bool is_top_sat = (fr.theta[0] + kSmallEps) >= theta_e;
    sub.top_near_sat = fr.theta[0] > theta_e * c.spf_factor;
    bool create = (precip_previous == 0.0 && sub.precip > 0.0 && volon_ts == 0.0) ||
                  ((sub.precip > 0.0 || volon_ts > 0.0) && fr.n == m.nl);
    if (is_top_sat || volon_ts > 0.0) create = false;
    T temp_rch(0.0);
    const Fronts<T>* old = &old_;
    if (create) {
      temp_rch = move_wetting_fronts(m, fr, old_, dt, fd, T(0.0), i_fd, volend_sub, corr, aet);
      const T depth = dry_depth(m, fr, dt);
      ponded = create_surficial_front(m, fr, ponded, depth, fr.theta[0], sub.volin);
      old_.copy_from(fr);
      old = &old_;
    }
    if (ponded > 0.0 && !create) {
      const Infiltration<T> inf =
          insert_water(m, fr, dt, aet, fd, ponded, precip_rate, i_fd, m.ponded_max);
      sub.runoff = inf.runoff;
      ponded = inf.ponded;
      sub.volin = inf.volin;
      sub.recharge = sub.volin;
      sub.volon = ponded;
    } else if (ponded < m.ponded_max) {
      sub.volon = ponded;
      ponded = T(0.0);
      sub.runoff = T(0.0);
    } else {
      sub.runoff = (ponded - m.ponded_max);
      sub.volon = m.ponded_max;
      ponded = m.ponded_max;
    }
    if (!create)
      temp_rch = move_wetting_fronts(m, fr, *old, dt, fd, sub.volin, i_fd, volend_sub, corr, aet);
    clean_redundant_fronts(m, fr);
    const int new_front = (switch_caching && create) ? 0 : -1;
    dzdt_calc(m, fr, ponded, dt, switch_caching, st.cache_count, new_front);
    if (switch_caching) st.cache_count = 1;
    sub.recharge = temp_rch;
    if (!c.free_drainage_to_cr) {
      sub.recharge += fd;
    } else {
      sub.free_drainage_for_cr += fd + sub.recharge;
      sub.recharge = T(0.0);
    }
    sub.aet = aet;
  }

  void reservoir_and_balance(const Substep<T>& sub, double dt, const T& precip_for_cr_rate,
                             const T& ponded_flux_for_cr) {
    const T volcr_start = st.cr_fast + st.cr_slow;
    const T inflow = precip_for_cr_rate + ponded_flux_for_cr + sub.free_drainage_for_cr / dt;
    const T q_cr = m.reservoirs(st.cr_fast, st.cr_slow, dt, inflow);
    q_cr_ts += q_cr;
    const T volcr_end = st.cr_fast + st.cr_slow;
    volcr_end_ts = volcr_end;
    st.runoff_in_prev_step = (sub.runoff > kSmallEps) || sub.top_near_sat;
    const T precip = sub.precip + precip_for_cr_rate * dt;
    const T mb = (sub.volstart + precip + volon_ts - sub.runoff - q_cr - volcr_end + volcr_start -
                  sub.aet - sub.volon - sub.recharge - volend_sub);
    local_mb = mb;
    local_mb_closed = mb + ponded_flux_for_cr * dt;
    volin_ts += sub.volin;
    recharge_ts += sub.recharge;
    runoff_ts += sub.runoff;
    aet_ts += sub.aet;
    volon_ts = sub.volon;
    aet_sub = sub.aet;
    recharge_sub = sub.recharge;
    if (std::fabs(val(mb)) > c.mbal_tol || std::isinf(val(mb)))
      throw std::runtime_error("local mass balance error " + std::to_string(val(mb)) +
                               " cm exceeds mbal_tol=" + std::to_string(c.mbal_tol) +
                               " cm at t=" + std::to_string(st.time_s) + " s");
  }

  void finish(T* out) {
    const T giuh = m.giuh_route(st.giuh_queue, runoff_ts + q_cr_ts);
    st.ponded = volon_ts;
    st.previous_aet = aet_sub;
    st.previous_pet = pet_sub;
    if (!st.cache_fluxes) st.previous_recharge = recharge_sub;
    out[kPrecip] = precip_ts;
    out[kPet] = pet_ts;
    out[kAet] = aet_ts;
    out[kSurfaceRunoff] = runoff_ts;
    out[kGiuhRunoff] = giuh;
    out[kSoilStorage] = volend_ts;
    out[kTotalDischarge] = giuh;
    out[kInfiltration] = volin_ts;
    out[kPercolation] = recharge_ts;
    out[kReservoirDischarge] = q_cr_ts;
    out[kMassBalance] = local_mb;
    out[kMassBalanceClosed] = local_mb_closed;
    out[kPonded] = volon_ts;
    out[kReservoirStorage] = volcr_end_ts;
  }
};

}  // namespace lgar
