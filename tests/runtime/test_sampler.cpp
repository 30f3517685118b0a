// Each sampling filter on hand-made logits with hand-worked expectations, plus
// the whole pipeline against a naive sort-everything reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "q3vl/error.h"
#include "runtime/sampler.h"

namespace q3vl::runtime {
namespace {

std::set<std::int64_t> ids_of(const std::vector<Candidate>& candidates) {
  std::set<std::int64_t> ids;
  for (const auto& c : candidates) ids.insert(c.id);
  return ids;
}

// Logits whose softmax is exactly `probabilities` (log of each).
std::vector<float> logits_for(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (double p : probabilities) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

SamplingOptions sampling(std::uint64_t seed = 1) {
  SamplingOptions o;
  o.seed = seed;
  return o;
}

TEST(Sampler, GreedyIsFirstArgmax) {
  SamplingOptions o;
  o.temperature = 0.0f;
  Sampler s(o, 5);
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingOptions o;
  o.do_sample = false;
  o.repetition_penalty = 2.0f;
  Sampler s(o, 4);
  // Token 0 (3.0) was in the prompt: 3.0 / 2 = 1.5 < 2.0 (token 1) -> greedy picks 1.
  const std::vector<std::int64_t> prompt = {0, 2};
  s.reset(prompt);
  const std::vector<float> logits = {3.0f, 2.0f, -1.0f, 1.0f};
  const auto c = s.candidates(logits);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].id, 1);
  // Check processed scores by turning the penalty into the only filter.
  SamplingOptions all = sampling();
  all.repetition_penalty = 2.0f;
  Sampler t(all, 4);
  t.reset(prompt);
  std::map<std::int64_t, float> score;
  for (const auto& x : t.candidates(logits)) score[x.id] = x.score;
  EXPECT_FLOAT_EQ(score[0], 1.5f);
  EXPECT_FLOAT_EQ(score[1], 2.0f);
  EXPECT_FLOAT_EQ(score[2], -2.0f);
  EXPECT_FLOAT_EQ(score[3], 1.0f);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokensOnly) {
  SamplingOptions o = sampling();
  o.presence_penalty = 0.5f;
  o.frequency_penalty = 0.25f;
  Sampler s(o, 3);
  const std::vector<std::int64_t> prompt = {2};  // prompt tokens are not penalised
  s.reset(prompt);
  s.accept(0);
  s.accept(0);
  s.accept(1);
  std::map<std::int64_t, float> score;
  for (const auto& x : s.candidates(std::vector<float>{1.0f, 1.0f, 1.0f})) score[x.id] = x.score;
  EXPECT_FLOAT_EQ(score[0], 1.0f - 0.5f - 2 * 0.25f);
  EXPECT_FLOAT_EQ(score[1], 1.0f - 0.5f - 1 * 0.25f);
  EXPECT_FLOAT_EQ(score[2], 1.0f);
  // reset() forgets the previous sequence.
  s.reset({});
  for (const auto& x : s.candidates(std::vector<float>{1.0f, 1.0f, 1.0f})) EXPECT_FLOAT_EQ(x.score, 1.0f);
}

TEST(Sampler, TemperatureScalesScores) {
  SamplingOptions o = sampling();
  o.temperature = 0.5f;
  Sampler s(o, 2);
  const auto c = s.candidates(std::vector<float>{1.0f, 0.0f});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_FLOAT_EQ(c[0].score, 2.0f);
  // softmax(2, 0) = e^2 / (e^2 + 1)
  EXPECT_NEAR(c[0].probability, std::exp(2.0) / (std::exp(2.0) + 1.0), 1e-12);
}

TEST(Sampler, TopKKeepsTies) {
  SamplingOptions o = sampling();
  o.top_k = 2;
  Sampler s(o, 5);
  EXPECT_EQ(ids_of(s.candidates(std::vector<float>{1.0f, 3.0f, 2.0f, 2.0f, 0.0f})),
            (std::set<std::int64_t>{1, 2, 3}));
}

TEST(Sampler, TopPDropsTheLeastLikelyTailWhoseMassIsBelowTheCut) {
  // p = 0.5, 0.3, 0.15, 0.05. Ascending cumulative: 0.05, 0.20, 0.50, 1.00.
  const auto logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingOptions o = sampling();
  // (Cuts are kept off the exact cumulative sums, where float rounding decides.)
  o.top_p = 0.79f;  // cut 0.21: removes 0.05 (0.05) and 0.15 (0.20 <= 0.21)
  EXPECT_EQ(ids_of(Sampler(o, 4).candidates(logits)), (std::set<std::int64_t>{0, 1}));
  o.top_p = 0.82f;  // cut 0.18: removes only 0.05 (0.20 > 0.18)
  EXPECT_EQ(ids_of(Sampler(o, 4).candidates(logits)), (std::set<std::int64_t>{0, 1, 2}));
  o.top_p = 0.01f;  // the most likely token always survives
  EXPECT_EQ(ids_of(Sampler(o, 4).candidates(logits)), (std::set<std::int64_t>{0}));
}

TEST(Sampler, MinPKeepsTokensAboveAFractionOfTheBest) {
  const auto logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingOptions o = sampling();
  o.min_p = 0.5f;  // threshold 0.25
  EXPECT_EQ(ids_of(Sampler(o, 4).candidates(logits)), (std::set<std::int64_t>{0, 1}));
  o.min_p = 0.29f;  // threshold 0.145: 0.15 stays
  EXPECT_EQ(ids_of(Sampler(o, 4).candidates(logits)), (std::set<std::int64_t>{0, 1, 2}));
}

TEST(Sampler, SurvivorProbabilitiesAreRenormalised) {
  const auto logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingOptions o = sampling();
  o.top_k = 2;
  const auto c = Sampler(o, 4).candidates(logits);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].probability, 0.5 / 0.8, 1e-7);
  EXPECT_NEAR(c[1].probability, 0.3 / 0.8, 1e-7);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(1000);
  for (float& x : logits) x = normal(gen);
  auto run = [&](std::uint64_t seed) {
    SamplingOptions o = sampling(seed);
    o.temperature = 1.5f;
    Sampler s(o, 1000);
    std::vector<std::int64_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, DrawFrequenciesFollowTheDistribution) {
  const auto logits = logits_for({0.5, 0.3, 0.15, 0.05});
  Sampler s(sampling(123), 4);
  std::vector<int> counts(4, 0);
  constexpr int kDraws = 200000;
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<std::size_t>(s.sample(logits))];
  const double expected[] = {0.5, 0.3, 0.15, 0.05};
  for (int i = 0; i < 4; ++i) {
    // 5 standard deviations of a binomial proportion at 200k draws.
    const double sigma = std::sqrt(expected[i] * (1 - expected[i]) / kDraws);
    EXPECT_NEAR(counts[static_cast<std::size_t>(i)] / double(kDraws), expected[i], 5 * sigma) << "token " << i;
  }
}

