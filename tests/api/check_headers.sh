#!/usr/bin/env bash
# Every public header compiles on its own with only include/ on the path (as
# C++20, and as C11 for the C headers), warning-free, and includes nothing
# but other public headers and the C/C++ standard library.
#
#   check_headers.sh INCLUDE_DIR CXX CC
set -euo pipefail
inc=$1 cxx=$2 cc=$3
fail=0
# What a standard library include may resolve to on Debian (libstdc++, glibc
# and the kernel headers glibc pulls in). Anything else - /usr/include/boost,
# /usr/include/fmt, the source tree - is a leak.
allowed='^(/usr/include/c\+\+/|/usr/include/x86_64-linux-gnu/|/usr/lib/gcc/|/usr/lib/llvm-[0-9]+/lib/clang/|/usr/include/(linux|asm|asm-generic|bits|sys|gnu)/|/usr/include/[^/]+\.h$)'

check() {  # LANG STD COMPILER HEADER
  local lang=$1 std=$2 compiler=$3 h=$4 deps
  if ! deps=$(printf '#include <baton/%s>\n' "$h" |
      "$compiler" -x "$lang" -std="$std" -Wall -Wextra -Werror -pedantic -I "$inc" -M - 2>&1); then
    echo "FAIL $h ($lang $std): does not compile alone:"; echo "$deps"; return 1
  fi
  printf '#include <baton/%s>\nint baton_header_check_;\n' "$h" |
    "$compiler" -x "$lang" -std="$std" -Wall -Wextra -Werror -pedantic -I "$inc" -fsyntax-only - || {
      echo "FAIL $h ($lang $std): warnings or errors"; return 1; }
  local bad=0 f
  for f in $(echo "$deps" | tr -d '\\' | tr ' ' '\n' | grep -v -e '^$' -e ':$' -e '^-$'); do
    f=$(realpath -m "$f")
    case "$f" in "$(realpath "$inc")"/baton/*) continue ;; esac
    if ! [[ "$f" =~ $allowed ]]; then echo "FAIL $h ($lang): includes $f"; bad=1; fi
  done
  [ "$bad" = 0 ] && echo "ok   $h ($lang $std)"
  return $bad
}

for path in "$inc"/baton/*.h; do
  h=$(basename "$path")
  check c++ c++20 "$cxx" "$h" || fail=1
  # C headers say so on their first line ("/* ... */" rather than "//").
  if head -n 1 "$path" | grep -q '^/\*'; then check c c11 "$cc" "$h" || fail=1; fi
done
n=$(ls "$inc"/baton/*.h | wc -l)
if [ "$fail" = 0 ]; then echo "$n passed, 0 failed"; else echo "public headers: FAILED"; fi
exit $fail
