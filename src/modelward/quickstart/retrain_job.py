"""The quickstart's retraining command, run by the server's controller when the policy's
``retrain:`` triggers fire (``python -m modelward.quickstart.retrain_job --fresh F --folder D``).

It reads the run's facts from its environment as any retraining command does
(``MODELWARD_RETRAIN_MODEL``, ``_REASON``, ``_EXPORT``: docs/loop.md), trains a new version on the
labelled export and the fresh customers in ``--fresh``, registers it, and prints a JSON line with
the new version and its test AUC (kept in the run's output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelward.quickstart.retrain_job")
    parser.add_argument("--fresh", type=Path, required=True, help="fresh labelled customers (Parquet)")
    parser.add_argument("--folder", type=Path, required=True, help="the quickstart's folder")
    args = parser.parse_args(argv)
    name = os.environ.get("MODELWARD_RETRAIN_MODEL")
    export = os.environ.get("MODELWARD_RETRAIN_EXPORT")
    if not name or not export:
        print("run by a retraining policy: MODELWARD_RETRAIN_MODEL and _EXPORT are not set", file=sys.stderr)
        return 2
    import pandas as pd

    from modelward.config import Settings
    from modelward.quickstart.steps import retrain

    done = retrain(
        Settings(),
        name,
        fresh=pd.read_parquet(args.fresh),
        export_path=Path(export),
        folder=args.folder,
        reason=os.environ.get("MODELWARD_RETRAIN_REASON", "retraining policy"),
    )
    line = {
        "version": str(done.info.version),
        "exported_rows": done.exported_rows,
        "train_rows": done.train_rows,
        "test_auc": round(done.test_auc, 4),
    }
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
