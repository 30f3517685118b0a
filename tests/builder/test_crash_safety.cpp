// `q3vl build --force` over an existing package, killed at every phase of writing
// (core::StagingDir's fault points) by SIGINT, SIGTERM and SIGKILL, and stopped by a
// file-size limit (`ulimit -f`, SIGXFSZ): the path holds either the old package
// untouched or the complete new one, and the next build leaves no temporary behind.
// Each case prints its matrix row: signal x phase -> how the process ended, what was at the path.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "ort_test_util.h"
#include "q3vl/package.h"
#include "support/crash_safety.h"

namespace q3vl {
namespace {

using testing::quote;

std::string build_args(const std::filesystem::path& out, const char* precision) {
  return "build --model " + quote(testing::checkpoint_dir("tiny")) + " --out " + quote(out) + " --precision " +
         precision + " --vision-precision fp32 --force --quiet";
}

// old: an fp32 package; each faulted run would replace it with an int8 one.
void check_matrix_row(int signal, long file_limit_kb, const std::vector<std::string>& phases) {
  const auto out = testing::fresh_dir("crash-" + std::to_string(signal)) / "pkg";
  ASSERT_EQ(testing::run_q3vl_with_fault(build_args(out, "fp32"), "", 0).status, 0);
  const std::string old_tree = testing::tree_listing(out);
  ASSERT_FALSE(old_tree.empty());
  for (const auto& phase : phases) {
    const auto outcome = testing::run_q3vl_with_fault(build_args(out, "int8"), phase, signal, file_limit_kb);
    const std::string tree = testing::tree_listing(out);
    const bool old_intact = tree == old_tree;
    const bool new_complete = !old_intact && load_package_manifest(out).decoder_precision == "int8";
    std::printf("matrix: build %-8s %-8s -> %-18s path: %s, temporaries %zu\n",
                file_limit_kb > 0 ? "ulimit-f" : sigabbrev_np(signal), phase.empty() ? "(write)" : phase.c_str(),
                outcome.describe().c_str(), old_intact ? "old package intact" : "new package complete",
                testing::temporaries_of(out).size());
    EXPECT_NE(outcome.status, 0) << phase;
    if (phase == "swapped") {
      // The swap happened: the new package is in place and complete.
      EXPECT_TRUE(new_complete) << phase;
      ASSERT_NO_THROW(verify_package_files(out, load_package_manifest(out)));
      // Back to the old package for the next phase.
      ASSERT_EQ(testing::run_q3vl_with_fault(build_args(out, "fp32"), "", 0).status, 0);
    } else {
      EXPECT_TRUE(old_intact) << phase;
    }
  }
  // The next (clean) run removes every temporary the killed runs left.
  ASSERT_EQ(testing::run_q3vl_with_fault(build_args(out, "int8"), "", 0).status, 0);
  EXPECT_TRUE(testing::temporaries_of(out).empty());
  const auto manifest = load_package_manifest(out);
  EXPECT_EQ(manifest.decoder_precision, "int8");
  EXPECT_NO_THROW(verify_package_files(out, manifest));
}

const std::vector<std::string> kPhases = {"staging", "writing", "commit", "swapped"};

// Without RENAME_EXCHANGE (forced by Q3VL_STAGING_NO_EXCHANGE) the commit renames the
// old package aside, then the new one into place. Killed between the two renames, the
// path is empty until the next run for it, whose first step renames the old package
// back: here that run is itself killed right after (phase "staging"), and the old
// package is whole again. Killed anywhere else, the path holds the old package or the
// complete new one, as with the exchange.
TEST(CrashSafety, BuildWithoutRenameExchangeRestoresTheOldPackage) {
  const std::string no_exchange = "Q3VL_STAGING_NO_EXCHANGE=1";
  const auto out = testing::fresh_dir("crash-no-exchange") / "pkg";
  ASSERT_EQ(testing::run_q3vl_with_fault(build_args(out, "fp32"), "", 0).status, 0);
  const std::string old_tree = testing::tree_listing(out);
  ASSERT_FALSE(old_tree.empty());
  for (const std::string phase : {"commit", "set_aside", "swapped"}) {
    const auto outcome = testing::run_q3vl_with_fault(build_args(out, "int8"), phase, SIGKILL, 0, no_exchange);
    EXPECT_NE(outcome.status, 0) << phase;
    const std::string tree = testing::tree_listing(out);
    std::printf("matrix: build (no exchange) KILL %-9s -> %-18s path: %s, temporaries %zu\n", phase.c_str(),
                outcome.describe().c_str(),
                tree == old_tree ? "old package intact" : tree.empty() ? "empty (old set aside)" : "new package",
                testing::temporaries_of(out).size());
    if (phase == "set_aside") {
      EXPECT_TRUE(tree.empty()) << "the old package should be set aside";
      EXPECT_EQ(testing::temporaries_of(out).size(), 2u);  // the staged new package and the old one
      testing::run_q3vl_with_fault(build_args(out, "int8"), "staging", SIGKILL, 0, no_exchange);
      EXPECT_EQ(testing::tree_listing(out), old_tree) << "the next run did not restore the old package";
    } else if (phase == "swapped") {
      EXPECT_EQ(load_package_manifest(out).decoder_precision, "int8");
      ASSERT_NO_THROW(verify_package_files(out, load_package_manifest(out)));
    } else {
      EXPECT_EQ(tree, old_tree) << phase;
    }
  }
  // A clean fallback run replaces the package and leaves no temporary, old or new.
  ASSERT_EQ(testing::run_q3vl_with_fault(build_args(out, "fp32"), "", 0, 0, no_exchange).status, 0);
  EXPECT_EQ(testing::tree_listing(out), old_tree);
  EXPECT_TRUE(testing::temporaries_of(out).empty());
}

TEST(CrashSafety, BuildKilledBySigkill) { check_matrix_row(SIGKILL, 0, kPhases); }
TEST(CrashSafety, BuildKilledBySigterm) { check_matrix_row(SIGTERM, 0, kPhases); }
TEST(CrashSafety, BuildKilledBySigint) { check_matrix_row(SIGINT, 0, kPhases); }
// 1 MB: the first weights file outgrows it (the tiny package's .onnx.data are 3-40 MB).
TEST(CrashSafety, BuildStoppedByFileSizeLimit) { check_matrix_row(SIGXFSZ, 1024, {""}); }

}  // namespace
}  // namespace q3vl
