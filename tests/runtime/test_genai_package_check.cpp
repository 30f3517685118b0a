// runtime::check_genai_package (what `q3vl inspect` runs on a GenAI package): a package
// `q3vl build --target ort-genai` wrote is consistent; each way a genai_config.json can
// disagree with its graphs is reported naming the config field and both values; and the
// CLI exits non-zero on such a package. `q3vl run` refuses a GenAI package with the reason;
// `q3vl build` refuses option combinations the GenAI target cannot honour.
#include <gtest/gtest.h>

#include <functional>

#include "io/json_file.h"
#include "q3vl/config.h"
#include "runtime/genai_package_check.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

// One GenAI package per test process (built by the CLI from the tiny fixture checkpoint).
const std::filesystem::path& genai_package() {
  static const std::filesystem::path dir = [] {
    const auto out = work_dir() / "genai-package";
    const auto r = run_shell(quote(q3vl_exe()) + " build --model " + quote(checkpoint_dir("tiny")) + " --out " +
                             quote(out) + " --target ort-genai --quiet --force");
    EXPECT_EQ(r.status, 0);
    return out;
  }();
  return dir;
}

// A copy of the package (graphs linked) whose genai_config.json `edit` changed.
std::filesystem::path edited_copy(const std::string& name, const std::function<void(io::Json&)>& edit) {
  const auto dir = work_dir() / ("genai-edited-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(genai_package())) {
    std::filesystem::create_symlink(entry.path(), dir / entry.path().filename());
  }
  std::filesystem::remove(dir / "genai_config.json");
  io::Json j = io::read_json_file(genai_package() / "genai_config.json");
  edit(j);
  io::write_json_file(dir / "genai_config.json", j);
  return dir;
}

bool mentions(const runtime::GenaiPackageReport& r, const std::string& a, const std::string& b) {
  for (const auto& p : r.problems) {
    if (p.find(a) != std::string::npos && p.find(b) != std::string::npos) return true;
  }
  return false;
}

std::string all(const runtime::GenaiPackageReport& r) {
  std::string s;
  for (const auto& p : r.problems) s += p + "\n";
  return s;
}

TEST(GenaiPackageCheck, ABuiltPackageIsConsistent) {
  const ModelConfig config = load_model_config(checkpoint_dir("tiny"));
  const auto report = runtime::check_genai_package(genai_package());
  EXPECT_TRUE(report.problems.empty()) << all(report);
  EXPECT_EQ(report.model_type, "qwen3_vl");
  EXPECT_EQ(report.hidden_size,
            config.text.hidden_size * (1 + static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size())));
  ASSERT_EQ(report.graphs.size(), 3u);
  EXPECT_FALSE(report.graphs[0].inputs.empty());
  EXPECT_EQ(run_shell(quote(q3vl_exe()) + " inspect " + quote(genai_package())).status, 0);
}

TEST(GenaiPackageCheck, ReportsEveryMismatchNamingTheField) {
  struct Case {
    const char* name;
    std::function<void(io::Json&)> edit;
    const char* field;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {"width", [](io::Json& j) { j["model"]["decoder"]["hidden_size"] = 64; }, "model.decoder.inputs.inputs_embeds",
       "expected last dimension 64"},
      {"grid-name", [](io::Json& j) { j["model"]["vision"]["inputs"]["image_grid_thw"] = "image_sizes"; },
       "model.vision.inputs.image_grid_thw", "no input named image_sizes"},
      {"layers", [](io::Json& j) { j["model"]["decoder"]["num_hidden_layers"] = 5; }, "model.decoder (layer 3)",
       "past_key_values.3.key"},
      {"kv-heads", [](io::Json& j) { j["model"]["decoder"]["num_key_value_heads"] = 4; }, "model.decoder (layer 0)",
       "num_key_value_heads"},
      {"max-length", [](io::Json& j) { j["search"]["max_length"] = j["model"]["context_length"].get<std::int64_t>() + 1; },
       "search.max_length", "exceeds model.context_length"},
      {"type", [](io::Json& j) { j["model"]["type"] = "qwen2_5_vl"; }, "model.type", "qwen2_5_vl"},
      {"file", [](io::Json& j) { j["model"]["embedding"]["filename"] = "missing.onnx"; }, "model.embedding.filename",
       "missing.onnx does not exist"},
      {"processor", [](io::Json& j) { j["model"]["vision"].erase("config_filename"); },
       "model.vision.config_filename", "missing"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto dir = edited_copy(c.name, c.edit);
    const auto report = runtime::check_genai_package(dir);
    EXPECT_TRUE(mentions(report, c.field, c.detail)) << all(report);
  }
  const auto bad = edited_copy("cli", cases[0].edit);
  EXPECT_NE(run_shell(quote(q3vl_exe()) + " inspect " + quote(bad) + " > /dev/null 2>&1").status, 0);
}

TEST(GenaiPackageCheck, RunRefusesAGenaiPackageSayingWhy) {
  const auto r = run_shell(quote(q3vl_exe()) + " run --model " + quote(genai_package()) + " --prompt hi 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("ONNX Runtime GenAI package"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--target q3vl"), std::string::npos) << r.out;
}

TEST(GenaiBuildCli, RejectsOptionsTheTargetCannotHonourAndWritesNothing) {
  struct Case {
    const char* flags;
    const char* named;  // the flag the one-line error must name
  };
  for (const Case& c : {Case{"--no-deepstack", "--no-deepstack"},
                        Case{"--target ort-genai --no-vision", "--no-vision"},
                        Case{"--target ort-genai --precision int4 --quant-method gptq", "gptq"},
                        Case{"--target ort-genai --precision int4 --kernels q3vl", "--kernels"},
                        Case{"--target onnx", "--target"}}) {
    SCOPED_TRACE(c.flags);
    const auto out = work_dir() / "genai-rejected";
    const auto r = run_shell(quote(q3vl_exe()) + " build --model " + quote(checkpoint_dir("tiny")) + " --out " +
                             quote(out) + " --quiet " + c.flags + " 2>&1");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.out.find(c.named), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

}  // namespace
}  // namespace q3vl::testing
