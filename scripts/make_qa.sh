#!/usr/bin/env bash
# A tiny question-answering set over the held-out manuals of the embedded model's corpus, for
# configs/embedded/qa.yaml (task qa): each record's context is the start of a held-out document
# (CONTEXT_CHARS characters, cut at a word boundary), and each question asks which word follows a
# four-word cue taken from that context (a copy-from-context question a 1M-parameter model can
# attempt; the answer is the next word with surrounding punctuation removed). Fields: id, context,
# question, cue (the four words), answers (a list with one word).
#
#   scripts/make_qa.sh CORPUS_DIR OUT.jsonl      (CORPUS_DIR from scripts/make_corpus.sh)
#
# Deterministic: every fifth document in name order (all three manuals), cues at fixed fractions
# of each context.
set -euo pipefail
CORPUS=${1:?usage: make_qa.sh CORPUS_DIR OUT.jsonl}
OUT=${2:?usage: make_qa.sh CORPUS_DIR OUT.jsonl}
DOCS=${DOCS:-8}
CONTEXT_CHARS=${CONTEXT_CHARS:-1500}
ls "$CORPUS"/heldout/*.txt > /dev/null 2>&1 || { echo "make_qa: no $CORPUS/heldout/*.txt (run scripts/make_corpus.sh $CORPUS)" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
ls "$CORPUS"/heldout/*.txt | LC_ALL=C sort | awk "NR % 5 == 1" | head -n "$DOCS" | while read -r f; do
  LC_ALL=C awk -v chars="$CONTEXT_CHARS" -v name="$(basename "$f" .txt)" '
    function js(s,   out, i, c) {  # JSON string literal, one character at a time
      out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\") out = out "\\\\"
        else if (c == "\"") out = out "\\\""
        else if (c == "\n") out = out "\\n"
        else if (c == "\t") out = out "\\t"
        else if (c ~ /[\001-\037]/) out = out " "
        else out = out c
      }
      return "\"" out "\""
    }
    { text = text $0 "\n" }
    END {
      if (length(text) > chars) { text = substr(text, 1, chars); sub(/[^ \n\t]*$/, "", text) }
      n = split(text, w, /[ \n\t]+/)
      q = 0
      for (k = 1; k <= 3; k++) {
        i = int(n * (2 * k - 1) / 8) + 1   # cues at 1/8, 3/8, 5/8 of the context
        # the answer must have a letter or digit and not be an article (SQuAD normalisation drops those)
        while (i + 4 <= n && (w[i] == "" || w[i + 4] !~ /[A-Za-z0-9]/ || tolower(w[i + 4]) ~ /^(a|an|the)[^A-Za-z0-9]*$/)) i++
        if (i + 4 > n) continue
        cue = w[i] " " w[i + 1] " " w[i + 2] " " w[i + 3]
        ans = w[i + 4]; gsub(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/, "", ans)
        printf "{\"id\": %s, \"context\": %s, \"question\": %s, \"cue\": %s, \"answers\": [%s]}\n", js(name "-" k),
               js(text), js("Which word comes right after \"" cue "\" in the text above?"), js(cue), js(ans)
      }
    }' "$f"
done > "$OUT"
echo "make_qa: $(wc -l < "$OUT") questions in $OUT"
