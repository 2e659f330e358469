// pybind11 helpers shared by the bindings of every kernel: C-contiguous array alias, a
// ValueError with a message, and a shape check that names the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace delta {

namespace py = pybind11;

template <typename T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

[[noreturn]] inline void fail(const std::string& msg) { throw py::value_error(msg); }

template <typename T>
void check_shape(const Arr<T>& a, std::vector<py::ssize_t> shape, const char* name) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    fail(std::string(name) + ": expected shape " + want + ")");
  }
}

// Python tuple of C strings (names exported by a module, checked against the Python spec).
template <std::size_t N>
py::tuple names_tuple(const char* const (&names)[N]) {
  py::tuple t(N);
  for (std::size_t i = 0; i < N; ++i) t[i] = py::str(names[i]);
  return t;
}

// Compiler and optimisation flags of this module (benchmarks print them with their figures).
inline py::dict build_info() {
  py::dict d;
#if defined(__GNUC__) && !defined(__clang__)
  d["compiler"] = std::string("GCC ") + __VERSION__;
#elif defined(__VERSION__)
  d["compiler"] = std::string(__VERSION__);
#else
  d["compiler"] = "unknown";
#endif
#ifdef DELTA_COMPILE_FLAGS
  d["flags"] = std::string(DELTA_COMPILE_FLAGS);
#else
  d["flags"] = "unknown";
#endif
#ifdef DELTA_USE_LIBMVEC
  d["libmvec"] = true;
#else
  d["libmvec"] = false;
#endif
  return d;
}

}  // namespace delta
