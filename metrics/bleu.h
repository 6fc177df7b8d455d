// BLEU-4 (Papineni, Roukos, Ward, Zhu 2002), corpus and sentence level, on whitespace-free token lists.
//
//   p_n  = (sum over segments of clipped n-gram matches) / (sum over segments of hypothesis n-grams),
//          a hypothesis n-gram counts at most as often as in the reference that has it most often
//   BP   = 1 if c > r else exp(1 - r / c)   (0 when c = 0); c = hypothesis tokens, r = for each
//          segment the reference length closest to its hypothesis length (ties: the shorter), summed
//   BLEU = BP * exp(sum_n 1/4 log p_n), 0 when some p_n = 0 (unsmoothed)
//
// Smoothing (sentence level): BleuSmoothing::kAddOne is Lin & Och 2004 ("ORANGE", COLING), BLEU+1:
// for n >= 2, p_n = (matches_n + 1) / (total_n + 1); p_1 stays unsmoothed. Corpus BLEU is unsmoothed,
// as in Hugging Face evaluate's `bleu` (which LM-Infinite's eval_generation.py reports).
//
// Tokenisation: tokenize_13a() is sacrebleu's / mteval-v13a's default tokenizer, the one HF evaluate's
// `bleu` applies to both sides. Checked against NLTK's documented corpus_bleu/sentence_bleu examples
// and HF evaluate's metric card (tests/metrics/bleu_test.cpp; docs/metrics.md).
// Note: with several references HF evaluate (tensorflow/nmt compute_bleu) sums the *shortest*
// reference lengths; NLTK and this code take the closest (Papineni's "best match length"). With one
// reference per segment, as in the generation task, the two agree.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lminf {

using Tokens = std::vector<std::string>;

// mteval-v13a tokenisation (sacrebleu Tokenizer13a): drops "<skipped>", joins "-\n" line breaks,
// newlines to spaces, unescapes &quot; &amp; &lt; &gt;, splits off the ASCII punctuation
// {|}~[\]^_` !"#$%&()*+:;<=>?@/ everywhere, "." and "," unless between digits, "-" after a digit;
// then splits on ASCII whitespace. Non-ASCII bytes are left inside tokens.
Tokens tokenize_13a(const std::string& text);

// Sufficient statistics of one or more segments; add() merges segments (corpus BLEU).
struct BleuStats {
  static constexpr int kMaxOrder = 4;
  std::array<int64_t, kMaxOrder> matches{};   // clipped n-gram matches, n = 1..4
  std::array<int64_t, kMaxOrder> possible{};  // hypothesis n-grams, n = 1..4
  int64_t hypothesis_length = 0;
  int64_t reference_length = 0;  // closest reference length, summed over segments
  void add(const BleuStats& o);
};

// Statistics of one hypothesis against its references (at least one).
BleuStats bleu_stats(const Tokens& hypothesis, const std::vector<Tokens>& references);

enum class BleuSmoothing { kNone, kAddOne };

struct BleuResult {
  double bleu = 0;                      // in [0, 1]
  std::array<double, 4> precisions{};   // p_1..p_4 as used (smoothed when smoothing is on)
  double brevity_penalty = 0;
  double length_ratio = 0;              // c / r
  int64_t translation_length = 0;       // c
  int64_t reference_length = 0;         // r
};

BleuResult bleu_from_stats(const BleuStats& s, BleuSmoothing smoothing = BleuSmoothing::kNone);

// Corpus BLEU: statistics summed over segments, then one score (unsmoothed). references[i] are the
// references of hypotheses[i].
BleuResult corpus_bleu(const std::vector<Tokens>& hypotheses, const std::vector<std::vector<Tokens>>& references);

// Sentence BLEU of one hypothesis, smoothed with BLEU+1 by default.
BleuResult sentence_bleu(const Tokens& hypothesis, const std::vector<Tokens>& references,
                         BleuSmoothing smoothing = BleuSmoothing::kAddOne);

}  // namespace lminf
