// GPTQ statistics for the experts of a sparse MoE block (builder/text_moe.h), each from
// the calibration tokens routed to it.
//
// The calibration decoder publishes the block's input x (the normalised hidden state that
// the router and every expert's fc1 read) as linear_input.<layer>.mlp.experts. When the
// block is quantized, the router runs on those rows at float32 from the checkpoint's
// weight (the graph's router is float32 too), each row goes to its top-k experts, and
//   fc1 (gate/up rows) of expert e:  H1_e = sum of x x^T over the rows routed to e     [H, H]
//   fc2 (down)         of expert e:  H2_e = sum of a a^T, a = silu(gate_e x) * up_e x  [I, I]
// with a from the full-precision fc1, as a dense down_proj's statistics come from the
// full-precision calibration decoder. The routing weights are not applied: like the
// dense layers (and GPTQ's reference implementations of Mixtral-style experts), each
// matmul's statistics are of the inputs it multiplies.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace q3vl::builder {

// For each expert e of `experts`, the indices (ascending) of the rows of x [n, hidden]
// whose k largest router logits x Wr^T (router Wr [experts, hidden]) include e; among
// equal logits the lower expert index wins. The softmax and renormalisation of the real
// router do not change which experts are the top k. Throws q3vl::Error(usage) on sizes
// that do not match, or k outside [1, experts].
std::vector<std::vector<std::int64_t>> route_rows(std::span<const float> x, std::int64_t hidden,
                                                  std::span<const float> router, std::int64_t experts,
                                                  std::int64_t k);

// The rows `rows` of x [n, width], in that order: [rows.size(), width].
std::vector<float> gather_rows(std::span<const float> x, std::int64_t width, const std::vector<std::int64_t>& rows);

// silu(gate x) * up x for every row of x [n, hidden], from one expert's fc1 [2I, hidden]
// with gate and up rows interleaved (row 2j = gate j, 2j+1 = up j, QMoE's swiglu_fusion 1):
// [n, I]. Throws q3vl::Error(usage) on sizes that do not match.
std::vector<float> swiglu_activations(std::span<const float> x, std::int64_t hidden, std::span<const float> fc1,
                                      std::int64_t intermediate);

}  // namespace q3vl::builder
