// The named model configurations `q3vl make-checkpoint --preset NAME` knows.
//
//   tiny         real vocabulary (151936) and tokenizer, narrow widths, tied lm_head;
//                for fast tests (about 21 MB of bf16 weights, most of it the embedding)
//   tiny-untied  separate lm_head, another GQA ratio, widths, depths, DeepStack taps
//                and mrope_section than tiny, so code cannot silently assume tiny's shapes
//   tiny-moe     Mixture of Experts (qwen3_vl_moe): 16 experts, top-4, one dense
//                mlp_only_layers layer; widths that make the expert layout unambiguous
//   2b, 4b       the real Qwen3-VL-2B/4B-Instruct dimensions (docs/reference/qwen3vl.md §1),
//                for benchmarks (speed does not depend on weight values)
//   30b-a3b, 235b-a22b  the real Qwen3-VL-30B-A3B / 235B-A22B dimensions (MoE, 128 experts,
//                top-8), for benchmarks; make-checkpoint --text-layers N writes a slice
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "q3vl/config.h"

namespace q3vl::checkpoint {

// Preset names, in the order they are listed to users.
std::vector<std::string> preset_names();

// The validated config of a preset. Throws q3vl::Error(usage) naming the preset
// and listing the known ones when `name` is not one of preset_names().
ModelConfig preset_config(std::string_view name);

}  // namespace q3vl::checkpoint
