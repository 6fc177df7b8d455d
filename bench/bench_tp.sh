#!/usr/bin/env bash
# Tensor-parallel benchmark (not CI; `ctest -L slow` runs it with --quick): per-rank peak resident
# memory (VmHWM), resident weight bytes and tokens/s of the perplexity task at TP = 1 and TP = 2 on
# the ~110M random Llama (lminf random-model llama-110m), 2048-token sequences, float32.
#
#   bench/bench_tp.sh [BUILD_DIR] [--quick] [--sequences N]
#
# Prints one markdown table row per configuration (the TP = 1 rows are the baseline measured in the
# same run) plus the machine; copy them into docs/benchmarks.md.
set -euo pipefail

BUILD=build
QUICK=0
SEQS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --sequences) SEQS="$2"; shift ;;
    *) BUILD="$1" ;;
  esac
  shift
done
LMINF="$(cd "$BUILD" && pwd)/lminf"
[ -x "$LMINF" ] || { echo "bench_tp: $LMINF not found (build first: cmake --build $BUILD)" >&2; exit 1; }
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
LENGTH=2047   # + BOS = 2048 tokens per sequence
PRESET=llama-110m
if [ "$QUICK" = 1 ]; then LENGTH=127; SEQS=1; PRESET=tiny; fi

WORK="$(mktemp -d /tmp/lminf-bench-tp.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
"$LMINF" random-model "$PRESET" "$WORK/model" 2>/dev/null
VOCAB=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$WORK/model/config.json")
"$LMINF" random-ids "$WORK/data.ids" --vocab "$VOCAB" --sequences "$SEQS" --length "$LENGTH" --seed 1

# run LABEL NP TP THREADS
run() {
  local label=$1 np=$2 tp=$3 threads=$4 out="$WORK/out-$1"
  cat > "$WORK/exp.yaml" <<YAML
name: bench-tp
threads: $threads
model: {path: $WORK/model, dtype: float32}
attention: {variant: vanilla}
data: {format: ids, path: $WORK/data.ids}
parallel: {tensor_parallel: $tp, data_parallel: 1}
task: {type: perplexity, max_length: 2048, batch_size: 1}
output: {dir: $out}
YAML
  local launcher=""
  [ "$np" -gt 1 ] && launcher="$MPIRUN -np $np"
  $launcher "$LMINF" run "$WORK/exp.yaml" > "$WORK/log-$label" 2>&1 || { cat "$WORK/log-$label" >&2; exit 1; }
  local tps peaks weights nll
  tps=$(sed -n 's/.*"tokens_per_s": *\([0-9.e+-]*\).*/\1/p' "$out/results.json")
  nll=$(sed -n 's/^  "mean_nll": *\([0-9.e+-]*\).*/\1/p' "$out/results.json")
  peaks=$(sed -n 's/.*rank \([0-9]*\): peak resident memory (VmHWM) \([0-9.]*\) MiB.*/\2/p' "$WORK/log-$label" |
          awk '{printf "%s%.1f", (NR > 1 ? " / " : ""), $1}')
  weights=$(sed -n 's/.*rank \([0-9]*\) (tp.*: \([0-9.]*\) MiB of weights resident.*/\2/p' "$WORK/log-$label" |
            awk '{printf "%s%.1f", (NR > 1 ? " / " : ""), $1}')
  printf "| %s | %d | %d | %s | %s | %.1f | %s |\n" "$label" "$tp" "$threads" "$weights" "$peaks" "$tps" "$nll"
}

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "model: random $PRESET, float32; $SEQS sequence(s) of $((LENGTH + 1)) tokens; vanilla attention"
echo
echo "| run | TP | threads/rank | weights MiB per rank | peak RSS (VmHWM) MiB per rank | tokens/s | mean NLL |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run tp1-1thread 1 1 1
run tp1-2threads 1 1 2
run tp2 2 2 1
