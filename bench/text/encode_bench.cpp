// Encode throughput of q3vl::text::Tokenizer on a 1 MiB mixed-script text.
//
//   bench_text_encode [--tokenizer DIR] [--repeat N] [--write-text FILE]
//
// The text: every fragment of tests/reference/text_corpus.json (groups in key
// order, fragments in order) joined by "\n", repeated until it reaches 1 MiB,
// then cut at the last whole fragment. tests/reference/text_bench_tokenizers.py
// builds the same bytes and times Python `tokenizers` on them; --write-text lets
// it check that. Prints figures only (median of N runs); asserts nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "q3vl/tokenizer.h"

namespace {

constexpr std::size_t kTargetBytes = 1u << 20;

std::string build_text(const std::string& corpus_path) {
  std::ifstream in(corpus_path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const auto corpus = nlohmann::json::parse(buffer.str());  // std::map: keys sorted, as Python's sorted()
  std::vector<std::string> fragments;
  for (const auto& [group, list] : corpus.items()) {
    if (group.rfind('_', 0) == 0) continue;
    for (const auto& fragment : list) fragments.push_back(fragment.get<std::string>());
  }
  std::string text;
  for (std::size_t i = 0;; ++i) {
    const std::string& next = fragments[i % fragments.size()];
    if (text.size() + next.size() + 1 > kTargetBytes) break;
    text += next;
    text += '\n';
  }
  return text;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_dir = Q3VL_TOKENIZER_DIR;
  std::string write_text;
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokenizer")) tokenizer_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--write-text")) write_text = argv[i + 1];
  }
  const std::string text = build_text(Q3VL_TEXT_CORPUS);
  if (!write_text.empty()) std::ofstream(write_text, std::ios::binary) << text;

  auto start = std::chrono::steady_clock::now();
  const auto tokenizer = q3vl::text::Tokenizer::load(tokenizer_dir);
  const double load_s = seconds_since(start);

  std::vector<double> times;
  std::size_t tokens = 0;
  for (int r = 0; r < repeat; ++r) {
    start = std::chrono::steady_clock::now();
    tokens = tokenizer.encode(text).size();
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];

  std::printf("bench_text_encode: q3vl::text::Tokenizer (Rust tokenizers 0.23.2), %s\n", tokenizer_dir.c_str());
  std::printf("machine: %u hardware threads\n", std::thread::hardware_concurrency());
  std::printf("text: %zu bytes mixed-script (tests/reference/text_corpus.json), %zu tokens\n", text.size(), tokens);
  std::printf("load: %.3f s\n", load_s);
  std::printf("encode: median %.4f s of %d (min %.4f, max %.4f) -> %.0f tokens/s, %.2f MB/s\n", median, repeat,
              times.front(), times.back(), tokens / median, text.size() / median / 1e6);
  return 0;
}
