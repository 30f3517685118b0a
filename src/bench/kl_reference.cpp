// save_kl_reference() / load_kl_reference(): the reference logits file of
// include/q3vl/quality.h.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <system_error>

#include "q3vl/error.h"
#include "q3vl/quality.h"

namespace q3vl {
namespace {

constexpr const char* kMagic = "q3vl-kl-reference 1";
// The header is one line of JSON a few hundred bytes long; anything longer is not ours.
constexpr std::size_t kMaxHeaderBytes = 1 << 20;
// Bounds that keep `positions * vocab_size * 4` far from overflow before it is compared
// with the file's size (real sets: ~10^4 positions, ~1.5 * 10^5 vocabulary).
constexpr std::int64_t kMaxVocab = 1 << 24;
constexpr std::int64_t kMaxPositions = 1 << 24;

nlohmann::ordered_json header_json(const KlReference& r) {
  nlohmann::ordered_json images = nlohmann::ordered_json::array();
  for (const BenchImageSize& s : r.images) images.push_back({s.width, s.height});
  const BenchPackage& p = r.package;
  return {{"package",
           {{"path", p.path},
            {"decoder_precision", p.decoder_precision},
            {"vision_precision", p.vision_precision},
            {"quantization", p.quantization},
            {"decoder_weight_bytes", p.decoder_weight_bytes},
            {"linear_weight_bytes", p.linear_weight_bytes},
            {"linear_weights", p.linear_weights},
            {"kv_bytes_per_token", p.kv_bytes_per_token},
            {"has_vision", p.has_vision}}},
          {"context", r.context},
          {"chunks", r.chunks},
          {"text_tokens", r.text_tokens},
          {"answer_tokens", r.answer_tokens},
          {"vocab_size", r.vocab_size},
          {"images", images},
          {"text_fingerprint", r.text_fingerprint},
          {"fingerprint", r.fingerprint},
          {"text_positions", r.text_positions},
          {"positions", r.positions()}};
}

// Reads header fields with their types and ranges checked, naming the file and field.
struct HeaderReader {
  const std::string& file;
  const nlohmann::json& j;

  const nlohmann::json& at(const nlohmann::json& object, const char* field) const {
    if (!object.is_object() || !object.contains(field)) throw_error(ErrorKind::config, file, field, "missing");
    return object.at(field);
  }
  std::int64_t integer(const nlohmann::json& object, const char* field, std::int64_t lo, std::int64_t hi) const {
    const nlohmann::json& v = at(object, field);
    if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi) {
      throw_error(ErrorKind::config, file, field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                  v.dump());
    }
    return v.get<std::int64_t>();
  }
  std::uint64_t unsigned64(const char* field) const {
    const nlohmann::json& v = at(j, field);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      throw_error(ErrorKind::config, file, field, "an unsigned 64-bit integer", v.dump());
    }
    return v.get<std::uint64_t>();
  }
  std::string text(const nlohmann::json& object, const char* field) const {
    const nlohmann::json& v = at(object, field);
    if (!v.is_string()) throw_error(ErrorKind::config, file, field, "a string", v.dump());
    return v.get<std::string>();
  }
  bool boolean(const nlohmann::json& object, const char* field) const {
    const nlohmann::json& v = at(object, field);
    if (!v.is_boolean()) throw_error(ErrorKind::config, file, field, "true or false", v.dump());
    return v.get<bool>();
  }
};

constexpr std::int64_t kMaxCount = std::numeric_limits<std::int64_t>::max() / 4;

}  // namespace

void save_kl_reference(const KlReference& r, const std::filesystem::path& file) {
  const std::filesystem::path temp = file.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw_error(ErrorKind::io, temp.string(), "", "a writable file", "cannot create it");
    const std::string header = std::string(kMagic) + "\n" + header_json(r).dump() + "\n";
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(r.logits.data()),
              static_cast<std::streamsize>(r.logits.size() * sizeof(float)));
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw_error(ErrorKind::io, file.string(), "", "the reference logits written", "a write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, file, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw_error(ErrorKind::io, file.string(), "", "the reference logits renamed into place", "the rename failed");
  }
}

