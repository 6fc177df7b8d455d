#!/usr/bin/env bash
# lminf against llama.cpp on the same model and machine, side by side and interleaved: for every
# round, every test (pp N: prefill of N tokens; tg N: N decoding steps; as llama-bench defines them),
# dtype and thread count runs once in llama-bench and once in lminf_bench_pp_tg, so load drifting on
# the machine hits both alike. Prints the mean tokens/s of each and the ratio lminf / llama.cpp.
#
#   scripts/bench_llamacpp.sh LLAMA_BENCH MODEL_DIR F32.gguf BF16.gguf [--build DIR] [--rounds N]
#                             [--pp 512,2048] [--tg 128] [--threads 1,2]
#
# LLAMA_BENCH: the llama-bench binary of a llama.cpp build of yours (nothing is built here).
# MODEL_DIR: the Hugging Face Llama folder; F32.gguf / BF16.gguf: the same model converted (for
# example by scripts/convert_gguf.py MODEL_DIR OUT.gguf --dtype float32|bfloat16). Figures:
# docs/benchmarks.md.
set -euo pipefail

usage() { echo "usage: $0 LLAMA_BENCH MODEL_DIR F32.gguf BF16.gguf [--build DIR] [--rounds N] [--pp 512,2048] [--tg 128] [--threads 1,2]" >&2; exit 2; }
[ $# -ge 4 ] || usage
LLAMA_BENCH=$1 MODEL=$2 GGUF_F32=$3 GGUF_BF16=$4
shift 4
BUILD=build ROUNDS=3 PP=512,2048 TG=128 THREADS=1,2
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --pp) PP=$2; shift 2 ;;
    --tg) TG=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) usage ;;
  esac
done
LMINF_BENCH=$BUILD/bench/lminf_bench_pp_tg
for f in "$LLAMA_BENCH" "$LMINF_BENCH"; do
  [ -x "$f" ] || { echo "$0: $f is not an executable (build lminf with make build; LLAMA_BENCH is llama.cpp's llama-bench)" >&2; exit 2; }
done
for f in "$GGUF_F32" "$GGUF_BF16" "$MODEL/config.json"; do
  [ -f "$f" ] || { echo "$0: $f not found" >&2; exit 2; }
done
command -v jq > /dev/null || { echo "$0: needs jq (scripts/setup.sh installs it)" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
tests=()
for n in ${PP//,/ }; do tests+=("pp $n"); done
for n in ${TG//,/ }; do tests+=("tg $n"); done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "llama.cpp: $LLAMA_BENCH; lminf: $LMINF_BENCH ($(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo '?'))"
for ((r = 1; r <= ROUNDS; r++)); do
  for dtype in float32 bfloat16; do
    gguf=$GGUF_F32
    [ "$dtype" = bfloat16 ] && gguf=$GGUF_BF16
    for th in ${THREADS//,/ }; do
      for t in "${tests[@]}"; do
        set -- $t
        kind=$1 n=$2
        key="$kind$n-$dtype-$th"
        if [ "$kind" = pp ]; then lp=(-p "$n" -n 0); mp=(--pp "$n" --tg ""); else lp=(-p 0 -n "$n"); mp=(--pp "" --tg "$n"); fi
        "$LLAMA_BENCH" -m "$gguf" "${lp[@]}" -t "$th" -r 1 -o jsonl 2> /dev/null | jq -r '.avg_ts' >> "$out/llama-$key"
        "$LMINF_BENCH" --model "$MODEL" --dtype "$dtype" --threads "$th" "${mp[@]}" --reps 1 |
          awk '$1 == "RESULT" {print $5}' >> "$out/lminf-$key"
        printf 'round %d  %-7s %-9s threads=%s  llama.cpp %8.1f  lminf %8.1f tok/s\n' "$r" "$kind$n" "$dtype" "$th" \
          "$(tail -1 "$out/llama-$key")" "$(tail -1 "$out/lminf-$key")"
      done
    done
  done
done

mean() { awk '{s += $1; n++} END {if (n) printf "%.1f", s / n; else print "nan"}' "$1"; }
echo
echo "| test | dtype | threads | llama.cpp tok/s | lminf tok/s | lminf / llama.cpp |"
echo "| --- | --- | --- | --- | --- | --- |"
for dtype in float32 bfloat16; do
  for th in ${THREADS//,/ }; do
    for t in "${tests[@]}"; do
      set -- $t
      key="$1$2-$dtype-$th"
      a=$(mean "$out/llama-$key") b=$(mean "$out/lminf-$key")
      printf '| %s | %s | %s | %s | %s | %sx |\n' "$1$2" "$dtype" "$th" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')"
    done
  done
done
