// `q3vl eval-kl` end to end on tiny packages: a package against itself scores exactly
// zero KL with full agreement over the requested positions; an int8 build scores a small
// positive KL at about one byte per weight; an --all-logits package (one prefill per
// chunk) gives the logits the decode steps give; saved reference logits score exactly as
// the live reference, and a file that does not match is refused naming what differs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bench/bench_fixture.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

// 3 chunks of 64 tokens: 64 - 1 - 32 = 31 scored each; one image with 5 answer tokens.
constexpr const char* kSet = " --context 64 --chunks 3 --image 64x48 --answer-tokens 5 --threads 1 --quiet --output json";

std::string text_file() { return quote(source_dir() / "bench/quality/text.txt"); }

TEST(EvalKlCli, APackageAgainstItselfHasZeroDivergence) {
  const auto fp32 = bench_package("fp32", "");
  const CliResult r =
      run_q3vl("eval-kl --model " + quote(fp32) + " --reference " + quote(fp32) + " --text " + text_file() + kSet);
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("chunks"), 3);
  EXPECT_GE(j.at("text_tokens").get<std::int64_t>(), 4096 * 2);  // the committed set is large enough
  EXPECT_EQ(j.at("text").at("tokens"), 93);
  EXPECT_EQ(j.at("images").at("tokens"), 5);
  EXPECT_EQ(j.at("all").at("tokens"), 98);
  EXPECT_EQ(j.at("all").at("mean_kl").get<double>(), 0.0);
  EXPECT_EQ(j.at("all").at("top1_agreement").get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j.at("test").at("linear_bytes_per_weight").get<double>(), 4.0);
}

TEST(EvalKlCli, Int8AgainstFp32IsSmallAndPositive) {
  const auto fp32 = bench_package("fp32", "");
  const auto int8 = bench_package("int8", "--precision int8");
  const CliResult r =
      run_q3vl("eval-kl --model " + quote(int8) + " --reference " + quote(fp32) + " --text " + text_file() + kSet);
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* set : {"text", "images"}) {
    const auto& s = j.at(set);
    EXPECT_GT(s.at("mean_kl").get<double>(), 0.0) << set;
    EXPECT_LT(s.at("mean_kl").get<double>(), 0.1) << set;  // int8 per-block weights: a small change
    EXPECT_GE(s.at("max_kl").get<double>(), s.at("p99_kl").get<double>()) << set;
    EXPECT_GE(s.at("p99_kl").get<double>(), s.at("mean_kl").get<double>()) << set;
  }
  EXPECT_EQ(j.at("test").at("decoder_precision"), "int8");
  const double bpw = j.at("test").at("linear_bytes_per_weight");
  EXPECT_GT(bpw, 1.0);   // one byte per weight plus the block scales
  EXPECT_LT(bpw, 1.25);
}

