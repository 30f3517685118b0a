// File-level pieces of writing a package: the HF side files copied into it and the
// file list with sha256 (the staging directory is core/staging_dir.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "q3vl/package.h"

namespace q3vl::builder {

// The HF files a runtime needs besides the weights, copied when present:
// tokenizer + template + processor + generation configs, and config.json itself.
const std::vector<std::string>& side_file_names();
// Copies each existing side file from `model_dir` to `dir`; returns the names copied.
std::vector<std::string> copy_side_files(const std::filesystem::path& model_dir,
                                         const std::filesystem::path& dir);

// Every regular file under `dir` (relative, '/'-separated, sorted) with size and sha256.
std::vector<PackageFile> list_package_files(const std::filesystem::path& dir);

}  // namespace q3vl::builder
