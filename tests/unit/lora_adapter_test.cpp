// PEFT adapter loading and the LoRA manager without a model: synthetic adapters written to a temp
// folder and a made-up base model (two layers, hidden 8, q 8 rows, k/v 4 rows, intermediate 12).
// Covers the scaling (alpha/r, rsLoRA alpha/sqrt(r)), fused q|k|v and gate|up targets, every error
// the issue names (unknown adapter, rank above the limit, a target the model lacks, a shape that
// does not fit) and more, the registry (holds, unload, ids never reused) and the slot pool
// (segments, least-recently-used eviction).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/lora/lora_manager.h"
#include "core/ops/lora_step_block.h"
#include "core/runner/device_memory.h"
#include "core/weights/safetensors_writer.h"

namespace {

namespace fs = std::filesystem;
using sable::lora::BaseModel;
using sable::lora::LoraManager;

constexpr int64_t kHidden = 8, kQ = 8, kKv = 4, kInter = 12;

BaseModel toy_base(uint32_t modules = (1u << SABLE_LORA_MODULE_COUNT) - 1u) {
  BaseModel b;
  b.num_layers = 2;
  b.q_rows = kQ;
  b.kv_rows = kKv;
  b.inter_rows = kInter;
  b.lora_modules = modules;
  b.plugin = "toy";
  b.weight_shape = [](const std::string& name) -> std::optional<std::vector<int64_t>> {
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      if (name == p + "self_attn.q_proj.weight") return std::vector<int64_t>{kQ, kHidden};
      if (name == p + "self_attn.k_proj.weight" || name == p + "self_attn.v_proj.weight")
        return std::vector<int64_t>{kKv, kHidden};
      if (name == p + "self_attn.o_proj.weight") return std::vector<int64_t>{kHidden, kQ};
      if (name == p + "self_attn.qkv_proj.weight") return std::vector<int64_t>{kQ + 2 * kKv, kHidden};
      if (name == p + "mlp.gate_up_proj.weight") return std::vector<int64_t>{2 * kInter, kHidden};
      if (name == p + "mlp.down_proj.weight") return std::vector<int64_t>{kHidden, kInter};
      if (name == p + "mlp.experts.0.up_proj.weight") return std::vector<int64_t>{kInter, kHidden};
    }
    return std::nullopt;
  };
  return b;
}

// Writes a PEFT-style adapter: `targets` maps a module path to (K, N); A[i] = 0.01 * (i + 1),
// B[i] = 1 (so the folded B equals the scaling).
struct AdapterSpec {
  int r = 2;
  double alpha = 4;
  bool rslora = false;
  std::map<std::string, std::pair<int64_t, int64_t>> targets;
  nlohmann::json extra = nlohmann::json::object();
};

fs::path write_adapter(const std::string& name, const AdapterSpec& s) {
  const fs::path dir = fs::temp_directory_path() / ("sable_lora_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  nlohmann::json c = {{"peft_type", "LORA"}, {"r", s.r}, {"lora_alpha", s.alpha},
                      {"use_rslora", s.rslora}, {"target_modules", nlohmann::json::array()}};
  c.update(s.extra);
  std::ofstream(dir / "adapter_config.json") << c.dump();
  sable::weights::SafetensorsWriter w;
  for (const auto& [path, kn] : s.targets) {
    const auto [k, n] = kn;
    std::vector<float> a(static_cast<size_t>(s.r * k)), b(static_cast<size_t>(n * s.r), 1.0f);
    for (size_t i = 0; i < a.size(); ++i) a[i] = 0.01f * static_cast<float>(i + 1);
    w.add_f32("base_model.model." + path + ".lora_A.weight", SABLE_DTYPE_F32, {s.r, k}, a);
    w.add_f32("base_model.model." + path + ".lora_B.weight", SABLE_DTYPE_BF16, {n, s.r}, b);
  }
  w.write(dir / "adapter_model.safetensors");
  return dir;
}

