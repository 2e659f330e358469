// HBV kernel implementation; see hbv_kernel.hpp for layouts and conventions.
#include "hbv_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.hpp"
#include "vector_math.hpp"

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
// base >= 1 so the clamped value is 1); the skipped intermediates are then not valid for an adjoint.
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

// ---------------------------------------------------------------------------------------------
// Vectorised block path used by forward() and backward(): the components of one basin-day are
// processed as arrays (structure of arrays), in loops GCC can auto-vectorise (SSE2 baseline);
// the element-wise operations are exactly those of the scalar compute() above (used by step())
// and of the reverse-mode adjoint of the reference (selects instead of branches, same operands,
// same order; subgradients: clamp passes where min <= x <= max, minimum splits 0.5/0.5 on ties,
// torch's pow_backward conventions). Only pow and log are evaluated by vector routines (glibc
// libmvec, <= 4 ULP) where available.
// ---------------------------------------------------------------------------------------------


constexpr std::size_t kBlock = 32;  // components per block (a basin with more is split)

using delta::vpow_exp_log;

// Intermediates of up to kBlock component-days (structure of arrays): those adjoint_block reads
// (filled by compute_block<T, false>) and those passed between compute_block's loops.
template <typename T>
struct Block {
  alignas(64) T sp1[kBlock], mraw[kBlock], mpot[kBlock], mw1[kBlock], rfraw[kBlock],
      rfpot[kBlock], sp3[kBlock], tsraw[kBlock], infil[kBlock], sm0[kBlock], x[kBlock],
      pw[kBlock], wet[kBlock], recharge[kBlock], exraw[kBlock], excess[kBlock], sm2[kBlock],
      den[kBlock], y[kBlock], pe[kBlock], ea[kBlock], braw[kBlock], eb[kBlock], uz1[kBlock],
      q0raw[kBlock], q0c[kBlock], uz3[kBlock], lz1[kBlock];
  alignas(64) T lx[kBlock], ly[kBlock];  // log(x), log(y)
  alignas(64) T dx[kBlock], dy[kBlock];  // backward: pow(x, BETA - 1), pow(y, BETAET - 1) where x, y <= 0
};

// Component sums of one block (forward pass): the 12 fluxes, then the 5 new states.
constexpr int kNumSums = kNumFluxes + kNumStates;

