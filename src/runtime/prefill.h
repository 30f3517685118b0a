// Prefill: runs prompt tokens [from, T) through embed + decoder after the cache's valid rows
// (which must equal `from`), in chunks of at most `chunk_tokens`. Per chunk the visual
// tokens' rows of inputs_embeds are replaced by their merged vision features, and the
// chunk's own slice of the DeepStack input ([K, chunk, D], zero at text positions) is
// built, so any chunking gives the same result as one call.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/decoder_runner.h"
#include "runtime/prompt.h"

namespace q3vl::runtime {

// Returns the logits of the prompt's last token (valid until the runner's next call).
// Requires from < T and runner.cache().length() == from.
std::span<const float> prefill(DecoderRunner& runner, const Prompt& prompt, std::int64_t from,
                               std::int64_t chunk_tokens);

}  // namespace q3vl::runtime
