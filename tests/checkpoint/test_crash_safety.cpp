// `q3vl make-checkpoint` killed at every phase of writing (core::StagingDir's fault
// points) by SIGINT, SIGTERM and SIGKILL, and stopped by `ulimit -f` (SIGXFSZ): the
// output path holds nothing or the complete checkpoint (byte-identical to the
// fixture made with the same preset and seed), and the next run leaves no temporary.
// SIGINT/SIGTERM only set make-checkpoint's cancel flag: before the last check it
// exits 130 with nothing written; during commit it finishes. Each case prints its
// matrix row: signal x phase -> how the process ended, what was at the path.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "support/crash_safety.h"

namespace q3vl {
namespace {

namespace fs = std::filesystem;
using testing::quote;

void check_matrix_row(int signal, long file_limit_kb, const std::vector<std::string>& phases) {
  const auto root = testing::work_dir() / "crash_safety" / std::to_string(signal);
  fs::remove_all(root);
  fs::create_directories(root);
  const auto out = root / "ckpt";
  const std::string args = "make-checkpoint --preset tiny --seed 0 --quiet --out " + quote(out);
  const std::string complete = testing::tree_listing(testing::checkpoint_dir("tiny"));
  ASSERT_FALSE(complete.empty());
  for (const auto& phase : phases) {
    const auto outcome = testing::run_q3vl_with_fault(args, phase, signal, file_limit_kb);
    const std::string tree = testing::tree_listing(out);
    const bool is_complete = tree == complete;
    std::printf("matrix: make-checkpoint %-8s %-8s -> %-18s path: %s, temporaries %zu\n",
                file_limit_kb > 0 ? "ulimit-f" : sigabbrev_np(signal), phase.empty() ? "(write)" : phase.c_str(),
                outcome.describe().c_str(), is_complete ? "complete checkpoint" : tree.empty() ? "nothing" : "PARTIAL",
                testing::temporaries_of(out).size());
    EXPECT_TRUE(tree.empty() || is_complete) << phase << ": a partial checkpoint at the output path";
    if (outcome.status != 0) {
      EXPECT_TRUE(tree.empty() || phase == "swapped") << phase;
    }
    if (phase == "swapped") {
      EXPECT_TRUE(is_complete);
    }
    fs::remove_all(out);
  }
  ASSERT_EQ(testing::run_q3vl_with_fault(args, "", 0).status, 0);
  EXPECT_EQ(testing::tree_listing(out), complete);
  EXPECT_TRUE(testing::temporaries_of(out).empty());
}

const std::vector<std::string> kPhases = {"staging", "writing", "commit", "swapped"};

TEST(CrashSafety, MakeCheckpointKilledBySigkill) { check_matrix_row(SIGKILL, 0, kPhases); }
TEST(CrashSafety, MakeCheckpointKilledBySigterm) { check_matrix_row(SIGTERM, 0, kPhases); }
TEST(CrashSafety, MakeCheckpointKilledBySigint) { check_matrix_row(SIGINT, 0, kPhases); }
// 1 MB: model.safetensors (tens of MB) outgrows it mid-write.
TEST(CrashSafety, MakeCheckpointStoppedByFileSizeLimit) { check_matrix_row(SIGXFSZ, 1024, {""}); }

}  // namespace
}  // namespace q3vl