// One day of n (<= kBlock) components, in three vectorised loops around the two powers.
// in[5]: the states of the day's start (element 0 of each), par[k]: parameters (element 0),
// p, t, pet: the basin's forcing.
// kForward = false (backward): fills every intermediate of b that adjoint_block reads.
// kForward = true (forward pass): writes the new states to out[5] (may be in[5]: in place),
// adds the component sums to sums[kNumSums], and stores in b only what the next loop reads;
// when no component of the block receives water (infiltration 0, as on most dry or frozen days)
// the recharge power is skipped: recharge = 0 * wet = 0 whatever wet is (clamped, finite).
template <typename T, bool kForward>
inline void compute_block(Block<T>& b, std::size_t n, const T* const* in, T* const* out, T p,
                          T t, T pet, const T* const* par, T* sums) {
  const T* __restrict tt_ = par[TT];
  const T* __restrict fc_ = par[FC];
  const T* __restrict cfmax_ = par[CFMAX];
  const T* __restrict cfr_ = par[CFR];
  const T* __restrict cwh_ = par[CWH];
  const T* sp0 = in[0];
  const T* mw0 = in[1];
  T rain_s = 0, snow_s = 0, melt_s = 0, refreeze_s = 0, tosoil_s = 0, sp3_s = 0, mw3_s = 0;
  DELTA_SIMD_SUM(rain_s, snow_s, melt_s, refreeze_s, tosoil_s, sp3_s, mw3_s)
  for (std::size_t c = 0; c < n; ++c) {
    const T tt = tt_[c], fc = fc_[c], cfmax = cfmax_[c];
    const T rain = (t >= tt) ? p : T(0);
    const T snow = p - rain;
    const T sp1 = sp0[c] + snow;
    const T mraw = cfmax * (t - tt);
    const T mpot = clamp_min0(mraw);
    const T melt = minimum(mpot, sp1);
    const T mw1 = mw0[c] + melt;
    const T sp2 = sp1 - melt;
    const T rfraw = (cfr_[c] * cfmax) * (tt - t);
    const T rfpot = clamp_min0(rfraw);
    const T refreeze = minimum(rfpot, mw1);
    const T sp3 = sp2 + refreeze;
    const T mw2 = mw1 - refreeze;
    const T tsraw = mw2 - cwh_[c] * sp3;
    const T tosoil = clamp_min0(tsraw);
    const T mw3 = mw2 - tosoil;
    const T sm0 = in[2][c];
    b.infil[c] = rain + tosoil;
    b.sm0[c] = sm0;
    b.x[c] = sm0 / fc;
    if constexpr (kForward) {
      out[0][c] = sp3;
      out[1][c] = mw3;
    } else {
      b.sp1[c] = sp1; b.mraw[c] = mraw; b.mpot[c] = mpot; b.mw1[c] = mw1; b.rfraw[c] = rfraw;
      b.rfpot[c] = rfpot; b.sp3[c] = sp3; b.tsraw[c] = tsraw;
    }
    rain_s += rain; snow_s += snow; melt_s += melt; refreeze_s += refreeze; tosoil_s += tosoil;
    sp3_s += sp3; mw3_s += mw3;
  }
  bool wet_any = !kForward;
  if constexpr (kForward)
    for (std::size_t c = 0; c < n; ++c) wet_any |= b.infil[c] != T(0);
  if (wet_any)
    vpow_exp_log(b.x, par[BETA], b.lx, b.pw, n);
  else
    std::fill(b.pw, b.pw + n, T(0));
  const T* __restrict lp_ = par[LP];
  T recharge_s = 0, excess_s = 0;
  DELTA_SIMD_SUM(recharge_s, excess_s)
  for (std::size_t c = 0; c < n; ++c) {
    const T fc = fc_[c];
    const T wet = clamp01(b.pw[c]);
    const T recharge = b.infil[c] * wet;
    const T sm1 = b.sm0[c] + b.infil[c] - recharge;
    const T exraw = sm1 - fc;
    const T excess = clamp_min0(exraw);
    const T sm2 = sm1 - excess;
    const T den = lp_[c] * fc;
    b.recharge[c] = recharge; b.excess[c] = excess; b.sm2[c] = sm2;
    b.y[c] = sm2 / den;
    if constexpr (!kForward) {
      b.wet[c] = wet; b.exraw[c] = exraw; b.den[c] = den;
    }
    recharge_s += recharge; excess_s += excess;
  }
  vpow_exp_log(b.y, par[BETAET], b.ly, b.pe, n);
  const T* __restrict perc_ = par[PERC];
  const T* __restrict uzl_ = par[UZL];
  const T* __restrict k0_ = par[K0];
  const T* __restrict k1_ = par[K1];
  const T* __restrict k2_ = par[K2];
  const T* uz0 = in[3];
  const T* lz0 = in[4];
  T et_s = 0, perc_s = 0, q0_s = 0, q1_s = 0, q2_s = 0, sm3_s = 0, uz4_s = 0, lz2_s = 0;
  DELTA_SIMD_SUM(et_s, perc_s, q0_s, q1_s, q2_s, sm3_s, uz4_s, lz2_s)
  for (std::size_t c = 0; c < n; ++c) {
    const T ef = clamp01(b.pe[c]);
    const T ea = pet * ef;
    const T sm2 = b.sm2[c];
    const T braw = sm2 - T(1e-5);
    const T eb = clamp_min0(braw);
    const T et = minimum(ea, eb);
    const T uz1 = uz0[c] + b.recharge[c] + b.excess[c];
    const T perc = minimum(uz1, perc_[c]);
    const T uz2 = uz1 - perc;
    const T q0raw = uz2 - uzl_[c];
    const T q0c = clamp_min0(q0raw);
    const T q0 = k0_[c] * q0c;
    const T uz3 = uz2 - q0;
    const T q1 = k1_[c] * uz3;
    const T lz1 = lz0[c] + perc;
    const T q2 = k2_[c] * lz1;
    const T sm3 = sm2 - et, uz4 = uz3 - q1, lz2 = lz1 - q2;
    if constexpr (kForward) {
      out[2][c] = sm3; out[3][c] = uz4; out[4][c] = lz2;
    } else {
      b.ea[c] = ea; b.braw[c] = braw; b.eb[c] = eb; b.uz1[c] = uz1; b.q0raw[c] = q0raw;
      b.q0c[c] = q0c; b.uz3[c] = uz3; b.lz1[c] = lz1;
    }
    et_s += et; perc_s += perc; q0_s += q0; q1_s += q1; q2_s += q2; sm3_s += sm3;
    uz4_s += uz4; lz2_s += lz2;
  }
  if constexpr (kForward) {
    const T add[kNumSums] = {q0_s, q1_s, q2_s, et_s, rain_s, snow_s, melt_s, refreeze_s,
                             tosoil_s, recharge_s, excess_s, perc_s,
                             sp3_s, mw3_s, sm3_s, uz4_s, lz2_s};
    for (int k = 0; k < kNumSums; ++k) sums[k] += add[k];
  }
}

