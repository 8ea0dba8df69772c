#!/bin/sh
# SPDX-License-Identifier: MIT
# Every document the sources point to exists: a comment, test, script or page that names a file
# sends its reader somewhere real.  Fails on, in the tracked files (git ls-files; in a release
# tarball, which has no git, the shipped files found by find):
#   - a mention of a Markdown file (NAME.md) that is neither at the top of the tree nor beside
#     the file that mentions it;
#   - a path under docs/ man/ src/ tests/ gen/ bench/ examples/ that exists neither in the
#     source tree nor in the build tree (programs, logs and generated kernels are made there;
#     PATH.c or PATH.in standing for a program or a configured file counts too; a glob counts
#     when its directory exists, and so does a name that code completes, PATH{ or PATH<;
#     #include lines are the compiler's to check);
#   - a man page of ours, pt_NAME(3) or perturb(3) / perturb(7), with no file in man/ (pt_NAME(7)
#     is not read as a page: code calls pt_key_make(7)), and a .so alias whose target is missing;
#   - a PT_API function of include/perturb.h without a page of its own name in man/ (a page or
#     a .so alias), or a page in man/ that Makefile.am does not install;
#   - a source, script, build file, document or page without its SPDX licence line.
set -eu
src=${top_srcdir:-.}
build=${top_builddir:-.}
self=tests/docrefs.sh
# Made by rules that make check does not run (make bench, autogen.sh), only where Criterion is
# installed (tests/unit), or never at all (automake's nodist trick that links libperturb as C).
products="bench/results.json bench/perturbed.json gen/sources.am.tmp gen/objects.am.tmp tests/unit src/link-as-c.c"
# the Python module's, which exist only when configure built it
products="$products python/inplace python/inplace/perturb python/inplace/perturb/"
products="$products python/inplace/perturb/_perturb.so python/_perturb.la python/.libs/_perturb.so"
products="$products python/pytest.out"

if command -v git >/dev/null 2>&1 &&
   git -C "$src" ls-files --error-unmatch include/perturb.h >/dev/null 2>&1; then
  files=$(git -C "$src" ls-files)
  how="git ls-files"
else
  # A tarball: the kinds of file it ships from git (source, scripts, docs, pages), less what
  # configure and the generator wrote, and less any build tree inside it (distcheck's _build).
  files=$(cd "$src" && find . \( -type d \( -path ./src/gen -o -path ./autom4te.cache \
            -o -path ./build-aux -o -path ./m4 -o -path ./_inst -o -name .libs -o -name .deps \) \
            -prune \) \
          -o \( -type d ! -path . -exec sh -c 'test -e "$1/config.status"' sh {} \; -prune \) \
          -o -type f \( -name '*.[ch]' -o -name '*.j2' -o -name '*.py' -o -name '*.md' \
            -o -name '*.sh' -o -name '*.am' -o -name '*.ac' -o -name '*.[37]' -o -name NEWS \
            -o -name LICENSE -o -path ./.ci/run \) ! -name config.h ! -name sources.am -print |
          sed 's|^\./||' | sort)
  how="find"
fi

fail=0
bad() { echo "docrefs: $1"; fail=1; }
exists() { [ -e "$src/$1" ] || [ -e "$build/$1" ]; }

# scan PATTERN: FILE:LINE:MATCH for every match in the text files, #include lines blanked and
# URLs left out (a URL may end in .md and is not ours to check).
scan() {
  for f in $files; do
    [ "$f" = "$self" ] && continue
    [ -f "$src/$f" ] || continue
    grep -Iq . "$src/$f" 2>/dev/null || continue
    sed 's/^[[:space:]]*#[[:space:]]*include.*//' "$src/$f" |
      grep -noE "[a-z]+://[^[:space:])>\"'\`]*|$1" 2>/dev/null |
      grep -v '://' | sed "s|^|$f:|" || true
  done
}

