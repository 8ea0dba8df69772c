#!/bin/sh
# SPDX-License-Identifier: MIT
# make check's Python tests: pytest over python/tests with the package of this build tree
# (python/inplace) and its libperturb; ends with "N passed, N failed" for .ci/run's count.
set -u
: "${top_srcdir:?run by make check}" "${top_builddir:?run by make check}"
: "${PYTHON_MODULE:?run by make check}"
if ! "$PYTHON_MODULE" -c 'import pytest' 2>/dev/null; then
  echo "run-tests.sh: $PYTHON_MODULE cannot import pytest (apt-get install python3-pytest)" >&2
  exit 1
fi
log=python/pytest.out
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$top_builddir/python/inplace" \
LD_LIBRARY_PATH="$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "$PYTHON_MODULE" -m pytest -q -p no:cacheprovider -ra "$top_srcdir/python/tests" >"$log" 2>&1
rc=$?
cat "$log"
summary=$(tail -n 1 "$log")
count() { printf '%s\n' "$summary" | grep -o "[0-9][0-9]* $1" | grep -o '^[0-9]*'; }
passed=$(count passed)
failed=$(count failed)
errors=$(count error)
echo "${passed:-0} passed, $(( ${failed:-0} + ${errors:-0} )) failed"
exit $rc