// Branch-free adjoint of minimum(a, b) (torch: 0.5/0.5 on ties).
template <typename T>
inline void min_adj_sel(T a, T b, T g, T& ga, T& gb) {
  const T h = g * T(0.5);
  ga = (a < b) ? ga + g : ((b < a) ? ga : ga + h);
  gb = (b < a) ? gb + g : ((a < b) ? gb : gb + h);
}

// Whether min_adj_sel(a, b, g, ga, gb) with ga == 0 leaves ga != 0, as a conjunction of masks
// (a select of booleans does not vectorise).
template <typename T>
inline bool min_adj_a_nonzero(T a, T b, T g) {
  return (!(b < a)) & (((a < b) & (g != T(0))) | ((!(a < b)) & (g * T(0.5) != T(0))));
}

// Adjoint of n components (branches as selects). s: compute_block of
// the day, with lx/ly = log(x)/log(y) and dx/dy = pow(x, BETA - 1)/pow(y, BETAET - 1) wherever
// x/y is not > 0. adj[5]: adjoint states (in: of the new states, out: of the old), sg[5] added
// to them first; fg[12]: flux adjoints of the basin-day; gk[13]: parameter gradients (+=).
template <typename T>
inline void adjoint_block(const Block<T>& s, std::size_t n, T t, T pet, const T* const* par,
                          T* const* adj, const T* sg, const T* fg, T* const* gk) {
  const T* __restrict K0_ = par[K0]; const T* __restrict K1_ = par[K1];
  const T* __restrict K2_ = par[K2]; const T* __restrict PERC_ = par[PERC];
  const T* __restrict BETAET_ = par[BETAET]; const T* __restrict BETA_ = par[BETA];
  const T* __restrict FC_ = par[FC]; const T* __restrict LP_ = par[LP];
  const T* __restrict CWH_ = par[CWH]; const T* __restrict TT_ = par[TT];
  const T* __restrict CFR_ = par[CFR]; const T* __restrict CFMAX_ = par[CFMAX];
  T* __restrict a0 = adj[0]; T* __restrict a1 = adj[1]; T* __restrict a2 = adj[2];
  T* __restrict a3 = adj[3]; T* __restrict a4 = adj[4];
  T* __restrict gBETA_ = gk[BETA]; T* __restrict gFC_ = gk[FC]; T* __restrict gK0_ = gk[K0];
  T* __restrict gK1_ = gk[K1]; T* __restrict gK2_ = gk[K2]; T* __restrict gLP_ = gk[LP];
  T* __restrict gPERC_ = gk[PERC]; T* __restrict gUZL_ = gk[UZL]; T* __restrict gTT_ = gk[TT];
  T* __restrict gCFMAX_ = gk[CFMAX]; T* __restrict gCFR_ = gk[CFR];
  T* __restrict gCWH_ = gk[CWH]; T* __restrict gBETAET_ = gk[BETAET];
  const T fq0 = fg[F_Q0], fq1 = fg[F_Q1], fq2 = fg[F_Q2], fet = fg[F_ET], fmelt = fg[F_MELT],
          frefreeze = fg[F_REFREEZE], ftosoil = fg[F_TOSOIL], frecharge = fg[F_RECHARGE],
          fexcess = fg[F_EXCESS], fperc = fg[F_PERC];
  const T sg0 = sg[0], sg1 = sg[1], sg2 = sg[2], sg3 = sg[3], sg4 = sg[4];
  DELTA_SIMD
  for (std::size_t c = 0; c < n; ++c) {
    // All loads unconditional (conditional loads defeat if-conversion).
    const T v_braw = s.braw[c];
    const T v_den = s.den[c];
    const T v_dx = s.dx[c];
    const T v_dy = s.dy[c];
    const T v_ea = s.ea[c];
    const T v_eb = s.eb[c];
    const T v_exraw = s.exraw[c];
    const T v_infil = s.infil[c];
    const T v_lx = s.lx[c];
    const T v_ly = s.ly[c];
    const T v_lz1 = s.lz1[c];
    const T v_mpot = s.mpot[c];
    const T v_mraw = s.mraw[c];
    const T v_mw1 = s.mw1[c];
    const T v_pe = s.pe[c];
    const T v_pw = s.pw[c];
    const T v_q0c = s.q0c[c];
    const T v_q0raw = s.q0raw[c];
    const T v_rfpot = s.rfpot[c];
    const T v_rfraw = s.rfraw[c];
    const T v_sp1 = s.sp1[c];
    const T v_sp3 = s.sp3[c];
    const T v_tsraw = s.tsraw[c];
    const T v_uz1 = s.uz1[c];
    const T v_uz3 = s.uz3[c];
    const T v_wet = s.wet[c];
    const T v_x = s.x[c];
    const T v_y = s.y[c];
    T gBETA = 0, gFC = 0, gK0 = 0, gK1 = 0, gK2 = 0, gLP = 0, gPERC = 0, gUZL = 0, gTT = 0,
      gCFMAX = 0, gCFR = 0, gCWH = 0, gBETAET = 0;
    const T k0 = K0_[c], k1 = K1_[c], k2 = K2_[c], fc = FC_[c], lp = LP_[c], cwh = CWH_[c],
            tt = TT_[c], cfr = CFR_[c], cfmax = CFMAX_[c];
    T a_sp3 = a0[c] + sg0;
    const T a_mw3 = a1[c] + sg1, a_sm3 = a2[c] + sg2, a_uz4 = a3[c] + sg3, a_lz2 = a4[c] + sg4;
    T a_fc = 0;
    // 10.
    const T a_q2 = fq2 - a_lz2;
    gK2 += a_q2 * v_lz1;
    const T a_lz1 = a_lz2 + a_q2 * k2;
    const T a_lz0 = a_lz1;
    T a_perc = fperc + a_lz1;
    // 9.
    const T a_q1 = fq1 - a_uz4;
    gK1 += a_q1 * v_uz3;
    const T a_uz3 = a_uz4 + a_q1 * k1;
    const T a_q0 = fq0 - a_uz3;
    gK0 += a_q0 * v_q0c;
    const T a_q0raw = (v_q0raw >= T(0)) ? a_q0 * k0 : T(0);
    gUZL -= a_q0raw;
    const T a_uz2 = a_uz3 + a_q0raw;
    // 8.
    T a_uz1 = a_uz2;
    a_perc -= a_uz2;
    min_adj_sel(v_uz1, PERC_[c], a_perc, a_uz1, gPERC);
    const T a_uz0 = a_uz1;
    T a_recharge = frecharge + a_uz1;
    T a_excess = fexcess + a_uz1;
    // 7.
    T a_sm2 = a_sm3;
    const T a_et = fet - a_sm3;
    T a_ea = 0, a_eb = 0;
    min_adj_sel(v_ea, v_eb, a_et, a_ea, a_eb);
    a_sm2 = (v_braw >= T(0)) ? a_sm2 + a_eb : a_sm2;
    {
      const T pe = v_pe, y = v_y, e = BETAET_[c], den = v_den;
      // a_pe != 0, as a plain conjunction of masks (a select of booleans does not vectorise)
      const T a_pe0 = a_ea * pet;
      const T a_pe = ((pe >= T(0)) & (pe <= T(1))) ? a_pe0 : T(0);
      const T d = (y > T(0)) ? pe / y : v_dy;
      const T a_y = (e != T(0)) ? T(0) + a_pe * (e * d) : T(0);
      gBETAET = (((pe >= T(0)) & (pe <= T(1)) & (a_pe0 != T(0))) & ((y != T(0)) | !(e >= T(0)))) ? gBETAET + a_pe * (pe * v_ly) : gBETAET;
      a_sm2 = ((pe >= T(0)) & (pe <= T(1)) & (a_pe0 != T(0))) ? a_sm2 + a_y / den : a_sm2;
      const T a_den = -(a_y * y / den);
      gLP = ((pe >= T(0)) & (pe <= T(1)) & (a_pe0 != T(0))) ? gLP + a_den * fc : gLP;
      a_fc = ((pe >= T(0)) & (pe <= T(1)) & (a_pe0 != T(0))) ? a_fc + a_den * lp : a_fc;
    }
    // 6.
    T a_sm1 = a_sm2;
    a_excess -= a_sm2;
    a_sm1 = (v_exraw >= T(0)) ? a_sm1 + a_excess : a_sm1;
    a_fc = (v_exraw >= T(0)) ? a_fc - a_excess : a_fc;
    // 5.
    T a_sm0 = a_sm1;
    T a_infil = a_sm1;
    a_recharge -= a_sm1;
    a_infil += a_recharge * v_wet;
    {
      const T pw = v_pw, x = v_x, e = BETA_[c];
      const T a_pw0 = a_recharge * v_infil;
      const T a_pw = ((pw >= T(0)) & (pw <= T(1))) ? a_pw0 : T(0);
      const T d = (x > T(0)) ? pw / x : v_dx;
      const T a_x = (e != T(0)) ? T(0) + a_pw * (e * d) : T(0);
      gBETA = (((pw >= T(0)) & (pw <= T(1)) & (a_pw0 != T(0))) & ((x != T(0)) | !(e >= T(0)))) ? gBETA + a_pw * (pw * v_lx) : gBETA;
      a_sm0 = ((pw >= T(0)) & (pw <= T(1)) & (a_pw0 != T(0))) ? a_sm0 + a_x / fc : a_sm0;
      a_fc = ((pw >= T(0)) & (pw <= T(1)) & (a_pw0 != T(0))) ? a_fc - a_x * x / fc : a_fc;
    }
    T a_tosoil = ftosoil + a_infil;
    // 4.
    T a_mw2 = a_mw3;
    a_tosoil -= a_mw3;
    a_mw2 = (v_tsraw >= T(0)) ? a_mw2 + a_tosoil : a_mw2;
    gCWH = (v_tsraw >= T(0)) ? gCWH - a_tosoil * v_sp3 : gCWH;
    a_sp3 = (v_tsraw >= T(0)) ? a_sp3 - a_tosoil * cwh : a_sp3;
    // 3.
    const T a_sp2 = a_sp3;
    const T a_refreeze = frefreeze + a_sp3 - a_mw2;
    T a_mw1 = a_mw2;
    T a_rfpot = 0;
    min_adj_sel(v_rfpot, v_mw1, a_refreeze, a_rfpot, a_mw1);
    {
      const T dtt = tt - t;
      const T a_c = a_rfpot * dtt;
      gCFR = ((v_rfraw >= T(0)) & min_adj_a_nonzero(v_rfpot, v_mw1, a_refreeze)) ? gCFR + a_c * cfmax : gCFR;
      gCFMAX = ((v_rfraw >= T(0)) & min_adj_a_nonzero(v_rfpot, v_mw1, a_refreeze)) ? gCFMAX + a_c * cfr : gCFMAX;
      gTT = ((v_rfraw >= T(0)) & min_adj_a_nonzero(v_rfpot, v_mw1, a_refreeze)) ? gTT + a_rfpot * (cfr * cfmax) : gTT;
    }
    // 2.
    const T a_mw0 = a_mw1;
    const T a_melt = fmelt + a_mw1 - a_sp2;
    T a_sp1 = a_sp2;
    T a_mpot = 0;
    min_adj_sel(v_mpot, v_sp1, a_melt, a_mpot, a_sp1);
    {
      gCFMAX = ((v_mraw >= T(0)) & min_adj_a_nonzero(v_mpot, v_sp1, a_melt)) ? gCFMAX + a_mpot * (t - tt) : gCFMAX;
      gTT = ((v_mraw >= T(0)) & min_adj_a_nonzero(v_mpot, v_sp1, a_melt)) ? gTT - a_mpot * cfmax : gTT;
    }
    gFC += a_fc;
    a0[c] = a_sp1; a1[c] = a_mw0; a2[c] = a_sm0; a3[c] = a_uz0; a4[c] = a_lz0;
    gBETA_[c] += gBETA; gFC_[c] += gFC; gK0_[c] += gK0; gK1_[c] += gK1; gK2_[c] += gK2;
    gLP_[c] += gLP; gPERC_[c] += gPERC; gUZL_[c] += gUZL; gTT_[c] += gTT;
    gCFMAX_[c] += gCFMAX; gCFR_[c] += gCFR; gCWH_[c] += gCWH; gBETAET_[c] += gBETAET;
  }
}

}  // namespace

