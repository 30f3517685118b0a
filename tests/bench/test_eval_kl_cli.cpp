// `q3vl eval-kl` end to end on tiny packages: a package against itself scores exactly
// zero KL with full agreement over the requested positions; an int8 build scores a small
// positive KL at about one byte per weight.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

TEST(EvalKlCli, BadOptionsAreUsageErrors) {
  const auto fp32 = bench_package("fp32", "");
  const std::string base = "eval-kl --model " + quote(fp32) + " --reference " + quote(fp32);
  const CliResult missing = run_q3vl(base);
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.out.find("--text"), std::string::npos) << missing.out;
  const CliResult context = run_q3vl(base + " --text " + text_file() + " --context 2");
  EXPECT_NE(context.status, 0);
  EXPECT_NE(context.out.find("--context"), std::string::npos) << context.out;
  const CliResult absent = run_q3vl(base + " --text /nonexistent/text.txt --image none --quiet");
  EXPECT_NE(absent.status, 0);
  EXPECT_NE(absent.out.find("/nonexistent/text.txt"), std::string::npos) << absent.out;
}

}  // namespace
}  // namespace q3vl::testing
