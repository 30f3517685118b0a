// `q3vl make-checkpoint` end to end: options, the failure cases (a bad preset,
// an existing non-empty out dir, an unwritable path, missing tokenizer files, a bad
// --config, both or neither of --preset / --config) exit non-zero with one line on
// stderr and leave nothing behind; Ctrl-C / SIGTERM mid-write exits 130 and leaves
// nothing behind; sharding, the transformers 5.x config layout and --config.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "checkpoint/random_weights.h"
#include "checkpoint/weight_layout.h"
#include "io/json_file.h"
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
  expect_one_line_failure(result, "--preset: expected one of tiny, tiny-untied, tiny-moe, 2b, 4b, 30b-a3b, 235b-a22b, got \"huge\"");
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

// --moe-layout hf5 stores every expert tensor transposed per expert ([E, H, 2I] ->
// [E, 2I, H], [E, I, H] -> [E, H, I]) and everything else byte for byte as the Hub layout.
TEST(MakeCheckpointCli, MoeLayoutHf5HoldsTheSameModelTransposed) {
  const auto dir = scratch("moe-layout");
  const auto result = run_q3vl("make-checkpoint --preset tiny-moe --seed 0 --quiet --moe-layout hf5 --out " +
                               quoted(dir / "out"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto a = io::Checkpoint::open(dir / "out");
  const auto b = io::Checkpoint::open(testing_support::made_checkpoint("tiny-moe"));
  ASSERT_EQ(a.names(), b.names());
  std::size_t transposed = 0;
  for (const auto& name : a.names()) {
    const auto x = a.tensor(name), y = b.tensor(name);
    if (name.find(".mlp.experts.") == std::string::npos) {
      EXPECT_EQ(x.shape, y.shape) << name;
      EXPECT_TRUE(std::equal(x.data.begin(), x.data.end(), y.data.begin(), y.data.end())) << name;
      continue;
    }
    ++transposed;
    ASSERT_EQ(x.shape.size(), 3u) << name;
    ASSERT_EQ(x.shape, (std::vector<std::int64_t>{y.shape[0], y.shape[2], y.shape[1]})) << name;
    const std::int64_t E = x.shape[0], rows = x.shape[1], cols = x.shape[2];
    std::int64_t mismatches = 0;
    for (std::int64_t e = 0; e < E; ++e) {
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
          const auto xi = ((e * rows + r) * cols + c) * 2, yi = ((e * cols + c) * rows + r) * 2;
          mismatches += x.data[xi] != y.data[yi] || x.data[xi + 1] != y.data[yi + 1];
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
  EXPECT_EQ(transposed, 6u);  // 3 sparse layers x (gate_up_proj, down_proj)
  const auto bad = run_q3vl("make-checkpoint --preset tiny-moe --seed 0 --moe-layout hf4 --out " +
                            quoted(dir / "bad"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--moe-layout"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir / "bad"));
}

// --text-layers slices the text model; a count the config cannot take is a usage error
// naming the flag and the field it breaks, and writes nothing.
TEST(MakeCheckpointCli, TextLayersOverridesTheDepth) {
  const auto dir = scratch("text-layers");
  const auto ok = run_q3vl("make-checkpoint --preset tiny-moe --seed 0 --quiet --text-layers 3 --out " +
                           quoted(dir / "three"));
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  const ModelConfig config = load_model_config(dir / "three");
  EXPECT_EQ(config.text.num_hidden_layers, 3);
  EXPECT_EQ(config.text.mlp_only_layers, (std::vector<std::int64_t>{2}));
  const auto checkpoint = io::Checkpoint::open(dir / "three");
  EXPECT_TRUE(checkpoint.contains("model.language_model.layers.2.mlp.down_proj.weight"));
  EXPECT_FALSE(checkpoint.contains("model.language_model.layers.3.input_layernorm.weight"));
  // mlp_only_layers [2] needs at least 3 layers.
  expect_one_line_failure(
      run_q3vl("make-checkpoint --preset tiny-moe --seed 0 --text-layers 2 --out " + quoted(dir / "two")),
      "--text-layers: expected a layer count the config allows, got 2 (--text-layers 2: "
      "text_config.mlp_only_layers[0]: expected a layer index in [0, num_hidden_layers = 2), got 2)");
  expect_one_line_failure(
      run_q3vl("make-checkpoint --preset tiny-moe --seed 0 --text-layers 0 --out " + quoted(dir / "zero")),
      "--text-layers: expected a positive layer count, got 0");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"three"});
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

TEST(MakeCheckpointCli, PresetAndConfigAreExclusive) {
  const auto dir = scratch("exclusive");
  const auto config = testing::source_dir() / "tests" / "reference" / "configs" / "custom.json";
  const auto both = run_q3vl("make-checkpoint --preset tiny --config " + quoted(config) +
                             " --seed 0 --out " + quoted(dir / "out"));
  EXPECT_NE(both.exit_code, 0) << both.output;
  EXPECT_NE(both.output.find("excludes"), std::string::npos) << both.output;
  const auto neither = run_q3vl("make-checkpoint --seed 0 --out " + quoted(dir / "out"));
  expect_one_line_failure(neither, "--preset / --config: expected exactly one of them, got neither");
  EXPECT_TRUE(entries(dir).empty());
}

// A config the loader rejects: the message names the file and the field.
TEST(MakeCheckpointCli, InvalidConfigNamesTheFieldAndCreatesNothing) {
  const auto dir = scratch("bad-config");
  io::Json config = io::read_json_file(testing::source_dir() / "tests" / "reference" / "configs" / "custom.json");
  config["text_config"]["num_key_value_heads"] = 3;  // does not divide 8 heads
  std::ofstream(dir / "config.json") << config.dump(2);
  const auto result = run_q3vl("make-checkpoint --config " + quoted(dir / "config.json") + " --seed 0 --out " +
                               quoted(dir / "out"));
  expect_one_line_failure(result, "text_config.num_key_value_heads");
  EXPECT_NE(result.output.find((dir / "config.json").string()), std::string::npos) << result.output;
  EXPECT_EQ(entries(dir), std::vector<std::string>{"config.json"});
}

// --config: the model is the file's (any dims), config.json keeps the file's layout
// unless --layout says otherwise, and every tensor has the generator's bytes for its
// name (a preset's tensor of the same name and shape is identical).
TEST(MakeCheckpointCli, ConfigFileGivesItsModelInItsLayout) {
  const auto dir = scratch("config");
  const auto source = testing::source_dir() / "tests" / "reference" / "configs" / "custom.json";
  const auto result = run_q3vl("make-checkpoint --config " + quoted(source) + " --seed 0 --quiet --out " +
                               quoted(dir / "out"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
  const ModelConfig wanted = load_model_config(source);
  const ModelConfig made = load_model_config(dir / "out");
  EXPECT_EQ(wanted.layout, ConfigLayout::rope_parameters);
  EXPECT_EQ(made, wanted);  // every modelled field, and the layout
  const auto checkpoint = io::Checkpoint::open(dir / "out");
  const auto k_proj = checkpoint.tensor("model.language_model.layers.4.self_attn.k_proj.weight");
  EXPECT_EQ(k_proj.shape, (std::vector<std::int64_t>{wanted.text.num_key_value_heads * wanted.text.head_dim,
                                                     wanted.text.hidden_size}));
  const auto pos = checkpoint.tensor("model.visual.pos_embed.weight");
  EXPECT_EQ(pos.shape, (std::vector<std::int64_t>{256, 80}));
  // The bytes are the seeded generator's for the config's layout.
  const std::vector<WeightSpec> specs = qwen3vl_weights(wanted);
  EXPECT_EQ(checkpoint.names().size(), specs.size());
  for (const auto& spec : specs) {
    if (spec.name != "model.language_model.layers.4.self_attn.k_proj.weight") continue;
    std::vector<std::uint16_t> expected(static_cast<std::size_t>(spec.numel()));
    fill_bf16(spec, 0, 0, expected);
    const auto bytes = std::as_bytes(std::span<const std::uint16_t>(expected));
    EXPECT_TRUE(std::equal(k_proj.data.begin(), k_proj.data.end(), bytes.begin(), bytes.end()));
  }
  for (const char* file : {"generation_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
                           "chat_template.jinja", "tokenizer.json", "tokenizer_config.json"}) {
    std::ifstream x(dir / "out" / file, std::ios::binary), y(testing_support::made_checkpoint("tiny") / file,
                                                             std::ios::binary);
    const std::string sx((std::istreambuf_iterator<char>(x)), {}), sy((std::istreambuf_iterator<char>(y)), {});
    EXPECT_EQ(sx, sy) << file;
  }

  const auto hub = run_q3vl("make-checkpoint --config " + quoted(source) +
                            " --seed 0 --quiet --layout rope_scaling --out " + quoted(dir / "hub"));
  ASSERT_EQ(hub.exit_code, 0) << hub.output;
  ModelConfig hub_config = load_model_config(dir / "hub");
  EXPECT_EQ(hub_config.layout, ConfigLayout::rope_scaling);
  hub_config.layout = wanted.layout;
  EXPECT_EQ(hub_config, wanted);
}

// Ctrl-C (or SIGTERM) while the 2b preset's weights are being written: the command
// exits 130 with one line, and neither --out nor the hidden staging directory remains.
class MakeCheckpointInterrupt : public ::testing::TestWithParam<int> {};

bool staging_has_weights(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(".out.partial-", 0) != 0) continue;
    std::error_code error;
    for (const auto& file : fs::directory_iterator(entry.path(), error)) {
      if (file.path().filename().string().rfind("model", 0) == 0) return true;
    }
  }
  return false;
}

TEST_P(MakeCheckpointInterrupt, RemovesTheStagingDirectory) {
  const int signal_number = GetParam();
  const auto dir = scratch("interrupt-" + std::to_string(signal_number));
  const std::string exe = testing::q3vl_exe().string();
  const std::string out = (dir / "out").string();
  const std::string log = (dir.parent_path() / ("interrupt-" + std::to_string(signal_number) + ".log")).string();
  std::vector<std::string> args = {exe, "make-checkpoint", "--preset", "2b", "--seed", "0", "--quiet",
                                   "--threads", "1", "--out", out};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool mid_write = false;
  while (!mid_write && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    mid_write = staging_has_weights(dir);
  }
  if (!mid_write) kill(pid, SIGKILL);
  ASSERT_TRUE(mid_write) << "no weights file appeared in the staging directory within 60 s";
  ASSERT_EQ(kill(pid, signal_number), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  std::ifstream in(log);
  const std::string message((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(message, "q3vl make-checkpoint: " + out + ": interrupted; removed the partial output\n");
  EXPECT_TRUE(entries(dir).empty());
}

INSTANTIATE_TEST_SUITE_P(Signals, MakeCheckpointInterrupt, ::testing::Values(SIGINT, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& signal_info) {
                           return std::string(signal_info.param == SIGINT ? "SIGINT" : "SIGTERM");
                         });

}  // namespace
}  // namespace q3vl::checkpoint
