#!/bin/sh
# SPDX-License-Identifier: MIT
# Bootstraps a git checkout: writes the fragments of the kernel table (gen/kernel_table.py)
# that automake and autoconf read, gen/sources.am (the generated kernel sources, each ISA's
# library) and m4/pt_isas.m4 (which ISAs a host builds), and the list of objects that wait for
# the generated sources (gen/objects.am, from Makefile.am), then runs autoreconf, which needs
# them.  Release tarballs do not need this.
set -eu
cd "$(dirname "$0")"
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || python=/usr/bin/python3
mkdir -p m4
"$python" gen/generate.py --automake > gen/sources.am.tmp
mv gen/sources.am.tmp gen/sources.am
"$python" gen/generate.py --m4 --srcdir . > m4/pt_isas.m4.tmp
mv m4/pt_isas.m4.tmp m4/pt_isas.m4
sh gen/objects.sh Makefile.am > gen/objects.am.tmp
mv gen/objects.am.tmp gen/objects.am
autoreconf --install --force
