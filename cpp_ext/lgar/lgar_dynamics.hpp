// Wetting-front dynamics of LGAR (bmi_lgar/dynamics.py, the reference): mass-balance solves,
// merging, layer and domain crossing, dry over wet, infiltration, new fronts, dZ/dt.
//
// Iterative solves run on values only (doubles, the same operations as the reference), so the
// values of a Dual run equal those of a double run bit for bit. At the converged root x* of
// F(x; p) = 0 one Newton step in dual arithmetic, x = x* - F(x*; p) / F_x(x*), with F_x taken
// from the internal tangent slot kScratch, gives the tangents dx/dp = -F_p / F_x (implicit
// differentiation) and leaves the value x* unchanged. Where a solve stops without converging
// (iteration caps, guards) or at a clamp (psi = 0, depth at the bottom) the variable is
// treated as a constant and the residual, which the scheme gives to AET, carries the tangents.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "lgar_model.hpp"

namespace lgar {

constexpr double kThresholdNoMoistureDiff = 1.0e-15;
constexpr double kMbalTol = 1.0e-10;
constexpr double kMaxIterMbal = 1.0e5;
constexpr double kMaxIterSatMbal = 1.0e4;
constexpr double kTruncationDepth = 1.0e-9;
constexpr double kFactorCrossingSpeed = 2.0;
constexpr double kDepthAvoidsSame = 1.0e-6;

// x* (a value) with the tangents of the root of F(x; p) = 0; f(x) evaluates F for a seeded x.
template <typename T, typename F>
T implicit_root(double x_star, F&& f) {
  if constexpr (!is_dual<T>::value) {
    return T(x_star);
  } else {
    const T r = f(T::seeded(x_star, kScratch));
    const double fx = r.d[kScratch];
    T x(x_star);
    if (fx != 0.0 && std::isfinite(fx))
      for (int i = 0; i < kScratch; ++i) x.d[i] = -r.d[i] / fx;
    return x;
  }
}

// -- mass-balance solves for theta ---------------------------------------------------------------
// Water of a front extended at head psi into the layers above (theta_mass_balance's mass_layers).
template <typename T, typename P>
P mass_layers(const Model<T>& m, int layer, const P& psi, const T* dth, const T* dthk) {
  P total(0.0);
  total += dthk[layer] * (theta_from_psi(psi, m.soil[layer]) - dth[layer]);
  for (int k = 1; k < layer; ++k) total += dthk[k] * (theta_from_psi(psi, m.soil[k]) - dth[k]);
  return total;
}

// theta of a moved front that conserves mass (lgar_theta_mass_balance); aet updated.
template <typename T>
T theta_mass_balance(const Model<T>& m, int layer, const T& psi, const T& new_mass_in,
                     const T& prior_mass, const T& precip_mass_to_add, T& aet, const T* dth,
                     const T* dthk) {
  const Soil<double>& soil = m.sv[layer];
  double dth_v[kMaxLayers + 1], dthk_v[kMaxLayers + 1];
  for (int k = 1; k <= layer; ++k) { dth_v[k] = val(dth[k]); dthk_v[k] = val(dthk[k]); }
  const double prior_v = val(prior_mass);
  double new_mass = val(new_mass_in);
  double psi_loc = val(psi);
  double delta_mass = std::fabs(new_mass - prior_v);
  double factor = fmax(1.0, val(psi) / 10.0);
  if (val(psi) > 1.0e4) factor = val(psi);
  bool switched = false;
  double theta = 0.0;
  double psi_loc_prev = psi_loc;
  double delta_mass_prev = delta_mass;
  int count_no_mass_change = 0;
  bool wanted_to_saturate = false;
  if (delta_mass <= kMbalTol) return m.theta_at(layer, psi);
  long it = 0;
  bool aug = false, aug_extreme = false;
  const long first_thresh = long(kMaxIterMbal / 100), second_thresh = long(kMaxIterMbal / 10);
  while (delta_mass > kMbalTol) {
    it += 1;
    if (it > first_thresh && !aug) { factor = factor * 100; aug = true; }
    if (it > second_thresh && !aug_extreme) { factor = factor * 100; aug_extreme = true; }
    if (new_mass > prior_v) {
      psi_loc += 0.1 * factor;
      switched = false;
    } else {
      if (!switched) { switched = true; factor = factor * 0.1; }
      psi_loc_prev = psi_loc;
      psi_loc -= 0.1 * factor;
      if (psi_loc < 0.0) wanted_to_saturate = true;
      if (psi_loc < 0 && psi_loc_prev != 0) psi_loc = psi_loc_prev * 0.1;
    }
    if (psi_loc < 0.0) { psi_loc = 0.0; factor = factor * 0.5; }
    double mass = 0.0;
    theta = theta_from_psi(psi_loc, soil);
    mass += dthk_v[layer] * (theta - dth_v[layer]);
    for (int k = 1; k < layer; ++k)
      mass += dthk_v[k] * (m.theta_at_v(k, psi_loc) - dth_v[k]);
    new_mass = mass;
    delta_mass = std::fabs(new_mass - prior_v);
    if (std::fabs(psi_loc - psi_loc_prev) < 1e-15 && factor < 1e-13) break;
    if (std::fabs(delta_mass - delta_mass_prev) < 1e-15)
      count_no_mass_change += 1;
    else
      count_no_mass_change = 0;
    if (count_no_mass_change == 5 && precip_mass_to_add < 1.0e-12) break;
    if (it > kMaxIterMbal) break;
    if (psi_loc > kPsiUpperLim && it > first_thresh) break;
    if (psi_loc <= 0 && psi_loc_prev < 0) break;
    delta_mass_prev = delta_mass;
  }
  const bool converged = delta_mass <= kMbalTol;
  T psi_t(psi_loc);
  if (converged && psi_loc > 0.0)
    psi_t = implicit_root<T>(psi_loc, [&](const T& x) {
      return mass_layers(m, layer, x, dth, dthk) - prior_mass;
    });
  if (delta_mass > kMbalTol && !wanted_to_saturate) {
    if constexpr (is_dual<T>::value) {
      const T dm = fabs(mass_layers(m, layer, psi_t, dth, dthk) - prior_mass);
      aet = aet - fabs(dm - kMbalTol);
    } else {
      aet = aet - std::fabs(delta_mass - kMbalTol);
    }
  }
  if (theta >= soil.theta_e && psi_loc != 0.0) aet = T(0.0);
  if constexpr (is_dual<T>::value) return m.theta_at(layer, psi_t);
  else return theta;
}

// Head of front cur to the layer-bottom fronts below it and the first front below those.
template <typename T>
void propagate_head_down(const Model<T>& m, Fronts<T>& fr, int cur) {
  int nxt = cur + 1;
  int before = cur;
  if (nxt < fr.n) {
    while (fr.to_bottom[nxt]) {
      fr.psi[nxt] = fr.psi[before];
      fr.theta[nxt] = m.theta_at(fr.layer[nxt], fr.psi[nxt]);
      before = nxt;
      nxt = nxt + 1;
      if (nxt >= fr.n) break;
    }
    if (nxt < fr.n) {
      if (!fr.to_bottom[nxt] && fr.to_bottom[before]) {
        fr.psi[nxt] = fr.psi[before];
        fr.theta[nxt] = m.theta_at(fr.layer[nxt], fr.psi[nxt]);
      }
    }
  }
}

template <typename T>
void set_head(const Model<T>& m, Fronts<T>& fr, int cur, const T& psi) {
  fr.psi[cur] = psi;
  fr.theta[cur] = m.theta_at(fr.layer[cur], psi);
  propagate_head_down(m, fr, cur);
}

// Restore the column water to prior_mass through the head shared by front i and the layer-bottom
// fronts tied to it (lgar_theta_mass_balance_correction).
template <typename T>
void theta_mass_balance_correction(const Model<T>& m, Fronts<T>& fr, int i, const T& prior_mass) {
  int cur = i;
  if (cur > 0 && fr.to_bottom[cur - 1]) cur = cur - 1;
  while (fr.to_bottom[cur]) {
    if (cur == 0) break;
    cur = cur - 1;
    if (!fr.to_bottom[cur]) { cur = cur + 1; break; }
  }
  const double prior_v = val(prior_mass);
  double new_mass = val(m.mass(fr));
  const double psi = val(fr.psi[cur]);
  double psi_loc = psi;
  double delta_mass = std::fabs(new_mass - prior_v);
  double factor = fmax(1.0, psi / 10.0);
  if (psi > 1.0e4) factor = psi;
  bool switched = false;
  double psi_loc_prev = psi_loc;
  double delta_mass_prev = delta_mass;
  int count_no_mass_change = 0;
  long it = 0;
  bool aug = false, aug_extreme = false, moved = false;
  const long first_thresh = long(kMaxIterMbal / 100), second_thresh = long(kMaxIterMbal / 10);
  while (delta_mass > kMbalTol) {
    moved = true;
    it += 1;
    if (it > first_thresh && !aug) { factor = factor * 100; aug = true; }
    if (it > second_thresh && !aug_extreme) { factor = factor * 100; aug_extreme = true; }
    if (new_mass > prior_v) {
      psi_loc += 0.1 * factor;
      switched = false;
    } else {
      if (!switched) { switched = true; factor = factor * 0.1; }
      psi_loc_prev = psi_loc;
      psi_loc -= 0.1 * factor;
      if (psi_loc < 0 && psi_loc_prev != 0) psi_loc = psi_loc_prev * 0.1;
    }
    if (psi_loc < 0.0) { psi_loc = 0.0; factor = factor * 0.5; }
    set_head(m, fr, cur, T(psi_loc));
    new_mass = val(m.mass(fr));
    delta_mass = std::fabs(new_mass - prior_v);
    if (std::fabs(psi_loc - psi_loc_prev) < 1e-15 && factor < 1e-13) break;
    if (std::fabs(delta_mass - delta_mass_prev) < 1e-15)
      count_no_mass_change += 1;
    else
      count_no_mass_change = 0;
    if (count_no_mass_change == 5) break;
    if (it > kMaxIterMbal) break;
    if (psi_loc <= 0 && psi_loc_prev < 0) break;
    if (psi_loc > kPsiUpperLim && it > first_thresh) break;
    delta_mass_prev = delta_mass;
  }
  if constexpr (is_dual<T>::value) {
    if (moved && delta_mass <= kMbalTol && psi_loc > 0.0) {
      const T x = implicit_root<T>(psi_loc, [&](const T& h) {
        set_head(m, fr, cur, h);
        return m.mass(fr) - prior_mass;
      });
      set_head(m, fr, cur, x);
    }
  }
}

// Depth of front j with the tangents that keep the column water at target (a converged
// depth search); values unchanged.
template <typename T>
void implicit_depth(const Model<T>& m, Fronts<T>& fr, int j, const T& target) {
  if constexpr (is_dual<T>::value) {
    const double d = val(fr.depth[j]);
    const T x = implicit_root<T>(d, [&](const T& z) {
      fr.depth[j] = z;
      return m.mass(fr) - target;
    });
    fr.depth[j] = x;
  }
}

// -- merging, crossing, lower boundary, dry over wet ---------------------------------------------
template <typename T>
void merge_wetting_fronts(const Model<T>& m, Fronts<T>& fr) {
  int cur = 0;
  int wf = 1;
  while (wf != fr.n) {
    const int nxt = cur + 1;
    if (fr.depth[cur] > fr.depth[nxt] && fr.layer[cur] == fr.layer[nxt] && !fr.to_bottom[nxt]) {
      const int nn = nxt + 1;
      const T current_mass_this_layer = fr.depth[cur] * (fr.theta[cur] - fr.theta[nxt]) +
                                        fr.depth[nxt] * (fr.theta[nxt] - fr.theta[nn]);
      fr.depth[cur] = current_mass_this_layer / (fr.theta[cur] - fr.theta[nn]);
      m.psi_k_at(fr.layer[cur], fr.theta[cur], fr.psi[cur], fr.k[cur]);
      m.delete_front(fr, nxt);
    }
    cur += 1;
    wf += 1;
  }
}

template <typename T>
void correct_front_below_domain(const Model<T>& m, Fronts<T>& fr, int front_for_cross) {
  const double* cum = m.cum;
  const int nl = m.nl;
  for (int j = fr.n - 2; j >= 0; --j) {
    const T prior_mass = m.mass(fr);
    if (!(fr.depth[j] > cum[nl] && fr.layer[j] == nl && j == front_for_cross)) continue;
    fr.depth[j] = T(cum[nl] + 1.0e-6);
    theta_mass_balance_correction(m, fr, j, prior_mass);
    T current_mass = m.mass(fr);
    if (!(prior_mass > (current_mass + 100. * kMbalTol))) continue;
    double increment = 0.001;
    const double max_increment = 1. / kTruncationDepth;
    const double max_depth = cum[nl] + 1. / kTruncationDepth;
    bool found_upper_bound = false;
    long it = 0;
    while (prior_mass > current_mass && increment < max_increment && fr.depth[j] < max_depth) {
      it += 1;
      if (it > kMaxIterMbal) break;
      fr.depth[j] += increment;
      current_mass = m.mass(fr);
      if (current_mass >= prior_mass) { found_upper_bound = true; break; }
      increment *= 2.0;
    }
    if (found_upper_bound) {
      double low = val(fr.depth[j]) - increment;
      double high = val(fr.depth[j]);
      current_mass = m.mass(fr);
      bool converged = true;
      while (std::fabs(val(current_mass) - val(prior_mass)) > kMbalTol) {
        it += 1;
        const double mid = 0.5 * (low + high);
        fr.depth[j] = T(mid);
        current_mass = m.mass(fr);
        if (current_mass >= prior_mass)
          high = mid;
        else
          low = mid;
        if (it > kMaxIterMbal) { converged = false; break; }
      }
      if (converged) implicit_depth(m, fr, j, prior_mass);
    }
  }
}

template <typename T>
void cross_layer_boundary(const Model<T>& m, Fronts<T>& fr) {
  const double* cum = m.cum;
  const int nl = m.nl;
  bool cross_necessary = false, theta_correction_necessary = false;
  int front_for_cross = -1;
  for (int cur = 0; cur < fr.n - 1; ++cur) {
    const int layer = fr.layer[cur];
    const Soil<T>& s = m.soil[layer];
    const int nxt = cur + 1, nn = cur + 2;
    if (fr.depth[cur] > cum[layer] && fr.depth[nxt] == cum[layer] && fr.to_bottom[nxt] &&
        layer != nl) {
      const T current_theta = fmin(s.theta_e, fr.theta[cur]);
      const T overshot_depth = fr.depth[cur] - fr.depth[nxt];
      m.psi_k_at(layer, fr.theta[cur], fr.psi[cur], fr.k[cur]);
      const T theta_new = m.theta_at(layer + 1, fr.psi[cur]);
      const T mbal_correction = overshot_depth * (current_theta - fr.theta[nxt]);
      T mbal_z_correction = mbal_correction / (theta_new - fr.theta[nn]);
      if (std::isinf(val(mbal_z_correction))) mbal_z_correction = T(cum[layer + 1] / (1e3));
      const T depth_new = cum[layer] + mbal_z_correction;
      fr.depth[cur] = T(cum[layer]);
      fr.theta[nxt] = theta_new;
      fr.psi[nxt] = fr.psi[cur];
      fr.depth[nxt] = depth_new;
      fr.layer[nxt] = layer + 1;
      fr.dzdt[nxt] = fr.dzdt[cur];
      fr.dzdt[cur] = T(0.0);
      fr.to_bottom[cur] = true;
      fr.to_bottom[nxt] = false;
      cross_necessary = true;
      front_for_cross = nxt;
      if (depth_new > cum[nl] && fr.layer[nxt] == nl) theta_correction_necessary = true;
    }
  }
  if (!cross_necessary) return;
  for (int j = fr.n - 2; j >= 0; --j) {
    if (fr.to_bottom[j]) {
      fr.psi[j] = fr.psi[j + 1];
      fr.theta[j] = m.theta_at(fr.layer[j], fr.psi[j]);
    }
    fr.k[j] = m.k_at(fr.layer[j], fr.theta[j]);
  }
  if (theta_correction_necessary) correct_front_below_domain(m, fr, front_for_cross);
}

template <typename T>
T cross_domain_boundary(const Model<T>& m, Fronts<T>& fr) {
  const double domain_depth = m.cum[m.nl];
  const int length = fr.n;
  T bottom_flux(0.0);
  int cur = 0;
  int wf = 1;
  while (wf != length) {
    if (wf >= fr.n) break;
    T temp(0.0);
    const int nxt = cur + 1;
    if (nxt + 1 >= fr.n && fr.depth[cur] >= domain_depth) {
      temp = (fr.theta[cur] - fr.theta[nxt]) * (fr.depth[cur] - fr.depth[nxt]);
      fr.theta[nxt] = fr.theta[cur];
      m.psi_k_at(fr.layer[cur], fr.theta[cur], fr.psi[nxt], fr.k[nxt]);
      m.delete_front(fr, cur);
      bottom_flux += temp;
      break;
    }
    cur += 1;
    if (temp != 0.0) break;
    wf += 1;
  }
  return bottom_flux;
}

template <typename T>
bool has_dry_over_wet(const Fronts<T>& fr) {
  for (int i = 0; i < fr.n - 1; ++i)
    if (fr.theta[i] <= fr.theta[i + 1] && fr.layer[i] == fr.layer[i + 1]) return true;
  return false;
}

template <typename T>
T fix_dry_over_wet(const Model<T>& m, Fronts<T>& fr) {
  T mass_change(0.0);
  int cur = 0;
  bool has_next = fr.n > 1;
  int l = 1;
  while (l <= fr.n) {
    if (has_next) {
      if (fr.theta[cur] <= fr.theta[cur + 1] && fr.layer[cur] == fr.layer[cur + 1]) {
        const T prior_mass = m.mass(fr);
        cur = m.delete_front(fr, cur);
        theta_mass_balance_correction(m, fr, cur, prior_mass);
        const T mass_after = m.mass(fr);
        mass_change += (mass_after - prior_mass);
      }
      cur += 1;
      has_next = cur < fr.n ? cur + 1 < fr.n : false;
    }
    l += 1;
  }
  return mass_change;
}

template <typename T>
int correction_type(const Model<T>& m, const Fronts<T>& fr) {
  const double* cum = m.cum;
  const int nl = m.nl;
  const int n = fr.n;
  for (int cur = 0; cur < n - 1; ++cur) {
    const int nxt = cur + 1;
    const int layer = fr.layer[cur];
    if (fr.theta[cur] > fr.theta[nxt] && fr.depth[cur] > fr.depth[nxt] &&
        layer == fr.layer[nxt] && !fr.to_bottom[nxt])
      return 1;
    if (fr.depth[cur] > cum[layer] && fr.depth[nxt] == cum[layer] && fr.to_bottom[nxt] &&
        fr.theta[cur] > fr.theta[nxt] && layer != nl)
      return 2;
    if (nxt + 1 >= n && fr.depth[cur] > cum[layer]) return 3;
    if (has_dry_over_wet(fr)) return 4;
  }
  return 0;
}

template <typename T>
void clean_redundant_fronts(const Model<T>& m, Fronts<T>& fr) {
  for (int cur = 0; cur < fr.n - 1; ++cur) {
    if (fr.layer[cur] == fr.layer[cur + 1] &&
        std::fabs(val(fr.theta[cur]) - val(fr.theta[cur + 1])) < kThresholdNoMoistureDiff) {
      m.delete_front(fr, cur);
      break;
    }
  }
}

}  // namespace lgar