nlohmann::json eval_json(const std::string& arguments) {
  const CliResult r = run_q3vl("eval-kl " + arguments + " --text " + text_file() + kSet);
  EXPECT_EQ(r.status, 0) << r.out;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST(EvalKlCli, AllLogitsPackagesGiveTheLogitsOfTheDecodeSteps) {
  // Same weights; the --all-logits build scores each chunk from one prefill, the other
  // from a prefill and 31 decode steps. As each other's reference the two must agree to
  // float rounding (KL ~ 1e-12 between logits that differ in the 7th digit), in both
  // directions, with the same argmax everywhere.
  const auto last = bench_package("fp32", "");
  const auto all = bench_package("fp32-all", "--all-logits");
  for (const auto& [model, reference] : {std::pair{all, last}, std::pair{last, all}}) {
    const nlohmann::json j = eval_json("--model " + quote(model) + " --reference " + quote(reference));
    ASSERT_FALSE(j.empty());
    EXPECT_EQ(j.at("text").at("tokens"), 93);
    EXPECT_EQ(j.at("images").at("tokens"), 5);
    EXPECT_LT(j.at("all").at("max_kl").get<double>(), 1e-9);
    EXPECT_EQ(j.at("all").at("top1_agreement").get<double>(), 1.0);
  }
  // And a quantized --all-logits package scores what its last-position twin scores.
  const auto int8 = bench_package("int8", "--precision int8");
  const auto int8_all = bench_package("int8-all", "--precision int8 --all-logits");
  const nlohmann::json a = eval_json("--model " + quote(int8) + " --reference " + quote(last));
  const nlohmann::json b = eval_json("--model " + quote(int8_all) + " --reference " + quote(all));
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  for (const char* set : {"text", "images"}) {
    const double ka = a.at(set).at("mean_kl"), kb = b.at(set).at("mean_kl");
    EXPECT_GT(ka, 0.0) << set;
    EXPECT_NEAR(kb, ka, 1e-3 * ka) << set;
  }
}

TEST(EvalKlCli, SavedReferenceLogitsScoreExactlyAsTheLiveReference) {
  const auto fp32 = bench_package("fp32", "");
  const auto int8 = bench_package("int8", "--precision int8");
  const std::filesystem::path file = std::filesystem::temp_directory_path() / ("q3vl-kl-ref-" + std::to_string(::getpid()));
  const CliResult save = run_q3vl("eval-kl --reference " + quote(fp32) + " --save-reference " + quote(file) +
                                  " --text " + text_file() + kSet);
  ASSERT_EQ(save.status, 0) << save.out;
  const nlohmann::json live = eval_json("--model " + quote(int8) + " --reference " + quote(fp32));
  const nlohmann::json saved = eval_json("--model " + quote(int8) + " --reference-logits " + quote(file));
  ASSERT_FALSE(live.empty());
  ASSERT_FALSE(saved.empty());
  for (const char* set : {"text", "images", "all"}) EXPECT_EQ(saved.at(set), live.at(set)) << set;
  EXPECT_EQ(saved.at("reference").at("path"), live.at("reference").at("path"));
  EXPECT_EQ(saved.at("reference").at("linear_weight_bytes"), live.at("reference").at("linear_weight_bytes"));

  // "--image none" scores the text set alone.
  const CliResult text_only = run_q3vl("eval-kl --model " + quote(int8) + " --reference-logits " + quote(file) +
                                       " --text " + text_file() +
                                       " --context 64 --chunks 3 --image none --answer-tokens 5 --threads 1 --quiet "
                                       "--output json");
  ASSERT_EQ(text_only.status, 0) << text_only.out;
  const nlohmann::json t = nlohmann::json::parse(text_only.out);
  EXPECT_EQ(t.at("text"), live.at("text"));
  EXPECT_EQ(t.at("images").at("tokens"), 0);

  // The set must be the one the file was computed on.
  const std::string base = "eval-kl --model " + quote(int8) + " --reference-logits " + quote(file) + " --text " +
                           text_file() + " --threads 1 --quiet --output json";
  const CliResult context = run_q3vl(base + " --context 32 --chunks 3 --image 64x48 --answer-tokens 5");
  EXPECT_NE(context.status, 0);
  EXPECT_NE(context.out.find("context"), std::string::npos) << context.out;
  EXPECT_NE(context.out.find("64"), std::string::npos) << context.out;
  const CliResult chunks = run_q3vl(base + " --context 64 --chunks 2 --image 64x48 --answer-tokens 5");
  EXPECT_NE(chunks.status, 0);
  EXPECT_NE(chunks.out.find("chunks"), std::string::npos) << chunks.out;
  const CliResult images = run_q3vl(base + " --context 64 --chunks 3 --image 48x48 --answer-tokens 5");
  EXPECT_NE(images.status, 0);
  EXPECT_NE(images.out.find("64x48"), std::string::npos) << images.out;

  // A truncated file is refused before its logits are read, naming the file and its size.
  const auto size = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, size - 4);
  const CliResult truncated = run_q3vl("eval-kl --model " + quote(int8) + " --reference-logits " + quote(file) +
                                       " --text " + text_file() + kSet);
  EXPECT_NE(truncated.status, 0);
  EXPECT_NE(truncated.out.find(file.string()), std::string::npos) << truncated.out;
  EXPECT_NE(truncated.out.find("size"), std::string::npos) << truncated.out;
  // So is a file that is not a reference file at all.
  { std::ofstream(file, std::ios::trunc) << "{\"context\": 64}\n"; }
  const CliResult foreign = run_q3vl("eval-kl --model " + quote(int8) + " --reference-logits " + quote(file) +
                                     " --text " + text_file() + kSet);
  EXPECT_NE(foreign.status, 0);
  EXPECT_NE(foreign.out.find("q3vl-kl-reference"), std::string::npos) << foreign.out;
  std::filesystem::remove(file);
}

TEST(EvalKlCli, BadOptionsAreUsageErrors) {
  const auto fp32 = bench_package("fp32", "");
  const std::string base = "eval-kl --model " + quote(fp32) + " --reference " + quote(fp32);
  const CliResult missing = run_q3vl(base);
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.out.find("--text"), std::string::npos) << missing.out;
  const CliResult context = run_q3vl(base + " --text " + text_file() + " --context 2");
  EXPECT_NE(context.status, 0);
  EXPECT_NE(context.out.find("--context"), std::string::npos) << context.out;
  const CliResult both = run_q3vl(base + " --reference-logits /tmp/x --text " + text_file());
  EXPECT_NE(both.status, 0);
  EXPECT_NE(both.out.find("--reference-logits"), std::string::npos) << both.out;
  const CliResult no_model = run_q3vl("eval-kl --reference " + quote(fp32) + " --text " + text_file());
  EXPECT_NE(no_model.status, 0);
  EXPECT_NE(no_model.out.find("--model"), std::string::npos) << no_model.out;
  const CliResult absent = run_q3vl(base + " --text /nonexistent/text.txt --image none --quiet");
  EXPECT_NE(absent.status, 0);
  EXPECT_NE(absent.out.find("/nonexistent/text.txt"), std::string::npos) << absent.out;
}

}  // namespace
}  // namespace q3vl::testing
