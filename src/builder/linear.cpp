#include "builder/linear.h"

#include <algorithm>

#include "builder/calibration_stats.h"
#include "builder/gptq.h"
#include "kernels/pack.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

std::vector<float> transpose(const std::vector<float>& w, std::int64_t rows, std::int64_t cols) {
  std::vector<float> t(w.size());
  constexpr std::int64_t kTile = 64;  // cache-friendly tiles; the result is the same
  for (std::int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (std::int64_t c0 = 0; c0 < cols; c0 += kTile) {
      for (std::int64_t r = r0; r < std::min(rows, r0 + kTile); ++r) {
        for (std::int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) t[c * rows + r] = w[r * cols + c];
      }
    }
  }
  return t;
}

// The codes of W [out_features, in_features] in `format` (int8/int4), by its method.
QuantizedMatrix quantize(Graph& g, std::vector<float>& weight, std::int64_t out_features, std::int64_t in_features,
                         const LinearFormat& format) {
  const QuantOptions options = quant_options(format);
  QuantizedMatrix q;
  if (options.method == QuantMethod::gptq) {
    if (format.calibration == nullptr) {
      throw_error(ErrorKind::usage, g.name(), g.scope_path(), "calibration statistics for gptq", "none");
    }
    const std::string& scope = format.calibration_scope.empty() ? g.scope_path() : format.calibration_scope;
    const auto h = format.calibration->hessian(scope, in_features);
    q = quantize_gptq(weight, out_features, in_features, h, options);
  } else {
    q = quantize_blockwise(weight, out_features, in_features, options);
  }
  weight = {};
  return q;
}

// q3vl.QuantLinear on the codes of `q` (bias folded into the op), or with `swiglu_width`
// > 0 q3vl.QuantSwiGLU of that intermediate size (q holds the stacked gate/up rows).
Value quant_linear_node(Graph& g, const Value& x, QuantizedMatrix q, std::vector<float>& bias,
                        std::int64_t swiglu_width = 0) {
  const WeightGrid grid = q.grid;
  kernels::BlockwiseMatrix blockwise{{q.n, q.k, q.bits, q.block_size, kernel_grid(grid)},
                                     std::move(q.packed), std::move(q.scales), std::move(q.zero_points)};
  const kernels::PackedMatrix p = kernels::pack(blockwise);
  blockwise = {};
  const auto& s = p.shape;
  std::vector<Value> inputs{x, g.initializer_u8(g.scoped("weight"), {s.n_tiles(), s.k_blocks(), s.tile_block_bytes()}, p.weight),
                            g.initializer_f16(g.scoped("scales"), {s.n_tiles(), s.k_blocks(), kernels::kTileRows}, p.scales),
                            Value{}, Value{}};
  if (!p.zero_points.empty()) {
    inputs[3] = g.initializer_u8(g.scoped("zero_points"), {s.n_tiles(), s.k_blocks(), kernels::kTileRows}, p.zero_points);
  }
  if (!bias.empty()) {
    inputs[4] = g.initializer_f32(g.scoped("bias"), {s.n}, bias);
    bias = {};
  }
  if (swiglu_width > 0) inputs.pop_back();  // QuantSwiGLU has no bias input
  const char* op = swiglu_width > 0 ? kernels::kQuantSwiGLUOp : kernels::kQuantLinearOp;
  std::vector<Attr> attributes{{"K", s.k},
                                    {"N", swiglu_width > 0 ? swiglu_width : s.n},
                                    {"bits", std::int64_t{s.bits}},
                                    {"block_size", s.block_size}};
  if (grid != WeightGrid::uniform) attributes.push_back({"grid", std::string(to_string(grid))});
  return g.op(std::string(kernels::kDomain) + "." + op, inputs, attributes);
}

}  // namespace

LinearKernels parse_linear_kernels(std::string_view text, std::string_view flag) {
  if (text == "q3vl") return LinearKernels::q3vl;
  if (text == "ort") return LinearKernels::ort;
  throw_error(ErrorKind::usage, "", std::string(flag), "q3vl or ort", std::string(text));
}

