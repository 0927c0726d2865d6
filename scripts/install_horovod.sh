#!/usr/bin/env bash
# Build Horovod (MXNet + Gloo, no MPI) into the wheel cache once, then install it into a venv.
#
#   scripts/install_horovod.sh [PYTHON]      PYTHON: the venv's python (default .venv/bin/python)
#
# Why a script: horovod is published only as an sdist, and pip's isolated build cannot import
# mxnet, so `pip install horovod` fails. It is built here without isolation, in an environment
# that already has mxnet==1.9.1 and numpy<1.24, with only the Gloo controller (no MPI, no ssh).
# The wheel's debug info is stripped (the installed package goes from about 49 MB to a few MB) and
# the wheel is kept in $MX_TRAINING_CACHE/horovod (default ~/.cache/mx-training-toolkit/horovod),
# where docker/build.py --local also takes it from. Building takes about 5 minutes on 2 cores;
# later runs install the cached wheel in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
VERSION="${HOROVOD_VERSION:-0.28.1}"
CACHE="${MX_TRAINING_CACHE:-$HOME/.cache/mx-training-toolkit}/horovod"
say() { echo "install_horovod: $*" >&2; }
. scripts/wheel_cache.sh

wheel=$(cached_wheel "$CACHE" horovod "$VERSION")
if [ -z "$wheel" ]; then
    missing=""
    for tool in cmake g++ make strip; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
    if [ -n "$missing" ]; then
        say "installing build tools (missing:$missing)"
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends cmake g++ make binutils python3-dev >/dev/null
    fi
    "$PY" -m pip install -q --disable-pip-version-check wheel "setuptools<70"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    say "building horovod $VERSION (MXNet, Gloo, no MPI); this takes a few minutes"
    began=$(date +%s)
    HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
    HOROVOD_WITHOUT_MPI=1 MAKEFLAGS="-j$(nproc)" \
        nice -n 10 "$PY" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
        "horovod==$VERSION" -w "$work/dist"
    built=$(ls "$work"/dist/horovod-*.whl)
    say "built in $(( $(date +%s) - began )) s; stripping its debug info"
    wheel=$(cache_stripped "$PY" "$built" "$CACHE" "$work")
    say "cached $wheel ($(du -h "$wheel" | cut -f1))"
fi
# Horovod's own dependencies come from the index (or the wheelhouse pip is pointed at).
"$PY" -m pip install -q --disable-pip-version-check "$wheel" cloudpickle psutil pyyaml packaging cffi
"$PY" -c "import horovod.mxnet as hvd; print('install_horovod: horovod', __import__('horovod').__version__, 'with mxnet')" >&2
