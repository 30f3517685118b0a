#include "builder/package_files.h"

#include <algorithm>
#include <system_error>

#include "core/sha256.h"
#include "q3vl/error.h"

namespace q3vl::builder {

StagingDir::StagingDir(std::filesystem::path final_dir) : final_dir_(std::move(final_dir)) {
  auto parent = final_dir_.parent_path();
  if (parent.empty()) parent = ".";
  path_ = parent / ("." + final_dir_.filename().string() + ".partial");
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (!std::filesystem::create_directories(path_, ec) || ec) {
    throw_error(ErrorKind::io, path_.string(), "",
                "a writable directory next to the output (" + parent.string() + ")",
                ec ? ec.message() : "cannot create");
  }
}

StagingDir::~StagingDir() {
  if (!committed_) {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
}

void StagingDir::commit(bool replace) {
  std::error_code ec;
  std::filesystem::path old;
  if (std::filesystem::exists(final_dir_)) {
    if (!replace) {
      throw_error(ErrorKind::usage, final_dir_.string(), "", "a path that does not exist (or --force)",
                  "an existing file or directory");
    }
    // Move the old package aside first, so a failed rename below can restore it.
    old = final_dir_.parent_path() / ("." + final_dir_.filename().string() + ".old");
    std::filesystem::remove_all(old, ec);
    std::filesystem::rename(final_dir_, old, ec);
    if (ec) throw_error(ErrorKind::io, final_dir_.string(), "", "a replaceable output", ec.message());
  }
  std::filesystem::rename(path_, final_dir_, ec);
  if (ec) {
    std::error_code ignored;
    if (!old.empty()) std::filesystem::rename(old, final_dir_, ignored);
    throw_error(ErrorKind::io, final_dir_.string(), "", "the package renamed into place", ec.message());
  }
  committed_ = true;
  if (!old.empty()) std::filesystem::remove_all(old, ec);
}

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
