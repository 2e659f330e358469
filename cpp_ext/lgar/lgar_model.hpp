// LGAR column model (soils, layers, options) and the list operations of bmi_lgar/physics.py:
// column water, front deletion, the front taking infiltration, storage limits, AET, reservoirs,
// GIUH. Templated on the scalar type (double, or Dual<N> for sensitivities).
#pragma once

#include <cmath>
#include <stdexcept>

#include "lgar_fronts.hpp"
#include "lgar_soil.hpp"

namespace lgar {

// Learned parameters per basin, in this order (kernel.py PARAMETER_NAMES): per layer (4 slots,
// padded) alpha [1/cm], n [-], Ks [cm/h], theta_e [-], theta_r [-]; then ponded_depth_max [cm],
// a, b, frac_to_CR, a_slow, b_slow, frac_slow (conceptual reservoirs).
constexpr int kPerLayer = 5;
enum LayerParam { kAlpha = 0, kN = 1, kKs = 2, kThetaE = 3, kThetaR = 4 };
constexpr int kPondedMax = kMaxLayers * kPerLayer;
constexpr int kA = kPondedMax + 1, kB = kPondedMax + 2, kFracToCr = kPondedMax + 3,
              kASlow = kPondedMax + 4, kBSlow = kPondedMax + 5, kFracSlow = kPondedMax + 6;
constexpr int kNumParams = kPondedMax + 7;
// Tangent slot used internally for implicit differentiation of the iterative solves.
constexpr int kScratch = kNumParams;
using Dn = Dual<kNumParams + 1>;

constexpr double kPsiUpperLim = 1.0e7;  // dynamics.PSI_UPPER_LIM

// Fixed (not learned) settings of one basin; times in h except time_s / endtime_s [s].
struct Settings {
  int num_layers = 1;
  double cum[kMaxLayers + 1] = {};  // layer-bottom depths [cm], cum[0] = 0
  double initial_psi = 0.0, timestep_h = 1.0, forcing_h = 1.0, endtime_s = 0.0;
  double wilting_point_psi = 15495.0, field_capacity_psi = 340.9;
  double spf_factor = 0.98, mbal_tol = 10.0;
  bool closed_form = true, adaptive = false, caching = false, pet_affects_precip = false;
  bool free_drainage = false, free_drainage_to_cr = false;
  const double* giuh = nullptr;  // ordinates per forcing step
  int n_giuh = 0;
};

template <typename T>
struct Model {
  Settings c;
  int nl = 1;
  const double* cum = nullptr;
  Soil<T> soil[kMaxLayers + 1];
  Soil<double> sv[kMaxLayers + 1];  // values of soil (the iterative solves run on values)
  T largest_ks;
  T ponded_max, a, b, frac_to_cr, a_slow, b_slow, frac_slow;
  // Per layer, computed once (same operations as where they are used): theta at the head
  // PSI_UPPER_LIM (least storage) and the head psi_wp of the AET curve.
  T min_theta[kMaxLayers + 1], psi_wp[kMaxLayers + 1];

  // p: kNumParams parameters (T: values, or values with tangents).
  Model(const Settings& settings, const T* p) : c(settings) {
    nl = c.num_layers;
    cum = c.cum;
    for (int l = 1; l <= nl; ++l) {
      const T* q = p + (l - 1) * kPerLayer;
      soil[l] = make_soil<T>(q[kThetaR], q[kThetaE], q[kAlpha], q[kN], q[kKs]);
      sv[l] = make_soil<double>(val(q[kThetaR]), val(q[kThetaE]), val(q[kAlpha]), val(q[kN]),
                                val(q[kKs]));
    }
    soil[0] = soil[1];
    sv[0] = sv[1];
    largest_ks = T(0.0);
    for (int l = 1; l <= nl; ++l) largest_ks = fmax(soil[l].ks, largest_ks);
    ponded_max = p[kPondedMax];
    a = p[kA];
    b = p[kB];
    frac_to_cr = p[kFracToCr];
    a_slow = p[kASlow];
    b_slow = p[kBSlow];
    frac_slow = p[kFracSlow];
    for (int l = 0; l <= nl; ++l) {
      const Soil<T>& s = soil[l];
      min_theta[l] = theta_from_psi(kPsiUpperLim, s);
      const T theta_fc = theta_from_psi(c.field_capacity_psi, s);
      const T wp_head_theta = theta_from_psi(c.wilting_point_psi, s);
      const T theta_wp = (theta_fc - wp_head_theta) * 1.0 / 2.0 + wp_head_theta;
      psi_wp[l] = psi_from_se(se_from_theta(theta_wp, s), s);
    }
  }

