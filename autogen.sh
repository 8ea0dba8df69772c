#!/bin/sh
# Bootstraps a git checkout: lists the generated kernel sources for automake (gen/sources.am,
# from the kernel table), then runs autoreconf.  Release tarballs do not need this.
set -eu
cd "$(dirname "$0")"
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || python=/usr/bin/python3
mkdir -p m4
"$python" gen/generate.py --automake > gen/sources.am.tmp
mv gen/sources.am.tmp gen/sources.am
autoreconf --install --force
