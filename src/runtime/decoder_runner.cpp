#include "runtime/decoder_runner.h"

#include <algorithm>
#include <cstring>

#include "io/decoder_io.h"
#include "io/embed_io.h"
#include "q3vl/error.h"

namespace q3vl::runtime {
namespace {

using io::kDecoderAttentionMask;
using io::kDecoderDeepstackEmbeds;
using io::kDecoderInputsEmbeds;
using io::kDecoderLogits;
using io::kDecoderPositionIds;
using io::kEmbedInputIds;
using io::kEmbedInputsEmbeds;

template <typename T>
Ort::Value view(const Ort::MemoryInfo& cpu, std::span<const T> data, std::initializer_list<std::int64_t> shape) {
  return Ort::Value::CreateTensor<T>(cpu, const_cast<T*>(data.data()), data.size(), shape.begin(), shape.size());
}

}  // namespace

DecoderRunner::DecoderRunner(const ModelParts& parts)
    : parts_(parts),
      hidden_(parts.manifest.hidden_size),
      deepstack_(parts.manifest.deepstack_layers),
      vocab_(parts.manifest.vocab_size),
      layers_(parts.manifest.num_hidden_layers),
      last_logits_only_(parts.manifest.logits_mode == "last"),
      cache_(parts.manifest.num_hidden_layers, parts.manifest.num_key_value_heads, parts.manifest.head_dim,
             parse_kv_dtype(parts.manifest.kv_cache_dtype)),
      cpu_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
  for (std::int64_t l = 0; l < layers_; ++l) {
    past_names_.push_back(io::past_key_name(l));
    past_names_.push_back(io::past_value_name(l));
    present_names_.push_back(io::present_key_name(l));
    present_names_.push_back(io::present_value_name(l));
  }
}

void DecoderRunner::embed(std::span<const std::int64_t> ids, std::vector<float>& out) {
  for (const std::int64_t id : ids) {
    if (id < 0 || id >= vocab_) {
      throw_error(ErrorKind::limit, "", "input_ids", "ids in [0, " + std::to_string(vocab_) + ")",
                  std::to_string(id));
    }
  }
  const auto t = static_cast<std::int64_t>(ids.size());
  out.resize(static_cast<std::size_t>(t * hidden_));
  Ort::Value input = view<std::int64_t>(cpu_, ids, {1, t});
  Ort::Value output = view<float>(cpu_, std::span<const float>(out), {1, t, hidden_});
  const char* in_names[] = {kEmbedInputIds};
  const char* out_names[] = {kEmbedInputsEmbeds};
  try {
    parts_.embed.session().Run(Ort::RunOptions{nullptr}, in_names, &input, 1, out_names, &output, 1);
  } catch (const Ort::Exception& e) {
    throw_error(ErrorKind::runtime, parts_.embed.name(), "input_ids", e.what());
  }
}

void DecoderRunner::observe_outputs(std::vector<std::string> names, OutputObserver observer) {
  observed_names_ = std::move(names);
  observer_ = std::move(observer);
}

std::span<const float> DecoderRunner::run(std::span<const float> embeds, std::span<const float> deepstack,
                                          std::span<const std::int64_t> positions) {
  const std::int64_t past[1] = {cache_.length()};
  const auto t = static_cast<std::int64_t>(positions.size() / 3);
  const auto logits = run(cache_.binding(), DecoderBatch{1, embeds, deepstack, positions, past});
  cache_.set_length(past[0] + t);
  return logits;
}

