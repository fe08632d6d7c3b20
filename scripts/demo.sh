#!/usr/bin/env bash
# Install wiredprof into .venv and run the whole story on the bundled reference sample:
# analyze -> plan -> offload core_logic to a throwaway local host B -> analyze again -> compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/wiredprof demo "$@"
