#!/bin/sh
# SPDX-License-Identifier: MIT
# What the installed libraries put in their users' namespace:
#  - the shared library exports exactly the functions perturb.h declares with PT_API: no kernel,
#    table or helper leaks into the ABI, and no declared function is missing;
#  - every global the static archive defines starts with pt_ (its internal symbols are global
#    too, for its own objects to link, so the prefix is all that keeps them from a program's),
#    and none is a test hook: the fault injection of src/runtime/alloc.h is in the tests'
#    libperturb_internal.la only.  Names reserved to the implementation (__*, _[A-Z]*) are
#    the compiler's, such as AddressSanitizer's __odr_asan.* indicators, and pass.
set -eu
libs="${top_builddir:-.}/.libs"
header="${top_srcdir:-.}/include/perturb.h"
hooks="pt_alloc_fail_after"
if [ ! -f "$libs/libperturb.so" ] && [ ! -f "$libs/libperturb.a" ]; then
  echo "exports: no libperturb.so or libperturb.a in $libs: skipped"
  exit 77
fi
command -v nm >/dev/null 2>&1 || { echo "exports: nm not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

if [ -f "$libs/libperturb.so" ]; then
  nm -D --defined-only "$libs/libperturb.so" | awk '$2 == "T" { print $3 }' | sort > "$tmp/exported"
  sed -n 's/^PT_API[^(]*[ *]\(pt_[a-z0-9_]*\)(.*/\1/p' "$header" | sort > "$tmp/declared"
  if diff -u "$tmp/declared" "$tmp/exported"; then
    echo "exports: libperturb.so: $(wc -l < "$tmp/exported") functions, exactly those of perturb.h"
  else
    echo "exports: libperturb.so's functions differ from perturb.h (- declared only, + exported only)"
    status=1
  fi
else
  echo "exports: no libperturb.so (static-only build): its exports not checked"
fi

if [ -f "$libs/libperturb.a" ]; then
  # Defined globals: "address type name", the type an upper-case letter (lower case is local).
  nm -g --defined-only "$libs/libperturb.a" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/globals"
  before=$status
  if grep -v -e '^pt_' -e '^__' -e '^_[A-Z]' "$tmp/globals" > "$tmp/foreign"; then
    echo "exports: libperturb.a defines globals outside pt_:"
    cat "$tmp/foreign"
    status=1
  fi
  for hook in $hooks; do
    if grep -qx "$hook" "$tmp/globals"; then
      echo "exports: libperturb.a carries the test hook $hook"
      status=1
    fi
  done
  [ $status -ne $before ] ||
    echo "exports: libperturb.a: $(wc -l < "$tmp/globals") globals, all pt_ or the compiler's, no test hook"
else
  echo "exports: no libperturb.a (shared-only build): its globals not checked"
fi
exit $status
