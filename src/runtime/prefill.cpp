#include "runtime/prefill.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace q3vl::runtime {

std::span<const float> prefill(DecoderRunner& runner, const Prompt& prompt, std::int64_t from,
                               std::int64_t chunk_tokens) {
  const std::int64_t total = static_cast<std::int64_t>(prompt.ids.size());
  const std::int64_t d = runner.hidden_size();
  const std::int64_t k = runner.deepstack_layers();
  const std::int64_t chunk = chunk_tokens;
  std::vector<float> embeds, deepstack;
  std::vector<std::int64_t> positions;
  std::span<const float> logits;
  for (std::int64_t start = from; start < total; start += chunk) {
    const std::int64_t c = std::min(chunk, total - start);
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
    positions.resize(static_cast<std::size_t>(3 * c));
    for (int r = 0; r < 3; ++r) {
      for (std::int64_t i = 0; i < c; ++i) positions[static_cast<std::size_t>(r * c + i)] = prompt.positions.at(r, start + i);
    }
    logits = runner.run(embeds, deepstack, positions);
  }
  return logits;
}

}  // namespace q3vl::runtime
