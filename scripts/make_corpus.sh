#!/usr/bin/env bash
# Builds lminf's training corpus from the GNU manuals that Debian ships as info files
# (GNU Free Documentation License; see docs/embedded_model.md for provenance and licences).
#
#   scripts/make_corpus.sh OUT_DIR
#
# Writes OUT_DIR/train/*.txt and OUT_DIR/heldout/*.txt: plain-text documents of at least
# MIN_CHARS characters (consecutive info nodes joined), with menus, node headers, tag tables,
# indices and the licence appendix removed. The held-out manuals (HELDOUT) never enter training.
set -euo pipefail
OUT=${1:?usage: make_corpus.sh OUT_DIR}
MIN_CHARS=${MIN_CHARS:-8000}
INFO=${INFO_DIR:-/usr/share/info}
TRAIN="coreutils gettext automake-1.16 find m4 wget gnupg libunistring nettle gnucobol bc gzip ed time bzip2 rluserman libtasn1 autosprintf gpgrt libffi automake-history find-maint"
HELDOUT="sed grep diffutils"

extract() {  # extract MANUAL DEST_DIR
  local manual=$1 dest=$2 parts=()
  [ -f "$INFO/$manual.info.gz" ] || { echo "make_corpus: $INFO/$manual.info.gz missing (run scripts/setup.sh)" >&2; return 1; }
  parts+=("$INFO/$manual.info.gz")
  local i=1
  while [ -f "$INFO/$manual.info-$i.gz" ]; do parts+=("$INFO/$manual.info-$i.gz"); i=$((i + 1)); done
  # The main file of a split manual holds only an indirect table; the parts hold the nodes.
  zcat "${parts[@]}" | LC_ALL=C awk -v out="$dest/$manual" -v min="$MIN_CHARS" '
    function flush(force) {
      if (length(doc) >= min || (force && length(doc) >= min / 2)) {
        n++; f = sprintf("%s-%03d.txt", out, n); printf "%s", doc > f; close(f)
      }
      if (length(doc) >= min || force) doc = ""
    }
    /^\037/ { in_node = 0; header = 1; next }
    header == 1 {
      header = 0
      skip = ($0 !~ /Node: /) || ($0 ~ /Node: (Top|[^,]*Index|GNU Free Documentation License|Copying This Manual|GNU General Public License)[,]/)
      if (!skip) { flush(0); in_node = 1 }
      next
    }
    /^Tag Table:/ || /^End Tag Table/ || /^Indirect:/ || /^Local Variables:/ { in_node = 0; next }
    !in_node || skip { next }
    /^\* Menu:/ { in_menu = 1; next }
    in_menu && (/^\* / || /^   +[^ ]/ || /^$/) { if (/^$/ && seen_entry) { in_menu = 0; seen_entry = 0 } else if (/^\* /) seen_entry = 1; next }
    in_menu { in_menu = 0; seen_entry = 0 }
    { doc = doc $0 "\n" }
    END { flush(1) }'
}

rm -rf "$OUT/train" "$OUT/heldout"
mkdir -p "$OUT/train" "$OUT/heldout"
for m in $TRAIN; do extract "$m" "$OUT/train"; done
for m in $HELDOUT; do extract "$m" "$OUT/heldout"; done
echo "make_corpus: $(ls "$OUT/train" | wc -l) training documents ($(cat "$OUT"/train/*.txt | wc -c) bytes)," \
     "$(ls "$OUT/heldout" | wc -l) held-out documents ($(cat "$OUT"/heldout/*.txt | wc -c) bytes) in $OUT"
