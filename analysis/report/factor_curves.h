// The curves of the factor analyses, computed from the datasets of a factor dump or a perplexity
// output (docs/hdf5.md, docs/analysis.md). Pure functions of tensors, so each is testable on a
// hand-made input.
#pragma once

#include <ATen/ATen.h>

#include "analysis/report/curve.h"

namespace lminf {

// Factor 1 (the paper's Figure 1a): for each line (a chosen query p of a sequence, one head), the
// logit at distance d is logits[p - d]; the bound is its running maximum over distances 0..d.
// logits: [R, S, T] (query_logits of one layer); positions: int64 [R]. Returns the mean / std of the
// bound over the R x S lines at each distance 0..T-1 (lines with p < d have no value there).
Curve logit_bound_by_distance(const at::Tensor& logits, const at::Tensor& positions);

// Factor 1 over all queries: the running maximum over distance buckets of each (sequence, head)'s
// bucket maxima (bucket_max: [N, S, n_buckets]; empty buckets -inf), mean / std over the N x S lines.
Curve bucket_bound(const at::Tensor& bucket_max);

// Factor 2: entropy [N, S, T] (NaN past each sequence) -> mean / std over sequences and heads per position.
Curve entropy_by_position(const at::Tensor& entropy);
// log(visible_keys) ([N, S, T], 0 past each sequence) averaged the same way: the entropy's upper bound.
Curve log_bound_by_position(const at::Tensor& visible_keys);

// NLL [N, T] (NaN past each sequence) -> mean / std over sequences per position.
Curve nll_by_position(const at::Tensor& token_nll);

// Mean of a curve's means over x in [lo, hi) (NaN entries skipped; NaN if none).
double window_mean(const Curve& c, int64_t lo, int64_t hi);

}  // namespace lminf
