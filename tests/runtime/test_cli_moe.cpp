// End-to-end on Mixture-of-Experts packages: `q3vl build` of the tiny-moe checkpoints
// (Hub and transformers 5.x expert layouts), then the unchanged `run` / `chat`
// subcommands; FP32 greedy output equals HF's (tests/goldens, tiny-moe) through the whole
// pipeline (processor, vision, MoE decoder), and an INT4 package runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/runtime_fixture.h"
#include "support/golden.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

std::filesystem::path messages_file(const GoldenCase& c) { return golden_messages_file(c, "rt-moe-messages-"); }

std::filesystem::path build(const std::string& checkpoint, const std::string& precision) {
  const auto out = work_dir() / ("rt-moe-package-" + checkpoint + "-" + precision);
  const ShellOutput r = run_shell(quote(q3vl_exe()) + " build --model " + quote(checkpoint_dir(checkpoint.c_str())) +
                                  " --out " + quote(out) + " --precision " + precision + " --force --quiet 2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  return out;
}

// `q3vl bench` counts the bytes one decode token reads: an MoE layer's stacked experts
// count k/E of their bytes (the k experts a token is routed to), everything else in full.
// Checked against the FP32 parameter count from config.json: 4 bytes per weight.
TEST(CliMoe, BenchCountsTheExpertsATokenReads) {
  const auto package = build("tiny-moe", "fp32");
  const ShellOutput r = run_shell(quote(q3vl_exe()) + " bench --model " + quote(package) +
                                  " -p 8 -n 2 -r 1 --warmup 0 --image none --threads 1 --output json --quiet");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto report = nlohmann::json::parse(r.out).at("package");
  const std::int64_t reported = report.at("decoder_weight_bytes");

  const auto config = nlohmann::json::parse(std::ifstream(checkpoint_dir("tiny-moe") / "config.json"));
  const auto& t = config.at("text_config");
  const std::int64_t h = t.at("hidden_size"), hd = t.at("head_dim"), layers = t.at("num_hidden_layers");
  const std::int64_t q = std::int64_t{t.at("num_attention_heads")} * hd, kv = std::int64_t{t.at("num_key_value_heads")} * hd;
  const std::int64_t experts = t.at("num_experts"), top_k = t.at("num_experts_per_tok");
  const std::int64_t expert_width = t.at("moe_intermediate_size"), dense_width = t.at("intermediate_size");
  const auto dense_layers = t.at("mlp_only_layers").get<std::vector<std::int64_t>>();
  const std::int64_t sparse_step = t.at("decoder_sparse_step"), vocab = t.at("vocab_size");
  std::int64_t weights = h + vocab * h;  // final norm, lm_head (untied)
  std::int64_t linears = vocab * h;      // the *_proj layers and lm_head
  for (std::int64_t l = 0; l < layers; ++l) {
    weights += h * (q + 2 * kv) + q * h + 2 * h + 2 * hd;  // attention, its norms, q/k norms
    linears += h * (q + 2 * kv) + q * h;
    const bool moe = std::find(dense_layers.begin(), dense_layers.end(), l) == dense_layers.end() &&
                     (l + 1) % sparse_step == 0;
    // MoE: the router, and k of the E experts' gate, up and down projections.
    weights += moe ? experts * h + top_k * 3 * expert_width * h : 3 * dense_width * h;
    linears += moe ? 0 : 3 * dense_width * h;
  }
  EXPECT_EQ(report.at("linear_weights").get<std::int64_t>(), linears);
  EXPECT_EQ(report.at("linear_weight_bytes").get<std::int64_t>(), 4 * linears);
  // The rest: shape constants and rotary frequencies, a few hundred bytes inline.
  EXPECT_GE(reported - 4 * weights, 0);
  EXPECT_LT(reported - 4 * weights, 4096);
}

TEST(CliMoe, RunGreedyMatchesHfInBothLayouts) {
  for (const char* checkpoint : {"tiny-moe", "tiny-moe-hf5"}) {
    const auto package = build(checkpoint, "fp32");
    for (const char* name : {"image_small", "video", "two_turn"}) {
      SCOPED_TRACE(std::string(checkpoint) + " / " + name);
      const GoldenCase c = GoldenSet::open().load_case(name);
      const ShellOutput r = run_shell(quote(q3vl_exe()) + " run --model " + quote(package) + " --messages " +
                                      quote(messages_file(c)) +
                                      " --temperature 0 --max-new-tokens 32 --json --threads 1");
      ASSERT_EQ(r.status, 0) << r.out;
      const nlohmann::json j = nlohmann::json::parse(r.out);
      const auto ids = j.at("token_ids").get<std::vector<std::int64_t>>();
      const GoldenI64 hf = c.model_i64("tiny-moe", "greedy_ids");
      const GoldenF32 margin = c.model_f32("tiny-moe", "greedy_margin");
      ASSERT_FALSE(ids.empty());
      std::size_t matched = 0;
      for (std::size_t s = 0; s < ids.size(); ++s) {
        ASSERT_EQ(ids[s], hf.values[s]) << "step " << s;
        ++matched;
        if (margin.values[s] < 2 * 5e-4f) break;
      }
      EXPECT_GE(matched, 1u);
      EXPECT_EQ(j.at("usage").at("prompt_tokens"), c.input_i64("input_ids").numel());
    }
  }
}

TEST(CliMoe, Int4PackageRunsAndChats) {
  const auto package = build("tiny-moe", "int4");
  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(package / "q3vl.json"));
  EXPECT_EQ(manifest.at("model_type"), "qwen3_vl_moe");
  const auto image = golden_dir() / "model" / "media" / "small_120x64.png";
  const ShellOutput run = run_shell(quote(q3vl_exe()) + " run --model " + quote(package) + " --image " + quote(image) +
                                    " --prompt " + quote("Describe this image.") +
                                    " --temperature 0 --max-new-tokens 8 --json --threads 1");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(nlohmann::json::parse(run.out).at("usage").at("completion_tokens"), 8);
  const auto script = work_dir() / "rt-moe-chat-script.txt";
  std::ofstream(script) << "/image " << image.string() << "\nWhat is this?\n/stats\nAnd now?\n/stats\n";
  const ShellOutput chat = run_shell(quote(q3vl_exe()) + " chat --model " + quote(package) +
                                     " --temperature 0 --max-new-tokens 4 --threads 1 < " + quote(script) + " 2>&1");
  ASSERT_EQ(chat.status, 0) << chat.out;
  EXPECT_NE(chat.out.find("[chat] vision calls 1, vision cache hits 1"), std::string::npos) << chat.out;
}

