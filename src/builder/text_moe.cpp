#include "builder/text_moe.h"

#include <cstring>
#include <functional>
#include <optional>

#include "builder/calibration_stats.h"
#include "builder/gptq.h"
#include "builder/moe_calibration.h"
#include "builder/quantize.h"
#include "io/dtype.h"
#include "kernels/moe.h"
#include "kernels/pack.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

enum class ExpertLayout { hub, transformers5 };

// Which layout the checkpoint's expert tensors are in (see the header), from their shapes.
ExpertLayout detect_layout(const WeightReader& w, const std::string& gate_up, const std::string& down,
                           std::int64_t E, std::int64_t H, std::int64_t I) {
  const std::string dir = w.checkpoint().dir().string();
  if (H == 2 * I || H == I) {
    throw_error(ErrorKind::unsupported, dir, gate_up,
                "hidden_size different from moe_intermediate_size and from twice it (else the Hub's "
                "[E, H, 2I] and transformers 5.x's [E, 2I, H] expert layouts look alike)",
                "hidden_size " + std::to_string(H) + ", moe_intermediate_size " + std::to_string(I));
  }
  const std::vector<std::int64_t> hub_gate_up{E, H, 2 * I}, hf5_gate_up{E, 2 * I, H};
  const std::vector<std::int64_t> hub_down{E, I, H}, hf5_down{E, H, I};
  const auto gate_up_shape = w.shape_of(gate_up);
  const auto down_shape = w.shape_of(down);
  if (gate_up_shape == hub_gate_up && down_shape == hub_down) return ExpertLayout::hub;
  if (gate_up_shape == hf5_gate_up && down_shape == hf5_down) return ExpertLayout::transformers5;
  const bool gate_up_known = gate_up_shape == hub_gate_up || gate_up_shape == hf5_gate_up;
  const std::string& bad = gate_up_known ? down : gate_up;
  const auto& got = gate_up_known ? down_shape : gate_up_shape;
  throw_error(ErrorKind::shape, dir, bad,
              gate_up_known ? "shape " + shape_text(gate_up_shape == hub_gate_up ? hub_down : hf5_down) +
                                  " (the layout of " + gate_up + ")"
                            : "shape " + shape_text(hub_gate_up) + " (the Hub's) or " + shape_text(hf5_gate_up) +
                                  " (transformers 5.x's)",
              shape_text(got));
}

// One expert's fc1 [2I, H] with gate and up rows interleaved, from its gate_up slice.
std::vector<float> expert_fc1(const std::vector<float>& slice, ExpertLayout layout, std::int64_t H,
                              std::int64_t I) {
  std::vector<float> fc1(static_cast<std::size_t>(2 * I * H));
  for (std::int64_t j = 0; j < I; ++j) {
    float* gate = fc1.data() + 2 * j * H;
    float* up = gate + H;
    for (std::int64_t h = 0; h < H; ++h) {
      if (layout == ExpertLayout::hub) {  // slice [H, 2I]
        gate[h] = slice[h * 2 * I + j];
        up[h] = slice[h * 2 * I + I + j];
      } else {  // slice [2I, H]
        gate[h] = slice[j * H + h];
        up[h] = slice[(I + j) * H + h];
      }
    }
  }
  return fc1;
}

// One expert's fc2 [H, I] from its down_proj slice.
std::vector<float> expert_fc2(std::vector<float> slice, ExpertLayout layout, std::int64_t H, std::int64_t I) {
  if (layout == ExpertLayout::transformers5) return slice;  // already [H, I]
  std::vector<float> fc2(static_cast<std::size_t>(H * I));
  for (std::int64_t i = 0; i < I; ++i) {
    for (std::int64_t h = 0; h < H; ++h) fc2[h * I + i] = slice[i * H + h];  // slice [I, H]
  }
  return fc2;
}

// Statistics for one expert's matrix m (GPTQ) or empty: plain rounding (builder/gptq.h).
using ExpertHessian = std::function<std::vector<double>(std::int64_t expert, const std::vector<float>& m)>;

// One expert tensor as written: the weights and, quantized, their scales and (asymmetric,
// q3vl kernels) zero points; absent parts are empty Values.
struct ExpertTensor {
  Value weights, scales, zero_points;
};

