// Forward-mode dual numbers of fixed size for the LGAR kernel: a value and N tangents.
//
// The value part of every operation is the same IEEE operation on doubles as the plain kernel
// (same libm call), so a run in Dual<N> has bit for bit the values of a run in double; the
// tangents are the derivatives of those operations. Comparisons look at values only, so every
// branch (front creation, merging, crossing, clamps) follows the value path: events are
// thresholds. Tangent formulas avoid 0 * inf: a zero input tangent contributes exactly zero.
#pragma once

#include <cmath>

#if defined(_OPENMP) || defined(DELTA_OMP_SIMD)
#define LGAR_SIMD _Pragma("omp simd")
#else
#define LGAR_SIMD
#endif

namespace lgar {

// The C library's pow, always called. Compilers replace pow(x, 2.0) by x * x even without
// fast-math; x * x is correctly rounded while glibc's pow (< 1 ulp) is not always, and the
// reference (Python's math.pow, the C pow) then differs in the last bit. The volatile exponent
// keeps the call (its cost is nothing next to pow's).
inline double c_pow(double x, double y) {
  volatile double exponent = y;
  return std::pow(x, exponent);
}

template <int N>
struct Dual {
  double v = 0.0;
  double d[N] = {};

  Dual() = default;
  Dual(double x) : v(x) {}  // NOLINT: constants convert implicitly (zero tangents)

  static Dual seeded(double x, int i) {
    Dual r(x);
    r.d[i] = 1.0;
    return r;
  }

  friend double val(const Dual& a) { return a.v; }

  // -- arithmetic ----------------------------------------------------------------------------
  friend Dual operator-(const Dual& a) {
    Dual r(-a.v);
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = -a.d[i];
    return r;
  }
  friend Dual operator+(const Dual& a, const Dual& b) {
    Dual r(a.v + b.v);
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = a.d[i] + b.d[i];
    return r;
  }
  friend Dual operator+(const Dual& a, double b) {
    Dual r = a;
    r.v = a.v + b;
    return r;
  }
  friend Dual operator+(double a, const Dual& b) {
    Dual r = b;
    r.v = a + b.v;
    return r;
  }
  friend Dual operator-(const Dual& a, const Dual& b) {
    Dual r(a.v - b.v);
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = a.d[i] - b.d[i];
    return r;
  }
  friend Dual operator-(const Dual& a, double b) {
    Dual r = a;
    r.v = a.v - b;
    return r;
  }
  friend Dual operator-(double a, const Dual& b) {
    Dual r(a - b.v);
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = -b.d[i];
    return r;
  }
  friend Dual operator*(const Dual& a, const Dual& b) {
    Dual r(a.v * b.v);
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = a.d[i] * b.v + a.v * b.d[i];
    return r;
  }
  friend Dual operator*(const Dual& a, double b) {
    Dual r(a.v * b);
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = a.d[i] * b;
    return r;
  }
  friend Dual operator*(double a, const Dual& b) { return b * a; }
  // A quotient by an exact zero (an inf or nan value, which the scheme guards or sends on as
  // a constant, e.g. (cum[k] - cum[k-1]) / K when K underflows to 0 in a dry layer) is held
  // constant: zero tangents (the formulas would give (x - inf * 0) / 0 = nan).
  friend Dual operator/(const Dual& a, const Dual& b) {
    // d(a/b) = (da - (a/b) db) / b: exactly zero when da == db and a == b.
    Dual r(a.v / b.v);
    if (b.v == 0.0) return r;
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = (a.d[i] - r.v * b.d[i]) / b.v;
    return r;
  }
  friend Dual operator/(const Dual& a, double b) {
    Dual r(a.v / b);
    if (b == 0.0) return r;
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = a.d[i] / b;
    return r;
  }
  friend Dual operator/(double a, const Dual& b) {
    Dual r(a / b.v);
    if (b.v == 0.0) return r;
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = (0.0 - r.v * b.d[i]) / b.v;
    return r;
  }
  Dual& operator+=(const Dual& b) { return *this = *this + b; }
  Dual& operator-=(const Dual& b) { return *this = *this - b; }
  Dual& operator*=(const Dual& b) { return *this = *this * b; }
  Dual& operator+=(double b) { v += b; return *this; }
  Dual& operator-=(double b) { v -= b; return *this; }
  Dual& operator*=(double b) { return *this = *this * b; }

