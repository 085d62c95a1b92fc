// Reading a PEFT LoRA adapter and checking it against the base model (see peft_adapter.h).
#include "core/lora/peft_adapter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <stdexcept>

#include "core/weights/dtype_convert.h"
#include "core/weights/safetensors.h"
#include "sable/ops.h"

namespace sable::lora {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModuleNames[SABLE_LORA_MODULE_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

// Throws "LoRA adapter 'name': <message>".
struct Fail {
  std::string name;
  template <class... Args>
  [[noreturn]] void operator()(fmt::format_string<Args...> f, Args&&... args) const {
    throw std::invalid_argument(
        fmt::format("LoRA adapter '{}': {}", name, fmt::format(f, std::forward<Args>(args)...)));
  }
};

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// One tensor of the file as fp32.
std::vector<float> to_f32(const weights::SafetensorsFile& file, const weights::TensorInfo& t,
                          const Fail& fail) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (!weights::convert(t.dtype, file.bytes(t).data(), SABLE_DTYPE_F32, out.data(), out.size()))
    fail("tensor '{}' has dtype {}, expected F32, BF16 or F16", t.name, t.dtype);
  return out;
}

struct Pair {
  const weights::TensorInfo* a = nullptr;
  const weights::TensorInfo* b = nullptr;
};

// A boolean config key; absent or null reads as false.
bool flag(const nlohmann::json& c, const char* key) {
  return c.contains(key) && c[key].is_boolean() && c[key].get<bool>();
}

// Reads and checks adapter_config.json; fills rank, alpha, rslora, scaling and base_model.
void read_config(const fs::path& file, const Fail& fail, int32_t max_rank, LoraAdapter& out) {
  std::ifstream in(file);
  if (!in) fail("cannot read {}", file.string());
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{} is not valid JSON ({})", file.string(), e.what());
  }
  if (!c.is_object()) fail("{} must hold a JSON object", file.string());
  const std::string type =
      c.contains("peft_type") && c["peft_type"].is_string() ? c["peft_type"].get<std::string>() : "LORA";
  if (type != "LORA") fail("peft_type is '{}'; only LORA adapters are served", type);
  if (flag(c, "use_dora")) fail("use_dora is set; DoRA adapters are not supported");
  if (flag(c, "lora_bias")) fail("lora_bias is set; LoRA biases are not supported");
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (c.contains(key) && c[key].is_object() && !c[key].empty())
      fail("{} is set; per-module ranks and alphas are not supported", key);
  }
  if (c.contains("modules_to_save") && c["modules_to_save"].is_array() &&
      !c["modules_to_save"].empty())
    fail("modules_to_save ({}) is set; only LoRA deltas are served, not replaced modules",
         c["modules_to_save"].dump());
  if (!c.contains("r") || !c["r"].is_number_integer() || c["r"].get<int64_t>() <= 0)
    fail("adapter_config.json needs a positive integer 'r'");
  const int64_t r = c["r"].get<int64_t>();
  if (max_rank > 0 && r > max_rank)
    fail("rank {} is above --max-lora-rank {}", r, max_rank);
  out.rank = static_cast<int32_t>(r);
  out.alpha = c.contains("lora_alpha") && c["lora_alpha"].is_number() ? c["lora_alpha"].get<double>()
                                                                       : 8.0;  // PEFT's default
  out.use_rslora = flag(c, "use_rslora");
  out.scaling = out.use_rslora ? out.alpha / std::sqrt(static_cast<double>(r)) : out.alpha / r;
  if (c.contains("base_model_name_or_path") && c["base_model_name_or_path"].is_string())
    out.base_model = c["base_model_name_or_path"].get<std::string>();
}

}  // namespace

const char* module_name(int32_t module) {
  return module >= 0 && module < SABLE_LORA_MODULE_COUNT ? kModuleNames[module] : "unknown";
}

