#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "q3vl/error.h"

namespace q3vl::runtime {
namespace {

void check_options(const SamplingOptions& o) {
  auto fail = [](const char* field, const char* expected, float got) {
    throw_error(ErrorKind::usage, "", field, expected, std::to_string(got));
  };
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) fail("temperature", ">= 0", o.temperature);
  if (o.top_k < 0) fail("top_k", ">= 0", static_cast<float>(o.top_k));
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) fail("top_p", "a value in (0, 1]", o.top_p);
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) fail("min_p", "a value in [0, 1]", o.min_p);
  if (!(o.repetition_penalty > 0.0f) || !std::isfinite(o.repetition_penalty)) {
    fail("repetition_penalty", "> 0", o.repetition_penalty);
  }
  if (!std::isfinite(o.presence_penalty)) fail("presence_penalty", "a finite number", o.presence_penalty);
  if (!std::isfinite(o.frequency_penalty)) fail("frequency_penalty", "a finite number", o.frequency_penalty);
}

// Softmax probabilities of `candidates` (scores), written into .probability.
void normalise(std::vector<Candidate>& candidates) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (const auto& c : candidates) max_score = std::max(max_score, c.score);
  double total = 0.0;
  for (auto& c : candidates) total += (c.probability = std::exp(static_cast<double>(c.score - max_score)));
  for (auto& c : candidates) c.probability /= total;
}

}  // namespace

Sampler::Sampler(SamplingOptions options, std::int64_t vocab_size)
    : options_(options), vocab_size_(vocab_size) {
  check_options(options_);
  if (vocab_size_ <= 0) throw_error(ErrorKind::usage, "", "vocab_size", "> 0", std::to_string(vocab_size_));
  in_sequence_.assign(static_cast<std::size_t>(vocab_size_), 0);
  generated_count_.assign(static_cast<std::size_t>(vocab_size_), 0);
  random_.seed(options_.seed ? *options_.seed : std::random_device{}());
}

void Sampler::reset(std::span<const std::int64_t> prompt_ids) {
  for (std::int64_t id : penalised_) {
    in_sequence_[static_cast<std::size_t>(id)] = 0;
    generated_count_[static_cast<std::size_t>(id)] = 0;
  }
  penalised_.clear();
  for (std::int64_t id : prompt_ids) {
    if (id < 0 || id >= vocab_size_) continue;  // ids beyond the logits cannot be penalised
    auto& seen = in_sequence_[static_cast<std::size_t>(id)];
    if (!seen) penalised_.push_back(id);
    seen = 1;
  }
}

void Sampler::accept(std::int64_t id) {
  if (id < 0 || id >= vocab_size_) return;
  auto& seen = in_sequence_[static_cast<std::size_t>(id)];
  if (!seen) penalised_.push_back(id);
  seen = 1;
  ++generated_count_[static_cast<std::size_t>(id)];
}

void Sampler::apply_penalties(std::span<const float> logits) {
  if (static_cast<std::int64_t>(logits.size()) != vocab_size_) {
    throw_error(ErrorKind::shape, "", "logits", std::to_string(vocab_size_) + " values",
                std::to_string(logits.size()));
  }
  scores_.assign(logits.begin(), logits.end());
  const float rep = options_.repetition_penalty;
  for (std::int64_t id : penalised_) {
    float& s = scores_[static_cast<std::size_t>(id)];
    if (rep != 1.0f && in_sequence_[static_cast<std::size_t>(id)]) s = s < 0.0f ? s * rep : s / rep;
    const std::int32_t count = generated_count_[static_cast<std::size_t>(id)];
    if (count > 0) {
      s -= options_.presence_penalty + options_.frequency_penalty * static_cast<float>(count);
    }
  }
}

std::vector<Candidate> Sampler::candidates(std::span<const float> logits) {
  apply_penalties(logits);
  if (options_.greedy()) {
    // First maximum, as torch.argmax returns.
    const auto best = std::max_element(scores_.begin(), scores_.end());
    const auto id = static_cast<std::int64_t>(best - scores_.begin());
    return {Candidate{id, *best, 1.0}};
  }

  for (float& s : scores_) s /= options_.temperature;
  std::vector<Candidate> kept;
  const std::int64_t k = std::min<std::int64_t>(options_.top_k, vocab_size_);
  if (k > 0) {
    // Threshold = k-th largest score; every token at or above it survives (ties kept).
    std::vector<float> partial(scores_);
    std::nth_element(partial.begin(), partial.begin() + (k - 1), partial.end(), std::greater<float>());
    const float threshold = partial[static_cast<std::size_t>(k - 1)];
    for (std::int64_t id = 0; id < vocab_size_; ++id) {
      if (scores_[static_cast<std::size_t>(id)] >= threshold) kept.push_back({id, scores_[static_cast<std::size_t>(id)], 0.0});
    }
  } else {
    kept.reserve(scores_.size());
    for (std::int64_t id = 0; id < vocab_size_; ++id) {
      const float s = scores_[static_cast<std::size_t>(id)];
      if (s != -std::numeric_limits<float>::infinity()) kept.push_back({id, s, 0.0});
    }
  }
  // Descending score; equal scores by ascending id so the order is deterministic.
  std::sort(kept.begin(), kept.end(), [](const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });

  if (options_.top_p < 1.0f && kept.size() > 1) {
    // HF: sort ascending, drop tokens whose cumulative probability (from the
    // least likely up) is <= 1 - top_p; the most likely token always stays.
    normalise(kept);
    const double cut = 1.0 - static_cast<double>(options_.top_p);
    double cumulative = 0.0;
    std::size_t first_removed = kept.size();
    for (std::size_t i = kept.size(); i-- > 1;) {
      cumulative += kept[i].probability;
      if (cumulative <= cut) first_removed = i;
      else break;
    }
    kept.resize(first_removed);
  }
  if (options_.min_p > 0.0f && kept.size() > 1) {
    normalise(kept);
    const double threshold = static_cast<double>(options_.min_p) * kept.front().probability;
    std::size_t n = 1;
    while (n < kept.size() && kept[n].probability >= threshold) ++n;
    kept.resize(n);
  }
  normalise(kept);
  return kept;
}

std::int64_t Sampler::sample(std::span<const float> logits) {
  const std::vector<Candidate> kept = candidates(logits);
  if (kept.size() == 1) return kept.front().id;
  // 53 random bits -> uniform double in [0, 1): the same on every platform,
  // unlike std::uniform_real_distribution whose algorithm is unspecified.
  const double u = static_cast<double>(random_() >> 11) * 0x1.0p-53;
  double cumulative = 0.0;
  for (const Candidate& c : kept) {
    cumulative += c.probability;
    if (u < cumulative) return c.id;
  }
  return kept.back().id;
}

}  // namespace q3vl::runtime