TEST(CliMoe, BuildRefusesGenai) {
  const std::string base = quote(q3vl_exe()) + " build --model " + quote(checkpoint_dir("tiny-moe")) + " --out " +
                           quote(work_dir() / "rt-moe-refused") + " --quiet ";
  const ShellOutput genai = run_shell(base + "--target ort-genai 2>&1");
  EXPECT_NE(genai.status, 0);
  EXPECT_NE(genai.out.find("--target: expected q3vl for a qwen3_vl_moe model"), std::string::npos) << genai.out;
  EXPECT_FALSE(std::filesystem::exists(work_dir() / "rt-moe-refused"));
}

// hidden_size = 2 * moe_intermediate_size: [E, H, 2I] and [E, 2I, H] look alike, so the
// build refuses to guess (one line naming the tensor and both sizes, nothing written).
TEST(CliMoe, BuildRefusesAnAmbiguousExpertLayout) {
  nlohmann::json config = nlohmann::json::parse(std::ifstream(checkpoint_dir("tiny-moe") / "config.json"));
  config["text_config"]["moe_intermediate_size"] = 48;  // hidden_size 96
  const auto dir = work_dir() / "rt-moe-ambiguous";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << config.dump(2);
  const std::string exe = quote(q3vl_exe());
  const ShellOutput made = run_shell(exe + " make-checkpoint --config " + quote(dir / "config.json") +
                                     " --seed 0 --quiet --out " + quote(dir / "checkpoint") + " 2>&1");
  ASSERT_EQ(made.status, 0) << made.out;
  const ShellOutput built = run_shell(exe + " build --model " + quote(dir / "checkpoint") + " --out " +
                                      quote(dir / "package") + " --quiet 2>&1");
  EXPECT_NE(built.status, 0);
  EXPECT_NE(built.out.find("model.language_model.layers.0.mlp.experts.gate_up_proj: expected hidden_size different "
                           "from moe_intermediate_size and from twice it"),
            std::string::npos)
      << built.out;
  EXPECT_NE(built.out.find("got hidden_size 96, moe_intermediate_size 48"), std::string::npos) << built.out;
  EXPECT_EQ(std::count(built.out.begin(), built.out.end(), '\n'), 1) << built.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "package"));
}

}  // namespace
}  // namespace q3vl::testing