const char* to_string(LinearKernels kernels) { return kernels == LinearKernels::q3vl ? "q3vl" : "ort"; }

LinearKernels default_kernels(WeightPrecision precision) {
  return precision == WeightPrecision::int4 ? LinearKernels::q3vl : LinearKernels::ort;
}

WeightPrecision parse_weight_precision(std::string_view text, std::string_view flag) {
  if (text == "fp32") return WeightPrecision::fp32;
  if (text == "fp16") return WeightPrecision::fp16;
  if (text == "int8") return WeightPrecision::int8;
  if (text == "int4") return WeightPrecision::int4;
  throw_error(ErrorKind::usage, "", std::string(flag), "fp32, fp16, int8 or int4", std::string(text));
}

const char* to_string(WeightPrecision precision) {
  switch (precision) {
    case WeightPrecision::fp32: return "fp32";
    case WeightPrecision::fp16: return "fp16";
    case WeightPrecision::int8: return "int8";
    case WeightPrecision::int4: return "int4";
    case WeightPrecision::int5: return "int5";
    case WeightPrecision::int6: return "int6";
    case WeightPrecision::nl4: return "nl4";
  }
  return "?";
}

bool is_quantized(WeightPrecision precision) {
  return precision != WeightPrecision::fp32 && precision != WeightPrecision::fp16;
}

kernels::WeightGrid kernel_grid(WeightGrid grid) {
  return grid == WeightGrid::nl ? kernels::WeightGrid::nl : kernels::WeightGrid::uniform;
}

QuantOptions quant_options(const LinearFormat& format) {
  QuantOptions o = format.quant;
  o.grid = WeightGrid::uniform;
  switch (format.precision) {
    case WeightPrecision::int8: o.bits = 8; break;
    case WeightPrecision::int6: o.bits = 6; break;
    case WeightPrecision::int5: o.bits = 5; break;
    case WeightPrecision::nl4: o.bits = 4; o.grid = WeightGrid::nl; break;
    default: o.bits = 4; break;
  }
  return o;
}

std::string linear_input_name(const std::string& scope) { return "linear_input." + scope; }