// Naive reference: full sort, then HF's filters literally as written.
std::set<std::int64_t> naive_survivors(std::vector<float> scores, const SamplingOptions& o) {
  for (float& s : scores) s /= o.temperature;
  const auto n = static_cast<std::int64_t>(scores.size());
  std::vector<bool> removed(scores.size(), false);
  if (o.top_k > 0) {
    std::vector<float> sorted(scores);
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const float kth = sorted[static_cast<std::size_t>(std::min(o.top_k, n) - 1)];
    for (std::int64_t i = 0; i < n; ++i) removed[i] = scores[i] < kth;
  }
  auto probabilities = [&]() {
    double max_score = -INFINITY, total = 0;
    for (std::int64_t i = 0; i < n; ++i) if (!removed[i]) max_score = std::max<double>(max_score, scores[i]);
    std::vector<double> p(scores.size(), 0.0);
    for (std::int64_t i = 0; i < n; ++i) if (!removed[i]) total += (p[i] = std::exp(scores[i] - max_score));
    for (double& x : p) x /= total;
    return p;
  };
  if (o.top_p < 1.0f) {
    const auto p = probabilities();
    std::vector<std::int64_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return p[a] != p[b] ? p[a] < p[b] : a > b; });
    double cumulative = 0;
    for (std::size_t r = 0; r + 1 < order.size(); ++r) {
      cumulative += p[order[r]];
      if (cumulative <= 1.0 - o.top_p) removed[order[r]] = true;
    }
  }
  if (o.min_p > 0.0f) {
    const auto p = probabilities();
    const double best = *std::max_element(p.begin(), p.end());
    for (std::int64_t i = 0; i < n; ++i) if (p[i] < o.min_p * best) removed[i] = true;
  }
  std::set<std::int64_t> kept;
  for (std::int64_t i = 0; i < n; ++i) if (!removed[i]) kept.insert(i);
  return kept;
}

