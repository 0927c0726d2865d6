#!/usr/bin/env bash
# Install what test/integration/test_sdk_local_mode.py needs: the real SageMaker Python SDK in a venv
# of its own (.sdk-venv; the project's venv stays clean), and docker-compose, which local mode runs
# when the engine's client has no compose plugin. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .sdk-venv/bin/python ]; then
  python3 -m venv .sdk-venv
fi
.sdk-venv/bin/python -m pip install -q --disable-pip-version-check 'sagemaker<3'
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends docker-compose
fi
