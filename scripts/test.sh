#!/usr/bin/env bash
# Set up (if needed) and run the test suite: every notebook in nbs/ as a pytest case, plus tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nbdev_export
python -m pytest -q -rs tests "$@"  # -rs: every skip says why
