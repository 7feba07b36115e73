"""One controller's retraining task in a process of its own, for the two-process test: it waits for
the start signal, then runs the task at each moment given (the clock argument) and prints what each
round started as one JSON line. The task runs its actions inline, so the process ends after them.

Usage: python retrain_worker.py STORE_URL HOME READY_FILE GO_FILE NOW [NOW ...]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    from modelward.control.retrain import Retrainer, RetrainTask
    from modelward.registry import Registry
    from modelward.store import Store

    url, home, ready, go, *moments = sys.argv[1:]
    registry = Registry(tracking_uri=f"sqlite:///{home}/mlflow.db", store=Store(url)).open()
    retrainer = Retrainer(
        registry, env={}, export_dir=Path(home) / "retrain", actor=f"controller:{os.getpid()}"
    )
    task = RetrainTask(retrainer, models=["churn"], interval=0, background=False)
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():  # both processes start their rounds together
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.005)
    for moment in moments:
        print(json.dumps(task.run(float(moment))["started"]), flush=True)
    registry.close()


if __name__ == "__main__":
    main()