KlReference load_kl_reference(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, file, "", "a readable reference logits file", "cannot open it");
  std::string magic;
  std::getline(in, magic);
  if (!in || magic != kMagic) {
    throw_error(ErrorKind::config, file, "format", std::string("first line \"") + kMagic + "\"",
                "\"" + magic.substr(0, 40) + "\"");
  }
  std::string line;
  char c = 0;
  while (in.get(c) && c != '\n') {
    if (line.size() >= kMaxHeaderBytes) {
      throw_error(ErrorKind::config, file, "header", "a JSON line under " + std::to_string(kMaxHeaderBytes) + " bytes",
                  "a longer one");
    }
    line.push_back(c);
  }
  if (c != '\n') throw_error(ErrorKind::config, file, "header", "a JSON line", "the file ends inside it");
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw_error(ErrorKind::config, file, "header", "a JSON object", "invalid JSON");
  const HeaderReader h{file, j};

  KlReference r;
  const nlohmann::json& p = h.at(j, "package");
  r.package.path = h.text(p, "path");
  r.package.decoder_precision = h.text(p, "decoder_precision");
  r.package.vision_precision = h.text(p, "vision_precision");
  r.package.quantization = h.text(p, "quantization");
  r.package.decoder_weight_bytes = h.integer(p, "decoder_weight_bytes", 0, kMaxCount);
  r.package.linear_weight_bytes = h.integer(p, "linear_weight_bytes", 0, kMaxCount);
  r.package.linear_weights = h.integer(p, "linear_weights", 0, kMaxCount);
  r.package.kv_bytes_per_token = h.integer(p, "kv_bytes_per_token", 0, kMaxCount);
  r.package.has_vision = h.boolean(p, "has_vision");
  r.context = h.integer(j, "context", 4, 1 << 20);
  r.chunks = h.integer(j, "chunks", 1, kMaxPositions);
  r.text_tokens = h.integer(j, "text_tokens", r.chunks * r.context, kMaxCount);
  r.answer_tokens = h.integer(j, "answer_tokens", 1, kMaxPositions);
  r.vocab_size = h.integer(j, "vocab_size", 1, kMaxVocab);
  const nlohmann::json& images = h.at(j, "images");
  if (!images.is_array()) throw_error(ErrorKind::config, file, "images", "an array of [width, height]", images.dump());
  for (const nlohmann::json& size : images) {
    if (!size.is_array() || size.size() != 2 || !size[0].is_number_integer() || !size[1].is_number_integer() ||
        size[0].get<std::int64_t>() < 1 || size[1].get<std::int64_t>() < 1) {
      throw_error(ErrorKind::config, file, "images", "[width, height] with positive integers", size.dump());
    }
    r.images.push_back({size[0].get<std::int64_t>(), size[1].get<std::int64_t>()});
  }
  r.text_fingerprint = h.unsigned64("text_fingerprint");
  r.fingerprint = h.unsigned64("fingerprint");
  const std::int64_t first = r.context / 2;
  r.text_positions = h.integer(j, "text_positions", r.chunks * (r.context - 1 - first), r.chunks * (r.context - 1 - first));
  const std::int64_t answer = std::min(r.answer_tokens, r.text_tokens);
  const std::int64_t expected_positions = r.text_positions + static_cast<std::int64_t>(r.images.size()) * answer;
  const std::int64_t positions = h.integer(j, "positions", expected_positions, expected_positions);
  if (positions > kMaxPositions) {
    throw_error(ErrorKind::config, file, "positions", "at most " + std::to_string(kMaxPositions), std::to_string(positions));
  }

  // The size check comes before the allocation: a header cannot make us reserve memory
  // the file does not back.
  const auto data_start = static_cast<std::uintmax_t>(in.tellg());
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  const auto data_bytes = static_cast<std::uintmax_t>(positions) * static_cast<std::uintmax_t>(r.vocab_size) * sizeof(float);
  if (ec || size < data_start || size - data_start != data_bytes) {
    throw_error(ErrorKind::config, file, "size",
                std::to_string(data_start + data_bytes) + " bytes (header + positions x vocab_size float32)",
                ec ? std::string("unknown") : std::to_string(size) + " bytes");
  }
  r.logits.resize(static_cast<std::size_t>(positions * r.vocab_size));
  in.read(reinterpret_cast<char*>(r.logits.data()), static_cast<std::streamsize>(data_bytes));
  if (!in) throw_error(ErrorKind::io, file, "", "the reference logits", "a read failed");
  return r;
}

}  // namespace q3vl
