// Wetting fronts of LGAR in fixed-capacity parallel arrays (surface first), mirroring
// bmi_lgar/fronts.py: insert and remove shift the fronts below, no allocation per step.
#pragma once

#include <limits>
#include <stdexcept>
#include <string>

namespace lgar {

constexpr int kMaxFronts = 300;  // fronts.MAX_NUM_WETTING_FRONTS
constexpr int kMaxLayers = 4;    // lgar_config.MAX_NUM_SOIL_LAYERS

template <typename T>
struct Fronts {
  int n = 0;
  T depth[kMaxFronts];  // [cm] from the surface
  T theta[kMaxFronts];  // [-]
  T psi[kMaxFronts];    // [cm], suction positive
  T k[kMaxFronts];      // [cm/h]
  T dzdt[kMaxFronts];   // [cm/h]
  int layer[kMaxFronts];       // 1-based
  bool to_bottom[kMaxFronts];  // the front fills its layer to the layer bottom

  // Insert a front at index i (psi, K nan; dZ/dt 0).
  void insert(int i, const T& d, const T& th, int lay, bool bottom) {
    if (n >= kMaxFronts)
      throw std::runtime_error("more than " + std::to_string(kMaxFronts) + " wetting fronts");
    for (int j = n; j > i; --j) move(j - 1, j);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    depth[i] = d;
    theta[i] = th;
    psi[i] = T(nan);
    k[i] = T(nan);
    dzdt[i] = T(0.0);
    layer[i] = lay;
    to_bottom[i] = bottom;
    ++n;
  }

  // Remove the front at index i.
  void remove(int i) {
    for (int j = i; j + 1 < n; ++j) move(j + 1, j);
    --n;
  }

  // Copy the n fronts of another set (listCopy).
  void copy_from(const Fronts& o) {
    n = o.n;
    for (int j = 0; j < n; ++j) {
      depth[j] = o.depth[j];
      theta[j] = o.theta[j];
      psi[j] = o.psi[j];
      k[j] = o.k[j];
      dzdt[j] = o.dzdt[j];
      layer[j] = o.layer[j];
      to_bottom[j] = o.to_bottom[j];
    }
  }

 private:
  void move(int from, int to) {
    depth[to] = depth[from];
    theta[to] = theta[from];
    psi[to] = psi[from];
    k[to] = k[from];
    dzdt[to] = dzdt[from];
    layer[to] = layer[from];
    to_bottom[to] = to_bottom[from];
  }
};

}  // namespace lgar
