#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "q3vl/error.h"

namespace q3vl::runtime {

void check_sampling_options(const SamplingOptions& o) {
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

namespace {

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
  check_sampling_options(options_);
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

std::vector<Candidate> Sampler::candidates(std::span<const float> logits, std::span<const std::uint8_t> allowed) {
  apply_penalties(logits);
  if (!allowed.empty() && static_cast<std::int64_t>(allowed.size()) != vocab_size_) {
    throw_error(ErrorKind::shape, "", "allowed", std::to_string(vocab_size_) + " values",
                std::to_string(allowed.size()));
  }
  auto is_allowed = [&allowed](std::int64_t id) { return allowed.empty() || allowed[static_cast<std::size_t>(id)] != 0; };
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  if (options_.greedy()) {
    // First maximum, as torch.argmax returns (over the allowed ids).
    std::int64_t best = -1;
    for (std::int64_t id = 0; id < vocab_size_; ++id) {
      if (is_allowed(id) && (best < 0 || scores_[static_cast<std::size_t>(id)] > scores_[static_cast<std::size_t>(best)])) {
        best = id;
      }
    }
    if (best < 0) throw_error(ErrorKind::runtime, "", "allowed", "at least one allowed token", "none");
    return {Candidate{best, scores_[static_cast<std::size_t>(best)], 1.0}};
  }

  // Temperature-scaled scores of the allowed ids; -inf ones never survive.
  std::vector<Candidate> kept;
  kept.reserve(scores_.size());
  for (std::int64_t id = 0; id < vocab_size_; ++id) {
    const float s = scores_[static_cast<std::size_t>(id)] / options_.temperature;
    if (s != kMinusInf && is_allowed(id)) kept.push_back({id, s, 0.0});
  }
  if (kept.empty()) throw_error(ErrorKind::runtime, "", "allowed", "at least one allowed token", "none");
  const auto k = static_cast<std::size_t>(std::min<std::int64_t>(options_.top_k, vocab_size_));
  if (k > 0 && k < kept.size()) {
    // Threshold = k-th largest score; every token at or above it survives (ties kept).
    std::vector<float> partial;
    partial.reserve(kept.size());
    for (const Candidate& c : kept) partial.push_back(c.score);
    std::nth_element(partial.begin(), partial.begin() + static_cast<std::ptrdiff_t>(k - 1), partial.end(),
                     std::greater<float>());
    const float threshold = partial[k - 1];
    std::erase_if(kept, [threshold](const Candidate& c) { return c.score < threshold; });
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

std::int64_t Sampler::sample(std::span<const float> logits, std::span<const std::uint8_t> allowed) {
  const std::vector<Candidate> kept = candidates(logits, allowed);
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

TokenLogprobs compute_logprobs(std::span<const float> scores, std::int64_t chosen, int top) {
  if (chosen < 0 || static_cast<std::size_t>(chosen) >= scores.size()) {
    throw_error(ErrorKind::runtime, "", "logprobs", "a token id below " + std::to_string(scores.size()),
                std::to_string(chosen));
  }
  double max_score = -std::numeric_limits<double>::infinity();
  for (const float s : scores) max_score = std::max(max_score, static_cast<double>(s));
  double total = 0.0;
  for (const float s : scores) total += std::exp(static_cast<double>(s) - max_score);
  const double log_total = max_score + std::log(total);
  TokenLogprobs out;
  out.logprob = static_cast<float>(static_cast<double>(scores[static_cast<std::size_t>(chosen)]) - log_total);
  const auto k = std::min<std::size_t>(static_cast<std::size_t>(std::max(top, 0)), scores.size());
  if (k > 0) {
    std::vector<std::int64_t> ids(scores.size());
    std::iota(ids.begin(), ids.end(), std::int64_t{0});
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                      [&scores](std::int64_t a, std::int64_t b) {
                        const float sa = scores[static_cast<std::size_t>(a)], sb = scores[static_cast<std::size_t>(b)];
                        return sa != sb ? sa > sb : a < b;
                      });
    for (std::size_t i = 0; i < k; ++i) {
      out.top.push_back({ids[i], static_cast<float>(static_cast<double>(scores[static_cast<std::size_t>(ids[i])]) - log_total)});
    }
  }
  return out;
}

}  // namespace q3vl::runtime
