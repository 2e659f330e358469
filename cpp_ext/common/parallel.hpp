// Threads shared by the kernels of every model: work split into contiguous chunks of items
// (basins), one per thread, the calling thread taking the first.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace delta {

// Hardware concurrency (>= 1).
inline int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

// Calls fn(begin, end) on contiguous chunks of [0, n_items) in up to n_threads threads.
template <typename Fn>
void parallel_chunks(std::size_t n_items, int n_threads, Fn&& fn) {
  const std::size_t nt = std::min<std::size_t>(std::size_t(std::max(n_threads, 1)), n_items);
  if (nt <= 1) {
    fn(std::size_t(0), n_items);
    return;
  }
  std::vector<std::size_t> bounds(nt + 1, 0);
  for (std::size_t i = 0; i < nt; ++i)
    bounds[i + 1] = bounds[i] + n_items / nt + (i < n_items % nt ? 1 : 0);
  std::vector<std::thread> pool;
  pool.reserve(nt - 1);
  for (std::size_t i = 1; i < nt; ++i)
    pool.emplace_back([&fn, &bounds, i] { fn(bounds[i], bounds[i + 1]); });
  fn(bounds[0], bounds[1]);
  for (auto& th : pool) th.join();
}

}  // namespace delta
