#!/usr/bin/env bash
# Create .venv with the pinned dependencies and install cobra_lit (editable) into it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
if ! cmp -s requirements-lock.txt .venv/.installed-lock 2>/dev/null; then
  python -m pip install -q -r requirements-lock.txt
  cp requirements-lock.txt .venv/.installed-lock
fi
python -m pip install -q --no-deps --no-build-isolation -e .