  // -- soil helpers --------------------------------------------------------------------------
  template <typename P>
  T theta_at(int layer, const P& psi) const { return theta_from_psi(psi, soil[layer]); }
  double theta_at_v(int layer, double psi) const { return theta_from_psi(psi, sv[layer]); }
  void psi_k_at(int layer, const T& theta, T& psi, T& k) const {
    const T se = se_from_theta(theta, soil[layer]);
    psi = psi_from_se(se, soil[layer]);
    k = k_from_se(se, soil[layer]);
  }
  T k_at(int layer, const T& theta) const {
    return k_from_se(se_from_theta(theta, soil[layer]), soil[layer]);
  }
  T geff(int layer, const T& theta1, const T& theta2) const {
    return capillary_drive(c.closed_form, theta1, theta2, soil[layer]);
  }

  // -- list operations -----------------------------------------------------------------------
  T mass(const Fronts<T>& fr) const {
    T total(0.0);
    const int n = fr.n;
    for (int i = 0; i < n; ++i) {
      const int layer = fr.layer[i];
      const double base = cum[layer - 1];
      if (i + 1 < n) {
        if (fr.layer[i + 1] == layer)
          total += (fr.depth[i] - base) * (fr.theta[i] - fr.theta[i + 1]);
        else
          total += (fr.depth[i] - base) * fr.theta[i];
      } else {
        total += fr.theta[i] * (fr.depth[i] - base);
      }
    }
    return total;
  }

  int delete_front(Fronts<T>& fr, int i) const {
    if (i + 1 >= fr.n) throw std::runtime_error("LGAR never deletes the deepest wetting front");
    fr.remove(i);
    if (i != 0) {
      for (int j = fr.n - 2; j >= 0; --j) {
        if (fr.to_bottom[j]) {
          fr.psi[j] = fr.psi[j + 1];
          const int layer = fr.layer[j];
          fr.theta[j] = theta_at(layer, fr.psi[j]);
          fr.k[j] = k_at(layer, fr.theta[j]);
        }
      }
    }
    return i;
  }

  static int free_drainage_front(const Fronts<T>& fr) {
    int wf = 1;
    const int n = fr.n;
    for (int i = 0; i < n; ++i) {
      if (i + 1 < n) {
        if (fr.layer[i] == fr.layer[i + 1]) break;
        wf += 1;
      }
    }
    if (wf > n) wf -= 1;
    return wf - 1;
  }

  T min_storage_to_front(const Fronts<T>& fr, int i_fd) const {
    T total(0.0), previous(0.0);
    for (int i = 0; i < fr.n; ++i) {
      total += min_theta[fr.layer[i]] * (fr.depth[i] - previous);
      if (i == i_fd) break;
      previous = fr.depth[i];
    }
    return total;
  }

  static T storage_to_front(const Fronts<T>& fr, int i_fd) {
    T total(0.0), previous(0.0);
    for (int i = 0; i < fr.n; ++i) {
      total += fr.theta[i] * (fr.depth[i] - previous);
      if (i == i_fd) break;
      previous = fr.depth[i];
    }
    return total;
  }

  // -- AET, reservoirs, GIUH -----------------------------------------------------------------
  T aet(const Fronts<T>& fr, const T& pet_cm_per_h, double dt_h) const {
    T demand(0.0);
    if (fr.psi[0] < 1.0e6) {
      const T h_ratio = 1.0 + pow(fr.psi[0] / psi_wp[fr.layer[0]], 3.0);
      demand = pet_cm_per_h * (1.0 / h_ratio) * dt_h;
      if (demand < 0.0)
        demand = T(0.0);
      else if (demand > pet_cm_per_h * dt_h)
        demand = pet_cm_per_h * dt_h;
    }
    return demand;
  }

  static void reservoir(double dt_h, const T& a_, const T& b_, const T& inflow, T& storage,
                        T& q) {
    q = dt_h * (a_ * pow(storage, b_));
    if (storage < 0.01) q = T(0.0);
    const T delta = dt_h * inflow - q;
    if (storage + delta > 0.0) {
      storage += delta;
    } else {
      q = storage + dt_h * inflow;
      storage = T(0.0);
    }
  }

  T reservoirs(T& cr_fast, T& cr_slow, double dt_h, const T& inflow) const {
    const T input_slow = inflow * frac_slow;
    const T input_fast = inflow - input_slow;
    T q_fast, q_slow;
    reservoir(dt_h, a, b, input_fast, cr_fast, q_fast);
    reservoir(dt_h, a_slow, b_slow, input_slow, cr_slow, q_slow);
    return q_fast + q_slow;
  }

  // q: the queue, n_giuh + 1 values.
  T giuh_route(T* q, const T& runoff_cm) const {
    const int n = c.n_giuh;
    q[n] = T(0.0);
    for (int i = 0; i < n; ++i) q[i] += c.giuh[i] * runoff_cm;
    const T out = q[0];
    for (int i = 1; i < n; ++i) q[i - 1] = q[i];
    q[n - 1] = T(0.0);
    return out;
  }
};

}  // namespace lgar