  // -- comparisons on values -------------------------------------------------------------------
  friend bool operator<(const Dual& a, const Dual& b) { return a.v < b.v; }
  friend bool operator>(const Dual& a, const Dual& b) { return a.v > b.v; }
  friend bool operator<=(const Dual& a, const Dual& b) { return a.v <= b.v; }
  friend bool operator>=(const Dual& a, const Dual& b) { return a.v >= b.v; }
  friend bool operator==(const Dual& a, const Dual& b) { return a.v == b.v; }
  friend bool operator!=(const Dual& a, const Dual& b) { return a.v != b.v; }
  friend bool operator<(const Dual& a, double b) { return a.v < b; }
  friend bool operator>(const Dual& a, double b) { return a.v > b; }
  friend bool operator<=(const Dual& a, double b) { return a.v <= b; }
  friend bool operator>=(const Dual& a, double b) { return a.v >= b; }
  friend bool operator==(const Dual& a, double b) { return a.v == b; }
  friend bool operator!=(const Dual& a, double b) { return a.v != b; }
  friend bool operator<(double a, const Dual& b) { return a < b.v; }
  friend bool operator>(double a, const Dual& b) { return a > b.v; }
  friend bool operator<=(double a, const Dual& b) { return a <= b.v; }
  friend bool operator>=(double a, const Dual& b) { return a >= b.v; }

  // -- functions -------------------------------------------------------------------------------
  // At a zero base (saturation Se = 1 in psi(Se) and K(Se), or Se = 0) the derivative through
  // the base is infinite; the scheme clamps there (theta <= theta_e, theta >= theta_r), so the
  // tangent through a zero base is taken as 0 (the clamped function's), never inf or nan.
  friend Dual sqrt(const Dual& a) {
    Dual r(std::sqrt(a.v));
    const double g = a.v == 0.0 ? 0.0 : 0.5 / r.v;
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = a.d[i] == 0.0 ? 0.0 : g * a.d[i];
    return r;
  }
  friend Dual fabs(const Dual& a) { return a.v < 0.0 ? -a : a; }
  friend Dual pow(const Dual& x, double y) {
    Dual r(c_pow(x.v, y));
    double g = y * c_pow(x.v, y - 1.0);
    if (x.v == 0.0 && !std::isfinite(g)) g = 0.0;
    LGAR_SIMD for (int i = 0; i < N; ++i) r.d[i] = x.d[i] == 0.0 ? 0.0 : g * x.d[i];
    return r;
  }
  friend Dual pow(const Dual& x, const Dual& y) {
    Dual r(c_pow(x.v, y.v));
    double gx = y.v * c_pow(x.v, y.v - 1.0);
    if (x.v == 0.0 && !std::isfinite(gx)) gx = 0.0;
    const double gy = x.v > 0.0 ? r.v * std::log(x.v) : 0.0;
    LGAR_SIMD for (int i = 0; i < N; ++i)
      r.d[i] = (x.d[i] == 0.0 ? 0.0 : gx * x.d[i]) + (y.d[i] == 0.0 ? 0.0 : gy * y.d[i]);
    return r;
  }
  // C fmax / fmin: the larger / smaller, ignoring a nan argument (tangent of the one chosen).
  friend Dual fmax(const Dual& a, const Dual& b) { return (a.v >= b.v || b.v != b.v) ? a : b; }
  friend Dual fmin(const Dual& a, const Dual& b) { return (a.v <= b.v || b.v != b.v) ? a : b; }
};

inline double val(double x) { return x; }
using std::fabs;
inline double pow(double x, double y) { return c_pow(x, y); }
using std::sqrt;
// C semantics of fmax / fmin, written as the Dual ones so both scalar types choose alike.
inline double fmax(double a, double b) { return (a >= b || b != b) ? a : b; }
inline double fmin(double a, double b) { return (a <= b || b != b) ? a : b; }

template <typename T>
struct is_dual { static constexpr bool value = false; };
template <int N>
struct is_dual<Dual<N>> { static constexpr bool value = true; };

}  // namespace lgar
