// `q3vl make-checkpoint` end to end: options, the failure cases (a bad preset,
// an existing non-empty out dir, an unwritable path, missing tokenizer files) exit
// non-zero with one line on stderr and leave nothing behind; sharding and the
// transformers 5.x config layout.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "made_checkpoint.h"
#include "q3vl/config.h"
#include "support/test_paths.h"

namespace q3vl::checkpoint {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

RunResult run_q3vl(const std::string& arguments) {
  const std::string command = "'" + testing::q3vl_exe().string() + "' " + arguments + " 2>&1";
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  while (const std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

fs::path scratch(const std::string& name) {
  const auto dir = testing::work_dir() / "make_checkpoint_cli" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void expect_one_line_failure(const RunResult& result, const std::string& must_contain) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
  EXPECT_NE(result.output.find(must_contain), std::string::npos) << result.output;
  EXPECT_EQ(result.output.rfind("q3vl make-checkpoint: ", 0), 0u) << result.output;
}

TEST(MakeCheckpointCli, BadPresetFailsAndCreatesNothing) {
  const auto dir = scratch("bad-preset");
  const auto result = run_q3vl("make-checkpoint --preset huge --seed 0 --out " + quoted(dir / "out"));
  expect_one_line_failure(result, "--preset: expected one of tiny, tiny-untied, 2b, 4b, got \"huge\"");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(entries(dir).empty());
}

TEST(MakeCheckpointCli, NonEmptyOutDirIsRefusedAndLeftAlone) {
  const auto dir = scratch("non-empty");
  fs::create_directories(dir / "out");
  std::ofstream(dir / "out" / "keep.txt") << "mine";
  const auto result = run_q3vl("make-checkpoint --preset tiny --seed 0 --out " + quoted(dir / "out"));
  expect_one_line_failure(result, "expected a new or empty directory, got a non-empty directory");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"out"});
  EXPECT_EQ(entries(dir / "out"), std::vector<std::string>{"keep.txt"});
}

TEST(MakeCheckpointCli, OutIsAFileIsRefused) {
  const auto dir = scratch("out-file");
  std::ofstream(dir / "out") << "x";
  const auto result = run_q3vl("make-checkpoint --preset tiny --seed 0 --out " + quoted(dir / "out"));
  expect_one_line_failure(result, "got an existing file");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"out"});
}

// A path below a regular file cannot be created, even as root.
TEST(MakeCheckpointCli, UnwritablePathFailsAndLeavesNothing) {
  const auto dir = scratch("unwritable");
  std::ofstream(dir / "file") << "x";
  const auto out = dir / "file" / "sub" / "out";
  const auto result = run_q3vl("make-checkpoint --preset tiny --seed 0 --out " + quoted(out));
  expect_one_line_failure(result, out.string() + ": cannot create directory");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"file"});
}

// The failure comes after config files were written into the staging directory:
// the staging directory and the parent directories the run created are removed.
TEST(MakeCheckpointCli, MissingTokenizerFailsAndRemovesPartialOutput) {
  const auto dir = scratch("no-tokenizer");
  fs::create_directories(dir / "empty-tokenizer");
  const auto result = run_q3vl("make-checkpoint --preset tiny --seed 0 --out " +
                               quoted(dir / "new" / "deeper" / "out") + " --tokenizer-dir " +
                               quoted(dir / "empty-tokenizer"));
  expect_one_line_failure(result, "tokenizer.json: Qwen3 tokenizer file not found");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"empty-tokenizer"});
}

TEST(MakeCheckpointCli, WritesIntoAnEmptyDirectoryWithTheTransformers5Layout) {
  const auto dir = scratch("layout");
  fs::create_directories(dir / "out");
  const auto result = run_q3vl("make-checkpoint --preset tiny --seed 0 --quiet --layout rope_parameters --out " +
                               quoted(dir / "out"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");  // --quiet
  EXPECT_EQ(entries(dir), std::vector<std::string>{"out"});
  const ModelConfig config = load_model_config(dir / "out");
  EXPECT_EQ(config.layout, ConfigLayout::rope_parameters);
  // Same weights as the Hub-layout fixture: the layout only changes config.json.
  const auto a = io::Checkpoint::open(dir / "out");
  const auto b = io::Checkpoint::open(testing_support::made_checkpoint("tiny"));
  ASSERT_EQ(a.names(), b.names());
  const auto embed = a.tensor("model.language_model.embed_tokens.weight");
  const auto embed_b = b.tensor("model.language_model.embed_tokens.weight");
  EXPECT_TRUE(std::equal(embed.data.begin(), embed.data.end(), embed_b.data.begin(), embed_b.data.end()));
}

// Above --max-shard-bytes the weights are split the HF way; every tensor keeps its bytes.
TEST(MakeCheckpointCli, ShardsAboveTheMaximumShardSize) {
  const auto dir = scratch("sharded");
  const auto result = run_q3vl("make-checkpoint --preset tiny-untied --seed 0 --quiet --max-shard-bytes 20000000 --out " +
                               quoted(dir / "out"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto files = entries(dir / "out");
  EXPECT_NE(std::find(files.begin(), files.end(), "model.safetensors.index.json"), files.end());
  const auto shards = std::count_if(files.begin(), files.end(), [](const std::string& f) {
    return f.rfind("model-0000", 0) == 0 && f.find("-of-0000") != std::string::npos;
  });
  EXPECT_GE(shards, 2) << "files: " << files.size();
  EXPECT_EQ(std::find(files.begin(), files.end(), "model.safetensors"), files.end());
  const auto sharded = io::Checkpoint::open(dir / "out");
  const auto single = io::Checkpoint::open(testing_support::made_checkpoint("tiny-untied"));
  ASSERT_EQ(sharded.names(), single.names());
  for (const auto& name : single.names()) {
    const auto x = sharded.tensor(name);
    const auto y = single.tensor(name);
    ASSERT_TRUE(std::equal(x.data.begin(), x.data.end(), y.data.begin(), y.data.end())) << name;
  }
}

}  // namespace
}  // namespace q3vl::checkpoint
