#!/usr/bin/env bash
# Install what the tests need (venv, openssh-server, mosquitto, chromium) and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
WIREDPROF_WITH_CHROMIUM=1 bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
