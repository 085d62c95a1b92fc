// The L2 prefetch plan (core/ops/prefetch_plan.h): what an attention call learns from the GEMMs
// after it, what it hands back a forward later, and the byte budget that bounds it.
#include <gtest/gtest.h>

#include <vector>

#include "core/ops/prefetch_plan.h"

namespace sable::ops {
namespace {

constexpr auto kA = PrefetchPlan::kAttention;
constexpr auto kL = PrefetchPlan::kLora;

TEST(PrefetchPlan, LearnsTheWeightsAfterEachAttentionCallForTheNextForward) {
  std::vector<char> w(1000);
  const char *o = w.data(), *gate_up = w.data() + 100, *down = w.data() + 600;
  int backend = 0;
  PrefetchPlan plan(450);
  // First forward: nothing learned yet.
  EXPECT_TRUE(plan.at_point(kA, &backend, 0).empty());
  EXPECT_TRUE(plan.recording());
  plan.on_weight(o, 100);
  plan.on_weight(gate_up, 500);  // 350 of it fit the budget
  EXPECT_FALSE(plan.recording());
  plan.on_weight(down, 200);  // past the budget: not kept
  EXPECT_TRUE(plan.at_point(kA, &backend, 1).empty());
  plan.on_weight(down, 200);
  plan.end_forward();
  EXPECT_FALSE(plan.recording());
  plan.on_weight(o, 100);  // after the forward: belongs to no call

  // Second forward: each call gets its own record, and records anew.
  const std::vector<PrefetchRange> l0 = plan.at_point(kA, &backend, 0);
  EXPECT_EQ(l0, (std::vector<PrefetchRange>{{o, 100}, {gate_up, 350}}));
  plan.on_weight(down, 50);
  const std::vector<PrefetchRange> l1 = plan.at_point(kA, &backend, 1);
  EXPECT_EQ(l1, (std::vector<PrefetchRange>{{down, 200}}));
  plan.end_forward();
  // Third forward: layer 0 now has what the second forward recorded, layer 1 nothing.
  EXPECT_EQ(plan.at_point(kA, &backend, 0), (std::vector<PrefetchRange>{{down, 50}}));
  EXPECT_TRUE(plan.at_point(kA, &backend, 1).empty());
}

TEST(PrefetchPlan, KeysByBackendAndSkipsARepeatedRange) {
  std::vector<char> w(100);
  int a = 0, b = 0;
  PrefetchPlan plan(1000);
  plan.at_point(kA, &a, 0);
  plan.on_weight(w.data(), 10);
  plan.on_weight(w.data(), 10);  // a composed op calling the GEMM again
  plan.on_weight(w.data() + 10, 0);
  plan.on_weight(nullptr, 10);
  plan.at_point(kA, &b, 0);  // another model's backend: its own record
  plan.on_weight(w.data() + 50, 20);
  plan.end_forward();
  EXPECT_EQ(plan.at_point(kA, &a, 0), (std::vector<PrefetchRange>{{w.data(), 10}}));
  EXPECT_EQ(plan.at_point(kA, &b, 0), (std::vector<PrefetchRange>{{w.data() + 50, 20}}));
}

TEST(PrefetchPlan, ZeroBudgetRecordsNothing) {
  std::vector<char> w(10);
  int backend = 0;
  PrefetchPlan plan(0);
  EXPECT_TRUE(plan.at_point(kA, &backend, 0).empty());
  EXPECT_FALSE(plan.recording());
  plan.on_weight(w.data(), 10);
  EXPECT_TRUE(plan.at_point(kA, &backend, 0).empty());
}

// At batch 64 the attention call after the q|k|v LoRA call does not prefetch, but it must not take
// the o projection's weight from the LoRA point: each channel keeps its own open record.
TEST(PrefetchPlan, ChannelsRecordIndependently) {
  std::vector<char> w(300);
  const char *o = w.data(), *gate_up = w.data() + 100;
  int backend = 0;
  PrefetchPlan plan(1000);
  plan.at_point(kL, &backend, 0);  // the LoRA call of layer 0's q|k|v
  plan.at_point(kA, &backend, 0);  // layer 0's attention
  plan.on_weight(o, 100);
  plan.at_point(kL, &backend, 3);  // the LoRA call of o
  plan.on_weight(gate_up, 200);
  plan.end_forward();
  EXPECT_EQ(plan.at_point(kL, &backend, 0), (std::vector<PrefetchRange>{{o, 100}}));
  EXPECT_EQ(plan.at_point(kA, &backend, 0), (std::vector<PrefetchRange>{{o, 100}, {gate_up, 200}}));
  EXPECT_EQ(plan.at_point(kL, &backend, 3), (std::vector<PrefetchRange>{{gate_up, 200}}));
}

// The GEMM channel: a point per GEMM whose record is what follows it, never the GEMM's own weight,
// with its own budget.
TEST(PrefetchPlan, GemmPointsSkipTheirOwnWeightAndHaveTheirOwnBudget) {
  std::vector<char> w(300);
  const char *a = w.data(), *b = w.data() + 100;
  int backend = 0;
  PrefetchPlan plan(0);
  plan.set_budget(PrefetchPlan::kGemm, 64);
  EXPECT_EQ(plan.budget(PrefetchPlan::kGemm), 64u);
  EXPECT_TRUE(plan.at_point(kA, &backend, 0).empty());  // attention off
  plan.on_weight(a, 100);
  plan.at_point(PrefetchPlan::kGemm, &backend, 0, a);
  plan.on_weight(a, 100);  // the same GEMM again (composed): its own weight, not recorded
  plan.on_weight(b, 100);
  plan.end_forward();
  EXPECT_EQ(plan.at_point(PrefetchPlan::kGemm, &backend, 0, a),
            (std::vector<PrefetchRange>{{b, 64}}));
  EXPECT_TRUE(plan.at_point(kA, &backend, 0).empty());
}

}  // namespace
}  // namespace sable::ops
