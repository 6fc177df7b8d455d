#!/usr/bin/env bash
# make demo: configs/demo.yaml on the embedded model (vanilla vs lambda vs streaming to 8x the training
# length, with factor dumps), then `lminf analyze` plots, a summary with the acceptance checks, and
# the sweep's report page (`lminf report`, its path printed last).
set -euo pipefail
BUILD=${1:-build}
LMINF="$BUILD/lminf"
DEMO="$BUILD/demo"
MODEL=${MODEL:-embedded/lminf-info-1m}
mkdir -p "$DEMO"
bash scripts/make_corpus.sh "$DEMO/corpus" > /dev/null
"$LMINF" run configs/demo.yaml --set data.path="$DEMO/corpus/heldout" --set output.dir="$DEMO/runs" \
  --set model.path="$MODEL"
runs=(variant-vanilla variant-lambda_local_branch-128_global_branch-4 variant-streaming_start_size-4_recent_size-128)
labels=(vanilla lambda streaming)
args=()
for i in 0 1 2; do
  args+=("$DEMO/runs/${runs[$i]}/factors.h5" --label "${labels[$i]}")
  args+=("$DEMO/runs/${runs[$i]}/token_nll.h5" --label "${labels[$i]}")
done
"$LMINF" analyze "${args[@]}" --out "$DEMO/analysis" --overwrite > /dev/null
echo
echo "plots and tables: $DEMO/analysis"
# Acceptance (training length 128): bucket 896-1023 (8x) against the last in-length bucket 0-127.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { v = $col["attention.variant"]; inlen = $col["nll@0-127"]; far = $col["nll@896-1023"];
    printf "%-10s NLL positions 0-127: %.3f   896-1023 (8x): %.3f   rise: %+.3f nats\n", v, inlen, far, far - inlen;
    rise[v] = far - inlen }
  END {
    ok1 = rise["vanilla"] >= 1.0; ok2 = (rise["lambda"] <= 0.1 && rise["lambda"] >= -0.1)
    printf "vanilla rises by >= 1.0 nat past the training length: %s\n", ok1 ? "yes" : "NO"
    printf "lambda stays within 0.1 nat of its in-length NLL:     %s\n", ok2 ? "yes" : "NO" }' "$DEMO/runs/sweep.csv"
report=$("$LMINF" report "$DEMO/runs")
echo
echo "report: $report"
