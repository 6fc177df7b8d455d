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
#   4. perplexity on stories260k (or the embedded model): the CPU run at TP = 1, then the same run on
#      the GPU (`model.device: cuda`, TP = 1, NCCL communicator), mean NLL compared (float32, 1e-4
#      relative), for every attention variant; then bfloat16 on the GPU against bfloat16 on the CPU.
#   5. tensor parallelism on one GPU: mpirun -np 2 with parallel.communicator: mpi (both ranks on the
#      same GPU, collectives through host memory) equals TP = 1 on the CPU; and, with two GPUs or
#      more, the same with NCCL.
#   6. the families: random MPT (ALiBi) and GPT-J (partial interleaved rotary) checkpoints, GPU = CPU.
#   7. the gpu ctest label, then the cpu label against this CUDA libtorch (the whole suite: the
#      libstdc++ link order and every CPU path with a CUDA build).
#   8. speed: perplexity of the ~110M random Llama at 4 x 2048 tokens, CPU and GPU, tokens/s.
# Not checked yet (refused on CUDA, issue 13): factor dumps and task pretrain on the GPU.
# A torch Python package folder works as /path/to/libtorch (it holds share/cmake/Torch and lib/).
# On a machine without network whose image lacks some build dependencies (the 2026-11 H100 image has
# everything but the PCRE2 and libunistring development files), fetch their packages beforehand on
# a Debian machine, carry them over and unpack them there:
#   here:  mkdir -p .gpudeps && (cd .gpudeps && apt-get download libpcre2-dev libpcre2-16-0 \
#            libpcre2-32-0 libpcre2-posix3 libunistring-dev libunistring2)
#   there: for f in .gpudeps/*.deb; do dpkg -x "$f" /; done; ldconfig
#          scripts/gpu_check.sh "$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
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
   cmake --build "$BUILD" -j "$(nproc)" -- -k 0 > "$BUILD.build.log" 2>&1; then
  pass "build with the NCCL communicator ($(grep -m1 'NCCL group layer' "$BUILD.configure.log" | sed 's/.*(//; s/)//'))"
else
  failed "build: see $BUILD.configure.log and $BUILD.build.log"
  tail -n 20 "$BUILD.configure.log"; grep -A3 "error" "$BUILD.build.log" | head -n 60
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

# 4. perplexity, CPU against GPU, every variant
WORK="$(mktemp -d /tmp/lminf-gpu-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
MODEL="$ROOT/../shared/fixtures/stories260k"
if [ -d "$MODEL" ]; then
  head -n 8 "$MODEL/stories.ids" > "$WORK/data.ids"
else
  MODEL="$ROOT/embedded/lminf-info-1m"
  "$BUILD/lminf" random-ids "$WORK/data.ids" --vocab 1024 --sequences 8 --length 600
