#!/usr/bin/env bash
# Streaming perplexity benchmark (not CI; `ctest -L slow` runs it with --quick): the embedded model
# (embedded/lminf-info-1m) with lambda attention (L = 128, G = 4) over the held-out GNU manuals,
# shuffled, repeated and joined into one stream (configs/embedded/streaming_ppl.yaml), for TOKENS
# tokens (default 10M). Prints the resident memory (VmRSS) at every flush (1M tokens apart), the ratio
# of the RSS at the end to the RSS at 1M tokens, tokens/s, and the projected time for 200M tokens, plus
# the machine; copy them into docs/benchmarks.md.
#
#   bench/streaming_ppl.sh [BUILD_DIR] [--quick] [--tokens N] [--threads T] [--out DIR]
#
# An interrupted benchmark resumes when rerun with the same --out (the task resumes exactly).
set -euo pipefail

BUILD=build
TOKENS=10000000
FLUSH=1000000
THREADS=0
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) TOKENS=20000; FLUSH=5000 ;;
    --tokens) TOKENS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    *) BUILD="$1" ;;
  esac
  shift
done
SRC="$(cd "$(dirname "$0")/.." && pwd)"
LMINF="$(cd "$BUILD" && pwd)/lminf"
[ -x "$LMINF" ] || { echo "streaming_ppl: $LMINF not found (build first: cmake --build $BUILD)" >&2; exit 1; }
CORPUS="$(cd "$BUILD" && pwd)/demo/corpus"
[ -d "$CORPUS/heldout" ] || bash "$SRC/scripts/make_corpus.sh" "$CORPUS" >&2
if [ -z "$OUT" ]; then
  OUT="$(mktemp -d /tmp/lminf-bench-stream.XXXXXX)"
  trap 'rm -rf "$OUT"' EXIT
fi

cd "$SRC"
"$LMINF" run configs/embedded/streaming_ppl.yaml \
  --set data.path="$CORPUS/heldout" --set output.dir="$OUT" --set threads="$THREADS" \
  --set task.max_tokens="$TOKENS" --set task.flush_every="$FLUSH" --set task.progress_interval=60 >/dev/null

python3 - "$OUT/results.json" "$TOKENS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
tokens = int(sys.argv[2])
mib = 1024 * 1024
print("| tokens | RSS (MiB) |")
print("| ---: | ---: |")
for m in r["memory"]:
    print(f"| {m['tokens']:,} | {m['rss_bytes'] / mib:.1f} |")
mem = r["memory"]
first = next((m for m in mem if m["tokens"] >= min(1_000_000, tokens // 10)), mem[0])
last = mem[-1]
tps = r["tokens_per_s"]
print()
print(f"tokens {r['tokens']:,} (this invocation from {r['resumed_from']:,}), mean NLL {r['mean_nll']:.4f}, ppl {r['ppl']:.3f}")
print(f"RSS at {first['tokens']:,} tokens {first['rss_bytes'] / mib:.1f} MiB, at {last['tokens']:,} tokens "
      f"{last['rss_bytes'] / mib:.1f} MiB: ratio {last['rss_bytes'] / first['rss_bytes']:.4f}")
print(f"tokens/s {tps:.0f} over {r['elapsed_s']:.0f} s; projected 200M tokens: {2e8 / tps / 3600:.1f} h")
PY
echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