Value linear(Graph& g, const Value& x, std::vector<float> weight, std::int64_t out_features,
             std::int64_t in_features, const LinearFormat& format, std::vector<float> bias) {
  if (static_cast<std::int64_t>(weight.size()) != out_features * in_features ||
      (!bias.empty() && static_cast<std::int64_t>(bias.size()) != out_features)) {
    throw_error(ErrorKind::usage, g.name(), g.scope_path(),
                "weight [" + std::to_string(out_features) + ", " + std::to_string(in_features) + "]",
                std::to_string(weight.size()) + " values");
  }
  if (format.expose_input) {
    // Through an Identity: output() renames the value it is given, and x has other readers.
    g.output(g.op("Identity", {x}), linear_input_name(g.scope_path()), DType::f32,
             {"batch_size", "sequence_length", in_features});
  }
  Value y;
  switch (format.precision) {
    case WeightPrecision::fp32: {
      auto t = transpose(weight, out_features, in_features);
      weight = {};
      y = g.op("MatMul", {x, g.initializer_f32(g.scoped("weight"), {in_features, out_features}, t)});
      break;
    }
    case WeightPrecision::fp16: {
      auto t = transpose(weight, out_features, in_features);
      weight = {};
      std::vector<std::uint16_t> half(t.size());
      for (std::size_t i = 0; i < t.size(); ++i) half[i] = io::f32_to_f16(t[i]);
      t = {};
      Value w16 = g.initializer_f16(g.scoped("weight"), {in_features, out_features}, half);
      y = g.op("MatMul", {x, g.op("Cast", {w16}, {{"to", 1}})});
      break;
    }
    default: {  // the quantized precisions
      if (format.fake_quant) {
        const QuantOptions options = quant_options(format);
        if (options.method == QuantMethod::gptq) {
          throw_error(ErrorKind::usage, g.name(), g.scope_path(), "rtn or mse with fake quantization", "gptq");
        }
        // The scales as the format's kernels store them: fp16 for q3vl's, fp32 for MatMulNBits.
        auto t = transpose(fake_quantize(weight, out_features, in_features, options,
                                         format.kernels == LinearKernels::q3vl),
                           out_features, in_features);
        weight = {};
        y = g.op("MatMul", {x, g.initializer_f32(g.scoped("weight"), {in_features, out_features}, t)});
        break;
      }
      if (format.kernels == LinearKernels::ort && format.precision != WeightPrecision::int4 &&
          format.precision != WeightPrecision::int8) {
        throw_error(ErrorKind::unsupported, g.name(), g.scope_path(), "int4 or int8 with --kernels ort (MatMulNBits)",
                    to_string(format.precision));
      }
      QuantizedMatrix q = quantize(g, weight, out_features, in_features, format);
      if (format.kernels == LinearKernels::q3vl) {
        y = quant_linear_node(g, x, std::move(q), bias);
        break;
      }
      const std::int64_t blob = q.block_size * q.bits / 8;
      Value packed = g.initializer_u8(g.scoped("weight"), {q.n, q.k_blocks, blob}, q.packed);
      Value scales = g.initializer_f32(g.scoped("scales"), {q.n, q.k_blocks}, q.scales);
      std::vector<Value> inputs{x, packed, scales};
      if (!q.zero_points.empty()) {
        const std::int64_t zp_row = (q.k_blocks * q.bits + 7) / 8;
        inputs.push_back(g.initializer_u8(g.scoped("zero_points"), {q.n, zp_row}, q.zero_points));
      }
      y = g.op("com.microsoft.MatMulNBits", inputs,
               {{"K", in_features},
                {"N", out_features},
                {"bits", std::int64_t{q.bits}},
                {"block_size", q.block_size},
                {"accuracy_level", std::int64_t{format.accuracy_level}}});
      break;
    }
  }
  if (!bias.empty()) y = g.op("Add", {y, g.initializer_f32(g.scoped("bias"), {out_features}, bias)});
  return y;
}

bool can_fuse_swiglu(const LinearFormat& format) {
  return format.kernels == LinearKernels::q3vl && !format.expose_input && !format.fake_quant &&
         is_quantized(format.precision);
}

Value swiglu_linear(Graph& g, const Value& x, const std::vector<float>& gate, const std::vector<float>& up,
                    std::int64_t intermediate, std::int64_t in_features, const LinearFormat& format) {
  const auto expected = static_cast<std::size_t>(intermediate * in_features);
  if (!can_fuse_swiglu(format) || gate.size() != expected || up.size() != expected) {
    throw_error(ErrorKind::usage, g.name(), g.scope_path(),
                "q3vl int8/int4 kernels and gate, up [" + std::to_string(intermediate) + ", " +
                    std::to_string(in_features) + "]",
                std::string(to_string(format.precision)) + " " + to_string(format.kernels) + ", " +
                    std::to_string(gate.size()) + " and " + std::to_string(up.size()) + " values");
  }
  // The (gate, up) pair order of kernels/quant_linear.h; rows past `intermediate` stay 0.
  // Block quantization works per row, so each row gets the codes it gets unfused.
  const std::int64_t rows = kernels::swiglu_stacked_rows(intermediate);
  std::vector<float> stacked(static_cast<std::size_t>(rows * in_features), 0.0f);
  for (std::int64_t i = 0; i < intermediate; ++i) {
    std::copy_n(gate.begin() + i * in_features, in_features, stacked.begin() + kernels::swiglu_gate_row(i) * in_features);
    std::copy_n(up.begin() + i * in_features, in_features, stacked.begin() + kernels::swiglu_up_row(i) * in_features);
  }
  std::vector<float> no_bias;
  return quant_linear_node(g, x, quantize(g, stacked, rows, in_features, format), no_bias, intermediate);
}

}  // namespace q3vl::builder
