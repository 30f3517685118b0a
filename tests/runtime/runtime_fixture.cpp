#include "runtime/runtime_fixture.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::testing {

std::filesystem::path runtime_package(const std::string& preset) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  // Shared by all test processes (building a package per process would be slow).
  std::string name = preset;
  std::replace(name.begin(), name.end(), ':', '-');
  const auto dir = shared_dir() / ("rt-package-" + name);
  // CTest may run test processes in parallel: one builds, the others wait on the lock.
  const std::string lock_path = dir.string() + ".lock";
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0) throw_error(ErrorKind::io, lock_path, "", "a lock file", "cannot create it");
  ::flock(fd, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{fd};
  // A package older than the q3vl executable may come from an older builder: rebuild it.
  const auto manifest = dir / "q3vl.json";
  if (std::filesystem::exists(manifest) &&
      std::filesystem::last_write_time(manifest) >= std::filesystem::last_write_time(q3vl_exe())) {
    return dir;
  }
  // "<preset>:kv16" / "<preset>:kv8": the same FP32 package with a float16 / int8 KV cache.
  const auto colon = preset.find(':');
  const std::string checkpoint = preset.substr(0, colon);
  const std::string variant = colon == std::string::npos ? "" : preset.substr(colon + 1);
  if (!variant.empty() && variant != "kv16" && variant != "kv8") {
    throw_error(ErrorKind::usage, preset, "", "<preset>, <preset>:kv16 or <preset>:kv8", preset);
  }
  const std::string extra = variant.empty() ? "" : variant == "kv16" ? " --kv-cache float16" : " --kv-cache int8";
  const std::string command = "'" + q3vl_exe().string() + "' build --model '" +
                              checkpoint_dir(checkpoint.c_str()).string() + "' --out '" + dir.string() +
                              "'" + extra + " --force --quiet > /dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    throw_error(ErrorKind::runtime, dir.string(), "", "q3vl build to succeed", "failure: " + command);
  }
  return dir;
}

std::shared_ptr<const Model> runtime_model(const std::string& preset, const ModelOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const Model>> models;
  const std::string key = preset + "/" + std::to_string(options.prefill_chunk_tokens);
  const auto package = runtime_package(preset);
  std::lock_guard lock(mutex);
  auto& slot = models[key];
  if (!slot) slot = Model::load(package, options);
  return slot;
}

std::vector<text::Message> golden_messages(const GoldenCase& c) {
  std::vector<text::Message> messages =
      text::parse_messages_json(c.json().at("messages").dump(), c.name() + "/case.json");
  const auto root = golden_dir() / "model";
  for (auto& message : messages) {
    auto* parts = std::get_if<std::vector<text::ContentPart>>(&message.content);
    if (parts == nullptr) continue;
    for (auto& part : *parts) {
      if (part.type != text::ContentPart::Type::text) part.media.location = (root / part.media.location).string();
    }
  }
  return messages;
}

std::vector<std::string> golden_checkpoints(const GoldenSet& set) {
  std::vector<std::string> names = set.presets();
  for (const auto& [name, config] : set.manifest().at("configs").items()) names.push_back(name);
  return names;
}

std::filesystem::path golden_messages_file(const GoldenCase& c) {
  nlohmann::json messages = c.json().at("messages");
  const auto root = golden_dir() / "model";
  for (auto& message : messages) {
    if (!message.at("content").is_array()) continue;
    for (auto& part : message.at("content")) {
      for (const char* key : {"image_url", "video_url"}) {
        if (part.contains(key)) part[key]["url"] = (root / part[key]["url"].get<std::string>()).string();
      }
    }
  }
  const auto path = work_dir() / ("messages-" + c.name() + ".json");
  std::ofstream(path) << messages.dump();
  return path;
}

GenerateOptions greedy_options(const Model& model, std::int64_t steps) {
  GenerateOptions options = model.default_options();
  options.sampling.do_sample = false;
  options.sampling.temperature = 0.0f;
  options.max_new_tokens = steps;
  options.stop_token_ids.clear();
  return options;
}

}  // namespace q3vl::testing