std::string load_error(const fs::path& dir, const BaseModel& base = toy_base(), int max_rank = 8) {
  try {
    sable::lora::load_peft_adapter("ad", dir, base, max_rank);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

const std::string kQ0 = "model.layers.0.self_attn.q_proj";

TEST(LoraAdapter, ScalingIsFoldedIntoB) {
  AdapterSpec s;
  s.r = 4;
  s.alpha = 8;
  s.targets = {{kQ0, {kHidden, kQ}}, {"model.layers.1.mlp.down_proj", {kInter, kHidden}}};
  auto a = sable::lora::load_peft_adapter("ad", write_adapter("plain", s), toy_base(), 8);
  EXPECT_EQ(a.rank, 4);
  EXPECT_DOUBLE_EQ(a.scaling, 2.0);  // alpha / r
  ASSERT_EQ(a.targets.size(), 2u);
  EXPECT_EQ(a.targets[0].module, SABLE_LORA_Q);
  EXPECT_EQ(a.targets[1].layer, 1);
  EXPECT_EQ(a.targets[1].module, SABLE_LORA_DOWN);
  EXPECT_FLOAT_EQ(a.targets[0].b[0], 2.0f);
  EXPECT_FLOAT_EQ(a.targets[0].a[3], 0.04f);
  EXPECT_EQ(a.modules, (std::vector<std::string>{"down_proj", "q_proj"}));
  s.rslora = true;
  auto r = sable::lora::load_peft_adapter("ad", write_adapter("rs", s), toy_base(), 8);
  EXPECT_DOUBLE_EQ(r.scaling, 4.0);  // alpha / sqrt(r)
  EXPECT_FLOAT_EQ(r.targets[0].b[0], 4.0f);
}

TEST(LoraAdapter, FusedTargetsSplitIntoTheirParts) {
  AdapterSpec s;
  s.targets = {{"model.layers.0.self_attn.qkv_proj", {kHidden, kQ + 2 * kKv}},
               {"model.layers.1.mlp.gate_up_proj", {kHidden, 2 * kInter}}};
  auto a = sable::lora::load_peft_adapter("ad", write_adapter("fused", s), toy_base(), 8);
  ASSERT_EQ(a.targets.size(), 5u);
  EXPECT_EQ(a.targets[0].module, SABLE_LORA_Q);
  EXPECT_EQ(a.targets[0].n, kQ);
  EXPECT_EQ(a.targets[1].module, SABLE_LORA_K);
  EXPECT_EQ(a.targets[2].n, kKv);
  EXPECT_EQ(a.targets[3].module, SABLE_LORA_GATE);
  EXPECT_EQ(a.targets[4].n, kInter);
  EXPECT_EQ(a.targets[1].a, a.targets[0].a);  // the parts share A
}

TEST(LoraAdapter, ErrorsNameTheAdapterAndTheProblem) {
  auto expect_error = [](const AdapterSpec& s, const std::string& want, const BaseModel& base) {
    const std::string e = load_error(write_adapter("err", s), base);
    EXPECT_NE(e.find("LoRA adapter 'ad'"), std::string::npos) << e;
    EXPECT_NE(e.find(want), std::string::npos) << "want '" << want << "' in: " << e;
  };
  AdapterSpec ok;
  ok.targets = {{kQ0, {kHidden, kQ}}};
  AdapterSpec big = ok;
  big.r = 16;
  expect_error(big, "rank 16 is above --max-lora-rank 8", toy_base());
  AdapterSpec missing = ok;
  missing.targets = {{"model.layers.0.self_attn.w_pack", {kHidden, kQ}}};
  expect_error(missing, "'model.layers.0.self_attn.w_pack' does not exist in the base model",
               toy_base());
  AdapterSpec layer = ok;
  layer.targets = {{"model.layers.5.self_attn.q_proj", {kHidden, kQ}}};
  expect_error(layer, "does not exist in the base model", toy_base());
  AdapterSpec shape = ok;
  shape.targets = {{kQ0, {kHidden + 1, kQ}}};
  expect_error(shape, "does not fit the base model", toy_base());
  AdapterSpec expert = ok;
  expert.targets = {{"model.layers.0.mlp.experts.0.up_proj", {kHidden, kInter}}};
  expect_error(expert, "MoE experts", toy_base());
  expect_error(ok, "does not apply LoRA to q_proj", toy_base(1u << SABLE_LORA_V));
  AdapterSpec dora = ok;
  dora.extra = {{"use_dora", true}};
  expect_error(dora, "DoRA", toy_base());
  AdapterSpec prefix = ok;
  prefix.extra = {{"peft_type", "PREFIX_TUNING"}};
  expect_error(prefix, "only LORA adapters", toy_base());
  const fs::path empty = fs::temp_directory_path() / "sable_lora_test_empty_dir";
  fs::create_directories(empty);
  EXPECT_NE(load_error(empty).find("has no adapter_config.json"), std::string::npos);
}

TEST(LoraManager, RegistryHoldsAndIds) {
  auto memory = sable::runner::make_cpu_memory();
  sable::lora::LoraOptions o;
  o.max_loras_per_batch = 2;
  o.max_lora_rank = 8;
  o.compute_dtype = SABLE_DTYPE_F32;
  o.max_batch_tokens = 64;
  LoraManager m(o, toy_base(), *memory);
  AdapterSpec s;
  s.targets = {{kQ0, {kHidden, kQ}}};
  const fs::path dir = write_adapter("reg", s);
  const int32_t first = m.load("x", dir.string()).id;
  EXPECT_THROW(m.load("x", dir.string()), std::invalid_argument);  // the name is taken
  EXPECT_THROW(m.load("bad name!", dir.string()), std::invalid_argument);
  try {
    m.acquire("nope");
    ADD_FAILURE() << "acquire of an unknown name succeeded";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown LoRA adapter 'nope' (loaded: x)"),
              std::string::npos)
        << e.what();
  }
  {
    const auto hold = m.acquire("x");
    EXPECT_EQ(hold.id, first);
    EXPECT_THROW(m.unload("x"), std::invalid_argument);  // a request holds it
  }
  m.unload("x");
  EXPECT_THROW(m.unload("x"), std::invalid_argument);
  EXPECT_TRUE(m.list().empty());
  EXPECT_GT(m.load("x", dir.string()).id, first);  // a reloaded adapter gets a fresh id
}

TEST(LoraManager, SegmentsAndLeastRecentlyUsedEviction) {
  auto memory = sable::runner::make_cpu_memory();
  sable::lora::LoraOptions o;
  o.max_loras_per_batch = 2;
  o.max_lora_rank = 4;
  o.compute_dtype = SABLE_DTYPE_F32;
  o.max_batch_tokens = 64;
  LoraManager m(o, toy_base(), *memory);
  AdapterSpec s;
  s.targets = {{kQ0, {kHidden, kQ}}};
  const int32_t x = m.load("x", write_adapter("x", s).string()).id;
  const int32_t y = m.load("y", write_adapter("y", s).string()).id;
  const int32_t z = m.load("z", write_adapter("z", s).string()).id;
  EXPECT_EQ(m.prepare(std::vector<int32_t>{0, 0}, std::vector<int32_t>{3, 1}), nullptr);
  const std::vector<int32_t> ids = {x, x, 0, y, y}, rows = {3, 1, 2, 1, 1};
  const auto* b = m.prepare(ids, rows);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->num_segments, 3);  // x x | base | y y
  EXPECT_EQ(std::vector<int32_t>(b->seg_start, b->seg_start + 4), (std::vector<int32_t>{0, 4, 6, 8}));
  const int32_t slot_x = b->seg_slot[0], slot_y = b->seg_slot[2];
  EXPECT_EQ(b->seg_slot[1], -1);
  EXPECT_NE(slot_x, slot_y);
  EXPECT_EQ(b->slot_rank[slot_x * SABLE_LORA_MODULE_COUNT + SABLE_LORA_Q], 2);
  EXPECT_EQ(b->slot_rank[slot_x * SABLE_LORA_MODULE_COUNT + SABLE_LORA_K], 0);
  const auto& w = b->weights[0 * SABLE_LORA_MODULE_COUNT + SABLE_LORA_Q];
  ASSERT_NE(w.a, nullptr);
  EXPECT_EQ(b->weights[1 * SABLE_LORA_MODULE_COUNT + SABLE_LORA_Q].a, nullptr);  // layer 1 untargeted
  EXPECT_EQ(b->max_rank, 8);  // max_lora_rank 4 rounded up to the pool's rank stride
  EXPECT_FLOAT_EQ(static_cast<const float*>(w.a)[slot_x * b->max_rank * kHidden + 1], 0.02f);
  EXPECT_EQ(b->step_device, nullptr);  // host memory: the CPU op reads the host fields
  // Use x again; then z must evict y (least recently used), not x.
  m.prepare(std::vector<int32_t>{x}, std::vector<int32_t>{1});
  const auto* c = m.prepare(std::vector<int32_t>{z}, std::vector<int32_t>{1});
  EXPECT_EQ(c->seg_slot[0], slot_y);
  const auto* d = m.prepare(std::vector<int32_t>{x}, std::vector<int32_t>{1});
  EXPECT_EQ(d->seg_slot[0], slot_x);  // still resident
  EXPECT_THROW(m.prepare(std::vector<int32_t>{x, y, z}, std::vector<int32_t>{1, 1, 1}),
               std::invalid_argument);  // three adapters, two slots
}

