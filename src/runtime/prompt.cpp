#include "runtime/prompt.h"

#include <functional>

#include "q3vl/error.h"
#include "q3vl/processor.h"

namespace q3vl::runtime {
namespace {

std::string token_text(const ModelParts& parts, std::int64_t id, const char* field) {
  const auto text = parts.tokenizer.id_to_token(static_cast<text::TokenId>(id));
  if (!text) throw_error(ErrorKind::config, "q3vl.json", field, "a token of the vocabulary", std::to_string(id));
  return *text;
}

std::string repeat(const std::string& s, std::int64_t n) {
  std::string out;
  out.reserve(s.size() * static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out += s;
  return out;
}

// Replaces each occurrence of `pad` in order by replacement(i); throws if the count differs.
std::string expand(const std::string& text, const std::string& pad, std::size_t count,
                   const std::function<std::string(std::size_t)>& replacement) {
  std::string out;
  std::size_t pos = 0, found = 0;
  while (true) {
    const std::size_t next = text.find(pad, pos);
    if (next == std::string::npos) break;
    if (found == count) {
      throw_error(ErrorKind::format, "prompt", pad, std::to_string(count) + " placeholders (one per medium)",
                  "more in the rendered prompt (literal placeholder text in a message?)");
    }
    out.append(text, pos, next - pos);
    out += replacement(found++);
    pos = next + pad.size();
  }
  if (found != count) {
    throw_error(ErrorKind::format, "prompt", pad, std::to_string(count) + " placeholders (one per medium)",
                std::to_string(found));
  }
  out.append(text, pos, std::string::npos);
  return out;
}

std::uint64_t key_bits(const std::string& hex) { return std::stoull(hex.substr(0, 16), nullptr, 16); }

}  // namespace

Prompt build_prompt(const ModelParts& parts, const std::vector<text::Message>& conversation,
                    const GenerateOptions& options, const std::vector<PromptMedium>& images,
                    const std::vector<PromptMedium>& videos) {
  const TokenIds& tokens = parts.manifest.tokens;
  const std::int64_t m = parts.config.vision.spatial_merge_size;
  text::RenderOptions render;
  render.tools_json = options.tools_json;
  const std::string rendered = parts.chat_template.render(conversation, render);

  const std::string image_pad = token_text(parts, tokens.image_token_id, "tokens.image_token_id");
  const std::string video_pad = token_text(parts, tokens.video_token_id, "tokens.video_token_id");
  Prompt prompt;
  // Each video's text holds only video pads, so the two passes do not interfere.
  std::string text = expand(rendered, video_pad, videos.size(), [&](std::size_t i) {
    const VisionFeatures& f = *videos[i].features;
    VisionInput shape;
    shape.grid_thw = {f.grid.t, f.grid.h, f.grid.w};
    shape.timestamps = f.timestamps;
    return video_placeholder_text(shape, m);
  });
  text = expand(text, image_pad, images.size(),
                [&](std::size_t i) { return repeat(image_pad, images[i].features->num_tokens); });
  prompt.text = std::move(text);

  for (const text::TokenId id : parts.tokenizer.encode(prompt.text)) prompt.ids.push_back(id);
  const auto t = prompt.ids.size();
  prompt.visual.resize(t);
  prompt.signature.resize(t);
  std::size_t image = 0, video = 0;
  std::int64_t row = 0;
  for (std::size_t i = 0; i < t; ++i) {
    const std::int64_t id = prompt.ids[i];
    prompt.signature[i] = static_cast<std::uint64_t>(id);
    const bool is_image = id == tokens.image_token_id, is_video = id == tokens.video_token_id;
    if (!is_image && !is_video) continue;
    const std::vector<PromptMedium>& list = is_image ? images : videos;
    std::size_t& index = is_image ? image : video;
    if (index >= list.size()) {
      throw_error(ErrorKind::format, "prompt", is_image ? image_pad : video_pad, "one run per medium",
                  "more placeholder tokens than media");
    }
    const PromptMedium& medium = list[index];
    prompt.visual[i] = {medium.features.get(), row};
    // Mix the medium's content hash and the row so equal pads of different media differ.
    prompt.signature[i] = key_bits(medium.key) ^ (static_cast<std::uint64_t>(row) * 0x9E3779B97F4A7C15ull) ^
                          (static_cast<std::uint64_t>(id) << 1);
    (is_image ? prompt.image_tokens : prompt.video_tokens) += 1;
    if (++row == medium.features->num_tokens) {
      row = 0;
      ++index;
    }
  }
  std::vector<vision::GridTHW> image_grids, video_grids;
  for (const auto& x : images) image_grids.push_back(x.features->grid);
  for (const auto& x : videos) video_grids.push_back(x.features->grid);
  prompt.positions = vision::compute_rope_index(prompt.ids, image_grids, video_grids,
                                                {tokens.image_token_id, tokens.video_token_id, m});
  return prompt;
}

}  // namespace q3vl::runtime
