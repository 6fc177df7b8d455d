// SQuAD answer scores (Rajpurkar et al. 2016; the official v1.1 evaluate script), the F1 that
// LM-Infinite reports for Qasper and NarrativeQA (spec section 4.4):
//   normalize = lowercase, drop ASCII punctuation (Python's string.punctuation), drop the whole
//               words a / an / the, collapse whitespace
//   F1        = over the normalized whitespace tokens: common = multiset intersection,
//               P = common / prediction tokens, R = common / gold tokens, F1 = 2PR/(P+R);
//               0 when nothing is in common (so also when either side is empty)
//   EM        = 1 if the normalized strings are equal
// With several gold answers each score is the maximum over them. Scores are in [0, 1].
// Lowercasing is ASCII, and bytes >= 0x80 count as word characters for the article rule (Python
// would lowercase non-ASCII letters too; digits and ASCII text are exact).
#pragma once

#include <string>
#include <vector>

namespace lminf {

std::string squad_normalize(const std::string& text);
double squad_f1(const std::string& prediction, const std::string& gold);
double squad_exact_match(const std::string& prediction, const std::string& gold);
// Maximum over the gold answers (0 when there is none).
double squad_f1(const std::string& prediction, const std::vector<std::string>& golds);
double squad_exact_match(const std::string& prediction, const std::vector<std::string>& golds);

}  // namespace lminf
