#include "runtime/prefill.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace q3vl::runtime {

std::span<const float> prefill_chunk(DecoderRunner& runner, const KvBinding& kv, const Prompt& prompt,
                                     std::int64_t start, std::int64_t end) {
  const std::int64_t d = runner.hidden_size();
  const std::int64_t k = runner.deepstack_layers();
  const std::int64_t c = end - start;
  std::vector<float> embeds, deepstack;
  runner.embed(std::span<const std::int64_t>(prompt.ids).subspan(static_cast<std::size_t>(start),
                                                                  static_cast<std::size_t>(c)),
               embeds);
  bool any_visual = false;
  for (std::int64_t i = 0; i < c; ++i) any_visual |= prompt.visual[static_cast<std::size_t>(start + i)].features != nullptr;
  // DeepStack input of this chunk only: [K, c, D], zero at text positions.
  deepstack.assign(any_visual ? static_cast<std::size_t>(k * c * d) : 0, 0.0f);
  for (std::int64_t i = 0; i < c; ++i) {
    const VisualRow& v = prompt.visual[static_cast<std::size_t>(start + i)];
    if (v.features == nullptr) continue;
    std::memcpy(embeds.data() + i * d, v.features->merged.data() + v.row * d, static_cast<std::size_t>(d) * sizeof(float));
    for (std::int64_t j = 0; j < k; ++j) {
      std::memcpy(deepstack.data() + (j * c + i) * d,
                  v.features->deepstack.data() + (j * v.features->num_tokens + v.row) * d,
                  static_cast<std::size_t>(d) * sizeof(float));
    }
  }
  std::vector<std::int64_t> positions(static_cast<std::size_t>(3 * c));
  for (int r = 0; r < 3; ++r) {
    for (std::int64_t i = 0; i < c; ++i) positions[static_cast<std::size_t>(r * c + i)] = prompt.positions.at(r, start + i);
  }
  const std::int64_t past[1] = {start};
  return runner.run(kv, DecoderBatch{1, embeds, deepstack, positions, past});
}

std::span<const float> prefill(DecoderRunner& runner, const Prompt& prompt, std::int64_t from,
                               std::int64_t chunk_tokens) {
  const auto total = static_cast<std::int64_t>(prompt.ids.size());
  std::span<const float> logits;
  for (std::int64_t start = from; start < total; start += chunk_tokens) {
    const std::int64_t end = std::min(total, start + chunk_tokens);
    logits = prefill_chunk(runner, runner.cache().binding(), prompt, start, end);
    runner.cache().set_length(end);
  }
  return logits;
}

}  // namespace q3vl::runtime
