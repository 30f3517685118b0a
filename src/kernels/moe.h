// q3vl.MoE: a Qwen3-VL-MoE sparse block (HF Qwen3VLMoeTextSparseMoeBlock, no shared
// expert) with every expert's matrices in q3vl.QuantLinear's tile layout (quant_linear.h).
//
// ---- The math ----------------------------------------------------------------------
// For each token t (row of x [T, H]) with router logits l [E]:
//   S   = the k experts with the largest l (ties: the lower expert index first)
//   w_e = exp(l_e - max l) / sum_{s in S} exp(l_s - max l)        e in S
//       (= softmax over all E then renormalised over S: the full denominator cancels, so
//        the router always renormalises, whatever config.norm_topk_prob says)
//   h   = fc1_e x                      fc1_e [2I, H]: row 2j = gate j, row 2j+1 = up j
//   a_j = silu(h_2j) * h_2j+1          (SwiGLU, j < I)
//   y  += w_e * fc2_e a                fc2_e [H, I]
// Each fc1_e / fc2_e is a quant_linear.h matrix (int8 activations in 32-value blocks, any
// of its weight formats), so x and a are quantized exactly as QuantLinear quantizes its input.
//
// ---- How it runs -------------------------------------------------------------------
// Tokens are taken in passes of at most kTokensPerPass. In a pass the (token, expert)
// pairs are sorted by expert, so each expert's rows are contiguous: an expert's weights
// stream from memory once per pass however many of the pass's tokens chose it, and an
// expert no token chose is never read (a decode step reads k experts of E). The matmuls
// run as (expert, 64-row chunk, 4-tile group) work items over the caller's ParallelFor,
// so at T = 1 the k experts' tiles still give every thread work.
//
// ---- The weight layout (what the builder writes and ONNX Runtime memory-maps) --------
// fc1 uint8 [E, n_tiles(2I), k_blocks(H), 16·B·bits/8], fc1 scales fp16 [E, n_tiles, k_blocks, 16],
// fc2 the same for [H, I]: expert e's matrix is quant_linear.h's layout at offset
// e · weight_bytes() (scales e · scale_count()). Zero points (asymmetric) likewise, optional.
//
// Thread-safety: moe() is a pure function of its arguments apart from per-thread
// scratch buffers (one call per thread at a time, as ONNX Runtime runs nodes).
#pragma once

#include <cstdint>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

inline constexpr const char* kMoEOp = "MoE";

// Tokens per pass: bounds the scratch memory (about T·k·(3I + H)·4 bytes per pass:
// 256 tokens of 30B-A3B, 26 MB) while an expert still gets ~16 rows per weight read.
inline constexpr std::int64_t kTokensPerPass = 256;

struct MoEShape {
  std::int64_t num_experts = 0;        // E
  std::int64_t k = 0;                  // experts per token, 1..E
  std::int64_t hidden_size = 0;        // H
  std::int64_t intermediate_size = 0;  // I (moe_intermediate_size)
  int bits = 4;                        // 4, 5, 6 or 8 (nl: 4)
  std::int64_t block_size = 32;        // 32, 64 or 128
  WeightGrid grid = WeightGrid::uniform;

  QuantLinearShape fc1() const { return {2 * intermediate_size, hidden_size, bits, block_size, grid}; }
  QuantLinearShape fc2() const { return {hidden_size, intermediate_size, bits, block_size, grid}; }
};

// Throws q3vl::Error(usage) naming `where` unless E >= 1, 1 <= k <= E, H and I are
// positive and bits / block_size / grid are valid for QuantLinear.
void validate(const MoEShape& shape, const char* where);

// All experts' weights, viewed (non-owning: the ONNX Runtime tensors or the test's buffers
// outlive every call). zero_points null = symmetric.
struct MoEWeights {
  MoEShape shape;
  const std::uint8_t* fc1 = nullptr;
  const std::uint16_t* fc1_scales = nullptr;
  const std::uint8_t* fc1_zero_points = nullptr;
  const std::uint8_t* fc2 = nullptr;
  const std::uint16_t* fc2_scales = nullptr;
  const std::uint8_t* fc2_zero_points = nullptr;

  // Expert e's matrices as QuantLinear views (0 <= e < E).
  PackedWeightsView fc1_expert(std::int64_t e) const;
  PackedWeightsView fc2_expert(std::int64_t e) const;
};

// y [T, H] = the block above for x [T, H] and router_logits [T, E], on the active ISA
// (dispatch.h). Preconditions: validate(w.shape) holds, the pointers hold those sizes,
// logits are finite. Never throws (scratch allocation aside: std::bad_alloc).
void moe(const MoEWeights& w, const float* x, const float* router_logits, std::int64_t tokens, float* y,
         const Parallelism& parallel = {});

}  // namespace q3vl::kernels
