// make_checkpoint is deterministic: the same preset + seed gives byte-identical
// directories whatever the thread count, and `tiny` seed 0 has pinned hashes
// (a change to any generated file must be deliberate: update the pins and say why).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "checkpoint/make_checkpoint.h"
#include "core/sha256.h"
#include "support/test_paths.h"

namespace q3vl::checkpoint {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> file_hashes(const fs::path& dir) {
  std::map<std::string, std::string> hashes;
  for (const auto& entry : fs::directory_iterator(dir)) {
    hashes[entry.path().filename().string()] = core::sha256_file_hex(entry.path());
  }
  return hashes;
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = testing::work_dir() / "determinism" / name;
  fs::remove_all(dir);
  return dir;
}

fs::path make(const std::string& preset, std::uint64_t seed, const std::string& name,
              unsigned threads, ExpertLayout experts = ExpertLayout::hub) {
  MakeCheckpointOptions options;
  options.expert_layout = experts;
  options.preset = preset;
  options.seed = seed;
  options.out = fresh_dir(name);
  options.threads = threads;
  options.progress = ProgressMode::quiet;
  make_checkpoint(options);
  return options.out;
}

// sha256 of every file `q3vl make-checkpoint --preset tiny --seed 0` writes.
const std::map<std::string, std::string> kTinySeed0 = {
    {"chat_template.jinja",
     "48dbd779e0596773fc4bef76ad975df53f8a2bf8486350b0cf7df9060408465c"},
    {"config.json",
     "2134bd098191e187090f010d04dd6393bb6eb563b968fae11147064b0386b4d5"},
    {"generation_config.json",
     "cdbd41b31071ff8fd32528bc6ad96ced0283d54fd73fae907163573a13bb15e2"},
    {"model.safetensors",
     "6677a031058d13645deb652f4870ccce200de7d3a4b417326cd3696dda5ddd6e"},
    {"preprocessor_config.json",
     "8a113d3fd988da83419592eb7434e616b98a6dc6fcde47229cf5ef4aeef35983"},
    {"tokenizer.json", "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"},
    {"tokenizer_config.json",
     "24091af3d919c9ec177d86cd78f842ff8e0a6373f3635bf4df6d0620180a741a"},
    {"video_preprocessor_config.json",
     "6d70bbd1e3181839640d969f055078e2dff531bb093663cf75d59a70deebfa49"},
};

TEST(Determinism, TinySeed0HasThePinnedHashes) {
  EXPECT_EQ(file_hashes(make("tiny", 0, "tiny-a", 1)), kTinySeed0);
  // The CTest fixture made through the command line is the same checkpoint.
  EXPECT_EQ(file_hashes(testing::checkpoint_dir("tiny")), kTinySeed0);
}

TEST(Determinism, SameSeedSameBytesAnyThreadCount) {
  const auto one = file_hashes(make("tiny-untied", 5, "untied-1", 1));
  const auto three = file_hashes(make("tiny-untied", 5, "untied-3", 3));
  EXPECT_EQ(one, three);
  const auto other_seed = file_hashes(make("tiny-untied", 6, "untied-seed6", 2));
  EXPECT_NE(one.at("model.safetensors"), other_seed.at("model.safetensors"));
  EXPECT_EQ(one.at("config.json"), other_seed.at("config.json"));
}

// model.safetensors of `make-checkpoint --preset tiny-moe --seed 0` (the Hub's expert
// layout) and with --moe-layout hf5 (the other files are the same in both).
constexpr const char* kTinyMoeHub = "c595a29e04d02f01042905b26467a67a39ce4478cef33d83519f18cf78f8864c";
constexpr const char* kTinyMoeHf5 = "252992ea60ec3e1377114bb091aff12508891e6ead56d1f21530929c182aa71c";

TEST(Determinism, TinyMoeSeed0HasThePinnedHashesInBothExpertLayouts) {
  const auto hub = file_hashes(make("tiny-moe", 0, "moe-hub", 1));
  const auto hf5 = file_hashes(make("tiny-moe", 0, "moe-hf5", 3, ExpertLayout::transformers5));
  EXPECT_EQ(hub.at("model.safetensors"), kTinyMoeHub);
  EXPECT_EQ(hf5.at("model.safetensors"), kTinyMoeHf5);
  auto others = [](std::map<std::string, std::string> hashes) {
    hashes.erase("model.safetensors");
    return hashes;
  };
  EXPECT_EQ(others(hub), others(hf5));
  // Thread count does not matter for the transposed tensors either.
  EXPECT_EQ(file_hashes(make("tiny-moe", 0, "moe-hf5-1", 1, ExpertLayout::transformers5)), hf5);
}

}  // namespace
}  // namespace q3vl::checkpoint
