// Model::load: a complete package loads with generation_config defaults; a damaged one
// (missing graph, newer manifest format) fails with a q3vl::Error naming the problem; the
// vision session waits for the first image unless preloaded.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "q3vl/chat.h"
#include "q3vl/error.h"
#include "q3vl/model.h"
#include "runtime/model_parts.h"
#include "runtime/runtime_fixture.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

namespace fs = std::filesystem;

// A copy of the tiny package made of symlinks, except the files `skip` (left out).
fs::path linked_package(const std::string& name, const std::vector<std::string>& skip) {
  const fs::path source = runtime_package("tiny");
  const fs::path dir = work_dir() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(source)) {
    const std::string file = entry.path().filename().string();
    if (std::find(skip.begin(), skip.end(), file) == skip.end()) fs::create_symlink(entry.path(), dir / file);
  }
  return dir;
}

ErrorKind load_error(const fs::path& dir, std::string& message) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "Model::load(" << dir << ") did not throw";
  return ErrorKind::runtime;
}

TEST(Model, LoadsWithGenerationConfigDefaults) {
  const auto model = Model::load(runtime_package("tiny"));
  const GenerateOptions& d = model->default_options();
  // The checkpoint's generation_config.json (q3vl make-checkpoint): Qwen3-VL Instruct values.
  EXPECT_TRUE(d.sampling.do_sample);
  EXPECT_FLOAT_EQ(d.sampling.temperature, 0.7f);
  EXPECT_EQ(d.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(d.sampling.top_p, 0.8f);
  EXPECT_EQ(d.stop_token_ids, (std::vector<std::int64_t>{151645, 151643}));
  EXPECT_EQ(model->context_length(), 262144);
}

// allow_spinning only changes how idle ONNX Runtime threads wait, never the math: with it
// off the same prompt gives the same greedy tokens as with the default.
TEST(Model, NoSpinningGivesTheSameTokens) {
  ModelOptions no_spin;
  no_spin.intra_op_threads = 2;
  no_spin.allow_spinning = false;
  const auto quiet = Model::load(runtime_package("tiny"), no_spin);
  const auto spinning = runtime_model("tiny");
  text::Message user;
  user.role = "user";
  user.content = std::string("Describe a red square.");
  const GenerateResult a = generate(quiet, {user}, greedy_options(*quiet, 8));
  const GenerateResult b = generate(spinning, {user}, greedy_options(*spinning, 8));
  ASSERT_EQ(a.token_ids.size(), 8u);
  EXPECT_EQ(a.token_ids, b.token_ids);
}

TEST(Model, MissingGraphIsAnIoErrorNamingTheFile) {
  std::string message;
  EXPECT_EQ(load_error(linked_package("rt-missing-decoder", {"decoder.onnx"}), message), ErrorKind::io);
  EXPECT_NE(message.find("decoder.onnx"), std::string::npos) << message;
}

TEST(Model, NewerManifestFormatIsUnsupported) {
  const fs::path dir = linked_package("rt-newer-format", {"q3vl.json"});
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(runtime_package("tiny") / "q3vl.json"));
  manifest["format_version"] = 99;
  std::ofstream(dir / "q3vl.json") << manifest.dump(2);
  std::string message;
  EXPECT_EQ(load_error(dir, message), ErrorKind::unsupported);
  EXPECT_NE(message.find("format_version"), std::string::npos) << message;
}

