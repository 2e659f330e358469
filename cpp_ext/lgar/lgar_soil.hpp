// LGAR soil relations (van Genuchten / Mualem, capillary drive) templated on the scalar type.
// Same operations in the same order as bmi_lgar/soil.py (the reference), units cm, h, cm/h.
#pragma once

#include <cmath>

#include "dual.hpp"

namespace lgar {

constexpr double kSaturatedHeadEps = 1.0e-10;  // soil.SATURATED_HEAD_EPS_CM
constexpr double kPsiMax = 1.0e20;             // soil.PSI_MAX_CM
constexpr int kNint = 120;                     // dynamics.NINT

// One soil (the layer's van Genuchten parameters and the derived Brooks-Corey equivalents).
template <typename T>
struct Soil {
  T theta_r, theta_e, alpha, n, m, ks, bc_lambda, bc_psib;
};

// soil.make_soil: m, lambda and psi_b from (alpha, n).
template <typename T>
Soil<T> make_soil(const T& theta_r, const T& theta_e, const T& alpha, const T& n, const T& ks) {
  Soil<T> s;
  s.theta_r = theta_r;
  s.theta_e = theta_e;
  s.alpha = alpha;
  s.n = n;
  s.ks = ks;
  s.m = 1.0 - 1.0 / n;
  const T p = 1.0 + 2.0 / s.m;
  s.bc_lambda = 2.0 / (p - 3.0);
  s.bc_psib = ((p + 3.0) * (147.8 + 8.1 * p + 0.092 * p * p)) /
              (2.0 * alpha * p * (p - 1.0) * (55.6 + 7.4 * p + p * p));
  return s;
}

// theta [-] at head psi [cm].
template <typename T, typename P>
T theta_from_psi(const P& psi, const Soil<T>& s) {
  return 1.0 / (pow(1.0 + pow(s.alpha * psi, s.n), s.m)) * (s.theta_e - s.theta_r) + s.theta_r;
}

template <typename T, typename P>
T se_from_psi(const P& psi, const Soil<T>& s) {
  if (fabs(val(psi)) < kSaturatedHeadEps) return T(1.0);
  return 1.0 / (pow(1.0 + pow(s.alpha * psi, s.n), s.m));
}

template <typename T>
T psi_from_se(const T& se, const Soil<T>& s) {
  T result = 1.0 / s.alpha * pow(pow(se, -1.0 / s.m) - 1.0, 1.0 / s.n);
  if (result > kPsiMax) result = T(kPsiMax);
  return result;
}

template <typename T>
T se_from_theta(const T& theta, const Soil<T>& s) {
  return (theta - s.theta_r) / (s.theta_e - s.theta_r);
}

template <typename T>
T k_from_se(const T& se, const Soil<T>& s) {
  return s.ks * sqrt(se) * pow(1.0 - pow(1.0 - pow(se, 1.0 / s.m), s.m), 2.0);
}

template <typename T>
T geff_closed_form(const T& theta1, const T& theta2, const Soil<T>& s) {
  const T se_f = se_from_theta(theta1, s);
  const T se_i = se_from_theta(theta2, s);
  const T lam = s.bc_lambda;
  const T h_c = s.bc_psib * ((2.0 + 3.0 * lam) / (1.0 + 3.0 * lam));
  const T expo = 3.0 + 1.0 / lam;
  const T pow_f = pow(se_f, expo);  // used twice (pow may set errno: not merged by the compiler)
  T geff = (h_c * (pow(se_i, expo) - pow_f)) / (1.0 - pow_f);
  if (std::isinf(val(geff)) || std::isnan(val(geff))) geff = h_c;
  return geff;
}

// LGAR-C's adaptive trapezoid of K(h)/Ks (see soil._capillary_drive_integral).
template <typename T>
T geff_integral(const T& theta1, const T& theta2, const Soil<T>& s) {
  const T se_i = se_from_theta(theta1, s);
  const T se_f = se_from_theta(theta2, s);
  const T h_i = psi_from_se(se_i, s);
  const T h_f = psi_from_se(se_f, s);
  T dh = (h_i - h_f) / double(kNint);
  dh = dh * 0.01;
  T geff(0.0);
  T k1 = k_from_se(se_i, s);
  T h2 = h_f + dh;
  while (h2 < h_i) {
    const T se2 = se_from_psi(h2, s);
    const T k2 = k_from_se(se2, s);
    if ((k1 - k2) / k2 > 0.02)
      dh = dh * 0.5;
    else
      dh = dh * 10.0;
    geff += (k1 + k2) * dh / 2.0;
    k1 = k2;
    h2 += dh;
  }
  return fabs(geff / s.ks);
}

template <typename T>
T capillary_drive(bool closed_form, const T& theta1, const T& theta2, const Soil<T>& s) {
  return closed_form ? geff_closed_form(theta1, theta2, s) : geff_integral(theta1, theta2, s);
}

}  // namespace lgar
