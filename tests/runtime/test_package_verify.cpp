// Package verification: every load checks each listed file's size against q3vl.json
// (a truncated or swapped weights file is a clear error before ONNX Runtime sees it);
// `q3vl inspect --verify` checks every sha256 and names the bad file; packages built
// before the file list load, and verify says there is nothing to check.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/json_file.h"
#include "q3vl/error.h"
#include "q3vl/model.h"
#include "q3vl/package.h"
#include "runtime_fixture.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl {
namespace {

namespace fs = std::filesystem;

// A copy of the tiny FP32 package whose files are symlinks to the shared one, except
// `own` (a real copy the test may damage).
fs::path package_copy(const std::string& name, const std::string& own = "") {
  const fs::path source = testing::runtime_package("tiny");
  const fs::path dir = testing::work_dir() / "verify" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(source)) {
    const auto file = entry.path().filename();
    if (file == own || file == kManifestFileName) {
      fs::copy_file(entry.path(), dir / file);
    } else {
      fs::create_symlink(entry.path(), dir / file);
    }
  }
  return dir;
}

std::string load_error(const fs::path& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "Model::load accepted " << dir;
  return {};
}

std::uint64_t listed_size(const fs::path& dir, const std::string& file) {
  for (const auto& f : load_package_manifest(dir).files) {
    if (f.path == file) return f.size;
  }
  ADD_FAILURE() << file << " not listed";
  return 0;
}

TEST(PackageVerify, TruncatedWeightsAreALoadError) {
  const auto dir = package_copy("truncated", "decoder.onnx.data");
  const std::uint64_t size = listed_size(dir, "decoder.onnx.data");
  fs::resize_file(dir / "decoder.onnx.data", size - 4096);
  EXPECT_EQ(load_error(dir), (dir / "decoder.onnx.data").string() + ": size: expected " + std::to_string(size) +
                                 " bytes (q3vl.json), got " + std::to_string(size - 4096) + " bytes");
}

TEST(PackageVerify, SwappedWeightsAreALoadError) {
  const auto dir = package_copy("swapped");
  fs::remove(dir / "embed.onnx.data");
  fs::create_symlink(testing::runtime_package("tiny") / "vision.onnx.data", dir / "embed.onnx.data");
  EXPECT_EQ(load_error(dir), (dir / "embed.onnx.data").string() + ": size: expected " +
                                 std::to_string(listed_size(dir, "embed.onnx.data")) + " bytes (q3vl.json), got " +
                                 std::to_string(fs::file_size(dir / "vision.onnx.data")) + " bytes");
}

TEST(PackageVerify, InspectVerifyNamesAChangedFile) {
  const auto dir = package_copy("changed", "vision.onnx.data");
  EXPECT_EQ(testing::run_shell(testing::quote(testing::q3vl_exe()) + " inspect --verify " + testing::quote(dir) +
                               " >/dev/null 2>&1").status, 0);
  {
    std::fstream f(dir / "vision.onnx.data", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x7f');
  }
  // Same size: a load still works (only the sizes are checked there) ...
  EXPECT_NO_THROW(Model::load(dir));
  // ... and --verify finds the changed byte.
  const auto r = testing::run_shell(testing::quote(testing::q3vl_exe()) + " inspect --verify " + testing::quote(dir) + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find((dir / "vision.onnx.data").string() + ": sha256: expected "), std::string::npos) << r.out;
}

TEST(PackageVerify, OlderPackageWithoutFileListLoads) {
  const auto dir = package_copy("older");
  io::Json manifest = io::read_json_file(dir / kManifestFileName);
  manifest.erase("files");
  io::write_json_file(dir / kManifestFileName, manifest);
  EXPECT_TRUE(load_package_manifest(dir).files.empty());
  EXPECT_NO_THROW(Model::load(dir));
  const auto r = testing::run_shell(testing::quote(testing::q3vl_exe()) + " inspect --verify " + testing::quote(dir) + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("verify: no checksums recorded"), std::string::npos) << r.out;
}

TEST(PackageVerify, FileListPathsStayInsideThePackage) {
  const auto dir = package_copy("escape");
  for (const char* bad : {"../q3vl.json", "/etc/passwd"}) {
    io::Json manifest = io::read_json_file(testing::runtime_package("tiny") / kManifestFileName);
    manifest["files"][0]["path"] = bad;
    io::write_json_file(dir / kManifestFileName, manifest);
    try {
      load_package_manifest(dir);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::config);
      EXPECT_NE(std::string(e.what()).find("files[0].path: expected a relative path inside the package"),
                std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace q3vl