// Writes the E per-expert matrices [rows, cols] that `matrix(e)` returns as one expert
// tensor in `format`'s storage: float [E, rows, cols]; QMoE's blockwise codes
// [E, rows, cols·bits/8] + float scales [E, rows, blocks]; or (kernels q3vl) each expert
// packed into q3vl.MoE's tiles [E, n_tiles, k_blocks, tile bytes] + fp16 scales
// [E, n_tiles, k_blocks, 16]. Quantized: rows quantized in blocks along cols (GPTQ where
// `hessian` gives statistics; both layouts hold the same codes), codes streamed one expert
// at a time, scales kept (small).
ExpertTensor write_expert_tensor(Graph& g, const std::string& name, std::int64_t E, std::int64_t rows,
                                 std::int64_t cols, const LinearFormat& format,
                                 const std::function<std::vector<float>(std::int64_t)>& matrix,
                                 const ExpertHessian& hessian) {
  switch (format.precision) {
    case WeightPrecision::fp32:
      return {g.initializer_streamed(name, DType::f32, {E, rows, cols},
                                     [&](const Graph::InitializerSink& sink) {
                                       for (std::int64_t e = 0; e < E; ++e) {
                                         const auto m = matrix(e);
                                         sink(std::as_bytes(std::span<const float>(m)));
                                       }
                                     })};
    case WeightPrecision::fp16: {
      Value half = g.initializer_streamed(name, DType::f16, {E, rows, cols}, [&](const Graph::InitializerSink& sink) {
        for (std::int64_t e = 0; e < E; ++e) {
          const auto m = matrix(e);
          std::vector<std::uint16_t> bits(m.size());
          for (std::size_t i = 0; i < m.size(); ++i) bits[i] = io::f32_to_f16(m[i]);
          sink(std::as_bytes(std::span<const std::uint16_t>(bits)));
        }
      });
      return {g.op("Cast", {half}, {{"to", 1}})};
    }
    default: {  // quantized (check_quantizable refuses what the expert op cannot run)
      const QuantOptions quant = quant_options(format);
      QuantOptions rounding = quant;  // an expert without statistics: gptq's own block scales
      if (rounding.method == QuantMethod::gptq) rounding.method = QuantMethod::mse;
      auto quantize = [&](std::int64_t e) {
        const std::vector<float> m = matrix(e);
        const std::vector<double> h = hessian ? hessian(e, m) : std::vector<double>{};
        return h.empty() ? quantize_blockwise(m, rows, cols, rounding) : quantize_gptq(m, rows, cols, h, quant);
      };
      if (format.kernels == LinearKernels::q3vl) {
        const kernels::QuantLinearShape shape{rows, cols, quant.bits, quant.block_size, kernel_grid(quant.grid)};
        std::vector<std::uint16_t> scales;
        std::vector<std::uint8_t> zero_points;
        Value codes = g.initializer_streamed(
            name, DType::u8, {E, shape.n_tiles(), shape.k_blocks(), shape.tile_block_bytes()},
            [&](const Graph::InitializerSink& sink) {
              for (std::int64_t e = 0; e < E; ++e) {
                QuantizedMatrix q = quantize(e);
                const kernels::PackedMatrix p = kernels::pack(
                    {shape, std::move(q.packed), std::move(q.scales), std::move(q.zero_points)});
                sink(std::as_bytes(std::span<const std::uint8_t>(p.weight)));
                scales.insert(scales.end(), p.scales.begin(), p.scales.end());
                zero_points.insert(zero_points.end(), p.zero_points.begin(), p.zero_points.end());
              }
            });
        const std::vector<std::int64_t> scale_shape{E, shape.n_tiles(), shape.k_blocks(), kernels::kTileRows};
        ExpertTensor t{codes, g.initializer_f16(name + ".scales", scale_shape, scales), Value{}};
        if (!zero_points.empty()) t.zero_points = g.initializer_u8(name + ".zero_points", scale_shape, zero_points);
        return t;
      }
      const std::int64_t blocks = cols / quant.block_size;
      std::vector<float> scales;
      scales.reserve(static_cast<std::size_t>(E * rows * blocks));
      Value codes = g.initializer_streamed(
          name, DType::u8, {E, rows, cols * quant.bits / 8}, [&](const Graph::InitializerSink& sink) {
            for (std::int64_t e = 0; e < E; ++e) {
              const QuantizedMatrix q = quantize(e);
              sink(std::as_bytes(std::span<const std::uint8_t>(q.packed)));
              scales.insert(scales.end(), q.scales.begin(), q.scales.end());
            }
          });
      return {codes, g.initializer_f32(name + ".scales", {E, rows, blocks}, scales)};
    }
  }
  throw_error(ErrorKind::usage, "", "precision", "fp32, fp16, int8 or int4", "another value");
}

