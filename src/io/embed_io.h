// embed.onnx's input and output names, shared by the builder (src/builder/embed_graph.h
// has the shapes) and the runtime. The output name equals the decoder's input name
// (io/decoder_io.h), as in ONNX Runtime GenAI's packages.
//
// Header-only; thread-safe.
#pragma once

namespace q3vl::io {

inline constexpr const char* kEmbedInputIds = "input_ids";
inline constexpr const char* kEmbedInputsEmbeds = "inputs_embeds";

}  // namespace q3vl::io
