#!/usr/bin/env bash
# Reproduces the embedded default model embedded/lminf-info-1m from scratch:
#   1. the corpus: GNU manuals shipped by Debian as info files (scripts/make_corpus.sh)
#   2. a 1024-piece SentencePiece BPE tokenizer trained on the training manuals (lminf train-tokenizer)
#   3. the token ids, one document per line (lminf tokenize)
#   4. pretraining (configs/embedded/pretrain.yaml; about 15-30 minutes on 2 cores)
#   5. the model folder with its tokenizer, copied to embedded/lminf-info-1m
# Usage: scripts/train_embedded.sh [BUILD_DIR] [DEST]
set -euo pipefail
BUILD=${1:-build}
DEST=${2:-embedded/lminf-info-1m}
LMINF="$BUILD/lminf"
W="$BUILD/embedded"
mkdir -p "$W"
bash scripts/make_corpus.sh "$W/corpus"
"$LMINF" train-tokenizer "$W/tokenizer" "$W/corpus/train" --vocab-size 1024 --model-type bpe
tokenize_dir() {  # one document per line
  for f in "$1"/*.txt; do "$LMINF" tokenize "$W/tokenizer" --no-special-tokens < "$f" | tr '\n' ' '; echo; done
}
tokenize_dir "$W/corpus/train" > "$W/train.ids"
tokenize_dir "$W/corpus/heldout" > "$W/heldout.ids"
"$LMINF" run configs/embedded/pretrain.yaml \
  --set data.path="$W/train.ids" --set task.eval_path="$W/heldout.ids" --set output.dir="$W/run"
mkdir -p "$DEST"
cp "$W/run/model/config.json" "$W/run/model/model.safetensors" "$DEST/"
cp "$W/tokenizer/tokenizer.model" "$W/tokenizer/tokenizer_config.json" "$DEST/"
cp "$W/run/results.json" "$DEST/training_results.json"
echo "train_embedded: wrote $DEST"