// GPTQ's per-expert statistics for one block (builder/moe_calibration.h): the calibration
// rows each expert received, and the swiglu activations fc1's pass leaves for fc2's.
class ExpertStatistics {
 public:
  ExpertStatistics(std::vector<float> x, std::int64_t H, std::int64_t I, const std::vector<float>& router,
                   std::int64_t E, std::int64_t k)
      : x_(std::move(x)), H_(H), I_(I), routed_(route_rows(x_, H, router, E, k)),
        activations_(static_cast<std::size_t>(E)) {}

  // H1_e from the rows routed to e; records their activations through fc1 (= m) for fc2.
  std::vector<double> fc1(std::int64_t e, const std::vector<float>& m) {
    const auto& rows = routed_[static_cast<std::size_t>(e)];
    if (rows.empty()) {
      ++unrouted_;
      return {};
    }
    const std::vector<float> xe = gather_rows(x_, H_, rows);
    activations_[static_cast<std::size_t>(e)] = swiglu_activations(xe, H_, m, I_);
    return gram(xe, H_);
  }
  // H2_e from the activations fc1's pass recorded (then freed).
  std::vector<double> fc2(std::int64_t e) {
    std::vector<float> a = std::move(activations_[static_cast<std::size_t>(e)]);
    return a.empty() ? std::vector<double>{} : gram(a, I_);
  }
  // Experts no calibration row was routed to (counted in fc1's pass).
  std::int64_t unrouted() const { return unrouted_; }

 private:
  std::vector<float> x_;
  std::int64_t H_, I_;
  std::vector<std::vector<std::int64_t>> routed_;
  std::vector<std::vector<float>> activations_;
  std::int64_t unrouted_ = 0;
};

bool quantized(const LinearFormat& format) { return is_quantized(format.precision); }

void check_quantizable(const LinearFormat& format, const TextConfig& t, const std::string& scope) {
  if (!quantized(format)) return;
  // q3vl.MoE runs every format of the q3vl.QuantLinear tiles; QMoE takes int8 / int4 codes.
  // Fake quantization of experts is not written (the quality study is on dense models).
  const bool uniform_4_or_8 = format.precision == WeightPrecision::int8 || format.precision == WeightPrecision::int4;
  if (format.fake_quant) {
    throw_error(ErrorKind::unsupported, scope, "experts format", "a real quantized format (not fake)",
                std::string(to_string(format.precision)) + " (fake)");
  }
  if (format.kernels != LinearKernels::q3vl && !uniform_4_or_8) {
    throw_error(ErrorKind::unsupported, scope, "experts format", "int4 or int8 with --kernels ort (QMoE)",
                to_string(format.precision));
  }
  if (format.quant.method == QuantMethod::gptq && format.calibration == nullptr) {
    throw_error(ErrorKind::usage, scope, "--quant-method gptq", "calibration statistics for the experts", "none");
  }
  // q3vl.MoE pads H and I to its blocks (32, 64 or 128, checked with --kernels); QMoE cannot.
  if (format.kernels == LinearKernels::q3vl) return;
  const std::int64_t b = format.quant.block_size;
  const bool power_of_two = b >= 16 && (b & (b - 1)) == 0;
  if (!power_of_two || t.hidden_size % b != 0 || t.moe_intermediate_size % b != 0) {
    throw_error(ErrorKind::unsupported, scope, "--block-size",
                "a power of two >= 16 dividing hidden_size (" + std::to_string(t.hidden_size) +
                    ") and moe_intermediate_size (" + std::to_string(t.moe_intermediate_size) +
                    ") (QMoE's block-wise kernels)",
                std::to_string(b));
  }
}

}  // namespace

std::string router_logits_name(const std::string& scope) { return "router_logits." + scope; }

