#!/usr/bin/env bash
# make demo: writes a small random Llama checkpoint and token data with lminf itself, then runs
# configs/demo.yaml (perplexity by position) and prints the summary.
set -euo pipefail
BUILD=${1:-build}
LMINF="$BUILD/lminf"
DEMO="$BUILD/demo"
mkdir -p "$DEMO"
if [ ! -f "$DEMO/model/config.json" ]; then
  "$LMINF" random-model tiny "$DEMO/model" --seed 1
fi
if [ ! -f "$DEMO/data.ids" ]; then
  "$LMINF" random-ids "$DEMO/data.ids" --vocab 256 --sequences 16 --length 1024 --min-length 300 --seed 1
fi
"$LMINF" run configs/demo.yaml \
  --set model.path="$DEMO/model" \
  --set data.path="$DEMO/data.ids" \
  --set output.dir="$DEMO/runs/demo-perplexity"
echo "outputs: $DEMO/runs/demo-perplexity (config.yaml, results.json, token_nll.h5)"
