#!/bin/sh
# `pip install` of the Python SDK works offline with Debian's python3 and
# python3-setuptools, as docs/sdk-python.md says: from a copy of sdk/python
# (pip builds in the source tree) into a venv that sees the system's
# setuptools, then the installed package imports and finds libbaton.
#
#   pip_install_test.sh PYTHON3 SDK_DIR        (BATON_LIBRARY set by ctest)
set -eu
python3=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
# The venv sees Debian's pip and setuptools (python3-pip, python3-setuptools).
"$python3" -m venv --system-site-packages --without-pip "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --no-build-isolation --no-index --no-deps "$tmp/src"
cd "$tmp"
# Not the source tree: the installed copy.
PYTHONPATH= "$tmp/venv/bin/python" - <<'PY'
import os, sys
import baton
assert baton.__file__.startswith(sys.prefix), f"imported {baton.__file__}, not the installed copy under {sys.prefix}"
assert os.path.exists(os.path.join(os.path.dirname(baton.__file__), "py.typed")), "py.typed not installed"
major, minor = baton.abi_version()
assert major == 1, (major, minor)
print(f"installed baton {baton.__version__} at {baton.__file__}; libbaton ABI {major}.{minor}")
PY
