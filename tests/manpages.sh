#!/bin/sh
# SPDX-License-Identifier: MIT
# The man pages format without a single warning: groff -man -ww, and mandoc -Tlint at warning
# level when it is installed.  The one-line .so aliases are left to tests/docrefs.sh, which
# checks that their targets exist.  Skipped (77) without groff.
set -eu
src=${top_srcdir:-.}
command -v groff >/dev/null 2>&1 || { echo "manpages: groff not found: skipped"; exit 77; }
mandoc=
command -v mandoc >/dev/null 2>&1 && mandoc=mandoc
fail=0
pages=0
for page in "$src"/man/*.[37]; do
  grep -q '^\.so' "$page" && continue
  pages=$((pages + 1))
  out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || out="groff failed: $out"
  [ -z "$out" ] || { echo "manpages: ${page##*/}: $out"; fail=1; }
  if [ -n "$mandoc" ]; then
    out=$(mandoc -Tlint -W warning "$page" 2>&1) || true
    [ -z "$out" ] || { echo "manpages: ${page##*/}: $out"; fail=1; }
  fi
done
[ "$fail" -eq 0 ] || exit 1
echo "manpages: $pages pages format without a warning (groff${mandoc:+ and mandoc})"
