// The fixture of the CUDA LoRA ops' GPU tests (cuda_lora_ops_test.cpp: the kernels against a
// double reference; cuda_lora_fork_test.cpp: the delta forked beside the base GEMM and added by
// the op after it): random pools per (layer, module), the step block of a batch's rows, and a
// double reference of out += (x · Aᵀ) · Bᵀ per row's slot.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cuda/cuda_ops.h"
#include "core/ops/cuda/kernels.h"
#include "core/ops/cuda/lora_fork.h"
#include "core/ops/cuda/lora_pending.h"
#include "core/ops/lora_step_block.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest::lora {

constexpr int32_t kC = SABLE_LORA_MODULE_COUNT;
constexpr int32_t kLayers = 2, kLayer = 1;  // the calls use layer 1; layer 0 holds other pools
using ops::LoraWeights;

// Host values (bf16-representable when the device dtype is bf16) and their device copy.
struct Buf {
  std::vector<float> host;
  DeviceBuffer dev;
  int32_t dtype = SABLE_DTYPE_BF16;
  void upload() {
    dev = DeviceBuffer(host.size() * (dtype == SABLE_DTYPE_F32 ? 4 : 2));
    sync();
  }
  void sync() { upload_floats(dev, host, dtype); }  // host -> device again (same size)
  std::vector<float> fetch() const { return download_floats(dev, host.size(), dtype); }
};

class CudaLoraOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
    arena_ = std::make_unique<ops::Arena>(std::make_unique<ops::CudaBacking>(), 64 << 20);
    ctx_.device_type = SABLE_DEVICE_CUDA;
    ctx_.arena = arena_.get();
  }

  float rnd(float scale) {
    const float v = nd_(rng_) * scale;
    return dtype_ == SABLE_DTYPE_F32 ? v : from_bf16(to_bf16(v));
  }
  Buf random(size_t n, float scale) {
    Buf b;
    b.dtype = dtype_;
    b.host.resize(n);
    for (float& v : b.host) v = rnd(scale);
    b.upload();
    return b;
  }

  // A pool [S, R, K] / [S, N, R] for (layer, module), random everywhere: A's rows and B's
  // columns past a slot's rank are garbage the kernels must not use.
  void make_pool(int32_t layer, int32_t module, int64_t k, int64_t n) {
    Buf a = random(static_cast<size_t>(slots_ * r_ * k), 1.0f / std::sqrt(float(k)));
    Buf b = random(static_cast<size_t>(slots_ * n * r_), 0.5f);
    const size_t at = static_cast<size_t>(layer * kC + module);
    weights_[at] = {a.dev.get(), b.dev.get(), k, n};
    pools_a_[at] = std::move(a);
    pools_b_[at] = std::move(b);
  }
  int32_t rank(int32_t slot, int32_t module) const {
    return slot_rank_[static_cast<size_t>(slot * kC + module)];
  }

  void init(int32_t slots, int32_t r_stride, int32_t rows, int32_t dtype) {
    slots_ = slots;
    r_ = r_stride;
    rows_ = rows;
    dtype_ = dtype;
    weights_.assign(kLayers * kC, {});
    pools_a_.clear();
    pools_b_.clear();
    pools_a_.resize(kLayers * kC);
    pools_b_.resize(kLayers * kC);
    slot_rank_.assign(static_cast<size_t>(slots * kC), 0);
    block_ = std::make_unique<ops::LoraStepBlock>(kLayers, slots, rows);
    block_dev_ = DeviceBuffer(block_->capacity_bytes());
  }

  // Writes the step block for `row_slot` and uploads it (what the executor does per forward).
  ops::LoraBatch batch(const std::vector<int32_t>& row_slot) {
    const size_t bytes = block_->fill(weights_, slot_rank_, row_slot);
    EXPECT_EQ(cudaMemcpy(block_dev_.get(), block_->host(), bytes, cudaMemcpyHostToDevice),
              cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // a pageable copy may return before its DMA
    ops::LoraBatch lb;
    lb.num_layers = kLayers;
    lb.num_slots = slots_;
    lb.max_rank = r_;
    lb.dtype = dtype_;
    lb.weights = weights_.data();
    lb.slot_rank = slot_rank_.data();
    lb.num_tokens = rows_;
    lb.device = block_->view(block_dev_.get());
    lb.step_host = block_->host();
    lb.step_device = block_dev_.get();
    lb.step_bytes = bytes;
    return lb;
  }

  // out (host values: the base projection) plus every adapter delta of `modules` at layer kLayer,
  // in double; out is [T, width] with module i's columns at col0[i].
  std::vector<float> reference(const Buf& x, int64_t k, const Buf& out, int64_t width,
                               const std::vector<int32_t>& modules,
                               const std::vector<int64_t>& col0,
                               const std::vector<int32_t>& row_slot) const {
    std::vector<float> ref = out.host;
    for (int32_t t = 0; t < static_cast<int32_t>(row_slot.size()); ++t) {
      const int32_t s = row_slot[static_cast<size_t>(t)];
      if (s < 0) continue;
      for (size_t i = 0; i < modules.size(); ++i) {
        const size_t at = static_cast<size_t>(kLayer * kC + modules[i]);
        const LoraWeights& w = weights_[at];
        const int32_t r = rank(s, modules[i]);
        if (w.a == nullptr || r == 0) continue;
        std::vector<double> shrunk(static_cast<size_t>(r), 0.0);
        for (int32_t j = 0; j < r; ++j)
          for (int64_t e = 0; e < k; ++e)
            shrunk[j] += double(x.host[static_cast<size_t>(t * k + e)]) *
                         pools_a_[at].host[static_cast<size_t>((s * r_ + j) * k + e)];
        for (int64_t c = 0; c < w.n; ++c) {
          double d = 0;
          for (int32_t j = 0; j < r; ++j)
            d += shrunk[j] * pools_b_[at].host[static_cast<size_t>((s * w.n + c) * r_ + j)];
          float& o = ref[static_cast<size_t>(t * width + col0[i] + c)];
          o = static_cast<float>(o + d);
        }
      }
    }
    return ref;
  }

  // Runs lora_stacked on views of `out` and checks it against the reference.
  void check(const Buf& x, int64_t k, Buf& out, int64_t width, int32_t first,
             const std::vector<int64_t>& n, const std::vector<int32_t>& row_slot, bool run = true) {
    std::vector<int32_t> modules;
    std::vector<int64_t> col0;
    int64_t c = 0;
    for (size_t i = 0; i < n.size(); ++i) {
      modules.push_back(first + static_cast<int32_t>(i));
      col0.push_back(c);
      c += n[i];
    }
    if (run) {
      ops::LoraBatch lb = batch(row_slot);
      ctx_.lora = &lb;
      launch(x, k, out, width, first, n);
      ctx_.lora = nullptr;
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = out.fetch();
    const std::vector<float> want = reference(x, k, out, width, modules, col0, row_slot);
    EXPECT_LT(rel_l2(got, want), dtype_ == SABLE_DTYPE_F32 ? 1e-5 : 1e-2);
    for (size_t t = 0; t < row_slot.size(); ++t)
      if (row_slot[t] < 0)
        for (int64_t e = 0; e < width; ++e)
          ASSERT_EQ(got[t * width + e], out.host[t * width + e])
              << "row " << t << " has no adapter";
  }

  void forked_beside_gemm(std::vector<std::vector<float>>* outputs);
  void consumers(std::vector<std::vector<float>>* outputs, bool fused, int32_t rows = 24);

  void launch(const Buf& x, int64_t k, Buf& out, int64_t width, int32_t first,
              const std::vector<int64_t>& n) {
    SableTensor xt = cuda_tensor(x.dev.get(), dtype_, {rows_, k});
    std::vector<SableTensor> outs;
    int64_t c = 0;
    for (int64_t ni : n) {
      SableTensor full = cuda_tensor(out.dev.get(), dtype_, {rows_, width});
      outs.push_back(cpp::narrow(full, 1, c, ni));
      c += ni;
    }
    ASSERT_EQ(ops::cuda_ops()->lora_stacked(&ctx_, kLayer, first, static_cast<int32_t>(n.size()),
                                            &xt, outs.data()),
              SABLE_OK)
        << (ctx_.last_error ? ctx_.last_error : "");
  }

  std::unique_ptr<ops::Arena> arena_;
  SableOpsContext ctx_;
  std::mt19937 rng_{17};
  std::normal_distribution<float> nd_{0.0f, 1.0f};
  int32_t slots_ = 0, r_ = 0, rows_ = 0, dtype_ = SABLE_DTYPE_BF16;
  std::vector<LoraWeights> weights_;
  std::vector<Buf> pools_a_, pools_b_;
  std::vector<int32_t> slot_rank_;
  std::unique_ptr<ops::LoraStepBlock> block_;
  DeviceBuffer block_dev_;
};

}  // namespace sable::gputest::lora