fi
cat > "$WORK/exp.yaml" <<YAML
name: gpu-check
model: {path: $MODEL}
attention: {variant: vanilla}
data: {format: ids, path: $WORK/data.ids}
task: {type: perplexity, max_length: 600}
output: {dir: $WORK/cpu}
YAML
mean_nll() { sed -n 's/^ *"mean_nll": *\([0-9.e+-]*\).*/\1/p' "$1/results.json" | head -1; }
close() { awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= tol * (a > 1 ? a : 1)) }'; }
for v in "vanilla" "lambda --set attention.local_branch=64 --set attention.global_branch=4" \
         "streaming --set attention.start_size=4 --set attention.recent_size=64" \
         "topk --set attention.local_branch=64 --set attention.global_branch=4 --set attention.top_k=5 --set attention.top_k_from_layer=1" \
         "distance_limit --set attention.limit_distance=64" \
         "self_extend --set attention.group_size=4 --set attention.neighbor_window=32" \
         "rerope --set attention.window=64" \
         "dca --set attention.chunk_size=96 --set attention.local_window=16" \
         "infllm --set attention.n_init=4 --set attention.n_local=64 --set attention.memory_block_size=16 --set attention.topk=2"; do
  name=${v%% *}
  # shellcheck disable=SC2206
  args=(--set attention.variant=$name ${v#"$name"})
  for dt in float32 bfloat16; do
    tol=1e-4; [ $dt = bfloat16 ] && tol=2e-2
    c="$WORK/cpu-$name-$dt"; g="$WORK/gpu-$name-$dt"
    "$BUILD/lminf" run "$WORK/exp.yaml" "${args[@]}" --set model.dtype=$dt --set output.dir="$c" > "$c.log" 2>&1 ||
      { failed "perplexity $name $dt on the CPU"; tail -5 "$c.log"; continue; }
    $MPIRUN -np 1 "$BUILD/lminf" run "$WORK/exp.yaml" "${args[@]}" --set model.dtype=$dt --set model.device=cuda \
      --set output.dir="$g" > "$g.log" 2>&1 || { failed "perplexity $name $dt on the GPU"; tail -20 "$g.log"; continue; }
    a=$(mean_nll "$c"); b=$(mean_nll "$g")
    comm=$(grep -o '"tp_communicator": *"[a-z]*"' "$g/results.json" | sed 's/.*"\([a-z]*\)"$/\1/')
    if close "$a" "$b" $tol; then
      pass "perplexity $name $dt: GPU (communicator ${comm:-?}) mean NLL $b, CPU $a"
    else
      failed "perplexity $name $dt: GPU mean NLL $b vs CPU $a (tolerance $tol relative)"
    fi
  done
done

# 5. tensor parallelism on one GPU (host-staged MPI), and over two GPUs with NCCL when there are two
cpu1="$WORK/cpu-vanilla-float32"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
for comm in mpi nccl; do
  if [ $comm = nccl ] && [ "${gpus:-0}" -lt 2 ]; then skip "TP = 2 over NCCL: $gpus GPU(s) (needs 2)"; continue; fi
  g="$WORK/gpu-tp2-$comm"
  if $MPIRUN -np 2 "$BUILD/lminf" run "$WORK/exp.yaml" --set model.device=cuda --set parallel.tensor_parallel=2 \
       --set parallel.communicator=$comm --set output.dir="$g" > "$g.log" 2>&1; then
    a=$(mean_nll "$cpu1"); b=$(mean_nll "$g")
    if close "$a" "$b" 1e-4; then pass "TP = 2 on the GPU ($comm): mean NLL $b, CPU TP = 1 $a"
    else failed "TP = 2 on the GPU ($comm): mean NLL $b vs CPU TP = 1 $a"; fi
  else
    failed "TP = 2 on the GPU ($comm)"; tail -20 "$g.log"
  fi
done

# 6. the other families: random MPT and GPT-J checkpoints, GPU against CPU
for fam in mpt gptj; do
  "$BUILD/lminf" random-model tiny "$WORK/$fam" --family $fam > /dev/null 2>&1 || { failed "random $fam model"; continue; }
  "$BUILD/lminf" random-ids "$WORK/$fam.ids" --vocab 256 --sequences 4 --length 300 > /dev/null 2>&1
  for dev in cpu cuda; do
    "$BUILD/lminf" run "$WORK/exp.yaml" --set model.path="$WORK/$fam" --set data.path="$WORK/$fam.ids" \
      --set task.max_length=300 --set model.device=$dev --set output.dir="$WORK/$fam-$dev" > "$WORK/$fam-$dev.log" 2>&1 ||
      { failed "$fam on $dev"; tail -5 "$WORK/$fam-$dev.log"; }
  done
  a=$(mean_nll "$WORK/$fam-cpu"); b=$(mean_nll "$WORK/$fam-cuda")
  if close "$a" "$b" 1e-4; then pass "$fam: GPU mean NLL $b, CPU $a"; else failed "$fam: GPU $b vs CPU $a"; fi
done

# 7. the test labels against this libtorch: gpu (skips without a device), then the whole cpu label
for label in gpu cpu; do
  if ctest --test-dir "$BUILD" -L "^$label\$" -j "$(nproc)" --output-on-failure > "$WORK/ctest-$label.log" 2>&1; then
    pass "ctest -L $label: $(grep -m1 'tests passed' "$WORK/ctest-$label.log")"
  else
    failed "ctest -L $label: $(grep -m1 'tests passed' "$WORK/ctest-$label.log")"; grep -A3 "Failed\|\*\*\*" "$WORK/ctest-$label.log" | head -40
  fi
done

# 8. speed of the forward pass: the ~110M random model, 4 sequences of 2048 tokens
"$BUILD/lminf" random-model llama-110m "$WORK/m110" > /dev/null 2>&1 &&
  "$BUILD/lminf" random-ids "$WORK/long.ids" --vocab 32000 --sequences 4 --length 2048 > /dev/null 2>&1
for dev in cuda cpu; do
  for dt in float32 bfloat16; do
    o="$WORK/speed-$dev-$dt"
    if "$BUILD/lminf" run "$WORK/exp.yaml" --set model.path="$WORK/m110" --set data.path="$WORK/long.ids" \
         --set task.max_length=2048 --set model.device=$dev --set model.dtype=$dt --set output.dir="$o" > "$o.log" 2>&1; then
      echo "speed: 110M model, 4 x 2048 tokens, $dev $dt: $(grep -o '"tokens_per_s": *[0-9.e+]*' "$o/results.json") $(grep -o '"elapsed_s": *[0-9.e+]*' "$o/results.json")"
    else
      echo "speed: $dev $dt failed"; tail -3 "$o.log"
    fi
  done
done

echo "gpu_check: status $status (0 = all passed, 1 = a failure, 3 = something could not run)"
exit $status
