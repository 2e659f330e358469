// HBV time-stepping kernel (forward and hand-derived reverse-mode adjoint).
//
// Plain C++17, no Python or torch headers: operates on raw contiguous buffers of float or double.
// The step equations mirror bmi_dhbv/hbv.py (the PyTorch reference) operation by operation, in the
// same floating-point order, so the two agree to rounding (the batched path evaluates the powers
// as exp(e log x) and sums components lanes first: see hbv_kernel_impl.inc). Subgradients at kinks follow torch
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

// Orders of parameters, states and fluxes. The module exports the name arrays below and
// bmi_dhbv/kernel.py refuses to load unless they equal bmi_dhbv.hbv's PARAMETER_NAMES,
// STATE_NAMES and FLUX_NAMES (the Python spec is the one place the order is defined).
enum Param : int { BETA, FC, K0, K1, K2, LP, PERC, UZL, TT, CFMAX, CFR, CWH, BETAET };
enum Flux : int { F_Q0, F_Q1, F_Q2, F_ET, F_RAIN, F_SNOW, F_MELT, F_REFREEZE, F_TOSOIL,
                  F_RECHARGE, F_EXCESS, F_PERC };
inline constexpr const char* kParamNames[] = {"BETA", "FC", "K0", "K1", "K2", "LP", "PERC",
                                              "UZL", "TT", "CFMAX", "CFR", "CWH", "BETAET"};
inline constexpr const char* kStateNames[] = {"snowpack", "meltwater", "soil_moisture",
                                              "upper_zone", "lower_zone"};
inline constexpr const char* kFluxNames[] = {"q0", "q1", "q2", "et", "rain", "snow", "melt",
                                             "refreeze", "tosoil", "recharge", "excess", "perc"};
static_assert(sizeof(kParamNames) / sizeof(*kParamNames) == kNumParams && BETAET + 1 == kNumParams);
static_assert(sizeof(kStateNames) / sizeof(*kStateNames) == kNumStates);
static_assert(sizeof(kFluxNames) / sizeof(*kFluxNames) == kNumFluxes && F_PERC + 1 == kNumFluxes);

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

// Instruction set of forward() and backward(): "avx2" or "sse2" (the x86-64 baseline; also the
// name on other architectures, where the compiler's baseline is used).
const char* isa();

// Selects the instruction set by name; false (nothing changed) if unknown or unsupported here.
bool set_isa(const char* name);

}  // namespace hbv
