// MT19937 as in Matsumoto & Nishimura's mt19937ar.c (which CPython and numpy both embed), and the
// way Python and numpy turn its words into integers and doubles.
#include "core/cli/bench_rng.h"

#include <algorithm>
#include <stdexcept>

namespace sable::cli {

namespace {
constexpr size_t kN = 624, kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU, kUpper = 0x80000000U, kLower = 0x7fffffffU;
}  // namespace

void Mt19937::seed(uint32_t s) {
  mt_[0] = s;
  for (size_t i = 1; i < kN; ++i)
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  index_ = kN;
}

void Mt19937::seed_by_array(std::span<const uint32_t> key) {
  seed(19650218U);
  size_t i = 1, j = 0;
  const size_t len = std::max<size_t>(key.size(), 1);
  for (size_t k = std::max(kN, len); k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + (key.empty() ? 0 : key[j]) +
             static_cast<uint32_t>(j);
    ++i, ++j;
    if (i >= kN) mt_[0] = mt_[kN - 1], i = 1;
    if (j >= len) j = 0;
  }
  for (size_t k = kN - 1; k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
    if (++i >= kN) mt_[0] = mt_[kN - 1], i = 1;
  }
  mt_[0] = 0x80000000U;
  index_ = kN;
}

uint32_t Mt19937::next() {
  if (index_ > kN) seed(5489U);  // never seeded: mt19937ar's default
  if (index_ == kN) {
    auto twist = [&](size_t k, size_t next_k, size_t far) {
      const uint32_t y = (mt_[k] & kUpper) | (mt_[next_k] & kLower);
      mt_[k] = mt_[far] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    };
    for (size_t k = 0; k < kN; ++k) twist(k, (k + 1) % kN, (k + kM) % kN);
    index_ = 0;
  }
  uint32_t y = mt_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= y >> 18;
  return y;
}

PyRandom::PyRandom(uint64_t seed) {
  // random.seed(n): the 32-bit words of n, least significant first ([0] for 0).
  std::vector<uint32_t> key{static_cast<uint32_t>(seed)};
  if (seed >> 32) key.push_back(static_cast<uint32_t>(seed >> 32));
  mt_.seed_by_array(key);
}

uint32_t PyRandom::getrandbits(int k) {
  if (k < 1 || k > 32) throw std::invalid_argument("getrandbits: k must be in [1, 32]");
  return mt_.next() >> (32 - k);
}

uint32_t PyRandom::randbelow(uint32_t n) {
  if (n == 0) throw std::invalid_argument("randbelow: n must be >= 1");
  int k = 0;  // n.bit_length()
  while (k < 32 && (n >> k) != 0) ++k;
  uint32_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

double PyRandom::random() {
  const uint32_t a = mt_.next() >> 5, b = mt_.next() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

NumpyRandom::NumpyRandom(uint32_t seed) { mt_.seed(seed); }

int64_t NumpyRandom::randint(int64_t low, int64_t high) {
  if (high <= low) throw std::invalid_argument("randint: high must be > low");
  const uint64_t rng = static_cast<uint64_t>(high - low - 1);
  if (rng == 0) return low;
  if (rng > 0xffffffffULL) throw std::invalid_argument("randint: range above 2^32");
  if (rng == 0xffffffffULL) return low + mt_.next();
  uint32_t mask = static_cast<uint32_t>(rng);
  for (int s = 1; s <= 16; s <<= 1) mask |= mask >> s;
  uint32_t v;
  while ((v = mt_.next() & mask) > rng) {
  }
  return low + v;
}

double NumpyRandom::random_sample() {
  const uint32_t a = mt_.next() >> 5, b = mt_.next() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandom::exponential(double scale) { return -std::log(1.0 - random_sample()) * scale; }

}  // namespace sable::cli
