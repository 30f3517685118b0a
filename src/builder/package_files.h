// File-level pieces of writing a package: the temporary directory that becomes the
// package, the HF side files copied into it, and the file list with sha256.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "q3vl/package.h"

namespace q3vl::builder {

// A directory next to `final_dir` ("<parent>/.<name>.partial") that is removed on
// destruction unless commit() renamed it to `final_dir`. Lifetime: stack object.
class StagingDir {
 public:
  // Removes a stale staging dir from an earlier crash, creates a fresh one.
  // Throws q3vl::Error(io) naming the directory if it cannot be created.
  explicit StagingDir(std::filesystem::path final_dir);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Moves the staging dir to final_dir, replacing an existing final_dir (only when
  // `replace`). Throws q3vl::Error(io) on failure; the old final_dir survives a failed rename.
  void commit(bool replace);

 private:
  std::filesystem::path final_dir_;
  std::filesystem::path path_;
  bool committed_ = false;
};

// The HF files a runtime needs besides the weights, copied when present:
// tokenizer + template + processor + generation configs, and config.json itself.
const std::vector<std::string>& side_file_names();
// Copies each existing side file from `model_dir` to `dir`; returns the names copied.
std::vector<std::string> copy_side_files(const std::filesystem::path& model_dir,
                                         const std::filesystem::path& dir);

// Every regular file under `dir` (relative, '/'-separated, sorted) with size and sha256.
std::vector<PackageFile> list_package_files(const std::filesystem::path& dir);

}  // namespace q3vl::builder
