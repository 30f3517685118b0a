// `q3vl bench` end to end on the tiny fixture checkpoint's FP32 package: the JSON holds
// every field with the counts asked for and sane values, the weight bytes equal what the
// config implies for FP32, image token counts equal the processor's, md / csv parse, and
// bad flags are usage errors naming the flag.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "bench/bench_fixture.h"
#include "q3vl/image.h"
#include "q3vl/processor.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

constexpr const char* kRun = " -p 16,40 -n 8 -d 12 -r 2 --warmup 1 --image 64x48,300x200 --threads 1 --quiet";

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Linear-layer weights and norm scales of the decoder, from config.json's text_config.
struct DecoderCounts {
  std::int64_t linear = 0, norms = 0;
};
DecoderCounts decoder_counts(const std::filesystem::path& checkpoint) {
  const nlohmann::json c = read_json(checkpoint / "config.json").at("text_config");
  const std::int64_t h = c.at("hidden_size"), ff = c.at("intermediate_size"), layers = c.at("num_hidden_layers");
  const std::int64_t hd = c.at("head_dim"), q = c.at("num_attention_heads").get<std::int64_t>() * hd;
  const std::int64_t kv = c.at("num_key_value_heads").get<std::int64_t>() * hd;
  const std::int64_t vocab = c.at("vocab_size");
  DecoderCounts n;
  n.linear = layers * (h * q + 2 * h * kv + q * h + 3 * h * ff) + h * vocab;
  n.norms = layers * (2 * h + 2 * hd) + h;  // input/post-attention norms, q/k norms, final norm
  return n;
}

void expect_stat(const nlohmann::json& s, std::size_t samples, const std::string& what) {
  ASSERT_EQ(s.at("samples").size(), samples) << what;
  EXPECT_GT(s.at("mean").get<double>(), 0.0) << what;
  EXPECT_GE(s.at("sd").get<double>(), 0.0) << what;
  for (const auto& v : s.at("samples")) EXPECT_GT(v.get<double>(), 0.0) << what;
}

