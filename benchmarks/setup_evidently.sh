#!/usr/bin/env bash
# Creates benchmarks/.venv-evidently with Evidently and pandas 2 (Evidently does not import with
# pandas 3, which modelward uses), for benchmarks/drift_vs_evidently.py. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-evidently"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "evidently==${EVIDENTLY_VERSION:-0.7.23}" "pandas<3" pyarrow
"$venv/bin/python" -c "import evidently, pandas; print('evidently', evidently.__version__, 'pandas', pandas.__version__)"
