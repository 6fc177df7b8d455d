// ROUGE and SQuAD F1/EM against hand-computed cases and published examples (sources named inline).
#include <gtest/gtest.h>

#include "metrics/rouge.h"
#include "metrics/squad.h"

namespace lminf {
namespace {

TEST(Rouge, RougeScoreReadmeExample) {
  // rouge-score's README example, scorer.score(target, prediction) with target "The quick brown fox
  // jumps over the lazy dog", prediction "The quick brown dog jumps on the log.":
  // rouge1 Score(precision=0.75, recall=0.6666666666666666, fmeasure=0.7058823529411765) (as printed
  // in the rougers crate README, which reproduces rouge-score). The example stems, but no token here
  // changes under stemming except "jumps" on both sides.
  const RougeScores s = rouge("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.");
  EXPECT_NEAR(s.rouge1.precision, 0.75, 1e-15);
  EXPECT_NEAR(s.rouge1.recall, 0.6666666666666666, 1e-15);
  EXPECT_NEAR(s.rouge1.fmeasure, 0.7058823529411765, 1e-15);
  // By hand: LCS "the quick brown jumps the" = 5 of 8 predicted and 9 reference tokens.
  EXPECT_NEAR(s.rougeL.precision, 5.0 / 8, 1e-15);
  EXPECT_NEAR(s.rougeL.recall, 5.0 / 9, 1e-15);
  EXPECT_NEAR(s.rougeL.fmeasure, 50.0 / 85, 1e-15);
}

TEST(Rouge, RougeScoreNotebookExample) {
  // rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL']).score('a cat is on the table',
  // 'there is a cat on the table') as printed in github.com/dcdmm/MLBase:
  const RougeScores s = rouge("a cat is on the table", "there is a cat on the table");
  EXPECT_NEAR(s.rouge1.precision, 0.8571428571428571, 1e-15);
  EXPECT_NEAR(s.rouge1.recall, 1.0, 1e-15);
  EXPECT_NEAR(s.rouge1.fmeasure, 0.923076923076923, 1e-15);
  EXPECT_NEAR(s.rouge2.precision, 0.5, 1e-15);
  EXPECT_NEAR(s.rouge2.recall, 0.6, 1e-15);
  EXPECT_NEAR(s.rouge2.fmeasure, 0.5454545454545454, 1e-15);
  EXPECT_NEAR(s.rougeL.precision, 0.7142857142857143, 1e-15);
  EXPECT_NEAR(s.rougeL.recall, 0.8333333333333334, 1e-15);
  EXPECT_NEAR(s.rougeL.fmeasure, 0.7692307692307692, 1e-15);
}

TEST(Rouge, HandComputedEdgeCases) {
  // HF evaluate `rouge` card: identical texts score 1.0.
  const RougeScores same = rouge("general kenobi", "general kenobi");
  EXPECT_DOUBLE_EQ(same.rouge1.fmeasure, 1.0);
  EXPECT_DOUBLE_EQ(same.rouge2.fmeasure, 1.0);
  EXPECT_DOUBLE_EQ(same.rougeL.fmeasure, 1.0);
  // Empty or punctuation-only prediction: all zero.
  const RougeScores empty = rouge("general kenobi", "...");
  EXPECT_EQ(empty.rouge1.fmeasure, 0.0);
  EXPECT_EQ(empty.rougeL.fmeasure, 0.0);
  // One-token sides have no bigram: ROUGE-2 = 0.
  EXPECT_EQ(rouge("hello", "hello").rouge2.fmeasure, 0.0);
  // Repeated tokens clip: "a a a" vs "a b": overlap 1, P = 1/3, R = 1/2.
  const RougeScore r = rouge_n(rouge_tokenize("a b"), rouge_tokenize("a a a"), 1);
  EXPECT_NEAR(r.precision, 1.0 / 3, 1e-15);
  EXPECT_NEAR(r.recall, 0.5, 1e-15);
  // Tokenizer: lowercase, runs of non-[a-z0-9] split.
  EXPECT_EQ(rouge_tokenize("Hello, World! It's 3.5 -- é x"),
            (std::vector<std::string>{"hello", "world", "it", "s", "3", "5", "x"}));
}

TEST(Squad, Normalization) {
  EXPECT_EQ(squad_normalize("The  Quick, brown fox!"), "quick brown fox");
  EXPECT_EQ(squad_normalize("an apple a day, the end"), "apple day end");
  EXPECT_EQ(squad_normalize("Theater and anthem"), "theater and anthem");  // whole words only
  EXPECT_EQ(squad_normalize("a-b  (c)\n"), "ab c");
  EXPECT_EQ(squad_normalize("the"), "");
}

TEST(Squad, F1AndExactMatchByHand) {
  // "the cat sat" -> [cat, sat]; "cat sat down" -> [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8.
  EXPECT_NEAR(squad_f1("the cat sat", "cat sat down"), 0.8, 1e-15);
  EXPECT_EQ(squad_exact_match("The Cat sat.", "cat sat"), 1.0);
  EXPECT_EQ(squad_exact_match("cat", "cat sat"), 0.0);
  // Multiset overlap: "a b b" vs "b b b c": common 2 (b twice); P = 2/2 ("a" is an article), R = 2/4.
  EXPECT_NEAR(squad_f1("a b b", "b b b c"), 2 * 1.0 * 0.5 / 1.5, 1e-15);
  // Nothing in common, or an empty side: 0.
  EXPECT_EQ(squad_f1("yes", "no"), 0.0);
  EXPECT_EQ(squad_f1("", "no"), 0.0);
  EXPECT_EQ(squad_f1("the", "a"), 0.0);
  // Maximum over gold answers.
  EXPECT_NEAR(squad_f1("cat sat", std::vector<std::string>{"dog", "cat sat down", "cat"}), 0.8, 1e-15);
  EXPECT_EQ(squad_exact_match("Unanswerable.", std::vector<std::string>{"yes", "unanswerable"}), 1.0);
  EXPECT_EQ(squad_f1("x", std::vector<std::string>{}), 0.0);
}

}  // namespace
}  // namespace lminf
