#!/usr/bin/env bash
# Build the GluonNLP wheel into the wheel cache once.
#
#   scripts/build_gluonnlp.sh [PYTHON]      PYTHON: a Python of the images' version (default python3)
#
# Why a script: GluonNLP 0.10.0 (its last release) is published only as an sdist with a Cython
# extension, and the image build has no network and no compiler. It is built here once, without
# build isolation, in a throwaway venv with Cython 0.29 (Cython 3 was not released when GluonNLP
# was), and kept in $MX_TRAINING_CACHE/gluonnlp (default ~/.cache/mx-training-toolkit/gluonnlp),
# where docker/build.py takes it from. Its extension uses no NumPy C API, so the wheel does not depend
# on the NumPy it was built beside. About half a minute on 2 cores; later runs find the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-python3}"
VERSION="${GLUONNLP_VERSION:-0.10.0}"
CACHE="${MX_TRAINING_CACHE:-$HOME/.cache/mx-training-toolkit}/gluonnlp"
say() { echo "build_gluonnlp: $*" >&2; }
. scripts/wheel_cache.sh

wheel=$(cached_wheel "$CACHE" gluonnlp "$VERSION")
if [ -n "$wheel" ]; then
    say "cached: $wheel"
    exit 0
fi
command -v gcc >/dev/null || { say "needs a C compiler (apt-get install gcc python3-dev)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "cython<3" "setuptools<70" wheel
say "building gluonnlp $VERSION"
began=$(date +%s)
"$work/venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "gluonnlp==$VERSION" -d "$work/sdist"
tar -xzf "$work"/sdist/gluonnlp-"$VERSION".tar.gz -C "$work"
# The sdist carries the C file an old Cython generated, which no longer compiles for Python 3.11
# (longintrepr.h moved): delete it so that this Cython generates it again.
rm -f "$work"/gluonnlp-"$VERSION"/src/gluonnlp/data/fast_bert_tokenizer.c
nice -n 10 "$work/venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
    "$work/gluonnlp-$VERSION" -w "$work/dist"
built=$(ls "$work"/dist/gluonnlp-*.whl)
wheel=$(cache_stripped "$work/venv/bin/python" "$built" "$CACHE" "$work")
say "built in $(( $(date +%s) - began )) s: $wheel ($(du -h "$wheel" | cut -f1))"
