#!/usr/bin/env bash
# Install wiredprof into .venv and run its main job on the bundled reference sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/wiredprof analyze samples/reference_flow.py "$@"