TEST(BenchCli, JsonHasEveryFigureWithTheRequestedCounts) {
  const auto package = bench_package("fp32", "");
  const CliResult r = run_q3vl("bench --model " + quote(package) + kRun + " --output json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);

  const auto& m = j.at("machine");
  EXPECT_FALSE(m.at("cpu").get<std::string>().empty());
  EXPECT_GE(m.at("logical_cpus").get<int>(), 1);
  EXPECT_TRUE(m.at("isa").is_array());
  EXPECT_FALSE(m.at("q3vl_commit").get<std::string>().empty());
  EXPECT_EQ(m.at("ort_version").get<std::string>().substr(0, 2), "1.");
  EXPECT_EQ(j.at("config").at("threads"), 1);
  EXPECT_EQ(j.at("config").at("repetitions"), 2);
  EXPECT_EQ(j.at("config").at("warmup"), 1);

  // FP32: every linear weight is 4 bytes, and the rest of the decoder is the norm scales.
  const DecoderCounts counts = decoder_counts(checkpoint_dir("tiny"));
  const auto& p = j.at("package");
  EXPECT_EQ(p.at("decoder_precision"), "fp32");
  EXPECT_EQ(p.at("linear_weights").get<std::int64_t>(), counts.linear);
  EXPECT_EQ(p.at("linear_weight_bytes").get<std::int64_t>(), 4 * counts.linear);
  // The rest: shape constants and the rotary frequencies, a few hundred bytes inline.
  const std::int64_t rest = p.at("decoder_weight_bytes").get<std::int64_t>() - 4 * (counts.linear + counts.norms);
  EXPECT_GE(rest, 0);
  EXPECT_LT(rest, 4096);
  EXPECT_DOUBLE_EQ(p.at("linear_bytes_per_weight").get<double>(), 4.0);
  EXPECT_TRUE(p.at("has_vision").get<bool>());

  ASSERT_EQ(j.at("prefill").size(), 2u);
  EXPECT_EQ(j.at("prefill")[0].at("prompt_tokens"), 16);
  EXPECT_EQ(j.at("prefill")[1].at("prompt_tokens"), 40);
  for (const auto& x : j.at("prefill")) {
    expect_stat(x.at("tokens_per_s"), 2, "prefill tok/s");
    expect_stat(x.at("ms"), 2, "prefill ms");
    // tok/s and ms are two views of the same runs.
    EXPECT_NEAR(x.at("tokens_per_s").at("samples")[0].get<double>(),
                1000.0 * x.at("prompt_tokens").get<double>() / x.at("ms").at("samples")[0].get<double>(), 1e-6);
  }
  ASSERT_EQ(j.at("decode").size(), 1u);
  const auto& d = j.at("decode")[0];
  EXPECT_EQ(d.at("tokens"), 8);
  EXPECT_EQ(d.at("context_tokens"), 12);
  expect_stat(d.at("tokens_per_s"), 2, "decode tok/s");
  expect_stat(d.at("weight_gb_per_s"), 2, "decode GB/s");
  EXPECT_NEAR(d.at("weight_gb_per_s").at("mean").get<double>(),
              d.at("tokens_per_s").at("mean").get<double>() * p.at("decoder_weight_bytes").get<double>() / 1e9, 1e-9);
  // Bytes read per step: the weights and the K and V rows attended over, of every layer, in
  // the package's cache type (q3vl.json decoder.kv_cache_dtype).
  const nlohmann::json text = read_json(checkpoint_dir("tiny") / "config.json").at("text_config");
  const nlohmann::json manifest_decoder = read_json(std::filesystem::path(package) / "q3vl.json").at("decoder");
  const std::int64_t element = manifest_decoder.value("kv_cache_dtype", std::string("float32")) == "float16" ? 2 : 4;
  const std::int64_t kv_per_token = 2 * text.at("num_hidden_layers").get<std::int64_t>() *
                                    text.at("num_key_value_heads").get<std::int64_t>() *
                                    text.at("head_dim").get<std::int64_t>() * element;
  EXPECT_EQ(p.at("kv_bytes_per_token").get<std::int64_t>(), kv_per_token);
  // Context 12, 8 steps: the steps attend over 13, 14, ..., 20 cached tokens, 16.5 on average.
  EXPECT_DOUBLE_EQ(d.at("read_bytes_per_token").get<double>(),
                   p.at("decoder_weight_bytes").get<double>() + 16.5 * static_cast<double>(kv_per_token));
  expect_stat(d.at("read_gb_per_s"), 2, "decode read GB/s");
  EXPECT_NEAR(d.at("read_gb_per_s").at("mean").get<double>(),
              d.at("tokens_per_s").at("mean").get<double>() * d.at("read_bytes_per_token").get<double>() / 1e9, 1e-9);

  const ProcessorConfig processor = load_processor_config(package);
  ASSERT_EQ(j.at("images").size(), 2u);
  for (const auto& x : j.at("images")) {
    Image image;
    image.width = x.at("width");
    image.height = x.at("height");
    image.rgb.assign(static_cast<std::size_t>(image.width * image.height * 3), 0);
    EXPECT_EQ(x.at("image_tokens").get<std::int64_t>(), preprocess_image(image, processor.image).num_tokens)
        << image.width << "x" << image.height;
    EXPECT_GT(x.at("prompt_tokens").get<std::int64_t>(), x.at("image_tokens").get<std::int64_t>());
    expect_stat(x.at("vision_ms"), 2, "vision ms");
    expect_stat(x.at("ttft_ms"), 2, "ttft ms");
    // TTFT covers the vision work and more (prefill, first token) in every run.
    for (std::size_t i = 0; i < 2; ++i) {
      EXPECT_GT(x.at("ttft_ms").at("samples")[i].get<double>(), x.at("vision_ms").at("samples")[i].get<double>());
    }
  }
  EXPECT_EQ(j.at("images")[0].at("width"), 64);
  EXPECT_EQ(j.at("images")[1].at("height"), 200);
  EXPECT_GT(j.at("peak_rss_bytes").get<std::int64_t>(), 0);
  EXPECT_GT(j.at("load_ms").get<double>(), 0.0);
}

// A recipe package names its recipe, not only the block size its rules may override.
TEST(BenchCli, RecipePackageIsDescribedByItsRecipe) {
  const auto package = bench_package("int4-b64", "--precision int4 --quant-recipe 'lm_head=int6:64;*=nl4'");
  const CliResult r = run_q3vl("bench --model " + quote(package) +
                               " -p 0 -n 2 -d 4 -r 1 --warmup 0 --image none --threads 1 --quiet --output json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("package").at("quantization"),
            "mse block 32, recipe lm_head=int6:64;*=nl4");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Fields of one CSV line (RFC 4180 quoting).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      fields.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

TEST(BenchCli, MarkdownAndCsvHaveOneRowPerFigure) {
  const auto package = bench_package("fp32", "");
  const std::string args = " -p 16 -n 4 -d 8 -r 1 --warmup 0 --image 64x48 --threads 1 --quiet";
  // Figures: pp16, tg4 tok/s, tg4 weight GB/s, tg4 read GB/s, vision 64x48, ttft 64x48.
  const CliResult md = run_q3vl("bench --model " + quote(package) + args);
  ASSERT_EQ(md.status, 0) << md.out;
  std::vector<std::string> rows;
  for (const auto& line : lines_of(md.out)) {
    if (line.rfind("| ", 0) == 0 && line.find("| test |") != 0) rows.push_back(line);
  }
  ASSERT_EQ(rows.size(), 6u) << md.out;
  EXPECT_EQ(rows[0].rfind("| pp16 | 16 | ", 0), 0u) << rows[0];
  EXPECT_NE(rows[1].find("| tg4 @ 8 | 4 | "), std::string::npos) << rows[1];
  EXPECT_NE(rows[2].find("| GB/s (weights) |"), std::string::npos) << rows[2];
  EXPECT_NE(rows[3].find("| GB/s (weights + K/V rows) |"), std::string::npos) << rows[3];
  EXPECT_EQ(rows[4].rfind("| vision 64x48 | ", 0), 0u) << rows[4];
  EXPECT_EQ(rows[5].rfind("| ttft 64x48 | ", 0), 0u) << rows[5];
  EXPECT_NE(md.out.find("ONNX Runtime 1."), std::string::npos);

  const CliResult csv = run_q3vl("bench --model " + quote(package) + args + " --output csv");
  ASSERT_EQ(csv.status, 0) << csv.out;
  const auto lines = lines_of(csv.out);
  ASSERT_EQ(lines.size(), 7u) << csv.out;
  const auto header = csv_fields(lines[0]);
  EXPECT_EQ(header[0], "test");
  EXPECT_EQ(header[4], "mean");
  const char* metrics[] = {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_weight_gb_per_s",
                           "decode_read_gb_per_s", "vision_ms", "ttft_ms"};
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto fields = csv_fields(lines[i]);
    ASSERT_EQ(fields.size(), header.size()) << lines[i];
    EXPECT_EQ(fields[1], metrics[i - 1]);
    EXPECT_GT(std::stod(fields[4]), 0.0) << lines[i];
    EXPECT_EQ(fields[6], "1") << lines[i];  // repetitions
  }
}

// --profile: one ONNX Runtime trace per graph, written when the model is released, holding
// every run bench made (1 prefill + n decode steps; no warm-up) and every node of each.
TEST(BenchCli, ProfileWritesOneTracePerGraphWithEveryRun) {
  const auto package = bench_package("fp32", "");
  const auto dir = work_dir() / "bench_profile";
  std::filesystem::create_directories(dir);
  const std::int64_t steps = 3;
  const CliResult r = run_q3vl("bench --model " + quote(package) + " -p 0 -n " + std::to_string(steps) +
                               " -d 5 -r 1 --warmup 0 --image none --threads 1 --quiet --profile " +
                               quote(dir / "p"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::map<std::string, std::filesystem::path> traces;  // graph -> file
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();  // p.<graph>_<timestamp>.json
    ASSERT_EQ(name.rfind("p.", 0), 0u) << name;
    const std::string graph = name.substr(2, name.find('_') - 2);
    EXPECT_TRUE(traces.emplace(graph, entry.path()).second) << "two traces for " << graph;
  }
  // A text-only run never creates the vision session (runtime/lazy_session.h), so it has no trace.
  ASSERT_EQ(traces.size(), 2u) << "expected decoder and embed traces";
  EXPECT_EQ(traces.count("vision"), 0u);
  const std::int64_t layers =
      read_json(checkpoint_dir("tiny") / "config.json").at("text_config").at("num_hidden_layers");
  for (const std::string graph : {"decoder", "embed"}) {
    ASSERT_TRUE(traces.count(graph)) << graph;
    const nlohmann::json events = read_json(traces.at(graph));
    std::int64_t runs = 0, attention = 0;
    for (const auto& e : events) {
      if (e.at("cat") == "Session" && e.at("name") == "model_run") ++runs;
      if (e.at("cat") == "Node" && e.at("args").at("op_name") == "GroupQueryAttention") ++attention;
    }
    EXPECT_EQ(runs, 1 + steps) << graph;
    EXPECT_EQ(attention, graph == "decoder" ? layers * (1 + steps) : 0) << graph;
  }
}

TEST(BenchCli, BadFlagsAreUsageErrorsNamingTheFlag) {
  const auto package = bench_package("fp32", "");
  const std::pair<const char*, const char*> cases[] = {
      {"-p 1.5", "-p"},        {"-p 12,abc", "-p"},        {"-r 0", "-r"},
      {"--output xml", "--output"}, {"--image 12x", "--image"}, {"--warmup -1", "--warmup"},
      {"--threads -2", "--threads"},
  };
  for (const auto& [flags, name] : cases) {
    const CliResult r = run_q3vl("bench --model " + quote(package) + " " + flags);
    EXPECT_NE(r.status, 0) << flags;
    EXPECT_NE(r.out.find(name), std::string::npos) << flags << ": " << r.out;
  }
  const CliResult missing = run_q3vl("bench -p 16");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.out.find("--model"), std::string::npos) << missing.out;
}

}  // namespace
}  // namespace q3vl::testing
