#!/usr/bin/env bash
# GPU check: run on a machine with an NVIDIA GPU, the CUDA toolkit, NCCL and a CUDA-enabled libtorch
# ALREADY PRESENT (nothing is downloaded: GPU machines here have no network). Debian's libtorch is
# CPU-only, so the NCCL communicator needs a libtorch built with CUDA (for example the cxx11-ABI
# libtorch zip from pytorch.org, unpacked beforehand).
#
#   scripts/gpu_check.sh /path/to/libtorch [BUILD_DIR]      (or CMAKE_PREFIX_PATH set, no argument)
#
# Steps (each prints PASS/FAIL/SKIP; exit status 0 only when everything that could run passed):
#   1. configure + build with -DLMINF_NCCL=ON against the CUDA libtorch (NCCL communicator compiled in)
#   2. nccl_group_smoke: NCCL collectives on raw device buffers, 1 rank
#   3. nccl_communicator_tests under mpirun -np 1: every collective on CUDA tensors equals MPI on CPU
#   4. perplexity on stories260k (or a random tiny model): the CPU run at TP = 1, then the same run
#      on the GPU with TP = 1 through the NCCL communicator, NLL compared (float32, 1e-4 per token).
#      Step 4's GPU half needs `model.device: cuda`, which lminf does not have yet (docs/parallel.md,
#      "Not yet done: models on CUDA"): the script detects that and reports it as SKIP (exit 3).
set -uo pipefail

LIBTORCH="${1:-}"
BUILD="${2:-build-gpu}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
status=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; status=1; }
skip() { echo "SKIP: $*"; [ "$status" = 0 ] && status=3; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
prefix=()
if [ -n "$LIBTORCH" ]; then
  [ -f "$LIBTORCH/share/cmake/Torch/TorchConfig.cmake" ] ||
    { echo "gpu_check: $LIBTORCH is not a libtorch folder (no share/cmake/Torch/TorchConfig.cmake)"; exit 2; }
  ls "$LIBTORCH"/lib/libtorch_cuda*.so >/dev/null 2>&1 ||
    { echo "gpu_check: $LIBTORCH has no libtorch_cuda.so: a CUDA-enabled libtorch is needed"; exit 2; }
  prefix=(-DCMAKE_PREFIX_PATH="$LIBTORCH")
elif [ -z "${CMAKE_PREFIX_PATH:-}" ]; then
  echo "usage: scripts/gpu_check.sh /path/to/libtorch [BUILD_DIR]  (a CUDA-enabled libtorch; see the header)"
  exit 2
fi

# 1. build
if cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLMINF_NCCL=ON "${prefix[@]}" > "$BUILD.configure.log" 2>&1 &&
   grep -q "NCCL communicator built" "$BUILD.configure.log" &&
   cmake --build "$BUILD" -j "$(nproc)" > "$BUILD.build.log" 2>&1; then
  pass "build with the NCCL communicator ($(grep -m1 'NCCL group layer' "$BUILD.configure.log" | sed 's/.*(//; s/)//'))"
else
  failed "build: see $BUILD.configure.log and $BUILD.build.log"
  tail -20 "$BUILD.configure.log" "$BUILD.build.log"
  exit 1
fi

# 2. raw NCCL on the GPU
out=$("$BUILD/tests/nccl_group_smoke" 2>&1); rc=$?
echo "$out"
case $rc in 0) pass "nccl_group_smoke" ;; 77) skip "nccl_group_smoke: no GPU visible" ;; *) failed "nccl_group_smoke" ;; esac

# 3. the communicator on CUDA tensors
out=$($MPIRUN -np 1 "$BUILD/tests/nccl_communicator_tests" 2>&1); rc=$?
echo "$out" | tail -5
case $rc in 0) pass "nccl_communicator_tests (1 rank)" ;; 77) skip "nccl_communicator_tests: no GPU" ;; *) failed "nccl_communicator_tests" ;; esac

# 4. perplexity, CPU against GPU
WORK="$(mktemp -d /tmp/lminf-gpu-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
MODEL="$ROOT/../shared/fixtures/stories260k"
if [ -d "$MODEL" ]; then
  head -n 8 "$MODEL/stories.ids" > "$WORK/data.ids"
else
  MODEL="$WORK/model"
  "$BUILD/lminf" random-model tiny "$MODEL" 2>/dev/null
  "$BUILD/lminf" random-ids "$WORK/data.ids" --vocab 256 --sequences 8 --length 200
fi
cat > "$WORK/exp.yaml" <<YAML
name: gpu-check
model: {path: $MODEL}
attention: {variant: vanilla}
data: {format: ids, path: $WORK/data.ids}
task: {type: perplexity, max_length: 512}
output: {dir: $WORK/cpu}
YAML
if "$BUILD/lminf" run "$WORK/exp.yaml" > "$WORK/cpu.log" 2>&1; then
  pass "perplexity on the CPU: $(grep -m1 'mean NLL' "$WORK/cpu.log" | sed 's/.*mean NLL/mean NLL/')"
else
  failed "perplexity on the CPU"; cat "$WORK/cpu.log"
fi
if ! "$BUILD/lminf" keys | grep -q "device"; then
  skip "perplexity on the GPU: lminf has no model.device key yet (docs/parallel.md, 'Not yet done: models on CUDA')"
else
  if $MPIRUN -np 1 "$BUILD/lminf" run "$WORK/exp.yaml" --set model.device=cuda --set output.dir="$WORK/gpu" \
       > "$WORK/gpu.log" 2>&1; then
    # Compare token_nll.h5 of both runs with h5dump-free tools: results.json mean NLL and the per-token
    # rows via lminf's own reader would be better; the mean is what is checked here.
    a=$(sed -n 's/^  "mean_nll": *\([0-9.e+-]*\).*/\1/p' "$WORK/cpu/results.json")
    b=$(sed -n 's/^  "mean_nll": *\([0-9.e+-]*\).*/\1/p' "$WORK/gpu/results.json")
    if awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * (a > 1 ? a : 1)) }'; then
      pass "perplexity on the GPU (NCCL, TP = 1): mean NLL $b vs CPU $a"
    else
      failed "perplexity on the GPU: mean NLL $b vs CPU $a"
    fi
  else
    failed "perplexity on the GPU"; cat "$WORK/gpu.log"
  fi
fi
echo "gpu_check: status $status (0 = all passed, 1 = a failure, 3 = something could not run)"
exit $status
