// linear(): the one place that decides how a weight matrix is stored and multiplied.
//
//   y = x W^T (+ b);  x: [..., in_features], W: [out_features, in_features] (HF nn.Linear)
//
// Storage per WeightPrecision (activations are float32 in every case; ORT's x86 CPU
// kernels have no float16 MatMul):
//   fp32  MatMul with W^T [in, out] float32            initializer "<scope>.weight"
//   fp16  MatMul with Cast(W^T [in, out] float16)      (half the file; cast once at session load)
//   int8  kernels q3vl: q3vl.QuantLinear bits=8        "<scope>.weight" (tile layout), ".scales" (fp16),
//                                                      ".zero_points" (src/kernels/quant_linear.h)
//         kernels ort:  com.microsoft.MatMulNBits bits=8 "<scope>.weight" (packed), ".scales", ".zero_points"
//   int4  the same with bits=4
//   int5, int6, nl4  q3vl.QuantLinear bits=5 / 6, or bits=4 grid="nl" (kernels/weight_grid.h);
//         q3vl kernels only (MatMulNBits has no such formats)
//   fake_quant (any quantized precision): fp32 MatMul on fake_quantize(W) (quantize.h), the
//         codes' exact float values with the scales `kernels` would store (q3vl fp16, ort
//         fp32): the quality study's stand-in for a format
// The MLP's gate/up pair may instead become one q3vl.QuantSwiGLU (swiglu_linear below).
// Both int formats hold the same codes (quantize.h / gptq.h choose them); q3vl's layout is
// the kernel's final one, so ONNX Runtime maps it from the file and repacks nothing.
// The caller opens the HF module scope ("model.language_model.layers.0.self_attn.q_proj")
// so node and initializer names follow HF. The weight vector is consumed (freed on return).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "builder/graph.h"
#include "builder/quantize.h"
#include "kernels/quant_linear.h"

namespace q3vl::builder {

class CalibrationStats;  // builder/calibration_stats.h

// int5, int6 and nl4 come from quantization recipes (builder/quant_recipe.h).
enum class WeightPrecision { fp32, fp16, int8, int4, int5, int6, nl4 };

// "fp32" / "fp16" / "int8" / "int4"; throws q3vl::Error(usage) naming `flag` otherwise.
WeightPrecision parse_weight_precision(std::string_view text, std::string_view flag = "--precision");
const char* to_string(WeightPrecision precision);  // also "int5", "int6", "nl4"
// Whether weights in `precision` are block-quantized codes (int8, int4, int5, int6, nl4).
bool is_quantized(WeightPrecision precision);

// Which kernels multiply int8/int4 weights: q3vl's own op domain (fast; needs a runtime
// that registers the "q3vl" domain, as q3vl's does) or ONNX Runtime's MatMulNBits (any
// ONNX Runtime consumer can load it).
enum class LinearKernels { q3vl, ort };

// "q3vl" / "ort"; throws q3vl::Error(usage) naming `flag` otherwise.
LinearKernels parse_linear_kernels(std::string_view text, std::string_view flag = "--kernels");
const char* to_string(LinearKernels kernels);
// What `q3vl build` uses without --kernels: q3vl for int4; ort for int8 and the float
// precisions. Why not q3vl for int8: with 8-bit weights the weight error is so small that
// the int8 activations dominate (tiny-untied, worst logit cosine to FP32 0.99979 against
// MatMulNBits' exact-float 0.99993; the int8 bound is 0.9998), so int8 keeps float
// activations until the kernels get a finer activation format.
LinearKernels default_kernels(WeightPrecision precision);

struct LinearFormat {
  WeightPrecision precision = WeightPrecision::fp32;
  QuantOptions quant;   // used for int8/int4 (bits is taken from precision)
  LinearKernels kernels = LinearKernels::ort;
  int accuracy_level = 0;  // kernels ort: MatMulNBits accuracy_level (0 exact float, 4 = int8 activations)
  // Calibration graphs: also output the matmul's input x as "linear_input.<scope>"
  // [batch_size, sequence_length, in_features], for a calibration run to record.
  bool expose_input = false;
  // QuantMethod::gptq reads this weight's input statistics (keyed by scope) from here.
  const CalibrationStats* calibration = nullptr;
  // The scope whose statistics gptq reads when not the weight's own: a recipe can split a
  // stacked projection (q/k/v, gate/up) into parts of different formats, and the parts
  // share the stacked matmul's input, which the calibration decoder records once.
  std::string calibration_scope;
  // Quantized precisions: store the dequantized codes as an fp32 MatMul instead (see above).
  bool fake_quant = false;
};

// format.quant with bits and grid set from format.precision (quantized precisions).
QuantOptions quant_options(const LinearFormat& format);

// The q3vl kernels' name for a quantizer grid (the same two grids).
kernels::WeightGrid kernel_grid(WeightGrid grid);

// The graph output name under which an expose_input linear in `scope` publishes its input.
std::string linear_input_name(const std::string& scope);

// Adds y = x W^T (+ bias) in the current scope. `weight` is [out_features * in_features]
// row-major; `bias` is empty or [out_features]. Throws q3vl::Error(usage) on size mismatch.
Value linear(Graph& g, const Value& x, std::vector<float> weight, std::int64_t out_features,
             std::int64_t in_features, const LinearFormat& format, std::vector<float> bias = {});

// Whether swiglu_linear can take `format`: q3vl kernels at int8/int4, no exposed input.
bool can_fuse_swiglu(const LinearFormat& format);

// Adds y = silu(x Wg^T) · (x Wu^T) in the current scope as one q3vl.QuantSwiGLU
// (kernels/quant_linear.h): gate and up [intermediate, in_features] row-major, stacked
// in the kernel's (gate, up) pair order and quantized as `format` says (gptq reads the
// scope's calibration statistics, as linear() does). Throws q3vl::Error(usage) unless
// can_fuse_swiglu(format) and the sizes match.
Value swiglu_linear(Graph& g, const Value& x, const std::vector<float>& gate, const std::vector<float>& up,
                    std::int64_t intermediate, std::int64_t in_features, const LinearFormat& format);

}  // namespace q3vl::builder