int hardware_threads() { return delta::hardware_threads(); }

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

// Copies the states [5, B, C] of basins [b0, b1) from src to dst.
template <typename T>
void copy_states(const T* src, T* dst, std::size_t BC, std::size_t C, std::size_t b0,
                 std::size_t b1) {
  for (int k = 0; k < kNumStates; ++k)
    std::copy(src + k * BC + b0 * C, src + k * BC + b1 * C, dst + k * BC + b0 * C);
}

template <typename T>
void forward(const ForwardArgs<T>& a, int n_threads) {
  const std::size_t nT = a.n_days, B = a.n_basins, C = a.n_comps, BC = B * C;
  const std::size_t day_stride = a.saved ? kNumStates * BC : 0;
  const int nt = effective_threads(n_threads, nT, B, C);
  const T Cd = T(C);
  delta::parallel_chunks(B, nt, [&](std::size_t b0, std::size_t b1) {
    // States of day d: saved[d] (the day's new states written to saved[d + 1]) when saving,
    // otherwise final_states, updated in place (this thread's basins only).
    T* const st = a.saved ? a.saved : a.final_states;
    copy_states(a.states0, st, BC, C, b0, b1);
    Block<T> s;
    for (std::size_t d = 0; d < nT; ++d) {
      const T* pk[kNumParams];
      for (int k = 0; k < kNumParams; ++k) pk[k] = a.params[k] + (a.dynamic[k] ? d * BC : 0);
      const T* cur = st + d * day_stride;
      T* next = st + (d + 1) * day_stride;
      for (std::size_t b = b0; b < b1; ++b) {
        const T p = a.p[d * B + b], t = a.t[d * B + b], pet = a.pet[d * B + b];
        T sums[kNumSums] = {};
        for (std::size_t c0 = 0; c0 < C; c0 += kBlock) {
          const std::size_t n = std::min(kBlock, C - c0), i0 = b * C + c0;
          const T* pp[kNumParams];
          for (int k = 0; k < kNumParams; ++k) pp[k] = pk[k] + i0;
          const T* in[kNumStates];
          T* out[kNumStates];
          for (int k = 0; k < kNumStates; ++k) {
            in[k] = cur + k * BC + i0;
            out[k] = next + k * BC + i0;
          }
          compute_block<T, true>(s, n, in, out, p, t, pet, pp, sums);
        }
        for (int k = 0; k < kNumFluxes; ++k) a.fluxes[(k * nT + d) * B + b] = sums[k] / Cd;
        if (a.storages)
          for (int k = 0; k < kNumStates; ++k)
            a.storages[(k * nT + d) * B + b] = sums[kNumFluxes + k] / Cd;
      }
    }
    if (a.saved) copy_states(st + nT * day_stride, a.final_states, BC, C, b0, b1);
  });
}

