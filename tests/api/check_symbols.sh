#!/usr/bin/env bash
# libbaton.so exports only the C ABI (baton_*) and the C++ API (baton::), with
# their classes' type information and vtables, and carries its SONAME.
#
#   check_symbols.sh LIBBATON_SO
set -euo pipefail
lib=$1
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
if ! [[ "$soname" =~ ^libbaton\.so\.[0-9]+$ ]]; then
  echo "FAIL: SONAME is '$soname', want libbaton.so.<major>"; exit 1
fi
# -D: the dynamic symbol table; --defined-only: what the library provides.
# The version node (BATON_0, an absolute symbol) is not a symbol of the API.
symbols=$(nm -D --defined-only "$lib" | awk '$2 != "A" {print $3}' | sed 's/@.*//')
total=$(echo "$symbols" | grep -c . || true)
bad=$(echo "$symbols" | c++filt | grep -v -E '^(baton_[a-z0-9_]+|baton::.*|(typeinfo|typeinfo name|vtable) for baton::.*)$' || true)
if [ "$total" -lt 10 ]; then
  echo "FAIL: only $total exported symbols; the API is missing"; exit 1
fi
if [ -n "$bad" ]; then
  echo "FAIL: libbaton exports symbols outside baton_* and baton:: :"
  echo "$bad" | head -n 50
  echo "0 passed, 1 failed"; exit 1
fi
# Internals (baton::protocol, baton::detail except the documented hook,
# baton::supervisor...) must not leak either.
internal=$(echo "$symbols" | c++filt | grep -E 'baton::(protocol|ownership|incumbent|successor|crashpoints|supervisor|v1)::' || true)
if [ -n "$internal" ]; then
  echo "FAIL: internal namespaces exported:"; echo "$internal" | head -n 50; echo "0 passed, 1 failed"; exit 1
fi
# The API itself is there: a sample of what the headers promise, the
# lease-only use (baton/lease.h) included.
demangled=$(echo "$symbols" | c++filt)
for want in 'baton::Daemon::Create(' 'baton::LeaseRunner::Create(' 'baton::LeaseEndReasonName(' \
            'baton::LeaseOptionsFromEnvironment(' 'baton_create'; do
  if ! grep -qF "$want" <<<"$demangled"; then
    echo "FAIL: libbaton does not export $want"; echo "0 passed, 1 failed"; exit 1
  fi
done
echo "libbaton: SONAME $soname, $total exported symbols, all baton_* or baton::"
echo "1 passed, 0 failed"
