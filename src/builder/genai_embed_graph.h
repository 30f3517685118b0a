// The embedding graph of an ONNX Runtime GenAI package (builder/genai_package.h): the
// token lookup of embed.onnx (write_embed_lookup) plus the scatter of the vision graph's
// features over the image pads, which q3vl's runtime does on the host and GenAI expects
// inside this graph:
//
//   inputs  input_ids       i64 [batch_size, sequence_length]
//           image_features  f32 [num_image_tokens, W]   (0 rows: text-only prompts, every decode step)
//   outputs inputs_embeds   f32 [batch_size, sequence_length, W]
//
// W = hidden_size * (1 + K) with DeepStack (K taps; the decoder splits the columns,
// builder/text_decoder.h DeepstackInput::packed), hidden_size without. Row j of
// image_features replaces the j-th image_token_id position (row-major over the batch);
// every other position gets its embedding row followed by zeros in the DeepStack
// columns (HF adds DeepStack at visual positions only). More image tokens than feature
// rows make ONNX Runtime's Gather fail (GenAI's processor writes exactly as many).
#pragma once

#include "builder/graph.h"
#include "builder/linear.h"
#include "builder/weight_reader.h"
#include "q3vl/config.h"

namespace q3vl::builder {

inline constexpr const char* kGenaiImageFeaturesInput = "image_features";

// `width` = W above (a multiple of hidden_size). precision as write_embed_graph.
void write_genai_embed_graph(Graph& g, WeightReader& weights, const ModelConfig& config, WeightPrecision precision,
                             std::int64_t width);

}  // namespace q3vl::builder
