#include "builder/package_files.h"

#include <algorithm>
#include <system_error>

#include "core/sha256.h"
#include "q3vl/error.h"

namespace q3vl::builder {

const std::vector<std::string>& side_file_names() {
  static const std::vector<std::string> names = {
      "config.json",           "generation_config.json",  "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
      "vocab.json",            "merges.txt",              "chat_template.jinja",
      "chat_template.json",    "preprocessor_config.json", "video_preprocessor_config.json",
      "processor_config.json",
  };
  return names;
}

std::vector<std::string> copy_side_files(const std::filesystem::path& model_dir,
                                         const std::filesystem::path& dir) {
  std::vector<std::string> copied;
  for (const auto& name : side_file_names()) {
    const auto from = model_dir / name;
    if (!std::filesystem::is_regular_file(from)) continue;
    std::error_code ec;
    std::filesystem::copy_file(from, dir / name, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) throw_error(ErrorKind::io, (dir / name).string(), "", "a copy of " + from.string(), ec.message());
    copied.push_back(name);
  }
  return copied;
}

std::vector<PackageFile> list_package_files(const std::filesystem::path& dir) {
  std::vector<PackageFile> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    PackageFile f;
    f.path = std::filesystem::relative(entry.path(), dir).generic_string();
    f.size = entry.file_size();
    f.sha256 = core::sha256_file_hex(entry.path());
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(), [](const PackageFile& a, const PackageFile& b) { return a.path < b.path; });
  return files;
}

}  // namespace q3vl::builder