Value write_moe_block(Graph& g, WeightReader& w, const Value& x, const TextConfig& t,
                      const LinearFormat& format, bool expose_router_logits) {
  auto scope = g.scope("mlp");
  const std::int64_t E = t.num_experts, H = t.hidden_size, I = t.moe_intermediate_size;
  check_quantizable(format, t, g.scope_path());

  // Router at full precision whatever the experts' format: top-k choices are discrete,
  // and a quantized router would flip them.
  Value logits;
  std::vector<float> router_weight;  // [E, H], kept for GPTQ's routing of calibration rows
  {
    auto gate = g.scope("gate");
    router_weight = w.f32(g.scoped("weight"), {E, H});
    std::vector<float> transposed(router_weight.size());
    for (std::int64_t e = 0; e < E; ++e) {
      for (std::int64_t h = 0; h < H; ++h) transposed[h * E + e] = router_weight[e * H + h];
    }
    Value router = g.initializer_f32(g.scoped("weight"), {H, E}, transposed);
    logits = g.op("Reshape", {g.op("MatMul", {x, router}), g.constant_i64({-1, E})});
  }
  if (expose_router_logits) {
    g.output(g.op("Identity", {logits}), router_logits_name(g.scope_path()), DType::f32,
             {"router_rows", E});
  }

  const std::string gate_up = g.scoped("experts.gate_up_proj");
  const std::string down = g.scoped("experts.down_proj");
  const ExpertLayout layout = detect_layout(w, gate_up, down, E, H, I);
  const std::vector<std::int64_t> gate_up_shape = w.shape_of(gate_up), down_shape = w.shape_of(down);
  const std::string experts = g.scoped("experts");
  if (format.expose_input) {  // calibration decoders: the rows every expert's fc1 may see
    g.output(g.op("Identity", {x}), linear_input_name(experts), DType::f32, {"batch_size", "sequence_length", H});
  }
  std::optional<ExpertStatistics> stats;
  if (quantized(format) && format.quant.method == QuantMethod::gptq) {
    stats.emplace(format.calibration->inputs(experts, H), H, I, router_weight, E, t.num_experts_per_tok);
  }
  ExpertHessian fc1_hessian, fc2_hessian;
  if (stats) {
    fc1_hessian = [&](std::int64_t e, const std::vector<float>& m) { return stats->fc1(e, m); };
    fc2_hessian = [&](std::int64_t e, const std::vector<float>&) { return stats->fc2(e); };
  }
  const ExpertTensor fc1 = write_expert_tensor(g, g.scoped("experts.fc1"), E, 2 * I, H, format, [&](std::int64_t e) {
    return expert_fc1(w.f32_slice(gate_up, gate_up_shape, e), layout, H, I);
  }, fc1_hessian);
  const ExpertTensor fc2 = write_expert_tensor(g, g.scoped("experts.fc2"), E, H, I, format, [&](std::int64_t e) {
    return expert_fc2(w.f32_slice(down, down_shape, e), layout, H, I);
  }, fc2_hessian);
  if (stats && stats->unrouted() > 0) {
    w.note("gptq: " + experts + ": " + std::to_string(stats->unrouted()) + " of " + std::to_string(E) +
           " experts received no calibration tokens; rounded with mse instead");
  }

  const QuantOptions quant = quant_options(format);
  const std::int64_t bits = quant.bits;
  if (quantized(format) && format.kernels == LinearKernels::q3vl) {
    std::vector<Attr> moe_attrs{{"num_experts", E},
                                {"k", t.num_experts_per_tok},
                                {"hidden_size", H},
                                {"intermediate_size", I},
                                {"bits", bits},
                                {"block_size", format.quant.block_size}};
    if (quant.grid != WeightGrid::uniform) moe_attrs.push_back({"grid", std::string(to_string(quant.grid))});
    return g.op(std::string(kernels::kDomain) + "." + kernels::kMoEOp,
                {x, logits, fc1.weights, fc1.scales, fc2.weights, fc2.scales, fc1.zero_points, fc2.zero_points},
                moe_attrs);
  }
  std::vector<Attr> attrs{{"k", t.num_experts_per_tok},
                          {"activation_type", std::string("swiglu")},
                          {"normalize_routing_weights", std::int64_t{1}},
                          {"swiglu_fusion", std::int64_t{1}},
                          {"activation_alpha", 1.0},
                          {"activation_beta", 0.0}};
  if (!quantized(format)) {
    // MoE inputs: input, router_probs, fc1, fc1_bias, fc2 (fc2_bias, fc3.. absent).
    return g.op("com.microsoft.MoE", {x, logits, fc1.weights, Value{}, fc2.weights}, attrs);
  }
  attrs.push_back({"expert_weight_bits", bits});
  attrs.push_back({"block_size", format.quant.block_size});
  attrs.push_back({"accuracy_level", std::int64_t{format.accuracy_level}});
  // QMoE inputs: input, router_probs, fc1, fc1_scales, fc1_bias, fc2, fc2_scales.
  return g.op("com.microsoft.QMoE", {x, logits, fc1.weights, fc1.scales, Value{}, fc2.weights, fc2.scales}, attrs);
}

}  // namespace q3vl::builder
