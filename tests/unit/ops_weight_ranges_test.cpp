// The weight range registry (core/ops/weight_ranges.h): what the decode GEMV may read before it
// waits for the kernel ahead of it. Row slices filled one by one make one range; a lookup must
// lie inside a registered range; forgetting removes exactly the freed bytes.
#include <gtest/gtest.h>

#include <vector>

#include "core/ops/weight_ranges.h"

namespace sable::ops {
namespace {

TEST(WeightRanges, SlicesMergeAndLookupsMustFitInside) {
  std::vector<char> buf(4096);
  const char* b = buf.data();
  EXPECT_FALSE(is_weight_range(b, 16));
  register_weight_range(b, 1024);         // q rows
  register_weight_range(b + 1024, 512);   // k rows, touching
  register_weight_range(b + 1536, 512);   // v rows
  EXPECT_TRUE(is_weight_range(b, 2048));  // the fused matrix spans all three
  EXPECT_TRUE(is_weight_range(b + 1000, 100));
  EXPECT_FALSE(is_weight_range(b, 2049));
  EXPECT_FALSE(is_weight_range(b + 2048, 1));
  register_weight_range(b + 3000, 100);  // apart
  EXPECT_FALSE(is_weight_range(b + 2000, 1100));
  EXPECT_TRUE(is_weight_range(b + 3000, 100));
  register_weight_range(b + 1900, 1200);  // overlaps both: one range [0, 3100)
  EXPECT_TRUE(is_weight_range(b, 3100));
  forget_weight_ranges(b + 1000, 100);  // a hole
  EXPECT_FALSE(is_weight_range(b + 990, 20));
  EXPECT_TRUE(is_weight_range(b, 1000));
  EXPECT_TRUE(is_weight_range(b + 1100, 2000));
  forget_weight_ranges(b, 4096);
  EXPECT_FALSE(is_weight_range(b, 1));
  EXPECT_FALSE(is_weight_range(b + 1100, 1));
}

}  // namespace
}  // namespace sable::ops
