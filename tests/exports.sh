#!/bin/sh
# The shared library exports exactly the functions perturb.h declares with PT_API: no kernel,
# table or helper leaks into the ABI, and no declared function is missing.
set -eu
lib="${top_builddir:-.}/.libs/libperturb.so"
header="${top_srcdir:-.}/include/perturb.h"
if [ ! -f "$lib" ]; then
  echo "exports: $lib not built (static-only build): skipped"
  exit 77
fi
command -v nm >/dev/null 2>&1 || { echo "exports: nm not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort > "$tmp/exported"
sed -n 's/^PT_API[^(]*[ *]\(pt_[a-z0-9_]*\)(.*/\1/p' "$header" | sort > "$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported"; then
  echo "exports: the exported functions differ from perturb.h (- declared only, + exported only)"
  exit 1
fi
echo "exports: $(wc -l < "$tmp/exported") functions, exactly those of perturb.h"
