// HBV kernel implementation; see hbv_kernel.hpp for layouts and conventions.
#include "hbv_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

namespace hbv {
namespace {

// Every intermediate of one component-day, named after the reference's steps.
template <typename T>
struct Internals {
  T rain, snow;
  T sp1, mraw, mpot, melt, mw1, sp2;                  // 2. snow accumulation and melt
  T rfraw, rfpot, refreeze, sp3, mw2;                 // 3. refreezing
  T tsraw, tosoil, mw3;                               // 4. release of liquid water
  T infil, x, pw, wet, recharge, sm1;                 // 5. soil recharge
  T exraw, excess, sm2;                               // 6. excess above field capacity
  T den, y, pe, ef, ea, braw, eb, et, sm3;            // 7. evapotranspiration
  T uz1, perc, uz2, q0raw, q0c, q0, uz3, q1, uz4;     // 8-9. upper zone
  T lz1, q2, lz2;                                     // 10. lower zone
};

template <typename T>
inline T clamp_min0(T v) { return v >= T(0) ? v : T(0); }
template <typename T>
inline T clamp01(T v) { return v >= T(0) ? (v <= T(1) ? v : T(1)) : T(0); }
template <typename T>
inline T minimum(T a, T b) { return b < a ? b : a; }

// Forward of one component-day, same operations in the same order as hbv.step.
// kFast (forward only): skips a power whose value cannot change the outputs (infiltration 0, or
// base >= 1 so the clamped value is 1); the skipped intermediates are then not valid for adjoint().
template <typename T, bool kFast = false>
inline void compute(Internals<T>& s, T sp0, T mw0, T sm0, T uz0, T lz0, T p, T t, T pet,
                    const T* par) {
  const T tt = par[TT], fc = par[FC], cfmax = par[CFMAX];
  // 1. precipitation phase (indicator: no gradient)
  s.rain = (t >= tt) ? p : T(0);
  s.snow = p - s.rain;
  // 2. snow
  s.sp1 = sp0 + s.snow;
  s.mraw = cfmax * (t - tt);
  s.mpot = clamp_min0(s.mraw);
  s.melt = minimum(s.mpot, s.sp1);
  s.mw1 = mw0 + s.melt;
  s.sp2 = s.sp1 - s.melt;
  // 3. refreeze
  s.rfraw = (par[CFR] * cfmax) * (tt - t);
  s.rfpot = clamp_min0(s.rfraw);
  s.refreeze = minimum(s.rfpot, s.mw1);
  s.sp3 = s.sp2 + s.refreeze;
  s.mw2 = s.mw1 - s.refreeze;
  // 4. release
  s.tsraw = s.mw2 - par[CWH] * s.sp3;
  s.tosoil = clamp_min0(s.tsraw);
  s.mw3 = s.mw2 - s.tosoil;
  // 5. recharge
  s.infil = s.rain + s.tosoil;
  s.x = sm0 / fc;
  if (kFast && (s.infil == T(0) || (s.x >= T(1) && par[BETA] > T(0)))) {
    s.pw = s.wet = (s.x >= T(1) && par[BETA] > T(0)) ? T(1) : T(0);
  } else {
    s.pw = std::pow(s.x, par[BETA]);
    s.wet = clamp01(s.pw);
  }
  s.recharge = s.infil * s.wet;
  s.sm1 = sm0 + s.infil - s.recharge;
  // 6. excess
  s.exraw = s.sm1 - fc;
  s.excess = clamp_min0(s.exraw);
  s.sm2 = s.sm1 - s.excess;
  // 7. ET (water-conserving)
  s.den = par[LP] * fc;
  s.y = s.sm2 / s.den;
  if (kFast && s.y >= T(1) && par[BETAET] > T(0)) {
    s.pe = s.ef = T(1);
  } else {
    s.pe = std::pow(s.y, par[BETAET]);
    s.ef = clamp01(s.pe);
  }
  s.ea = pet * s.ef;
  s.braw = s.sm2 - T(1e-5);
  s.eb = clamp_min0(s.braw);
  s.et = minimum(s.ea, s.eb);
  s.sm3 = s.sm2 - s.et;
  // 8. upper zone, percolation
  s.uz1 = uz0 + s.recharge + s.excess;
  s.perc = minimum(s.uz1, par[PERC]);
  s.uz2 = s.uz1 - s.perc;
  // 9. fast flow, interflow
  s.q0raw = s.uz2 - par[UZL];
  s.q0c = clamp_min0(s.q0raw);
  s.q0 = par[K0] * s.q0c;
  s.uz3 = s.uz2 - s.q0;
  s.q1 = par[K1] * s.uz3;
  s.uz4 = s.uz3 - s.q1;
  // 10. lower zone
  s.lz1 = lz0 + s.perc;
  s.q2 = par[K2] * s.lz1;
  s.lz2 = s.lz1 - s.q2;
}

template <typename T>
inline void fluxes_of(const Internals<T>& s, T* f) {
  f[F_Q0] = s.q0; f[F_Q1] = s.q1; f[F_Q2] = s.q2; f[F_ET] = s.et; f[F_RAIN] = s.rain;
  f[F_SNOW] = s.snow; f[F_MELT] = s.melt; f[F_REFREEZE] = s.refreeze; f[F_TOSOIL] = s.tosoil;
  f[F_RECHARGE] = s.recharge; f[F_EXCESS] = s.excess; f[F_PERC] = s.perc;
}

// Adjoint of minimum(a, b) (torch: 0.5/0.5 on ties).
template <typename T>
inline void min_adj(T a, T b, T g, T& ga, T& gb) {
  if (a < b) {
    ga += g;
  } else if (b < a) {
    gb += g;
  } else {
    const T h = g * T(0.5);
    ga += h;
    gb += h;
  }
}

// Adjoint of pe = x ** e given the upstream gradient g (torch's pow_backward conventions).
template <typename T>
inline void pow_adj(T x, T e, T pe, T g, T& gx, T& ge) {
  if (e != T(0)) {
    const T d = (x > T(0)) ? pe / x : std::pow(x, e - T(1));
    gx += g * (e * d);
  }
  if (!(x == T(0) && e >= T(0))) ge += g * (pe * std::log(x));
}

// Adjoint of one component-day. a[5]: in = adjoint of the new states, out = of the old states.
// fg[12]: adjoint of this component's fluxes. gp[13]: parameter adjoints (accumulated).
template <typename T>
inline void adjoint(const Internals<T>& s, T t, T pet, const T* par, T* a, const T* fg, T* gp) {
  T a_sp3 = a[0];
  const T a_mw3 = a[1], a_sm3 = a[2], a_uz4 = a[3], a_lz2 = a[4];
  T a_fc = 0;
  // 10. lz2 = lz1 - q2; q2 = K2 * lz1; lz1 = lz0 + perc
  const T a_q2 = fg[F_Q2] - a_lz2;
  gp[K2] += a_q2 * s.lz1;
  const T a_lz1 = a_lz2 + a_q2 * par[K2];
  const T a_lz0 = a_lz1;
  T a_perc = fg[F_PERC] + a_lz1;
  // 9. uz4 = uz3 - q1; q1 = K1 * uz3; uz3 = uz2 - q0; q0 = K0 * clamp(uz2 - UZL)
  const T a_q1 = fg[F_Q1] - a_uz4;
  gp[K1] += a_q1 * s.uz3;
  const T a_uz3 = a_uz4 + a_q1 * par[K1];
  const T a_q0 = fg[F_Q0] - a_uz3;
  gp[K0] += a_q0 * s.q0c;
  const T a_q0raw = (s.q0raw >= T(0)) ? a_q0 * par[K0] : T(0);
  gp[UZL] -= a_q0raw;
  const T a_uz2 = a_uz3 + a_q0raw;
  // 8. uz2 = uz1 - perc; perc = min(uz1, PERC); uz1 = uz0 + recharge + excess
  T a_uz1 = a_uz2;
  a_perc -= a_uz2;
  min_adj(s.uz1, par[PERC], a_perc, a_uz1, gp[PERC]);
  const T a_uz0 = a_uz1;
  T a_recharge = fg[F_RECHARGE] + a_uz1;
  T a_excess = fg[F_EXCESS] + a_uz1;
  // 7. sm3 = sm2 - et; et = min(pet * ef, clamp(sm2 - 1e-5)); ef = clamp01((sm2 / (LP FC))^BETAET)
  T a_sm2 = a_sm3;
  const T a_et = fg[F_ET] - a_sm3;
  T a_ea = 0, a_eb = 0;
  min_adj(s.ea, s.eb, a_et, a_ea, a_eb);
  if (s.braw >= T(0)) a_sm2 += a_eb;
  const T a_pe = (s.pe >= T(0) && s.pe <= T(1)) ? a_ea * pet : T(0);
  if (a_pe != T(0)) {
    T a_y = 0;
    pow_adj(s.y, par[BETAET], s.pe, a_pe, a_y, gp[BETAET]);
    a_sm2 += a_y / s.den;
    const T a_den = -(a_y * s.y / s.den);
    gp[LP] += a_den * par[FC];
    a_fc += a_den * par[LP];
  }
  // 6. sm2 = sm1 - excess; excess = clamp(sm1 - FC)
  T a_sm1 = a_sm2;
  a_excess -= a_sm2;
  if (s.exraw >= T(0)) {
    a_sm1 += a_excess;
    a_fc -= a_excess;
  }
  // 5. sm1 = sm0 + infil - recharge; recharge = infil * clamp01((sm0 / FC)^BETA)
  T a_sm0 = a_sm1;
  T a_infil = a_sm1;
  a_recharge -= a_sm1;
  a_infil += a_recharge * s.wet;
  const T a_pw = (s.pw >= T(0) && s.pw <= T(1)) ? a_recharge * s.infil : T(0);
  if (a_pw != T(0)) {
    T a_x = 0;
    pow_adj(s.x, par[BETA], s.pw, a_pw, a_x, gp[BETA]);
    a_sm0 += a_x / par[FC];
    a_fc -= a_x * s.x / par[FC];
  }
  // infil = rain + tosoil (rain has no parameter dependence)
  T a_tosoil = fg[F_TOSOIL] + a_infil;
  // 4. mw3 = mw2 - tosoil; tosoil = clamp(mw2 - CWH * sp3)
  T a_mw2 = a_mw3;
  a_tosoil -= a_mw3;
  if (s.tsraw >= T(0)) {
    a_mw2 += a_tosoil;
    gp[CWH] -= a_tosoil * s.sp3;
    a_sp3 -= a_tosoil * par[CWH];
  }
  // 3. sp3 = sp2 + refreeze; mw2 = mw1 - refreeze; refreeze = min(clamp(CFR CFMAX (TT - t)), mw1)
  const T a_sp2 = a_sp3;
  const T a_refreeze = fg[F_REFREEZE] + a_sp3 - a_mw2;
  T a_mw1 = a_mw2;
  T a_rfpot = 0;
  min_adj(s.rfpot, s.mw1, a_refreeze, a_rfpot, a_mw1);
  if (s.rfraw >= T(0) && a_rfpot != T(0)) {
    const T dtt = par[TT] - t;
    const T a_c = a_rfpot * dtt;
    gp[CFR] += a_c * par[CFMAX];
    gp[CFMAX] += a_c * par[CFR];
    gp[TT] += a_rfpot * (par[CFR] * par[CFMAX]);
  }
  // 2. mw1 = mw0 + melt; sp2 = sp1 - melt; melt = min(clamp(CFMAX (t - TT)), sp1); sp1 = sp0 + snow
  const T a_mw0 = a_mw1;
  const T a_melt = fg[F_MELT] + a_mw1 - a_sp2;
  T a_sp1 = a_sp2;
  T a_mpot = 0;
  min_adj(s.mpot, s.sp1, a_melt, a_mpot, a_sp1);
  if (s.mraw >= T(0) && a_mpot != T(0)) {
    gp[CFMAX] += a_mpot * (t - par[TT]);
    gp[TT] -= a_mpot * par[CFMAX];
  }
  gp[FC] += a_fc;
  a[0] = a_sp1;
  a[1] = a_mw0;
  a[2] = a_sm0;
  a[3] = a_uz0;
  a[4] = a_lz0;
}

template <typename Fn>
void parallel_basins(std::size_t n_basins, int n_threads, Fn&& fn) {
  const std::size_t nt = std::min<std::size_t>(std::size_t(std::max(n_threads, 1)), n_basins);
  if (nt <= 1) {
    fn(std::size_t(0), n_basins);
    return;
  }
  // Contiguous basin chunks; the calling thread takes the first one.
  std::vector<std::size_t> bounds(nt + 1, 0);
  for (std::size_t i = 0; i < nt; ++i)
    bounds[i + 1] = bounds[i] + n_basins / nt + (i < n_basins % nt ? 1 : 0);
  std::vector<std::thread> pool;
  pool.reserve(nt - 1);
  for (std::size_t i = 1; i < nt; ++i)
    pool.emplace_back([&fn, &bounds, i] { fn(bounds[i], bounds[i + 1]); });
  fn(bounds[0], bounds[1]);
  for (auto& th : pool) th.join();
}

}  // namespace

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

int effective_threads(int requested, std::size_t n_days, std::size_t n_basins,
                      std::size_t n_comps) {
  int n = requested <= 0 ? hardware_threads() : requested;
  // Thread start-up (~tens of microseconds) only pays off for enough work per thread.
  const double work = double(n_days) * double(n_basins) * double(n_comps);
  const int by_work = int(std::max(1.0, work / 2.0e5));
  n = std::min(n, by_work);
  n = int(std::min<std::size_t>(std::size_t(std::max(n, 1)), std::max<std::size_t>(n_basins, 1)));
  return std::max(n, 1);
}

template <typename T>
void forward(const ForwardArgs<T>& a, int n_threads) {
  const std::size_t nT = a.n_days, B = a.n_basins, C = a.n_comps, BC = B * C;
  const int nt = effective_threads(n_threads, nT, B, C);
  const T Cd = T(C);
  parallel_basins(B, nt, [&](std::size_t b0, std::size_t b1) {
    // Working states: final_states (this thread's basins only).
    T* st = a.final_states;
    for (int k = 0; k < kNumStates; ++k)
      for (std::size_t b = b0; b < b1; ++b)
        std::copy(a.states0 + k * BC + b * C, a.states0 + k * BC + (b + 1) * C, st + k * BC + b * C);
    if (a.saved) {
      for (int k = 0; k < kNumStates; ++k)
        for (std::size_t b = b0; b < b1; ++b)
          std::copy(a.states0 + k * BC + b * C, a.states0 + k * BC + (b + 1) * C,
                    a.saved + k * BC + b * C);
    }
    Internals<T> s;
    T par[kNumParams];
    T fsum[kNumFluxes];
    T ssum[kNumStates];
    for (std::size_t d = 0; d < nT; ++d) {
      const T* pk[kNumParams];
      for (int k = 0; k < kNumParams; ++k) pk[k] = a.params[k] + (a.dynamic[k] ? d * BC : 0);
      for (std::size_t b = b0; b < b1; ++b) {
        const T p = a.p[d * B + b], t = a.t[d * B + b], pet = a.pet[d * B + b];
        for (int k = 0; k < kNumFluxes; ++k) fsum[k] = 0;
        for (int k = 0; k < kNumStates; ++k) ssum[k] = 0;
        const std::size_t base = b * C;
        for (std::size_t c = 0; c < C; ++c) {
          const std::size_t i = base + c;
          for (int k = 0; k < kNumParams; ++k) par[k] = pk[k][i];
          compute<T, true>(s, st[i], st[BC + i], st[2 * BC + i], st[3 * BC + i], st[4 * BC + i], p,
                           t, pet, par);
          st[i] = s.sp3;
          st[BC + i] = s.mw3;
          st[2 * BC + i] = s.sm3;
          st[3 * BC + i] = s.uz4;
          st[4 * BC + i] = s.lz2;
          fsum[F_Q0] += s.q0; fsum[F_Q1] += s.q1; fsum[F_Q2] += s.q2; fsum[F_ET] += s.et;
          fsum[F_RAIN] += s.rain; fsum[F_SNOW] += s.snow; fsum[F_MELT] += s.melt;
          fsum[F_REFREEZE] += s.refreeze; fsum[F_TOSOIL] += s.tosoil;
          fsum[F_RECHARGE] += s.recharge; fsum[F_EXCESS] += s.excess; fsum[F_PERC] += s.perc;
          ssum[0] += s.sp3; ssum[1] += s.mw3; ssum[2] += s.sm3; ssum[3] += s.uz4; ssum[4] += s.lz2;
        }
        for (int k = 0; k < kNumFluxes; ++k) a.fluxes[(k * nT + d) * B + b] = fsum[k] / Cd;
        if (a.storages)
          for (int k = 0; k < kNumStates; ++k) a.storages[(k * nT + d) * B + b] = ssum[k] / Cd;
        if (a.saved) {
          T* dst = a.saved + (d + 1) * kNumStates * BC;
          for (int k = 0; k < kNumStates; ++k)
            std::copy(st + k * BC + base, st + k * BC + base + C, dst + k * BC + base);
        }
      }
    }
  });
}

template <typename T>
void backward(const BackwardArgs<T>& a, int n_threads) {
  const std::size_t nT = a.n_days, B = a.n_basins, C = a.n_comps, BC = B * C;
  const int nt = effective_threads(n_threads, nT, B, C);
  const T Cd = T(C);
  parallel_basins(B, nt, [&](std::size_t b0, std::size_t b1) {
    // Adjoint states of this thread's basins live in g_states0.
    T* adj = a.g_states0;
    for (int k = 0; k < kNumStates; ++k)
      for (std::size_t b = b0; b < b1; ++b)
        for (std::size_t c = 0; c < C; ++c) {
          const std::size_t i = k * BC + b * C + c;
          adj[i] = a.g_final ? a.g_final[i] : T(0);
        }
    Internals<T> s;
    T par[kNumParams], gp[kNumParams], fg[kNumFluxes], sg[kNumStates], av[kNumStates];
    for (std::size_t dd = nT; dd-- > 0;) {
      const T* pk[kNumParams];
      T* gk[kNumParams];
      for (int k = 0; k < kNumParams; ++k) {
        pk[k] = a.params[k] + (a.dynamic[k] ? dd * BC : 0);
        gk[k] = a.g_params[k] + (a.dynamic[k] ? dd * BC : 0);
      }
      const T* st = a.saved + dd * kNumStates * BC;
      for (std::size_t b = b0; b < b1; ++b) {
        const T p = a.p[dd * B + b], t = a.t[dd * B + b], pet = a.pet[dd * B + b];
        for (int k = 0; k < kNumFluxes; ++k)
          fg[k] = a.g_fluxes ? a.g_fluxes[(k * nT + dd) * B + b] / Cd : T(0);
        for (int k = 0; k < kNumStates; ++k)
          sg[k] = a.g_storages ? a.g_storages[(k * nT + dd) * B + b] / Cd : T(0);
        const std::size_t base = b * C;
        for (std::size_t c = 0; c < C; ++c) {
          const std::size_t i = base + c;
          for (int k = 0; k < kNumParams; ++k) {
            par[k] = pk[k][i];
            gp[k] = 0;
          }
          compute(s, st[i], st[BC + i], st[2 * BC + i], st[3 * BC + i], st[4 * BC + i], p, t, pet,
                  par);
          for (int k = 0; k < kNumStates; ++k) av[k] = adj[k * BC + i] + sg[k];
          adjoint(s, t, pet, par, av, fg, gp);
          for (int k = 0; k < kNumStates; ++k) adj[k * BC + i] = av[k];
          for (int k = 0; k < kNumParams; ++k) gk[k][i] += gp[k];
        }
      }
    }
  });
}

template <typename T>
void step(T* states, std::size_t n_comps, T p, T t, T pet, const T* params, T* fluxes) {
  const std::size_t C = n_comps;
  Internals<T> s;
  T par[kNumParams];
  T fsum[kNumFluxes] = {};
  T f[kNumFluxes];
  for (std::size_t c = 0; c < C; ++c) {
    for (int k = 0; k < kNumParams; ++k) par[k] = params[k * C + c];
    compute<T, true>(s, states[c], states[C + c], states[2 * C + c], states[3 * C + c], states[4 * C + c],
            p, t, pet, par);
    states[c] = s.sp3;
    states[C + c] = s.mw3;
    states[2 * C + c] = s.sm3;
    states[3 * C + c] = s.uz4;
    states[4 * C + c] = s.lz2;
    fluxes_of(s, f);
    for (int k = 0; k < kNumFluxes; ++k) fsum[k] += f[k];
  }
  for (int k = 0; k < kNumFluxes; ++k) fluxes[k] = fsum[k] / T(C);
}

template void forward<float>(const ForwardArgs<float>&, int);
template void forward<double>(const ForwardArgs<double>&, int);
template void backward<float>(const BackwardArgs<float>&, int);
template void backward<double>(const BackwardArgs<double>&, int);
template void step<float>(float*, std::size_t, float, float, float, const float*, float*);
template void step<double>(double*, std::size_t, double, double, double, const double*, double*);

}  // namespace hbv
