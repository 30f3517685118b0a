// compare_logits / summarize_kl against hand-worked values and a long-double reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "bench/kl_divergence.h"
#include "q3vl/error.h"

namespace q3vl::bench {
namespace {

TEST(KlDivergence, HandWorkedThreeTokens) {
  // reference logits (0, ln 2, ln 3) -> P = (1/6, 2/6, 3/6); test logits 0 -> Q = 1/3 each.
  // KL = 1/6 ln(1/2) + 2/6 ln(1) + 3/6 ln(3/2).
  const std::vector<float> p = {0.0f, static_cast<float>(std::log(2.0)), static_cast<float>(std::log(3.0))};
  const std::vector<float> q = {0.0f, 0.0f, 0.0f};
  const double expected = std::log(0.5) / 6.0 + std::log(1.5) / 2.0;  // 0.0872080...
  const PositionKl r = compare_logits(p, q);
  EXPECT_NEAR(r.kl, expected, 1e-7);  // float logits carry ~1e-8 rounding of ln 2, ln 3
  EXPECT_NEAR(r.kl, 0.0872080, 1e-6);
  EXPECT_FALSE(r.same_top1);  // argmax 2 vs 0 (the lowest id among ties)
}

TEST(KlDivergence, IdenticalAndShiftedLogitsGiveZero) {
  const std::vector<float> a = {1.5f, -2.0f, 0.25f, 7.0f};
  std::vector<float> shifted = a;
  for (float& v : shifted) v += 1000.0f;  // softmax is shift-invariant; no overflow at 1000
  EXPECT_EQ(compare_logits(a, a).kl, 0.0);
  EXPECT_TRUE(compare_logits(a, a).same_top1);
  EXPECT_NEAR(compare_logits(a, shifted).kl, 0.0, 1e-12);
  EXPECT_TRUE(compare_logits(a, shifted).same_top1);
}

TEST(KlDivergence, MatchesLongDoubleReferenceOverAFullVocabulary) {
  constexpr std::size_t kVocab = 151936;  // Qwen3-VL's lm_head width
  std::mt19937 random(7);
  std::normal_distribution<float> noise(0.0f, 3.0f);
  std::vector<float> p(kVocab), q(kVocab);
  for (std::size_t i = 0; i < kVocab; ++i) {
    p[i] = noise(random);
    q[i] = p[i] + 0.2f * noise(random);
  }
  // Naive definition in long double: P_i = e^{x_i} / sum e^{x_j}, KL = sum P_i ln(P_i / Q_i).
  long double zp = 0, zq = 0;
  for (std::size_t i = 0; i < kVocab; ++i) {
    zp += std::exp(static_cast<long double>(p[i]));
    zq += std::exp(static_cast<long double>(q[i]));
  }
  long double kl = 0;
  for (std::size_t i = 0; i < kVocab; ++i) {
    const long double pi = std::exp(static_cast<long double>(p[i])) / zp;
    const long double qi = std::exp(static_cast<long double>(q[i])) / zq;
    kl += pi * std::log(pi / qi);
  }
  const PositionKl r = compare_logits(p, q);
  EXPECT_NEAR(r.kl, static_cast<double>(kl), 1e-10 * static_cast<double>(kl));
  EXPECT_GT(r.kl, 0.0);
}

TEST(KlDivergence, SizeMismatchIsAShapeError) {
  const std::vector<float> a = {1.0f, 2.0f}, b = {1.0f};
  try {
    compare_logits(a, b);
    FAIL() << "expected q3vl::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::shape);
    EXPECT_NE(std::string(e.what()).find("logits"), std::string::npos);
  }
}

TEST(KlDivergence, SummaryOfFourPositions) {
  const std::vector<PositionKl> positions = {{0.1, true}, {0.3, false}, {0.2, true}, {0.4, true}};
  const KlStats s = summarize_kl(positions);
  EXPECT_EQ(s.tokens, 4);
  EXPECT_NEAR(s.mean_kl, 0.25, 1e-15);
  // sd = sqrt((0.15^2 + 0.05^2 + 0.05^2 + 0.15^2) / 3) = sqrt(0.05 / 3); se = sd / 2.
  EXPECT_NEAR(s.kl_stderr, std::sqrt(0.05 / 3.0) / 2.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.max_kl, 0.4);
  EXPECT_DOUBLE_EQ(s.p99_kl, 0.4);  // nearest rank ceil(0.99 * 4) = 4
  EXPECT_DOUBLE_EQ(s.top1_agreement, 0.75);
}

}  // namespace
}  // namespace q3vl::bench
