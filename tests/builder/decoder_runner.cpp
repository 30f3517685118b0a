#include "decoder_runner.h"

#include <cstring>
#include <random>

#include "builder/graph.h"
#include "builder/text_moe.h"
#include "builder/weight_reader.h"
#include "io/decoder_io.h"
#include "io/dtype.h"
#include "io/safetensors.h"
#include "kernels/kv_attention.h"

namespace q3vl::testing {

std::vector<float> random_floats(std::size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

DecoderRunner::DecoderRunner(const std::filesystem::path& checkpoint_dir, const std::filesystem::path& out_dir,
                             const ModelConfig& config, const builder::DecoderGraphOptions& options)
    : config_(config), deepstack_(options.deepstack) {
  auto checkpoint = io::Checkpoint::open(checkpoint_dir);
  builder::WeightReader reader(checkpoint, Progress::silent());
  builder::Graph g("decoder", out_dir / "decoder.onnx.data");
  builder::write_decoder_graph(g, reader, config, options);
  g.save(out_dir / "decoder.onnx");
  if (options.expose_router_logits) {
    for (std::int64_t i = 0; i < config.text.num_hidden_layers; ++i) {
      if (!config.text.is_moe_layer(i)) continue;
      router_outputs_.push_back(
          builder::router_logits_name("model.language_model.layers." + std::to_string(i) + ".mlp"));
    }
  }
  runtime::SessionConfig session_config;
  session_config.intra_op_threads = 1;
  session_ = std::make_unique<runtime::OrtSession>("decoder", out_dir / "decoder.onnx", session_config);
}

DecoderRunner::DecoderRunner(const std::filesystem::path& package_dir, const ModelConfig& config) : config_(config) {
  runtime::SessionConfig session_config;
  session_config.intra_op_threads = 1;
  session_ = std::make_unique<runtime::OrtSession>("decoder", package_dir / "decoder.onnx", session_config);
}

DecoderStep DecoderRunner::run(std::int64_t batch, std::int64_t tokens, std::vector<float> embeds,
                               std::vector<std::int64_t> positions, std::vector<float> deepstack,
                               std::vector<HostF32> past) {
  const TextConfig& t = config_.text;
  const std::int64_t D = t.hidden_size, L = t.num_hidden_layers;
  const auto taps = static_cast<std::int64_t>(config_.vision.deepstack_visual_indexes.size());
  const std::int64_t past_len = past.empty() ? 0 : past[0].shape[2];
  if (past.empty()) {
    for (std::int64_t i = 0; i < 2 * L; ++i) {
      past.push_back(HostF32{{}, {batch, t.num_key_value_heads, 0, t.head_dim}});
    }
  }
  if (deepstack.empty()) deepstack.assign(static_cast<std::size_t>(taps * batch * tokens * D), 0.0f);

  HostF32 e{std::move(embeds), {batch, tokens, D}};
  if (deepstack_ == builder::DeepstackInput::packed) {  // [B, T, D * (1 + K)]: [embeds | tap 0 | ...]
    std::vector<float> wide;
    for (std::int64_t row = 0; row < batch * tokens; ++row) {
      wide.insert(wide.end(), e.data.begin() + row * D, e.data.begin() + (row + 1) * D);
      for (std::int64_t k = 0; k < taps; ++k) {
        const auto at = deepstack.begin() + (k * batch * tokens + row) * D;
        wide.insert(wide.end(), at, at + D);
      }
    }
    e = HostF32{std::move(wide), {batch, tokens, D * (1 + taps)}};
  }
  HostI64 p{std::move(positions), {3, batch, tokens}};
  HostI64 m{std::vector<std::int64_t>(static_cast<std::size_t>(batch * (past_len + tokens)), 1),
            {batch, past_len + tokens}};
  HostF32 ds{std::move(deepstack), {taps, batch, tokens, D}};

  std::vector<std::string> names = {io::kDecoderInputsEmbeds, io::kDecoderPositionIds,
                                    io::kDecoderAttentionMask};
  std::vector<Ort::Value> values;
  values.push_back(to_ort(e));
  values.push_back(to_ort(p));
  values.push_back(to_ort(m));
  if (taps > 0 && deepstack_ == builder::DeepstackInput::separate) {
    names.push_back(io::kDecoderDeepstackEmbeds);
    values.push_back(to_ort(ds));
  }
  // A float16 or int8 KV cache (DecoderGraphOptions::kv_cache): the host float32 past is
  // rounded to the cache's form here and the presents widened back, so callers see float32
  // either way. Both round trips are exact for values that came from a present: float16
  // trivially; an int8 row's largest value has code ±127, so re-quantizing gives the same
  // float16 scale (127 · s / 127 = s exactly) and the same codes.
  ONNXTensorElementDataType cache_type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  Ort::Session& session = session_->session();
  Ort::AllocatorWithDefaultOptions allocator;
  for (std::size_t i = 0; i < session.GetInputCount(); ++i) {
    if (session.GetInputNameAllocated(i, allocator).get() == io::past_key_name(0)) {
      cache_type = session.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetElementType();
    }
  }
  const std::int64_t row_bytes = kernels::kv_row_bytes(kernels::KvCacheType::int8, t.head_dim);
  std::vector<std::vector<std::uint8_t>> past_bytes;
  for (std::int64_t i = 0; i < L; ++i) {
    for (int kv = 0; kv < 2; ++kv) {
      HostF32& host = past[static_cast<std::size_t>(2 * i + kv)];
      names.push_back(kv == 0 ? io::past_key_name(i) : io::past_value_name(i));
      if (cache_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
        values.push_back(to_ort(host));
        continue;
      }
      auto& bytes = past_bytes.emplace_back();
      std::vector<std::int64_t> shape = host.shape;
      if (cache_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
        bytes.resize(host.data.size() * 2);
        for (std::size_t j = 0; j < host.data.size(); ++j) {
          const std::uint16_t bits = io::f32_to_f16(host.data[j]);
          std::memcpy(bytes.data() + 2 * j, &bits, 2);
        }
      } else {
        const std::size_t rows = host.data.size() / static_cast<std::size_t>(t.head_dim);
        bytes.resize(rows * static_cast<std::size_t>(row_bytes));
        for (std::size_t r = 0; r < rows; ++r) {
          kernels::quantize_kv_row(host.data.data() + r * static_cast<std::size_t>(t.head_dim), t.head_dim,
                                   bytes.data() + r * static_cast<std::size_t>(row_bytes));
        }
        shape[3] = row_bytes;
      }
      values.push_back(Ort::Value::CreateTensor(cpu_memory(), bytes.data(), bytes.size(), shape.data(), shape.size(),
                                                cache_type));
    }
  }
  std::vector<std::string> outputs = {io::kDecoderLogits};
  for (std::int64_t i = 0; i < L; ++i) {
    outputs.push_back(io::present_key_name(i));
    outputs.push_back(io::present_value_name(i));
  }
  outputs.insert(outputs.end(), router_outputs_.begin(), router_outputs_.end());
  std::vector<const char*> in_names, out_names;
  for (auto& n : names) in_names.push_back(n.c_str());
  for (auto& n : outputs) out_names.push_back(n.c_str());
  auto result = session_->run(in_names, values, out_names);
  DecoderStep step;
  step.logits = to_host(result[0]);
  const std::size_t presents = static_cast<std::size_t>(2 * L);
  for (std::size_t i = 1; i <= presents; ++i) {
    if (cache_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      step.present.push_back(to_host(result[i]));
      continue;
    }
    const auto info = result[i].GetTensorTypeAndShapeInfo();
    std::vector<std::int64_t> shape = info.GetShape();
    const auto* bytes = static_cast<const std::uint8_t*>(result[i].GetTensorRawData());
    HostF32 present;
    if (cache_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      present.data.resize(info.GetElementCount());
      for (std::size_t j = 0; j < present.data.size(); ++j) {
        std::uint16_t bits;
        std::memcpy(&bits, bytes + 2 * j, 2);
        present.data[j] = io::f16_to_f32(bits);
      }
    } else {
      const std::size_t rows = info.GetElementCount() / static_cast<std::size_t>(row_bytes);
      const auto hd = static_cast<std::size_t>(t.head_dim);
      present.data.resize(rows * hd);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::uint8_t* row = bytes + r * static_cast<std::size_t>(row_bytes);
        for (std::size_t d = 0; d < hd; ++d) {
          std::uint16_t bits;
          std::memcpy(&bits, row + hd + 2 * (d / 32), 2);
          present.data[r * hd + d] = static_cast<float>(static_cast<std::int8_t>(row[d])) * io::f16_to_f32(bits);
        }
      }
      shape[3] = t.head_dim;
    }
    present.shape = shape;
    step.present.push_back(std::move(present));
  }
  for (std::size_t i = presents + 1; i < result.size(); ++i) step.router_logits.push_back(to_host(result[i]));
  return step;
}

}  // namespace q3vl::testing
