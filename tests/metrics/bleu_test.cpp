// BLEU against hand-computed cases and published worked examples (each expected value names its source).
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/bleu.h"

namespace lminf {
namespace {

Tokens words(const std::string& s) {
  Tokens t;
  std::string w;
  for (char c : s) {
    if (c == ' ') {
      if (!w.empty()) t.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) t.push_back(w);
  return t;
}

// The NLTK examples (nltk/translate/bleu_score.py, docstrings of sentence_bleu and corpus_bleu;
// Papineni et al. 2002's Chinese-English example sentences).
const Tokens kHyp1 = words("It is a guide to action which ensures that the military always obeys the commands of the party");
const Tokens kRef1a = words("It is a guide to action that ensures that the military will forever heed Party commands");
const Tokens kRef1b = words("It is the guiding principle which guarantees the military forces always being under the command of the Party");
const Tokens kRef1c = words("It is the practical guide for the army always to heed the directions of the party");
const Tokens kHyp2 = words("he read the book because he was interested in world history");
const Tokens kRef2a = words("he was interested in world history because he read the book");

TEST(Bleu, NltkSentenceBleuExample) {
  // nltk.translate.bleu_score.sentence_bleu([reference1, reference2, reference3], hypothesis1)
  // -> 0.5045666840058485 (NLTK docstring; no n-gram order has zero matches, so no smoothing applies).
  const BleuResult r = sentence_bleu(kHyp1, {kRef1a, kRef1b, kRef1c}, BleuSmoothing::kNone);
  EXPECT_NEAR(r.bleu, 0.5045666840058485, 1e-12);
  EXPECT_DOUBLE_EQ(r.brevity_penalty, 1.0);
}

TEST(Bleu, NltkCorpusBleuExample) {
  // nltk.translate.bleu_score.corpus_bleu([[ref1a, ref1b, ref1c], [ref2a]], [hyp1, hyp2])
  // -> 0.5920778868801042 (NLTK docstring); the mean of the two sentence BLEUs is
  // 0.6223247442490669 (the same example in BigDL's BLEUSpec and a moses/pybleu run).
  const BleuResult c = corpus_bleu({kHyp1, kHyp2}, {{kRef1a, kRef1b, kRef1c}, {kRef2a}});
  EXPECT_NEAR(c.bleu, 0.5920778868801042, 1e-12);
  const double s1 = sentence_bleu(kHyp1, {kRef1a, kRef1b, kRef1c}, BleuSmoothing::kNone).bleu;
  const double s2 = sentence_bleu(kHyp2, {kRef2a}, BleuSmoothing::kNone).bleu;
  EXPECT_NEAR((s1 + s2) / 2, 0.6223247442490669, 1e-12);
  // Hand count for hyp1: 18 tokens; clipped unigram matches 17/18 ("obeys" is in no reference).
  EXPECT_EQ(c.translation_length, 18 + 11);
  EXPECT_EQ(sentence_bleu(kHyp1, {kRef1a, kRef1b, kRef1c}).precisions[0] * 18, 17);
}

TEST(Bleu, HfEvaluateMetricCardExample) {
  // HF evaluate `bleu` card: predictions ["hello there general kenobi", "foo bar foobar"], references
  // [["hello there general kenobi", "hello there !"], ["foo bar foobar"]] -> bleu 1.0, precisions
  // [1, 1, 1, 1], brevity_penalty 1.0, translation_length 7. (HF reports reference_length 6: it sums
  // the shortest references; the closest-reference rule here gives 4 + 3 = 7.)
  std::vector<Tokens> hyps = {tokenize_13a("hello there general kenobi"), tokenize_13a("foo bar foobar")};
  std::vector<std::vector<Tokens>> refs = {{tokenize_13a("hello there general kenobi"), tokenize_13a("hello there !")},
                                           {tokenize_13a("foo bar foobar")}};
  const BleuResult r = corpus_bleu(hyps, refs);
  EXPECT_DOUBLE_EQ(r.bleu, 1.0);
  for (double p : r.precisions) EXPECT_DOUBLE_EQ(p, 1.0);
  EXPECT_DOUBLE_EQ(r.brevity_penalty, 1.0);
  EXPECT_EQ(r.translation_length, 7);
  EXPECT_EQ(r.reference_length, 7);
}

TEST(Bleu, HandComputedBrevityAndSmoothing) {
  // hyp "the cat sat on mat" (5) vs ref "the cat sat on the mat" (6):
  // matches 5/5, 3/4, 2/3, 1/2; BP = exp(1 - 6/5).
  const Tokens hyp = words("the cat sat on mat"), ref = words("the cat sat on the mat");
  const BleuResult plain = sentence_bleu(hyp, {ref}, BleuSmoothing::kNone);
  const double bp = std::exp(1.0 - 6.0 / 5.0);
  EXPECT_NEAR(plain.brevity_penalty, bp, 1e-15);
  EXPECT_NEAR(plain.bleu, bp * std::pow(1.0 * 3 / 4 * 2 / 3 * 1 / 2, 0.25), 1e-15);
  EXPECT_NEAR(plain.length_ratio, 5.0 / 6.0, 1e-15);
  // BLEU+1 (Lin & Och 2004): orders 2..4 become (m+1)/(t+1) = 4/5, 3/4, 2/3; unigrams unchanged.
  const BleuResult smooth = sentence_bleu(hyp, {ref});
  EXPECT_NEAR(smooth.bleu, bp * std::pow(1.0 * 4 / 5 * 3 / 4 * 2 / 3, 0.25), 1e-15);
  EXPECT_NEAR(smooth.precisions[1], 0.8, 1e-15);
}

TEST(Bleu, ZeroAndShortCases) {
  // No unigram in common: 0 with or without smoothing.
  EXPECT_EQ(sentence_bleu(words("foo bar"), {words("the cat")}).bleu, 0.0);
  // Two tokens, exact: no 3- or 4-grams, so unsmoothed BLEU is 0 and BLEU+1 is 1.
  EXPECT_EQ(sentence_bleu(words("the cat"), {words("the cat")}, BleuSmoothing::kNone).bleu, 0.0);
  EXPECT_DOUBLE_EQ(sentence_bleu(words("the cat"), {words("the cat")}).bleu, 1.0);
  // Empty hypothesis: BP = 0.
  const BleuResult e = sentence_bleu({}, {words("the cat")});
  EXPECT_EQ(e.bleu, 0.0);
  EXPECT_EQ(e.brevity_penalty, 0.0);
  // Clipping: "the the the the" vs "the cat": unigram precision 1/4 (Papineni 2002's modified precision).
  EXPECT_DOUBLE_EQ(sentence_bleu(words("the the the the"), {words("the cat")}).precisions[0], 0.25);
  // Closest reference length, ties to the shorter: hyp of 5 vs refs of 4 and 6 -> 4 (BP 1).
  const BleuStats s = bleu_stats(words("a b c d e"), {words("a b c d e f"), words("a b c d")});
  EXPECT_EQ(s.reference_length, 4);
}

TEST(Bleu, Tokenizer13a) {
  // Hand-applied mteval-v13a rules: punctuation split off, "." and "," kept inside numbers, "-" split
  // after a digit only, entities unescaped.
  const Tokens t = tokenize_13a("Hello, world. 3.14 and 1,000 -- x-y 5-3 (a) R&amp;D end.\nnext-\nline");
  const Tokens want = {"Hello", ",", "world", ".", "3.14", "and", "1,000", "--", "x-y", "5", "-", "3",
                       "(",     "a", ")",     "R", "&",    "D",   "end",   ".",  "nextline"};
  EXPECT_EQ(t, want);
  EXPECT_EQ(tokenize_13a("\"quoted\" a/b"), (Tokens{"\"", "quoted", "\"", "a", "/", "b"}));
  EXPECT_TRUE(tokenize_13a("  \n ").empty());
  // sacrebleu's 13a as tested in flexeval (tests of flexeval.core.metric.tokenizer.SacreBleuTokenizer).
  EXPECT_EQ(tokenize_13a("I'm a student."), (Tokens{"I'm", "a", "student", "."}));
}

}  // namespace
}  // namespace lminf
