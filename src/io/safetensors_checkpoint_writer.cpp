// write_checkpoint: HF's shard plan (huggingface_hub split_state_dict_into_shards)
// and index file (transformers PreTrainedModel.save_pretrained), over SafetensorsWriter.
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

// HF's plan, greedy in spec order: a tensor that would push the current shard past
// the limit starts a new shard; a tensor bigger than the limit by itself gets a
// shard of its own, appended when it is met (so before the shard still being
// filled). Returns the shard number of each spec, and the shard count.
std::vector<std::size_t> plan_shards(const std::vector<TensorSpec>& specs,
                                     std::uint64_t max_shard_bytes, std::size_t& shard_count) {
  std::vector<std::size_t> shard_of_spec(specs.size());
  std::vector<std::size_t> filling;  // specs in the shard being filled
  std::uint64_t filling_bytes = 0;
  shard_count = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const std::uint64_t bytes = specs[i].byte_size();
    if (bytes > max_shard_bytes) {
      shard_of_spec[i] = shard_count++;
      continue;
    }
    if (filling_bytes + bytes > max_shard_bytes) {
      for (const std::size_t j : filling) shard_of_spec[j] = shard_count;
      ++shard_count;
      filling.clear();
      filling_bytes = 0;
    }
    filling.push_back(i);
    filling_bytes += bytes;
  }
  if (!filling.empty() || shard_count == 0) {
    for (const std::size_t j : filling) shard_of_spec[j] = shard_count;
    ++shard_count;
  }
  return shard_of_spec;
}

std::string shard_file_name(std::size_t k, std::size_t n) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k, n);
  return name;
}

// json.dumps(index, indent=2, sort_keys=True) + "\n": nlohmann's default json keeps
// keys sorted, and ensure_ascii matches Python's default escaping.
void write_index(const std::filesystem::path& path, const std::vector<TensorSpec>& specs,
                 const std::vector<std::string>& shard_of_spec) {
  nlohmann::json index;
  std::uint64_t total_size = 0;
  std::uint64_t total_parameters = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    total_size += specs[i].byte_size();
    total_parameters += specs[i].byte_size() / dtype_size(specs[i].dtype);
    index["weight_map"][specs[i].name] = shard_of_spec[i];
  }
  index["metadata"] = {{"total_parameters", total_parameters}, {"total_size", total_size}};
  const std::string text = index.dump(2, ' ', true) + "\n";

  std::filesystem::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::filesystem::remove(temp);
      throw_error(ErrorKind::io, path.string(), "cannot write " + temp.string());
    }
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::filesystem::remove(temp);
    throw_error(ErrorKind::io, path.string(), "cannot rename " + temp.string() + ": " +
                                                  error.message());
  }
}

// Removes the files written so far unless disarmed, so a failure leaves no
// partial checkpoint behind.
struct WrittenFiles {
  std::vector<std::filesystem::path> paths;
  bool keep = false;
  ~WrittenFiles() {
    if (keep) return;
    for (const auto& path : paths) {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  }
};

}  // namespace

void write_checkpoint(const std::filesystem::path& dir, const std::vector<TensorSpec>& specs,
                      std::uint64_t max_shard_bytes,
                      const std::function<void(const TensorSpec&, const TensorSink&)>& produce,
                      const std::map<std::string, std::string>& metadata) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw_error(ErrorKind::io, dir.string(), "cannot create directory: " + error.message());

  std::set<std::string> names;
  for (const TensorSpec& spec : specs) {
    if (!names.insert(spec.name).second) {
      throw_error(ErrorKind::usage, dir.string(), spec.name, "unique tensor names", "a duplicate");
    }
  }
  std::size_t shard_count = 0;
  const std::vector<std::size_t> shard_of_spec = plan_shards(specs, max_shard_bytes, shard_count);
  std::vector<std::string> file_names;
  for (std::size_t k = 0; k < shard_count; ++k) {
    file_names.push_back(shard_count == 1 ? "model.safetensors"
                                          : shard_file_name(k + 1, shard_count));
  }

  // All shards are open at once, so produce() runs in spec order whatever the plan,
  // and nothing is renamed into place until every byte has been written.
  std::vector<std::unique_ptr<SafetensorsWriter>> writers;
  for (std::size_t k = 0; k < shard_count; ++k) {
    std::vector<TensorSpec> shard_specs;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (shard_of_spec[i] == k) shard_specs.push_back(specs[i]);
    }
    writers.push_back(
        std::make_unique<SafetensorsWriter>(dir / file_names[k], std::move(shard_specs), metadata));
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& spec = specs[i];
    SafetensorsWriter& writer = *writers[shard_of_spec[i]];
    std::uint64_t received = 0;
    produce(spec, [&](std::span<const std::byte> piece) {
      received += piece.size();
      writer.write(spec.name, piece);
    });
    if (received != spec.byte_size()) {
      throw_error(ErrorKind::usage, (dir / file_names[shard_of_spec[i]]).string(), spec.name,
                  std::to_string(spec.byte_size()) + " bytes from produce()",
                  std::to_string(received));
    }
  }

  WrittenFiles written;
  for (std::size_t k = 0; k < shard_count; ++k) {
    writers[k]->finish();
    written.paths.push_back(dir / file_names[k]);
  }
  if (shard_count > 1) {
    std::vector<std::string> shard_names;
    for (const std::size_t k : shard_of_spec) shard_names.push_back(file_names[k]);
    written.paths.push_back(dir / "model.safetensors.index.json");
    write_index(written.paths.back(), specs, shard_names);
  }
  written.keep = true;
}

}  // namespace q3vl::io
