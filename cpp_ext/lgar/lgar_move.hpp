// Moving the fronts (lgar_move_wetting_fronts), infiltration, new surface fronts and dZ/dt:
// bmi_lgar/dynamics.py, the reference, with the same operations in the same order.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "lgar_dynamics.hpp"

namespace lgar {

// Fluxes the front taking infiltration accounts for in its mass balance.
template <typename T>
struct FrontFluxes {
  T precip, fd, corr;
  bool takes;  // this front takes them
};

template <typename T>
T prior_with_fluxes(T prior_mass, const FrontFluxes<T>& f, const T& actual_et) {
  if (f.takes) prior_mass += f.precip - (f.fd + f.corr + actual_et);
  return prior_mass;
}

// Deepest front with one front per layer: whole column at one head.
template <typename T>
void move_deepest_front(const Model<T>& m, Fronts<T>& fr, const Fronts<T>& old, int cur,
                        double dt_h, const FrontFluxes<T>& fl, const T& actual_et, T& aet) {
  const double* cum = m.cum;
  const int layer = fr.layer[cur];
  const Soil<T>& s = m.soil[layer];
  fr.depth[cur] += fr.dzdt[cur] * dt_h;
  const T psi_old = old.psi[cur];
  const T psi = fr.psi[cur];
  T prior_mass = (old.depth[cur] - cum[layer - 1]) * (old.theta[cur] - 0.0);
  T new_mass = (fr.depth[cur] - cum[layer - 1]) * (fr.theta[cur] - 0.0);
  T dth[kMaxLayers + 1], dthk[kMaxLayers + 1];
  for (int k = 1; k < layer; ++k) {
    const T theta_old = m.theta_at(k, psi_old);
    const T local_delta_theta_old = theta_old - 0.0;
    const double thickness = cum[k] - cum[k - 1];
    prior_mass += (thickness * local_delta_theta_old);
    const T theta = m.theta_at(k, psi);
    new_mass += thickness * (theta - 0.0);
    dth[k] = T(0.0);
    dthk[k] = T(thickness);
  }
  dth[layer] = T(0.0);
  dthk[layer] = fr.depth[cur] - cum[layer - 1];
  prior_mass = prior_with_fluxes(prior_mass, fl, actual_et);
  const T theta_new = theta_mass_balance(m, layer, psi, new_mass, prior_mass, fl.precip, aet,
                                         dth, dthk);
  fr.theta[cur] = fmax(s.theta_r, fmin(theta_new, s.theta_e));
  const T se = se_from_theta(fr.theta[cur], s);
  fr.psi[cur] = psi_from_se(se, s);
}

// A front inside layer 1; returns true when it was removed (then actual_et = aet).
template <typename T>
void move_front_top_layer(const Model<T>& m, Fronts<T>& fr, const Fronts<T>& old, int cur,
                          double dt_h, double column_depth, const FrontFluxes<T>& fl,
                          T& actual_et, T& aet) {
  const Soil<T>& s = m.soil[1];
  const int nxt = cur + 1;
  T prior_mass = old.depth[cur] * (old.theta[cur] - old.theta[cur + 1]);
  prior_mass = prior_with_fluxes(prior_mass, fl, actual_et);
  fr.depth[cur] += fr.dzdt[cur] * dt_h;
  if (fr.depth[cur] > column_depth) fr.depth[cur] = T(column_depth + kTruncationDepth);
  if (fr.dzdt[cur] == 0.0 && !fr.to_bottom[cur]) return;
  const T theta_candidate = prior_mass / fr.depth[cur] + fr.theta[nxt];
  if (theta_candidate < s.theta_r) {
    const T mass_before = m.mass(fr) - fr.depth[cur] * (fr.theta[cur] - theta_candidate);
    m.delete_front(fr, cur);
    const T mass_after = m.mass(fr);
    aet = aet - fabs(mass_before - mass_after);
    actual_et = aet;
    return;
  }
  fr.theta[cur] = fmax(s.theta_r, fmin(s.theta_e, theta_candidate));
}

// A front inside layer 2 or deeper: mass balance of the front extended into the layers above.
template <typename T>
void move_front_deeper_layer(const Model<T>& m, Fronts<T>& fr, const Fronts<T>& old, int cur,
                             double dt_h, double column_depth, const FrontFluxes<T>& fl,
                             const T& actual_et, T& aet) {
  const double* cum = m.cum;
  const int layer = fr.layer[cur];
  const Soil<T>& s = m.soil[layer];
  const int nxt = cur + 1;
  fr.depth[cur] += fr.dzdt[cur] * dt_h;
  if (fr.depth[cur] > column_depth) fr.depth[cur] = T(column_depth + kTruncationDepth);
  const T psi_old = old.psi[cur];
  const T psi_below_old = old.psi[cur + 1];
  const T psi = fr.psi[cur];
  const T psi_below = fr.psi[nxt];
  T prior_mass = (old.depth[cur] - cum[layer - 1]) * (old.theta[cur] - old.theta[cur + 1]);
  T new_mass = (fr.depth[cur] - cum[layer - 1]) * (fr.theta[cur] - fr.theta[nxt]);
  T dth[kMaxLayers + 1], dthk[kMaxLayers + 1];
  for (int k = 1; k < layer; ++k) {
    const T theta_old = m.theta_at(k, psi_old);
    const T theta_below_old = m.theta_at(k, psi_below_old);
    const T local_delta_theta_old = theta_old - theta_below_old;
    const double thickness = (cum[k] - cum[k - 1]);
    prior_mass += (thickness * local_delta_theta_old);
    const T theta = m.theta_at(k, psi);
    const T theta_below = m.theta_at(k, psi_below);
    new_mass += thickness * (theta - theta_below);
    dth[k] = theta_below;
    dthk[k] = T(thickness);
  }
  dth[layer] = fr.theta[nxt];
  dthk[layer] = fr.depth[cur] - cum[layer - 1];
  prior_mass = prior_with_fluxes(prior_mass, fl, actual_et);
  const T theta_new = theta_mass_balance(m, layer, psi, new_mass, prior_mass, fl.precip, aet,
                                         dth, dthk);
  fr.theta[cur] = fmax(s.theta_r, fmin(theta_new, s.theta_e));
}

// Saturated front taking infiltration: move its depth until the column holds its water.
// Returns the water sent to the bottom; aet updated.
template <typename T>
T saturated_depth_correction(const Model<T>& m, Fronts<T>& fr, const T& old_mass,
                             const FrontFluxes<T>& fl, T actual_et, T& aet) {
  const double* cum = m.cum;
  const int nl = m.nl;
  const int i_fd = Model<T>::free_drainage_front(fr);
  const T theta_e_fd = m.soil[fr.layer[i_fd]].theta_e;
  T mass_timestep = (old_mass + fl.precip) - (actual_et + fl.fd + fl.corr);
  if (!(std::fabs(val(fr.theta[i_fd]) - val(theta_e_fd)) < 1e-15)) return T(0.0);
  double current_mass = val(m.mass(fr));
  double mass_balance_error = std::fabs(current_mass - val(mass_timestep));
  double factor = 1.0;
  if (i_fd + 1 < fr.n) {
    const double dtheta = std::fabs(val(fr.theta[i_fd]) - val(fr.theta[i_fd + 1]));
    if (dtheta < 0.01) factor = factor / dtheta;
  }
  bool switched = false;
  double depth_new = val(fr.depth[i_fd]);
  long it = 0;
  bool aug = false, break_flag = false, moved = false, pinned = false;
  const long speedup_thresh = long(kMaxIterSatMbal / 10);
  while (std::fabs(mass_balance_error) > kMbalTol) {
    it += 1;
    if (it > kMaxIterSatMbal) {
      break_flag = true;
      if constexpr (is_dual<T>::value) aet = aet + fabs(m.mass(fr) - mass_timestep);
      else aet = aet + mass_balance_error;
      actual_et = aet;
      break;
    }
    moved = true;
    if (it > speedup_thresh && !aug) { factor = factor * 100; aug = true; }
    if (current_mass < val(mass_timestep)) {
      depth_new += 0.01 * factor;
      switched = false;
    } else {
      if (!switched) { switched = true; factor = factor * 0.1; }
      depth_new -= 0.01 * factor;
    }
    if (fr.to_bottom[i_fd] && fr.layer[i_fd] == nl) { depth_new = cum[nl]; pinned = true; }
    fr.depth[i_fd] = T(depth_new);
    current_mass = val(m.mass(fr));
    mass_balance_error = std::fabs(current_mass - val(mass_timestep));
  }
  if (moved && !break_flag && !pinned) implicit_depth(m, fr, i_fd, mass_timestep);
  if (depth_new < kTruncationDepth) {
    depth_new = kTruncationDepth;
    fr.depth[i_fd] = T(depth_new);
  }
  if (std::isinf(val(fr.depth[i_fd]))) {
    fr.depth[i_fd] = T(cum[nl] + 1.0e-6);
    break_flag = true;
  }
  T flux(0.0);
  if (break_flag) {
    const T mass_now = m.mass(fr);
    mass_timestep = (old_mass + fl.precip) - (actual_et + fl.fd + fl.corr);
    flux = mass_timestep - mass_now;
  }
  return flux;
}

// Merge, cross layer and domain boundaries, fix dry over wet, until none is needed.
template <typename T>
void apply_corrections(const Model<T>& m, Fronts<T>& fr, T& aet, T& bottom_flux) {
  int kind = correction_type(m, fr);
  while (kind != 0) {
    if (kind == 1) merge_wetting_fronts(m, fr);
    if (kind == 2) {
      const T mass_before = m.mass(fr);
      cross_layer_boundary(m, fr);
      const T mass_after = m.mass(fr);
      if (fabs(mass_before - mass_after) > 100. * kMbalTol) aet = aet + (mass_before - mass_after);
    }
    if (kind == 3) {
      bottom_flux += cross_domain_boundary(m, fr);
      if (std::isnan(val(bottom_flux))) bottom_flux = T(0.0);
    }
    if (kind == 4) {
      const T mass_change = fix_dry_over_wet(m, fr);
      aet = aet - mass_change;
    }
    kind = correction_type(m, fr);
  }
}

template <typename T>
void update_psi_k(const Model<T>& m, Fronts<T>& fr) {
  for (int i = 0; i < fr.n; ++i) {
    const Soil<T>& s = m.soil[fr.layer[i]];
    const T se = se_from_theta(fr.theta[i], s);
    if (fr.psi[i] > 1.0) fr.psi[i] = psi_from_se(se, s);
    fr.k[i] = k_from_se(se, s);
  }
}

// lgar_move_wetting_fronts: returns the water leaving through the bottom [cm]; aet updated.
template <typename T>
T move_wetting_fronts(const Model<T>& m, Fronts<T>& fr, const Fronts<T>& old, double dt_h,
                      const T& free_drainage_cm, const T& precip_mass_to_add, int i_fd,
                      const T& old_mass, const T& mass_corr_cached_fd, T& aet) {
  const double* cum = m.cum;
  const int nl = m.nl;
  const double column_depth = cum[nl];
  const int nwf = fr.n;
  const int last = nwf;
  T bottom_flux(0.0);
  for (int wf = nwf; wf > 0; --wf) {
    const int cur = wf - 1;
    const int layer = fr.layer[cur];
    const Soil<T>& s = m.soil[layer];
    const int layer_below = wf == last ? layer + 1 : fr.layer[cur + 1];
    T actual_et = aet;
    const FrontFluxes<T> fl{precip_mass_to_add, free_drainage_cm, mass_corr_cached_fd,
                            wf == i_fd + 1};
    if (wf < last && layer_below != layer) {
      fr.theta[cur] = m.theta_at(layer, fr.psi[cur + 1]);
      fr.psi[cur] = fr.psi[cur + 1];
    }
    if (wf == nwf && layer_below != layer && nwf == nl) {
      move_deepest_front(m, fr, old, cur, dt_h, fl, actual_et, aet);
      actual_et = aet;
    }
    if (wf < last && layer == layer_below) {
      if (layer == 1) {
        move_front_top_layer(m, fr, old, cur, dt_h, column_depth, fl, actual_et, aet);
      } else {
        move_front_deeper_layer(m, fr, old, cur, dt_h, column_depth, fl, actual_et, aet);
        actual_et = aet;
      }
      const T se = se_from_theta(fr.theta[cur], s);
      fr.psi[cur] = psi_from_se(se, s);
    }
    if (wf == 1) bottom_flux += saturated_depth_correction(m, fr, old_mass, fl, actual_et, aet);
  }
  apply_corrections(m, fr, aet, bottom_flux);
  update_psi_k(m, fr);
  if (fr.n == 1 && fr.depth[0] != cum[1]) fr.depth[0] = T(cum[1]);
  return bottom_flux;
}

// -- infiltration and new fronts -----------------------------------------------------------------
template <typename T>
struct Infiltration {
  T runoff, ponded, volin;
};

// lgar_insert_water: Green-Ampt infiltration of ponded water into front i_fd.
template <typename T>
Infiltration<T> insert_water(const Model<T>& m, const Fronts<T>& fr, double dt_h, const T& aet,
                             const T& free_drainage_cm, T ponded_cm, const T& precip_cm_per_h,
                             int i_fd, const T& ponded_max_cm) {
  const double* cum = m.cum;
  const int nl = m.nl;
  T volin(0.0);
  const T h_p = fmax(ponded_cm - precip_cm_per_h * dt_h, T(0.0));
  const int layer_fp = fr.layer[i_fd];
  const Soil<T>& s = m.soil[layer_fp];
  const T ksat = s.ks;
  T geff(0.0);
  if (fr.n != nl) geff = m.geff(layer_fp, fr.theta[i_fd + 1], s.theta_e);
  const T depth_fd = fr.depth[i_fd];
  T f_p;
  if (layer_fp == 1) {
    f_p = ksat * (1.0 + (geff + h_p) / depth_fd);
  } else {
    T bottom_sum = (depth_fd - cum[layer_fp - 1]) / ksat;
    for (int k = 1; k < layer_fp; ++k) {
      const T ks_k = m.soil[layer_fp - k].ks;
      bottom_sum += (cum[layer_fp - k] - cum[layer_fp - (k + 1)]) / ks_k;
    }
    f_p = (depth_fd / bottom_sum) + ((geff + h_p) * ksat / depth_fd);
  }
  const T current_mass = m.mass(fr);
  T max_storage(0.0);
  for (int k = 1; k <= nl; ++k) max_storage += m.soil[k].theta_e * (cum[k] - cum[k - 1]);
  const T room = (max_storage + free_drainage_cm + aet - current_mass) / dt_h;
  if (f_p > room) f_p = room;
  T ponded_temp = ponded_cm - f_p * dt_h - 0.0 * 0;
  ponded_temp = fmax(ponded_temp, T(0.0));
  const T fp_cm = f_p * dt_h + 0.0 / dt_h;
  if (ponded_max_cm > 0.0) {
    if (ponded_temp < ponded_max_cm) {
      volin = fmin(ponded_cm, fp_cm);
      ponded_cm = ponded_cm - volin;
      return {T(0.0), ponded_cm, volin};
    }
    if (ponded_temp > ponded_max_cm) return {ponded_temp - ponded_max_cm, ponded_max_cm, fp_cm};
    return {T(0.0), ponded_cm, volin};
  }
  volin = fmin(ponded_cm, fp_cm);
  const T runoff = ponded_cm < fp_cm ? T(0.0) : (ponded_cm - volin);
  return {runoff, T(0.0), volin};
}

// lgar_calc_dry_depth: depth [cm] of a new surface front after a dry spell.
template <typename T>
T dry_depth(const Model<T>& m, const Fronts<T>& fr, double dt_h) {
  const int layer = fr.layer[0];
  const Soil<T>& s = m.soil[layer];
  const T theta1 = fr.theta[0];
  const T tau = dt_h * s.ks / (s.theta_e - fr.theta[0]);
  const T geff = m.geff(layer, theta1, s.theta_e);
  const T depth = 0.5 * (tau + sqrt(tau * tau + 4.0 * tau * geff));
  return fmin(T(m.cum[layer]), depth);
}

// lgar_create_surficial_front: returns the ponded water left; volin set.
template <typename T>
T create_surficial_front(const Model<T>& m, Fronts<T>& fr, T ponded_cm, const T depth,
                         const T theta1, T& volin) {
  const Soil<T>& s = m.soil[1];
  const T theta_e = s.theta_e;
  const T delta_theta = theta_e - theta1;
  T theta_new;
  if (depth * delta_theta > ponded_cm) {
    volin = ponded_cm;
    theta_new = fmin(theta1 + ponded_cm / depth, theta_e);
    fr.insert(0, depth, theta_new, 1, false);
    ponded_cm = T(0.0);
  } else {
    volin = depth * delta_theta;
    ponded_cm -= depth * delta_theta;
    theta_new = theta_e;
    fr.insert(0, depth, theta_e, 1, false);
  }
  m.psi_k_at(1, theta_new, fr.psi[0], fr.k[0]);
  fr.k[0] = fr.k[0] * 1.0;
  fr.dzdt[0] = T(0.0);
  if (fr.n > 1) {
    bool had_to_merge = false;
    while (fr.depth[0] > fr.depth[1] && fr.layer[0] == fr.layer[1] && !fr.to_bottom[1]) {
      merge_wetting_fronts(m, fr);
      had_to_merge = true;
    }
    if (had_to_merge) cross_layer_boundary(m, fr);
  }
  return ponded_cm;
}

// -- front velocities ----------------------------------------------------------------------------
template <typename T>
void dzdt_calc(const Model<T>& m, Fronts<T>& fr, const T& h_p, double dt_h, bool switch_caching,
               int cache_count, int new_front) {
  const double* cum = m.cum;
  int count_correct_for_crossing = 0;
  const int n = fr.n;
  if (n == 0)
    throw std::runtime_error("lgar derivative function called for an empty list of fronts");
  for (int cur = 0; cur < n - 1; ++cur) {
    const int layer = fr.layer[cur];
    const T k_cur = fr.k[cur];
    if (k_cur < 0.0)
      throw std::runtime_error("negative conductivity " + std::to_string(val(k_cur)) +
                               " of front " + std::to_string(cur + 1));
    const T depth = fr.depth[cur];
    const Soil<T>& s = m.soil[layer];
    const int nxt = cur + 1;
    const T theta1 = fr.theta[nxt];
    const T theta2 = fr.theta[cur];
    T bottom_sum(0.0);
    if (fr.to_bottom[cur]) {
      fr.dzdt[cur] = T(0.0);
      continue;
    } else if (layer > 1) {
      bottom_sum += (fr.depth[cur] - cum[layer - 1]) / k_cur;
    }
    if (theta1 > theta2)
      throw std::runtime_error("dry-over-wet fronts " + std::to_string(cur + 1) + " and " +
                               std::to_string(cur + 2) + " reached dZ/dt");
    const T geff = m.geff(layer, theta1, theta2);
    const T delta_theta = fr.theta[cur] - fr.theta[nxt];
    T dzdt(0.0);
    if (layer == 1) {
      if (delta_theta > 0.0)
        dzdt = 1.0 / delta_theta * (s.ks * (geff + h_p) / fr.depth[cur] + fr.k[cur]);
    } else {
      T denominator = bottom_sum;
      for (int k = 1; k < layer; ++k) {
        const T theta_prev = m.theta_at(layer - k, fr.psi[cur]);
        const T k_prev = m.k_at(layer - k, theta_prev);
        denominator += (cum[k] - cum[k - 1]) / k_prev;
      }
      if (delta_theta > 0.0)
        dzdt = (1.0 / delta_theta) * ((depth / denominator) + s.ks * (geff + h_p) / depth);
    }
    if (dzdt == 0.0 && !fr.to_bottom[cur]) dzdt = T(1e-9);
    if (dzdt > 1e4) dzdt = T(1e4);
    if (dzdt > 100.0 * val(m.largest_ks)) dzdt = 100.0 * m.largest_ks;
    if (dzdt < -100.0 * val(m.largest_ks)) dzdt = -100.0 * m.largest_ks;
    if (fr.to_bottom[nxt] && dzdt * dt_h + fr.depth[cur] > kFactorCrossingSpeed * (cum[layer])) {
      count_correct_for_crossing += 1;
      dzdt = (fabs(fr.depth[cur] - kFactorCrossingSpeed * (cum[layer])) / dt_h +
              count_correct_for_crossing * kDepthAvoidsSame);
    }
    if (switch_caching && cur != new_front) dzdt = dzdt * double(cache_count);
    fr.dzdt[cur] = dzdt;
  }
}

}  // namespace lgar