std::span<const float> DecoderRunner::run(const KvBinding& kv, const DecoderBatch& in) {
  const std::int64_t b = in.batch;
  const auto t = static_cast<std::int64_t>(in.positions.size() / static_cast<std::size_t>(3 * b));
  if (b < 1 || static_cast<std::int64_t>(in.past.size()) != b || t < 1 || (b > 1 && t != 1) ||
      static_cast<std::int64_t>(in.embeds.size()) != b * t * hidden_) {
    throw_error(ErrorKind::runtime, parts_.decoder.name(), "run",
                "B sequences of T tokens (T = 1 when B > 1) with [B, T, D] embeds and [B] lengths",
                "B " + std::to_string(b) + ", " + std::to_string(in.positions.size()) + " position ids, " +
                    std::to_string(in.embeds.size()) + " embedding values, " + std::to_string(in.past.size()) +
                    " lengths");
  }
  // Right-padded mask: row r has past[r] + T ones (GQA writes row r's new K/V there).
  std::int64_t width = 0;
  for (const std::int64_t p : in.past) {
    if (p < 0 || p + t > kv.capacity) {
      throw_error(ErrorKind::runtime, "", "kv_cache", "room for " + std::to_string(p + t) + " tokens",
                  std::to_string(kv.capacity));
    }
    width = std::max(width, p + t);
  }
  mask_.assign(static_cast<std::size_t>(b * width), 0);
  for (std::int64_t r = 0; r < b; ++r) {
    std::fill_n(mask_.begin() + r * width, in.past[static_cast<std::size_t>(r)] + t, 1);
  }
  std::span<const float> ds = in.deepstack;
  if (deepstack_ > 0 && ds.empty()) {
    const auto need = static_cast<std::size_t>(deepstack_ * b * t * hidden_);
    if (zero_deepstack_.size() < need) zero_deepstack_.assign(need, 0.0f);
    ds = std::span<const float>(zero_deepstack_.data(), need);
  }

  Ort::Session& session = parts_.decoder.session();
  Ort::IoBinding binding(session);
  Ort::Value embeds_value = view<float>(cpu_, in.embeds, {b, t, hidden_});
  Ort::Value positions_value = view<std::int64_t>(cpu_, in.positions, {3, b, t});
  Ort::Value mask_value = view<std::int64_t>(cpu_, std::span<const std::int64_t>(mask_), {b, width});
  binding.BindInput(kDecoderInputsEmbeds, embeds_value);
  binding.BindInput(kDecoderPositionIds, positions_value);
  binding.BindInput(kDecoderAttentionMask, mask_value);
  std::optional<Ort::Value> ds_value;
  if (deepstack_ > 0) {
    ds_value.emplace(view<float>(cpu_, ds, {deepstack_, b, t, hidden_}));
    binding.BindInput(kDecoderDeepstackEmbeds, *ds_value);
  }
  for (std::int64_t l = 0; l < layers_; ++l) {
    const auto i = static_cast<std::size_t>(2 * l);
    const auto layer = static_cast<std::size_t>(l);
    binding.BindInput(past_names_[i].c_str(), kv.keys[layer]);
    binding.BindInput(past_names_[i + 1].c_str(), kv.values[layer]);
    binding.BindOutput(present_names_[i].c_str(), kv.keys[layer]);
    binding.BindOutput(present_names_[i + 1].c_str(), kv.values[layer]);
  }
  logits_.resize(static_cast<std::size_t>(b * vocab_));
  std::optional<Ort::Value> logits_value;
  if (last_logits_only_) {
    logits_value.emplace(view<float>(cpu_, std::span<const float>(logits_), {b, 1, vocab_}));
    binding.BindOutput(kDecoderLogits, *logits_value);
  } else {
    binding.BindOutput(kDecoderLogits, cpu_);
  }
  for (const std::string& name : observed_names_) binding.BindOutput(name.c_str(), cpu_);
  try {
    session.Run(Ort::RunOptions{nullptr}, binding);
  } catch (const Ort::Exception& e) {
    throw_error(ErrorKind::runtime, parts_.decoder.name(), "run",
                std::string(e.what()) + " (batch " + std::to_string(b) + ", past " +
                    std::to_string(in.past[0]) + ", new " + std::to_string(t) + ")");
  }
  if (!last_logits_only_ || !observed_names_.empty()) {
    std::vector<Ort::Value> outputs = binding.GetOutputValues();
    // Bound in order: presents, logits, then the observed outputs.
    const std::size_t first_observed = outputs.size() - observed_names_.size();
    if (!last_logits_only_) {
      const float* all = outputs[first_observed - 1].GetTensorData<float>();  // [B, T, V]
      all_logits_.assign(all, all + b * t * vocab_);
      for (std::int64_t r = 0; r < b; ++r) {
        std::memcpy(logits_.data() + r * vocab_, all + (r * t + t - 1) * vocab_,
                    static_cast<std::size_t>(vocab_) * sizeof(float));
      }
    }
    for (std::size_t i = 0; i < observed_names_.size(); ++i) {
      const Ort::Value& value = outputs[first_observed + i];
      const auto shape = value.GetTensorTypeAndShapeInfo().GetShape();
      const std::int64_t width_i = shape.empty() ? 1 : shape.back();
      const auto count = value.GetTensorTypeAndShapeInfo().GetElementCount();
      observer_(observed_names_[i], std::span<const float>(value.GetTensorData<float>(), count), width_i);
    }
  }
  return logits_;
}

}  // namespace q3vl::runtime
