// ROUGE-N and ROUGE-L F-measures (Lin 2004, "ROUGE: A Package for Automatic Evaluation of
// Summaries"), as Google's rouge-score package computes them (the package behind Hugging Face
// evaluate's `rouge`, which LM-Infinite's eval_generation.py reports), with its default options
// (no stemming, one reference):
//   tokens  = lowercase, every run of characters outside [a-z0-9] becomes a space, split on spaces
//   ROUGE-N: overlap = sum over n-grams of min(count in prediction, count in reference);
//            P = overlap / prediction n-grams, R = overlap / reference n-grams
//   ROUGE-L: LCS = longest common subsequence of the two token lists; P = LCS / prediction tokens,
//            R = LCS / reference tokens
//   F = 2 P R / (P + R) (0 when P + R = 0; P, R = 0 when a side has no n-gram)
// Checked against rouge-score's documented examples (tests/metrics/rouge_test.cpp; docs/metrics.md).
// Lowercasing is ASCII: non-ASCII letters are outside [a-z0-9] either way and become separators.
#pragma once

#include <string>
#include <vector>

namespace lminf {

struct RougeScore {
  double precision = 0, recall = 0, fmeasure = 0;
};

struct RougeScores {
  RougeScore rouge1, rouge2, rougeL;
};

std::vector<std::string> rouge_tokenize(const std::string& text);

RougeScore rouge_n(const std::vector<std::string>& reference, const std::vector<std::string>& prediction, int n);
RougeScore rouge_l(const std::vector<std::string>& reference, const std::vector<std::string>& prediction);

// ROUGE-1, -2 and -L of one prediction against one reference (texts, tokenized as above).
RougeScores rouge(const std::string& reference, const std::string& prediction);

}  // namespace lminf
