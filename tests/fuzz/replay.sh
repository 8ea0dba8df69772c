#!/bin/sh
# SPDX-License-Identifier: MIT
# make check's replay of the fuzz corpus: each harness (tests/fuzz/fuzz_*.c, built with
# replay.c) over every input of tests/fuzz/corpus/<harness>/, so that every finding stays fixed.
set -u
: "${top_srcdir:?run by make check}" "${top_builddir:?run by make check}"
passed=0
failed=0
for h in rows noise fn; do
  program=replay_$h
  if out=$("$top_builddir/tests/fuzz/$program" "$top_srcdir/tests/fuzz/corpus/$h"); then
    n=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    echo "replay: $h: $n inputs"
    passed=$((passed + n))
  else
    echo "replay: $h: a property failed or an input crashed; $program FILE reruns one input"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
