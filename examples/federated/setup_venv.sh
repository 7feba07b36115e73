#!/usr/bin/env bash
# Creates examples/federated/.venv with Flower (the requirement of modelward's [federated] extra,
# read from pyproject.toml) over this interpreter's packages (--system-site-packages: NumPy, pandas,
# scikit-learn). Flower pins FastAPI, Starlette, uvicorn, Typer, Rich and packaging to older
# releases; in a virtual environment of its own those pins do not change the environment modelward
# is served from. Idempotent: an environment that already imports flwr is left as it is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${FLOWER_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
if "$venv/bin/python" -c "import flwr, ray" 2>/dev/null; then
    exit 0
fi
"$python" -m venv --system-site-packages "$venv"
requirement="$("$python" - "$here/../../pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    (req,) = [r for r in tomllib.load(f)["project"]["optional-dependencies"]["federated"] if r.startswith("flwr")]
print(req)
PY
)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
"$venv/bin/python" -c "import flwr, ray; print('flwr', flwr.__version__, 'ray', ray.__version__)"