LoraAdapter load_peft_adapter(const std::string& name, const fs::path& dir, const BaseModel& base,
                              int32_t max_lora_rank) {
  const Fail fail{name};
  LoraAdapter out;
  out.name = name;
  out.path = dir.string();
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / f, ec))
      fail("{} has no {} (a PEFT LoRA adapter folder holds adapter_config.json and "
           "adapter_model.safetensors)",
           dir.string(), f);
  }
  read_config(dir / "adapter_config.json", fail, max_lora_rank, out);

  std::unique_ptr<weights::SafetensorsFile> file;
  try {
    file = weights::SafetensorsFile::open(dir / "adapter_model.safetensors");
  } catch (const std::exception& e) {
    fail("{}", e.what());
  }
  // Pair lora_A / lora_B by module path ("model.layers.0.self_attn.q_proj").
  std::map<std::string, Pair> pairs;
  static const std::regex kKey(R"(^(?:base_model\.model\.)?(.+)\.lora_([AB])\.weight$)");
  for (const auto& t : file->tensors()) {
    std::smatch m;
    if (!std::regex_match(t.name, m, kKey))
      fail("tensor '{}' is not a lora_A/lora_B weight (DoRA magnitudes, biases, embedding "
           "adapters and saved modules are not supported)",
           t.name);
    Pair& p = pairs[m[1].str()];
    (m[2] == "A" ? p.a : p.b) = &t;
  }
  if (pairs.empty()) fail("adapter_model.safetensors holds no LoRA weights");

  static const std::regex kModule(
      R"(^(?:.*\.)?layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|qkv_proj|gate_up_proj)$)");
  std::set<std::string> names;
  for (const auto& [path, p] : pairs) {
    if (p.a == nullptr || p.b == nullptr)
      fail("module '{}' has lora_{} but no lora_{}", path, p.a ? "A" : "B", p.a ? "B" : "A");
    const auto base_shape = base.weight_shape(path + ".weight");
    std::smatch m;
    if (!std::regex_match(path, m, kModule)) {
      if (!base_shape) fail("target module '{}' does not exist in the base model", path);
      fail("target module '{}' is not served with LoRA (q/k/v/o_proj and gate/up/down_proj of "
           "the attention and dense MLP blocks are; MoE experts, embeddings and lm_head are not)",
           path);
    }
    if (!base_shape)
      fail("target module '{}' does not exist in the base model (no tensor '{}.weight')", path,
           path);
    const int64_t layer = std::stoll(m[1].str());
    const std::string kind = m[2].str();
    if (layer >= base.num_layers)
      fail("target module '{}' is in layer {}, but the model has {} layers", path, layer,
           base.num_layers);
    const auto& as = p.a->shape;
    const auto& bs = p.b->shape;
    const auto& ws = *base_shape;
    if (as.size() != 2 || bs.size() != 2 || ws.size() != 2 || as[0] != out.rank ||
        bs[1] != out.rank || as[1] != ws[1] || bs[0] != ws[0])
      fail("'{}' does not fit the base model: lora_A {} and lora_B {} with rank {} need the base "
           "weight [N, K] = [{}, {}], which is {}",
           path, shape_str(as), shape_str(bs), out.rank, bs.empty() ? 0 : bs[0],
           as.size() < 2 ? 0 : as[1], shape_str(ws));
    const int64_t k = as[1], n = bs[0];
    std::vector<float> a = to_f32(*file, *p.a, fail);
    std::vector<float> b = to_f32(*file, *p.b, fail);
    for (float& v : b) v = static_cast<float>(v * out.scaling);
    // The parts of the target: (module, first row of B, rows).
    std::vector<std::tuple<int32_t, int64_t, int64_t>> parts;
    if (kind == "qkv_proj") {
      if (n != base.q_rows + 2 * base.kv_rows)
        fail("'{}' has {} rows, but q|k|v of this model are {} + {} + {}", path, n, base.q_rows,
             base.kv_rows, base.kv_rows);
      parts = {{SABLE_LORA_Q, 0, base.q_rows},
               {SABLE_LORA_K, base.q_rows, base.kv_rows},
               {SABLE_LORA_V, base.q_rows + base.kv_rows, base.kv_rows}};
    } else if (kind == "gate_up_proj") {
      if (n != 2 * base.inter_rows)
        fail("'{}' has {} rows, but gate|up of this model are {} + {}", path, n, base.inter_rows,
             base.inter_rows);
      parts = {{SABLE_LORA_GATE, 0, base.inter_rows}, {SABLE_LORA_UP, base.inter_rows, base.inter_rows}};
    } else {
      const int32_t mod = static_cast<int32_t>(
          std::find(std::begin(kModuleNames), std::end(kModuleNames), kind) - std::begin(kModuleNames));
      parts = {{mod, 0, n}};
    }
    for (const auto& [mod, first, rows] : parts) {
      if ((base.lora_modules & (1u << mod)) == 0)
        fail("target module '{}': the model plugin '{}' does not apply LoRA to {}", path,
             base.plugin, kModuleNames[mod]);
      LoraTarget t;
      t.layer = static_cast<int32_t>(layer);
      t.module = mod;
      t.k = k;
      t.n = rows;
      t.a = a;
      t.b.assign(b.begin() + first * out.rank, b.begin() + (first + rows) * out.rank);
      out.targets.push_back(std::move(t));
      names.insert(kModuleNames[mod]);
    }
  }
  std::sort(out.targets.begin(), out.targets.end(), [](const LoraTarget& x, const LoraTarget& y) {
    return std::tie(x.layer, x.module) < std::tie(y.layer, y.module);
  });
  for (size_t i = 1; i < out.targets.size(); ++i) {
    if (out.targets[i].layer == out.targets[i - 1].layer &&
        out.targets[i].module == out.targets[i - 1].module)
      fail("layer {} {} is targeted twice (fused and separate weights)", out.targets[i].layer,
           kModuleNames[out.targets[i].module]);
  }
  out.modules.assign(names.begin(), names.end());
  return out;
}

}  // namespace sable::lora
