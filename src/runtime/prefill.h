// Prefill: runs prompt tokens through embed + decoder after a cache's valid rows. Per chunk
// the visual tokens' rows of inputs_embeds are replaced by their merged vision features,
// and the chunk's own slice of the DeepStack input ([K, chunk, D], zero at text positions)
// is built, so any chunking gives the same result as one call.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/decoder_runner.h"
#include "runtime/prompt.h"

namespace q3vl::runtime {

// Prompt tokens [start, end) into the single sequence bound by `kv`, whose rows
// [0, start) are valid (batch 1). Returns the logits of token end - 1 (valid until the
// runner's next call). Requires start < end <= T and end <= kv.capacity.
std::span<const float> prefill_chunk(DecoderRunner& runner, const KvBinding& kv, const Prompt& prompt,
                                     std::int64_t start, std::int64_t end);

// Prompt tokens [from, T) into the runner's own cache, in chunks of at most
// `chunk_tokens`; advances the cache length. Returns the logits of the prompt's last
// token (valid until the runner's next call). Requires from < T and
// runner.cache().length() == from.
std::span<const float> prefill(DecoderRunner& runner, const Prompt& prompt, std::int64_t from,
                               std::int64_t chunk_tokens);

}  // namespace q3vl::runtime
