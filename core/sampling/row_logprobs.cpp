// Log-sum-exp in four float lanes and a running top-n list (see row_logprobs.h).
#include "core/sampling/row_logprobs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/util/lanes4.h"

namespace sable::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr size_t kRunningMax = 64;

using lanes4::exp_nonpositive;
using lanes4::F4;
using lanes4::load4;

// sum_i exp(row[i] - m) for a row whose maximum is m (finite): float lanes over blocks short
// enough that their rounding stays near 1e-7 relative, blocks summed in double. libm's double
// exp per logit was most of a CPU decode step's sampling at 150k-token vocabularies.
double sum_exp(const float* row, int64_t vocab, float m) {
  constexpr int64_t kBlock = 512;
  double total = 0;
  for (int64_t b = 0; b < vocab; b += kBlock) {
    const int64_t e = std::min(vocab, b + kBlock);
    F4 lanes0{}, lanes1{};  // two chains, so consecutive polynomials overlap
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
      lanes0 += exp_nonpositive(load4(row + i) - m);
      lanes1 += exp_nonpositive(load4(row + i + 4) - m);
    }
    const F4 lanes = lanes0 + lanes1;
    for (int k = 0; k < 4; ++k) total += lanes[k];
    for (; i < e; ++i) total += exp_nonpositive(row[i] - m);
  }
  return total;
}

float order_key(float v) {
  return std::isnan(v) ? kNegInf : v;
}

}  // namespace

float log_sum_exp(std::span<const float> row, float max) {
  if (max == kNegInf) return kNegInf;
  return max +
         static_cast<float>(std::log(sum_exp(row.data(), static_cast<int64_t>(row.size()), max)));
}

void top_indices(std::span<const float> row, std::span<int32_t> out) {
  const size_t n = out.size();
  if (n == 0) return;
  if (n > kRunningMax) {
    std::vector<int32_t> idx(row.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + static_cast<int64_t>(n), idx.end(),
                      [&](int32_t a, int32_t b) {
                        const float x = order_key(row[a]), y = order_key(row[b]);
                        return x > y || (x == y && a < b);
                      });
    std::copy_n(idx.begin(), n, out.begin());
    return;
  }
  // A running list, largest first: a value joins when it beats the list's last (strictly, so an
  // equal value of a later index stays out); a NaN never beats anything.
  std::array<float, kRunningMax> val;
  size_t size = 0;
  float last = kNegInf;  // the list's last value once it is full
  for (size_t i = 0; i < row.size(); ++i) {
    float v = row[i];
    if (size == n) {
      if (!(v > last)) continue;
      --size;  // the last one leaves
    } else {
      v = order_key(v);
    }
    size_t pos = size;
    for (; pos > 0 && v > val[pos - 1]; --pos) {
      val[pos] = val[pos - 1];
      out[pos] = out[pos - 1];
    }
    val[pos] = v;
    out[pos] = static_cast<int32_t>(i);
    ++size;
    last = val[size - 1];
  }
}

}  // namespace sable::sampling