TEST(Sampler, FiltersMatchNaiveReferenceOnRandomLogits) {
  std::mt19937 gen(2024);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(300);
    for (float& x : logits) x = normal(gen);
    SamplingOptions o = sampling();
    o.temperature = 0.3f + 0.1f * static_cast<float>(trial % 10);
    o.top_k = (trial % 3 == 0) ? 0 : 1 + trial % 40;
    o.top_p = (trial % 4 == 0) ? 1.0f : 0.5f + 0.05f * static_cast<float>(trial % 9);
    o.min_p = (trial % 5 == 0) ? 0.05f : 0.0f;
    EXPECT_EQ(ids_of(Sampler(o, 300).candidates(logits)), naive_survivors(logits, o))
        << "trial " << trial << " T=" << o.temperature << " k=" << o.top_k << " p=" << o.top_p
        << " min_p=" << o.min_p;
  }
}

TEST(Sampler, LogprobsAreLogSoftmaxAfterPenaltiesBeforeTemperature) {
  // logits {2, 1, 0, -1}; token 0 generated twice: presence 0.5 + frequency 0.25 * 2
  // takes it to 2 - 1 = 1, so the penalised scores are {1, 1, 0, -1} and
  //   log_softmax(i) = s_i - log(e + e + 1 + 1/e).
  const std::vector<float> logits = {2.0f, 1.0f, 0.0f, -1.0f};
  const double log_total = std::log(2 * std::exp(1.0) + 1.0 + std::exp(-1.0));
  for (const float temperature : {0.0f, 0.5f, 2.0f}) {  // temperature does not change logprobs
    SamplingOptions o = sampling();
    o.temperature = temperature;
    o.presence_penalty = 0.5f;
    o.frequency_penalty = 0.25f;
    Sampler s(o, 4);
    s.reset(std::vector<std::int64_t>{});
    s.accept(0);
    s.accept(0);
    const std::int64_t chosen = s.sample(logits);
    const TokenLogprobs lp = compute_logprobs(s.penalised_scores(), 2, 3);
    EXPECT_NEAR(lp.logprob, 0.0 - log_total, 1e-6);
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_EQ(lp.top[0].token_id, 0);  // equal scores: lower id first
    EXPECT_EQ(lp.top[1].token_id, 1);
    EXPECT_EQ(lp.top[2].token_id, 2);
    EXPECT_NEAR(lp.top[0].logprob, 1.0 - log_total, 1e-6);
    EXPECT_NEAR(lp.top[1].logprob, 1.0 - log_total, 1e-6);
    EXPECT_NEAR(lp.top[2].logprob, 0.0 - log_total, 1e-6);
    if (temperature == 0.0f) {
      EXPECT_EQ(chosen, 0);  // greedy: first of the tied maxima
    }
  }
  EXPECT_TRUE(compute_logprobs(logits, 1, 0).top.empty());
  EXPECT_THROW(compute_logprobs(logits, 4, 0), Error);
}

TEST(Sampler, MaskedTokensAreNeverChosen) {
  const std::vector<float> logits = {5.0f, 4.0f, 3.0f, 2.0f, 1.0f};
  const std::vector<std::uint8_t> allowed = {0, 0, 1, 0, 1};
  SamplingOptions greedy;
  greedy.temperature = 0.0f;
  EXPECT_EQ(Sampler(greedy, 5).sample(logits, allowed), 2);
  SamplingOptions o = sampling(7);
  o.temperature = 5.0f;  // nearly flat: every allowed id gets drawn
  Sampler s(o, 5);
  std::set<std::int64_t> drawn;
  for (int i = 0; i < 200; ++i) drawn.insert(s.sample(logits, allowed));
  EXPECT_EQ(drawn, (std::set<std::int64_t>{2, 4}));
  // The survivors' probabilities are renormalised over the allowed ids:
  // softmax({3, 1} / 5) = {1 / (1 + e^-0.4), ...}.
  const auto c = s.candidates(logits, allowed);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].probability, 1.0 / (1.0 + std::exp(-0.4)), 1e-6);  // float scores
  const std::vector<std::uint8_t> none(5, 0);
  EXPECT_THROW(s.sample(logits, none), Error);
}

TEST(Sampler, InvalidOptionsAreUsageErrors) {
  SamplingOptions o;
  o.top_p = 0.0f;
  EXPECT_THROW(Sampler(o, 10), Error);
  o = {};
  o.temperature = -1.0f;
  EXPECT_THROW(Sampler(o, 10), Error);
  o = {};
  o.repetition_penalty = 0.0f;
  EXPECT_THROW(Sampler(o, 10), Error);
  Sampler s(SamplingOptions{}, 10);
  EXPECT_THROW(s.sample(std::vector<float>(9, 0.0f)), Error);
}

}  // namespace
}  // namespace q3vl::runtime
