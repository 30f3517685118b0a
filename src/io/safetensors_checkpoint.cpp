// Checkpoint: a directory holding model.safetensors, or shards behind
// model.safetensors.index.json (the layout transformers' save_pretrained writes).
#include <fstream>
#include <iterator>
#include <map>

#include "io/safetensors.h"
#include "io/safetensors_json.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// The index is JSON like a header, so it gets the same size bound.
std::string read_text(const std::filesystem::path& path, std::uint64_t max_bytes) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error) throw_error(ErrorKind::io, path.string(), "cannot stat: " + error.message());
  if (size > max_bytes) {
    throw_error(ErrorKind::limit, path.string(), "size",
                "at most " + std::to_string(max_bytes) + " bytes", std::to_string(size));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open for reading");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_error(ErrorKind::io, path.string(), "read failed");
  return text;
}

// A shard name must be a plain file name in the checkpoint directory, so a
// hostile index cannot make us open files elsewhere ("../x", "/etc/x").
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Whether `path` names something that exists (a non-file there then fails in
// open() with a precise message); never throws, unlike std::filesystem::exists.
bool exists_no_throw(const std::filesystem::path& path) {
  std::error_code ignored;
  return std::filesystem::exists(path, ignored);
}

}  // namespace

struct Checkpoint::Impl {
  std::filesystem::path dir;
  std::vector<SafetensorsFile> shards;
  std::map<std::string, std::size_t> shard_of;  // tensor name -> shards[i]
};

Checkpoint Checkpoint::open(const std::filesystem::path& dir, SafetensorsLimits limits) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  const std::filesystem::path single = dir / kSingleFile;
  const std::filesystem::path index_path = dir / kIndexFile;
  if (exists_no_throw(single)) {
    impl->shards.push_back(SafetensorsFile::open(single, limits));
    for (const std::string& name : impl->shards[0].names()) impl->shard_of.emplace(name, 0);
    return Checkpoint(std::move(impl));
  }
  if (!exists_no_throw(index_path)) {
    throw_error(ErrorKind::io, dir.string(), "checkpoint",
                std::string(kSingleFile) + " or " + kIndexFile, "neither file");
  }

  const std::string index_file = index_path.string();
  const nlohmann::json index = parse_json_strict(read_text(index_path, limits.max_header_bytes), index_file);
  if (!index.is_object()) {
    throw_error(ErrorKind::format, index_file, "", "a JSON object", index.type_name());
  }
  const auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object()) {
    throw_error(ErrorKind::format, index_file, "weight_map",
                "an object {tensor name: shard file}",
                weight_map == index.end() ? "nothing" : weight_map->type_name());
  }
  if (weight_map->size() > limits.max_tensors) {
    throw_error(ErrorKind::limit, index_file, "weight_map",
                "at most " + std::to_string(limits.max_tensors) + " tensors (SafetensorsLimits::max_tensors)",
                std::to_string(weight_map->size()));
  }

  std::map<std::string, std::size_t> shard_number;  // shard file name -> shards[i]
  for (const auto& [name, shard] : weight_map->items()) {
    if (!shard.is_string() || !is_plain_file_name(shard.get<std::string>())) {
      throw_error(ErrorKind::format, index_file, "weight_map." + name,
                  "a shard file name in " + dir.string(), shard.dump());
    }
    const std::string shard_name = shard.get<std::string>();
    auto found = shard_number.find(shard_name);
    if (found == shard_number.end()) {
      const std::filesystem::path shard_path = dir / shard_name;
      if (!exists_no_throw(shard_path)) {
        throw_error(ErrorKind::io, index_file, "weight_map." + name,
                    "names shard " + shard_path.string() + ", which does not exist");
      }
      impl->shards.push_back(SafetensorsFile::open(shard_path, limits));
      found = shard_number.emplace(shard_name, impl->shards.size() - 1).first;
    }
    const SafetensorsFile& file = impl->shards[found->second];
    if (!file.contains(name)) {
      throw_error(ErrorKind::format, file.path().string(), name,
                  std::string("listed for this shard in ") + kIndexFile + " but absent from it");
    }
    impl->shard_of.emplace(name, found->second);
  }
  return Checkpoint(std::move(impl));
}

Checkpoint::Checkpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

const std::filesystem::path& Checkpoint::dir() const { return impl_->dir; }

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  names.reserve(impl_->shard_of.size());
  for (const auto& entry : impl_->shard_of) names.push_back(entry.first);
  return names;
}

bool Checkpoint::contains(const std::string& name) const {
  return impl_->shard_of.count(name) != 0;
}

TensorView Checkpoint::tensor(const std::string& name) const {
  const auto found = impl_->shard_of.find(name);
  if (found == impl_->shard_of.end()) {
    throw_error(ErrorKind::shape, impl_->dir.string(), name, "a tensor of this name", "none");
  }
  return impl_->shards[found->second].tensor(name);
}

}  // namespace q3vl::io