# Markdown files.
refs=$(scan '[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b')
for r in $refs; do
  f=${r%%:*}; ref=${r#*:*:}; ref=${ref#./}
  case $ref in /*) bad "${r%:*}: $ref: a document outside the tree"; continue ;; esac
  exists "$ref" || [ -e "$src/$(dirname "$f")/$ref" ] || bad "${r%:*}: $ref: no such file"
done

# Paths of the tree.
refs=$(scan '(^|[^A-Za-z0-9_/-])(docs|man|src|tests|gen|bench|examples|python)/[A-Za-z0-9_.*/+-]*[A-Za-z0-9_*/+-][{<]?' |
  sed 's|^\([^:]*:[0-9]*:\)[^a-z]|\1|')
for r in $refs; do
  ref=${r#*:*:}
  case " $products " in *" $ref "*) continue ;; esac
  case $ref in *.log | *.trs) continue ;; esac # the test logs, written as the tests run
  case $ref in
    *'{' | *'<') # a name that code or prose completes (f"tests/gen/isa_ops__{isa}.c"): its directory
      dir=${ref%/*}; exists "$dir" || bad "${r%:*}: $ref: no directory $dir" ;;
    *'*'*) dir=${ref%/*}; case $dir in *'*'*) continue ;; esac
           exists "$dir" || bad "${r%:*}: $ref: no directory $dir" ;;
    *) exists "$ref" || exists "$ref.c" || exists "$ref.in" || bad "${r%:*}: $ref: no such file" ;;
  esac
done

# Man pages named as NAME(SECTION), "pt_fn (3)" and "pt_fn\fP(3)" as troff writes them too.
refs=$(scan '(pt_[a-z0-9_]+|perturb)( |\\f[A-Z])?\([37]\)' | sed 's/\( \|\\f[A-Z]\)(/(/')
for r in $refs; do
  ref=${r#*:*:}; name=${ref%%(*}; sec=${ref%)}; sec=${sec##*(}
  case $name:$sec in pt_*:7) continue ;; esac
  [ -f "$src/man/$name.$sec" ] || bad "${r%:*}: $name($sec): no page man/$name.$sec"
done

# The pages: aliases resolve, every page is installed, every public function has one.
pages=0
for page in "$src"/man/*.[37]; do
  [ -f "$page" ] || continue
  pages=$((pages + 1))
  base=${page##*/}
  target=$(sed -n 's/^\.so[[:space:]]*//p' "$page")
  if [ -n "$target" ] && [ ! -f "$src/man/${target##*/}" ]; then
    bad "man/$base: .so $target: no such page"
  fi
  grep -q "man/$base\\b" "$src/Makefile.am" || bad "man/$base: not installed by Makefile.am"
done
functions=$(sed -n 's/^PT_API[^(]*[ *]\(pt_[a-z0-9_]*\)(.*/\1/p' "$src/include/perturb.h")
count=0
for fn in $functions; do
  count=$((count + 1))
  [ -f "$src/man/$fn.3" ] || bad "include/perturb.h: $fn: no page man/$fn.3"
done

# The licence: LICENSE is there, and every source, script, build file and page (but a .so
# alias, whose first line must be its .so) says in its first three lines which licence it is
# under, so that a file copied out of the tree still says so.
[ -f "$src/LICENSE" ] || bad "LICENSE: no such file"
licensed=0
for f in $files; do
  case $f in
    *.c | *.h | *.in | *.j2 | *.py | *.sh | *.am | *.ac | *.md | *.[37] | .ci/run | .gitignore) ;;
    *) continue ;;
  esac
  [ -f "$src/$f" ] || continue
  head -n 1 "$src/$f" | grep -q '^\.so ' && continue
  licensed=$((licensed + 1))
  head -n 3 "$src/$f" | grep -q 'SPDX-License-Identifier: MIT' ||
    bad "$f: no SPDX-License-Identifier: MIT line at its top"
done

if [ "$fail" -ne 0 ]; then
  echo "docrefs: dangling references (files from $how)"
  exit 1
fi
echo "docrefs: every reference resolves; $count functions of perturb.h, $pages pages;" \
  "$licensed files carry their SPDX line (files from $how)"
