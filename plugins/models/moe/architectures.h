// The per-architecture config readers of the "moe" plugin: each turns config.json into the
// MoeOptions of the shared MoE decoder (moe_decoder.h). One .cpp file per architecture.
#pragma once

#include "moe/moe_decoder.h"

namespace sable::models {

MoeOptions qwen2_moe_options(const cpp::Host& host);  // qwen2_moe.cpp
MoeOptions qwen3_moe_options(const cpp::Host& host);  // qwen3_moe.cpp
MoeOptions mixtral_options(const cpp::Host& host);    // mixtral.cpp

}  // namespace sable::models