// The step block the CUDA kernels read: each slot's rows in batch order, kLoraTileRows a tile, the
// pool pointers and ranks beside them; a batch needing more tiles than it holds is refused.
TEST(LoraStepBlock, TilesGroupRowsBySlot) {
  using sable::ops::kLoraTileRows;
  sable::ops::LoraStepBlock block(/*layers=*/1, /*slots=*/2, /*max_rows=*/12);
  EXPECT_EQ(sable::ops::lora_max_tiles(12, 2), 4);
  EXPECT_EQ(sable::ops::lora_max_tiles(3, 16), 3);
  std::vector<sable::ops::LoraWeights> w(SABLE_LORA_MODULE_COUNT);
  float pool = 0;
  w[SABLE_LORA_Q] = {&pool, &pool, 8, 8};
  std::vector<int32_t> ranks(2 * SABLE_LORA_MODULE_COUNT, 0);
  ranks[SABLE_LORA_Q] = 4;
  std::vector<int32_t> rows = {1, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 1};  // slot 0: 9 rows
  const size_t bytes = block.fill(w, ranks, rows);
  const auto tiles = block.tiles();
  ASSERT_EQ(tiles.size(), 3u);
  EXPECT_EQ(tiles[0].slot, 0);
  EXPECT_EQ(tiles[0].rows, kLoraTileRows);
  EXPECT_EQ(tiles[0].row[0], 1);
  EXPECT_EQ(tiles[0].row[2], 4);  // row 3 has no adapter
  EXPECT_EQ(tiles[1].slot, 0);
  EXPECT_EQ(tiles[1].rows, 1);
  EXPECT_EQ(tiles[1].row[0], 10);
  EXPECT_EQ(tiles[2].slot, 1);
  EXPECT_EQ(tiles[2].rows, 2);
  EXPECT_EQ(tiles[2].row[1], 11);
  EXPECT_EQ(bytes, block.capacity_bytes() - sizeof(sable::ops::LoraTile));  // one tile unused
  // The image as the kernels see it (a host "device" address works the same way).
  const auto view = block.view(const_cast<void*>(block.host()));
  EXPECT_EQ(view.a[SABLE_LORA_Q], &pool);
  EXPECT_EQ(view.b[SABLE_LORA_K], nullptr);
  EXPECT_EQ(view.slot_rank[SABLE_LORA_Q], 4);
  EXPECT_EQ(*view.num_tiles, 3);
  EXPECT_EQ(view.tiles[2].row[0], 0);
  rows.assign(12, 2);
  EXPECT_THROW(block.fill(w, ranks, rows), std::invalid_argument);  // slot 2 of 2
  rows.assign(33, 0);
  EXPECT_THROW(block.fill(w, ranks, rows), std::invalid_argument);  // 5 tiles, it holds 4
}

}  // namespace
