// The sparse Mixture-of-Experts block of a Qwen3-VL-MoE text layer (HF
// Qwen3VLMoeTextSparseMoeBlock), written from the checkpoint's
// "<layer>.mlp.gate.weight" [E, H] and the fused "<layer>.mlp.experts.gate_up_proj" /
// "<layer>.mlp.experts.down_proj".
//
//   logits = x Wr^T                                  (router, always float32: E columns)
//   p      = softmax(logits)  over all E experts, in float32
//   S      = the k largest p;  w_e = p_e / sum_{S} p      (always renormalised; no shared expert)
//   y      = sum_{e in S} w_e * down_e( silu(gate_e x) * up_e x )
//
// The router matmul is a plain MatMul; the rest is one ONNX Runtime contrib node that
// takes the raw logits and does the softmax / top-k / renormalisation itself
// (normalize_routing_weights = 1):
//   fp32, fp16  com.microsoft.MoE   activation_type "swiglu", swiglu_fusion = 1; fc1 float
//               [E, 2I, H] with gate and up rows interleaved (row 2j = gate j, 2j+1 = up j),
//               fc2 [E, H, I]; fp16 stores them as float16 behind a Cast (cast once at load)
//   int8, int4  kernels q3vl (default for int4): q3vl.MoE (src/kernels/moe.h), which also
//               takes the raw logits; each expert's fc1 / fc2 quantized exactly as below
//               (same codes), then packed into q3vl.QuantLinear's tile layout and written
//               as one [E, n_tiles, k_blocks, tile bytes] tensor (+ fp16 scales, zero points
//               when asymmetric) that ONNX Runtime memory-maps: no prepacked copy at load.
//               H and I need not be multiples of the block (the tiles are padded).
//   int8, int4  kernels ort: com.microsoft.QMoE  the same layout quantized per row in blocks of
//               format.quant.block_size along the input features, symmetric (uint8 codes,
//               implicit zero point 2^(bits-1), 4-bit codes packed two per byte, low nibble
//               first); scales float [E, rows, in / block_size]. rtn / mse round each
//               expert on its own; gptq uses each expert's statistics from the
//               calibration tokens routed to it (builder/moe_calibration.h), and an
//               expert that received none is rounded with mse (counted in a build note).
// Calibration decoders (LinearFormat::expose_input) output the block's input x as
// linear_input_name("<layer>.mlp.experts").
// Initializers (in scope "<layer>.mlp"): gate.weight, experts.fc1 / experts.fc2 (+ .scales,
// + .zero_points with q3vl kernels and asymmetric quantization).
//
// Expert tensor layouts, told apart by shape (checkpoint/weight_layout.h):
//   the Hub's           gate_up_proj [E, H, 2I] (gate = first I columns), down_proj [E, I, H]
//   transformers 5.x's  gate_up_proj [E, 2I, H] (gate = first I rows),    down_proj [E, H, I]
// A config with H = 2I (or H = I) makes them indistinguishable: refused (unsupported).
// Experts are read and written one at a time (WeightReader::f32_slice,
// Graph::initializer_streamed), so memory holds one expert, not the layer.
#pragma once

#include <string>

#include "builder/graph.h"
#include "builder/linear.h"
#include "builder/weight_reader.h"
#include "q3vl/config.h"

namespace q3vl::builder {

// The graph output name under which a decoder built with expose_router_logits publishes
// the router logits [batch_size * sequence_length, E] of the MoE block in `scope`
// ("model.language_model.layers.0.mlp").
std::string router_logits_name(const std::string& scope);

// y = moe(x), x: [B, T, H] (normalised); call inside the layer's scope. Throws
// q3vl::Error: shape (a tensor missing or shaped for neither layout), unsupported
// (ambiguous layout; with kernels ort a block size QMoE cannot use: a power of two >= 16
// dividing both H and I), usage (gptq without format.calibration or with no rows recorded for the block).
Value write_moe_block(Graph& g, WeightReader& w, const Value& x, const TextConfig& t,
                      const LinearFormat& format, bool expose_router_logits);

}  // namespace q3vl::builder