// Integer fields of generation_config.json are checked before any conversion: a count past
// 2^31, negative or fractional is a config error naming the field (the fuzzer found top_k =
// 2.9e20, whose cast to int64 was undefined). The package's size check would stop an edited
// copy at load, so the reader is called directly, as the runtime calls it.
TEST(Model, GenerationConfigIntegersOutOfRangeAreConfigErrorsNamingTheField) {
  const nlohmann::json original =
      nlohmann::json::parse(std::ifstream(runtime_package("tiny") / "generation_config.json"));
  const fs::path dir = work_dir() / "rt-generation-config";
  fs::create_directories(dir);
  const std::pair<const char*, nlohmann::json> cases[] = {
      {"top_k", nlohmann::json::parse("292233720368547758070")},
      {"top_k", -1},
      {"top_k", 2.5},
      {"max_new_tokens", 1e300},
  };
  for (const auto& [field, value] : cases) {
    nlohmann::json config = original;
    config[field] = value;
    std::ofstream(dir / "generation_config.json", std::ios::trunc) << config.dump(2);
    try {
      runtime::load_generation_defaults(dir, {151645});
      ADD_FAILURE() << field << " = " << value.dump() << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::config) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
    }
  }
  // In range, the same file loads: top_k 20 as in the checkpoint.
  std::ofstream(dir / "generation_config.json", std::ios::trunc) << original.dump(2);
  EXPECT_EQ(runtime::load_generation_defaults(dir, {151645}).sampling.top_k, 20);
}

text::Message text_message(const std::string& prompt) {
  text::Message user;
  user.role = "user";
  user.content = prompt;
  return user;
}

// A text-only conversation never creates the vision session; the first image does, and
// the answer is the one a model with the session preloaded gives.
TEST(Model, VisionSessionIsCreatedByTheFirstImage) {
  const auto lazy = Model::load(runtime_package("tiny"));
  EXPECT_TRUE(lazy->parts().vision.present());
  EXPECT_FALSE(lazy->parts().vision.created());
  const GenerateResult text_only = generate(lazy, {text_message("Describe a red square.")}, greedy_options(*lazy, 4));
  EXPECT_EQ(text_only.token_ids.size(), 4u);
  EXPECT_FALSE(lazy->parts().vision.created());

  ModelOptions eager_options;
  eager_options.preload_vision = true;
  const auto eager = Model::load(runtime_package("tiny"), eager_options);
  EXPECT_TRUE(eager->parts().vision.created());

  const auto messages = golden_messages(GoldenSet::open().load_case("image_small"));
  const GenerateResult a = generate(lazy, messages, greedy_options(*lazy, 8));
  EXPECT_TRUE(lazy->parts().vision.created());
  const GenerateResult b = generate(eager, messages, greedy_options(*eager, 8));
  ASSERT_EQ(a.token_ids.size(), 8u);
  EXPECT_EQ(a.token_ids, b.token_ids);
  EXPECT_GT(a.usage.image_tokens, 0);
}

// A vision graph that ONNX Runtime cannot load (right size, wrong bytes: the cheap size
// check at load passes) does not stop a lazy model from answering text; every image
// request gets a runtime error naming the graph, and the session stays uncreated so
// the next request tries again. Preloading reports the same error at load.
TEST(Model, BrokenVisionGraphFailsTheImageRequestsNotTheLoad) {
  const fs::path dir = linked_package("rt-broken-vision", {"vision.onnx"});
  const auto size = fs::file_size(runtime_package("tiny") / "vision.onnx");
  std::ofstream(dir / "vision.onnx", std::ios::binary) << std::string(size, '\x7f');
  const auto model = Model::load(dir);
  EXPECT_EQ(generate(model, {text_message("Hello")}, greedy_options(*model, 2)).token_ids.size(), 2u);
  const auto messages = golden_messages(GoldenSet::open().load_case("image_small"));
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      generate(model, messages, greedy_options(*model, 2));
      ADD_FAILURE() << "attempt " << attempt << ": an image ran on a broken vision graph";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::runtime) << e.what();
      EXPECT_NE(std::string(e.what()).find("vision"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(model->parts().vision.created());
  }
  ModelOptions eager;
  eager.preload_vision = true;
  try {
    Model::load(dir, eager);
    ADD_FAILURE() << "preloading a broken vision graph did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::runtime) << e.what();
    EXPECT_NE(std::string(e.what()).find("vision"), std::string::npos) << e.what();
  }
}

TEST(Model, NotAPackage) {
  std::string message;
  EXPECT_EQ(load_error(work_dir() / "rt-no-such-package", message), ErrorKind::io);
}

}  // namespace
}  // namespace q3vl::testing
