// HBV time-stepping kernel (forward and hand-derived reverse-mode adjoint).
//
// Plain C++17, no Python or torch headers: operates on raw contiguous buffers of float or double.
// The step equations mirror bmi_dhbv/hbv.py (the PyTorch reference) operation by operation, in the
// same floating-point order, so the two agree to rounding. Subgradients at kinks follow torch
// autograd: clamp passes the gradient where min <= x <= max (boundaries included), minimum(a, b)
// splits it 0.5/0.5 when a == b, the rain/snow indicator (t >= TT) has zero gradient.
//
// Layouts (all C-contiguous):
//   forcing p, t, pet       [T, B]
//   parameter k             [B, C] (static) or [T, B, C] (daily-dynamic), flag dynamic[k]
//   states                  [5, B, C]        (snowpack, meltwater, soil moisture, upper, lower)
//   fluxes                  [12, T, B]       component means
//   storages                [5, T, B]        component means at the end of each day
//   saved states            [T + 1, 5, B, C] states at the start of each day + final
#pragma once

#include <cstddef>

namespace hbv {

constexpr int kNumParams = 13;
constexpr int kNumStates = 5;
constexpr int kNumFluxes = 12;

// Parameter order = bmi_dhbv.hbv.PARAMETER_NAMES.
enum Param : int { BETA, FC, K0, K1, K2, LP, PERC, UZL, TT, CFMAX, CFR, CWH, BETAET };
// Flux order = bmi_dhbv.hbv.FLUX_NAMES.
enum Flux : int { F_Q0, F_Q1, F_Q2, F_ET, F_RAIN, F_SNOW, F_MELT, F_REFREEZE, F_TOSOIL,
                  F_RECHARGE, F_EXCESS, F_PERC };

// Problem inputs shared by forward and backward: sizes, forcing [T, B], parameters
// (each [B, C], or [T, B, C] where dynamic[k]).
template <typename T>
struct ProblemArgs {
  std::size_t n_days = 0, n_basins = 0, n_comps = 0;
  const T* p = nullptr;
  const T* t = nullptr;
  const T* pet = nullptr;
  const T* params[kNumParams] = {};
  bool dynamic[kNumParams] = {};
};

template <typename T>
struct ForwardArgs : ProblemArgs<T> {
  const T* states0 = nullptr;   // [5, B, C]
  T* fluxes = nullptr;          // [12, T, B], required
  T* storages = nullptr;        // [5, T, B], optional
  T* final_states = nullptr;    // [5, B, C], required
  T* saved = nullptr;           // [T + 1, 5, B, C], optional (needed for backward)
};

template <typename T>
struct BackwardArgs : ProblemArgs<T> {
  const T* saved = nullptr;       // [T + 1, 5, B, C] from forward
  const T* g_fluxes = nullptr;    // [12, T, B] or null (zero)
  const T* g_storages = nullptr;  // [5, T, B] or null (zero)
  const T* g_final = nullptr;     // [5, B, C] or null (zero)
  T* g_params[kNumParams] = {};   // shaped like params; must be zero-initialised
  T* g_states0 = nullptr;         // [5, B, C], overwritten
};

// Runs T days; threads split the basins (n_threads <= 0: hardware concurrency).
template <typename T>
void forward(const ForwardArgs<T>& a, int n_threads);

// Reverse-mode adjoint through time of forward().
template <typename T>
void backward(const BackwardArgs<T>& a, int n_threads);

// One day of one basin: states [5, C] updated in place, params [13, C], fluxes [12] (means).
template <typename T>
void step(T* states, std::size_t n_comps, T p, T t, T pet, const T* params, T* fluxes);

// Number of threads actually used for a problem of this size.
int effective_threads(int requested, std::size_t n_days, std::size_t n_basins, std::size_t n_comps);

int hardware_threads();

}  // namespace hbv
