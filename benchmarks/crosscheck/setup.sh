#!/usr/bin/env bash
# Create benchmarks/crosscheck/.venv (the cross-check's own virtual environment, not an archsim dependency)
# and install ZigZag (zigzag-dse) and SCALE-Sim (scalesim) at the versions pinned in requirements.txt.
# Then check that both import and run on a one-layer problem.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
"$py" - <<'PY'
import sys
# zigzag-dse 3.9.1 declares Requires-Python >=3.11; scalesim 3.0.0 declares none
if sys.version_info < (3, 11):
    sys.exit(f"python >= 3.11 needed for zigzag-dse 3.9.1, found {sys.version.split()[0]}")
PY
if [ ! -x "$here/.venv/bin/python" ]; then
    "$py" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install -q -r "$here/requirements.txt"
"$here/.venv/bin/python" "$here/smoke.py"
