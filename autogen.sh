#!/bin/sh
# Bootstraps a git checkout: lists the generated kernel sources for automake (gen/sources.am,
# from the kernel table) and the objects that wait for them (gen/objects.am, from Makefile.am),
# then runs autoreconf.  Release tarballs do not need this.
set -eu
cd "$(dirname "$0")"
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || python=/usr/bin/python3
mkdir -p m4
"$python" gen/generate.py --automake > gen/sources.am.tmp
mv gen/sources.am.tmp gen/sources.am
sh gen/objects.sh Makefile.am > gen/objects.am.tmp
mv gen/objects.am.tmp gen/objects.am
autoreconf --install --force
