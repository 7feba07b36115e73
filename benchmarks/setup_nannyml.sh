#!/usr/bin/env bash
# Creates benchmarks/.venv-nannyml with NannyML and pandas 2, for benchmarks/drift_vs_evidently.py
# (NannyML pins lightgbm, plotly and matplotlib ranges of its own, so it is kept out of both modelward's
# environment and Evidently's). statsmodels: nannyml 0.13.1 imports it without declaring it. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-nannyml"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "nannyml==${NANNYML_VERSION:-0.13.1}" "pandas<3" pyarrow statsmodels
"$venv/bin/python" -c "import nannyml, pandas; print('nannyml', nannyml.__version__, 'pandas', pandas.__version__)"