template <typename T>
void backward(const BackwardArgs<T>& a, int n_threads) {
  const std::size_t nT = a.n_days, B = a.n_basins, C = a.n_comps, BC = B * C;
  const int nt = effective_threads(n_threads, nT, B, C);
  const T Cd = T(C);
  delta::parallel_chunks(B, nt, [&](std::size_t b0, std::size_t b1) {
    // Adjoint states of this thread's basins live in g_states0.
    T* adj = a.g_states0;
    for (int k = 0; k < kNumStates; ++k)
      for (std::size_t b = b0; b < b1; ++b)
        for (std::size_t c = 0; c < C; ++c) {
          const std::size_t i = k * BC + b * C + c;
          adj[i] = a.g_final ? a.g_final[i] : T(0);
        }
    Block<T> s;
    T fg[kNumFluxes], sg[kNumStates];
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
        for (std::size_t c0 = 0; c0 < C; c0 += kBlock) {
          const std::size_t n = std::min(kBlock, C - c0), i0 = base + c0;
          const T* pp[kNumParams];
          T* gp[kNumParams];
          for (int k = 0; k < kNumParams; ++k) {
            pp[k] = pk[k] + i0;
            gp[k] = gk[k] + i0;
          }
          const T* in[kNumStates] = {st + i0, st + BC + i0, st + 2 * BC + i0,
                                     st + 3 * BC + i0, st + 4 * BC + i0};
          compute_block<T, false>(s, n, in, nullptr, p, t, pet, pp, nullptr);
          for (std::size_t c = 0; c < n; ++c) {
            if (!(s.x[c] > T(0))) s.dx[c] = std::pow(s.x[c], pp[BETA][c] - T(1));
            if (!(s.y[c] > T(0))) s.dy[c] = std::pow(s.y[c], pp[BETAET][c] - T(1));
          }
          T* av[kNumStates] = {adj + i0, adj + BC + i0, adj + 2 * BC + i0, adj + 3 * BC + i0,
                               adj + 4 * BC + i0};
          adjoint_block(s, n, t, pet, pp, av, sg, fg, gp);
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
