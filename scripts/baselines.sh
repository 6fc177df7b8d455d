#!/usr/bin/env bash
# make baselines: every attention variant and KV-cache policy of a sweep config, side by side on one
# model at 8x its training length, from one command:
#   1. the config itself: NLL by position with the three factor dumps, one point per method (the
#      sweep then overlays the points with `lminf analyze`: plots and tables in OUT/ppl/analysis);
#   2. task passkey on the same points (OUT/passkey; skipped with PASSKEY_TASK= for a model without
#      a tokenizer, such as stories260k);
#   3. one table, OUT/baselines.md: per point the mean NLL of the last position window inside the
#      training length and of the last window (the analysis's windows [2^k, 2^(k+1))),
#      the passkey accuracy, and the factor summaries, each averaged over layers: logit bound growth
#      (the bound at the largest recorded distance minus the bound at the largest one below the training
#      length, max_position_embeddings), entropy growth (the last position window's mean entropy minus
#      that of the last window inside the training length) and first-token separation (hidden states),
#      from the outputs of 1 and 2.
#
#   bash scripts/baselines.sh [BUILD] [CONFIG] [OUT]
#   CONFIG: configs/embedded/baselines.yaml (default) or configs/stories260k-baselines.yaml
#   PASSKEY_TASK: the passkey task section (YAML); empty: no passkey part
set -euo pipefail
BUILD=${1:-build}
CONFIG=${2:-configs/embedded/baselines.yaml}
NAME=$(basename "$CONFIG" .yaml)
OUT=${3:-$BUILD/baselines/$NAME}
LMINF="$BUILD/lminf"
PASSKEY_TASK=${PASSKEY_TASK-"{type: passkey, lengths: [128, 512, 1024], depths: [0, 0.5, 1], samples: 2, key_min: 1, key_max: 9999999, max_new_tokens: 7}"}
command -v jq > /dev/null || { echo "baselines: jq is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }

set_args=(--set output.dir="$OUT/ppl")
if grep -q "build/demo/corpus/heldout" "$CONFIG"; then  # the embedded model's held-out GNU manuals
  bash scripts/make_corpus.sh "$BUILD/demo/corpus" > /dev/null
  set_args+=(--set data.path="$BUILD/demo/corpus/heldout")
fi
"$LMINF" run "$CONFIG" "${set_args[@]}"
if [ -n "$PASSKEY_TASK" ]; then
  # The same points without task.chunk_size (perplexity's key for the cache policies: the passkey
  # task feeds its prompt, then decodes), from a copy of the config.
  mkdir -p "$OUT"
  sed -E 's/, *task\.chunk_size: *[0-9]+//' "$CONFIG" > "$OUT/passkey.yaml"
  "$LMINF" run "$OUT/passkey.yaml" "${set_args[@]}" --set output.dir="$OUT/passkey" --set "task=$PASSKEY_TASK" \
    --set dump=null --set data=null
fi

# 3. The table: NLL columns from the perplexity sweep, accuracy from the passkey sweep (joined on the
# point's folder), factor summaries from the overlay analysis (runs matched by their folder).
csv_json() {  # a sweep.csv as a JSON list of objects (no quoted commas in these files)
  [ -f "$1" ] || { echo "[]"; return; }
  jq -R -s 'split("\n") | map(select(length > 0) | split(",")) | .[0] as $h | .[1:] | map([$h, .] | transpose | map({(.[0]): .[1]}) | add)' "$1"
}
# The training length: max_position_embeddings of the model the points ran (their resolved config).
first_point=$(ls -d "$OUT"/ppl/*/config.yaml | head -1)
model_path=$(awk '/^model:/ { m = 1; next } m && /^  path:/ { print $2; exit }' "$first_point")
TRAIN=$(jq '.max_position_embeddings' "$model_path/config.json")
csv_json "$OUT/ppl/sweep.csv" > "$OUT/.ppl.json"
csv_json "$OUT/passkey/sweep.csv" > "$OUT/.passkey.json"
jq -n -r --argjson train "$TRAIN" --slurpfile ppl "$OUT/.ppl.json" --slurpfile pk "$OUT/.passkey.json" \
  --slurpfile an "$OUT/ppl/analysis/summary.json" '
  def f3: if . == null then "-" else (. * 1000 | round / 1000 | tostring) end;
  def mean: if length == 0 then null else add / length end;
  def folder: split("/") | .[-2];
  def by_folder(kind): map(select(.kind == kind)) | map({key: (.path | folder), value: .}) | from_entries;
  def inside: map(select(.hi <= $train))[-1];  # the last window inside the training length
  ($an[0].runs | by_folder("factors")) as $fac
  | ($an[0].runs | by_folder("token_nll")) as $nll
  | ($pk[0] | map({key: .point, value: .accuracy}) | from_entries) as $acc
  | ($nll | to_entries[0].value.nll.windows) as $w
  | ["| point | NLL \($w | inside | "\(.lo)-\(.hi - 1)") | NLL \($w[-1] | "\(.lo)-\(.hi - 1)") | rise | passkey accuracy | logit bound growth | entropy growth | first-token separation |",
     "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  + ($ppl[0] | map(
      .point as $p | ($fac[$p]) as $f
      | ($nll[$p].nll.windows // []) as $nw
      | ($nw | inside | .nll?) as $in | ($nw[-1].nll?) as $far
      | (if $f then [$f.factor1[] | .bound_at_distance | (to_entries | sort_by(.key | tonumber)) as $e
                     | ($e[-1].value - ($e | map(select((.key | tonumber) < $train))[-1].value))] | mean
         else null end) as $g1
      | (if $f then [$f.factor2[] | .windows | (.[-1].entropy - (inside.entropy))] | mean else null end) as $g2
      | (if $f then [$f.factor3[]? | select(.site == "hidden_states") | .separation] | mean else null end) as $s3
      | "| \($p) | \($in | f3) | \($far | f3) | \(if $in and $far then ($far - $in) | f3 else "-" end) | \($acc[$p | sub("_chunk_size-[0-9]+$"; "")] // "-") | \($g1 | f3) | \($g2 | f3) | \($s3 | f3) |"))
  | .[]' > "$OUT/baselines.md"
rm -f "$OUT/.ppl.json" "$OUT/.passkey.json"
echo
cat "$OUT/baselines.md"
echo
echo "table: $OUT/baselines.md; plots: $OUT/ppl/analysis; passkey heat maps: $OUT/passkey/*/niah_heatmap.png"
