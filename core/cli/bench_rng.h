// Bit-exact copies of the two random generators SGLang's benchmark datasets draw from, so that
// `sable bench` samples the same lengths, token ids and order as sglang.bench_serving /
// bench_offline_throughput for the same --seed: Python's `random` module (random.seed(int),
// getrandbits, shuffle, choices, random()) and numpy's legacy global RandomState
// (np.random.seed(int), randint, random_sample, exponential). Both are MT19937; they differ in
// seeding (init_by_array vs init_genrand) and in how words become numbers. Not thread-safe.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace sable::cli {

// The Mersenne Twister MT19937 (32-bit words), seeded either way.
class Mt19937 {
 public:
  void seed(uint32_t s);                              // init_genrand (numpy's integer seed)
  void seed_by_array(std::span<const uint32_t> key);  // init_by_array (Python's integer seed)
  uint32_t next();

 private:
  std::array<uint32_t, 624> mt_{};
  size_t index_ = 625;
};

// Python's random.Random for seeds >= 0 (CPython's _randommodule.c and random.py).
class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t getrandbits(int k);  // 1 <= k <= 32
  uint32_t randbelow(uint32_t n);  // [0, n), n >= 1: Random._randbelow_with_getrandbits
  double random();                 // [0, 1) with 53 random bits

  // random.shuffle(v): Fisher-Yates from the back.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i-- > 1;) std::swap(v[i], v[randbelow(static_cast<uint32_t>(i + 1))]);
  }
  // One draw of random.choices(population of size n): floor(random() * n).
  size_t choice_index(size_t n) {
    return static_cast<size_t>(std::floor(random() * static_cast<double>(n)));
  }

 private:
  Mt19937 mt_;
};

// numpy.random's legacy global state after np.random.seed(seed) (numpy/random/_mt19937.pyx,
// distributions/legacy-distributions.c, _bounded_integers.pyx).
class NumpyRandom {
 public:
  explicit NumpyRandom(uint32_t seed);
  // np.random.randint(low, high): [low, high), masked rejection on 32-bit words; no draw at all
  // when high == low + 1. Requires high - low <= 2^32.
  int64_t randint(int64_t low, int64_t high);
  double random_sample();             // [0, 1)
  double exponential(double scale);   // np.random.exponential(scale) = -log(1 - U) * scale

 private:
  Mt19937 mt_;
};

// SGLang seeds both global generators with --seed before sampling a dataset.
struct BenchRandom {
  explicit BenchRandom(uint32_t seed) : py(seed), np(seed) {}
  PyRandom py;
  NumpyRandom np;
};

}  // namespace sable::cli
