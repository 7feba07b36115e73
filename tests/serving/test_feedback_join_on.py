"""Labels for what was served, against a real server's prediction log: `modelward feedback import
--join-on FIELD` for users who never kept request ids (label rows carrying a customer id and a time
find the request they are about, the nearest one before the label within the window; unmatched and
ambiguous rows are counted, listed and left out, never guessed), and the recipe of docs/feedback.md
(export what was served, join it to the outcomes, import), run as the page writes it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from modelward.config import Settings
from modelward.feedback import FeedbackStore
from modelward.monitoring.prediction_query import count_predictions
from modelward.store import Store
from tests.docs.markdown_blocks import blocks, commands_of, section
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW


def modelward(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelward", *argv],
        env=server_env(home, COLUMNS="200"),
        capture_output=True,
        text=True,
        cwd=home,
    )


def import_joined(home: Path, path: str, field: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`modelward feedback import PATH --join-on FIELD --model churn OPTIONS...`"""
    return modelward(home, "feedback", "import", path, "--join-on", field, "--model", "churn", *options)


def predict(server: Server, body: dict[str, object]) -> list[str]:
    with server.client() as c:
        r = c.post("/models/churn/predict", json=body)
    assert r.status_code == 200, r.text
    return [p["request_id"] for p in r.json()["predictions"]]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(frozen=True)
class Served:
    home: Path  # a pristine copy: each test labels a copy of its own
    first: list[str]  # c-1
    earlier: list[str]  # c-2, then
    later: list[str]  # c-2 again
    twice: list[str]  # c-3, twice in one request
    logged: int  # predictions of churn in the log: these 5, and what other tests left in churn_home


@pytest.fixture(scope="module")
def served(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A log of real predictions of customers c-1, c-2 (twice) and c-3 (twice in one request)."""
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    # Keyed on customer_id, an A/B test reads it from each record and logs it as the routing key.
    deployed = modelward(
        home, "deploy", "churn", "--ab", "champion=50", "challenger=50", "--key", "customer_id"
    )
    assert deployed.returncode == 0, deployed.stderr
    store = Store(Settings(home=home).resolved_database_url).open()
    try:
        before = count_predictions(store, "churn")  # the shared home may hold other tests' predictions
    finally:
        store.close()
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        first = predict(server, {"features": {**ROW, "customer_id": "c-1", "estimated_salary": 11_000.0}})
        earlier = predict(server, {"features": {**ROW, "customer_id": "c-2", "estimated_salary": 22_000.0}})
        later = predict(server, {"features": {**ROW, "customer_id": "c-2", "estimated_salary": 22_500.0}})
        # One request scoring c-3 twice: two rows at one time, no way to tell which the label is for.
        twice = predict(server, {"instances": [{**ROW, "customer_id": "c-3"}, {**ROW, "customer_id": "c-3"}]})
    finally:
        server.stop()
    store = Store(Settings(home=home).resolved_database_url).open()
    try:
        wait_until(lambda: count_predictions(store, "churn") >= before + 5)
    finally:
        store.close()
    return Served(home, first, earlier, later, twice, before + 5)


def copy_of(served: Served, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(served.home, home, ignore=shutil.ignore_patterns("server-*.log"))
    return home


def stored_labels(home: Path, request_ids: list[str]) -> dict[str, object]:
    store = Store(Settings(home=home).resolved_database_url).open()
    try:
        return dict(FeedbackStore(store).get(request_ids))
    finally:
        store.close()


def test_labels_join_to_the_nearest_earlier_request_with_their_customer_id(
    served: Served, tmp_path: Path
) -> None:
    home = copy_of(served, tmp_path)
    first, earlier, later, twice = served.first, served.earlier, served.later, served.twice
    now = time.time()

    pd.DataFrame(
        {
            "customer_id": ["c-1", "c-2", "c-3", "c-9", "c-1"],
            "label": [1, 0, 1, 1, 0],
            "time": [iso(now), iso(now), iso(now), iso(now), iso(now - 3 * 3600)],
        }
    ).to_csv(home / "outcomes.csv", index=False)
    done = import_joined(home, "outcomes.csv", "customer_id", "--window", "1h", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["matched"], summary["unmatched"], summary["ambiguous"]) == (5, 2, 2, 1)
    assert (summary["join_on"], summary["model"], summary["window_seconds"]) == (
        "customer_id",
        "churn",
        3600.0,
    )
    assert [(u["row"], u["key"]) for u in summary["unmatched_rows"]] == [(4, "c-9"), (5, "c-1")]
    (ambiguous,) = summary["ambiguous_rows"]
    assert (ambiguous["row"], ambiguous["key"], sorted(ambiguous["request_ids"])) == (3, "c-3", sorted(twice))
    assert (summary["inserted"], summary["conflicts"], summary["orphans"]) == (2, 0, 0)

    stored = stored_labels(home, [*first, *earlier, *later, *twice])
    # c-2's outcome followed its later request; nothing went to the earlier one, nor to c-3.
    assert stored == {first[0]: 1, later[0]: 0}

    # The same file again, as a person reads it: counts on stdout, the rows left out on stderr.
    again = import_joined(home, "outcomes.csv", "customer_id", "--window", "1h")
    assert again.returncode == 0, again.stderr
    assert "5 rows joined on customer_id" in again.stdout
    assert "2 matched, 2 unmatched, 1 ambiguous (not imported)" in again.stdout
    assert "2 unchanged" in again.stdout
    assert "unmatched row 4: customer_id c-9" in again.stderr
    assert "ambiguous row 3: customer_id c-3" in again.stderr

    # An input field joins too; a file without a time column is timed at the import.
    pd.DataFrame({"estimated_salary": [11_000, 22_500.0], "outcome": [1, 0]}).to_parquet(
        home / "by-salary.parquet"
    )
    by_input = import_joined(home, "by-salary.parquet", "estimated_salary", "--label-column", "outcome")
    assert by_input.returncode == 0, by_input.stderr
    assert "2 matched, 0 unmatched, 0 ambiguous" in by_input.stdout
    assert "the file has no 'time' column" in by_input.stdout
    assert "2 unchanged" in by_input.stdout

    # A field no logged prediction carries is a mistake, said in one line: nothing is imported.
    wrong = import_joined(home, "outcomes.csv", "client")
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1, wrong.stderr
    assert "no column 'client'" in wrong.stderr
    pd.DataFrame({"client": ["c-1"], "label": [1]}).to_csv(home / "client.csv", index=False)
    wrong = import_joined(home, "client.csv", "client")
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1, wrong.stderr
    assert f"none of the {served.logged} predictions of 'churn' logged then carries client" in wrong.stderr
    missing_model = modelward(home, "feedback", "import", "client.csv", "--join-on", "client")
    assert missing_model.returncode == 1 and "--join-on needs --model" in missing_model.stderr


def test_the_docs_recipe_labels_what_was_served_by_request_id(served: Served, tmp_path: Path) -> None:
    """docs/feedback.md, "Labels for what was served": each ```bash and ```py block, in order."""
    home = copy_of(served, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    # What the business knows: which customers churned.
    pd.DataFrame({"customer_id": ["c-1", "c-2"], "churned": [1, 0]}).to_csv(
        work / "outcomes.csv", index=False
    )
    page = (Path(__file__).resolve().parents[2] / "docs" / "feedback.md").read_text()
    recipe = [b for b in blocks(section(page, "## Labels for what was served")) if b.lang in ("bash", "py")]
    assert [b.lang for b in recipe] == ["bash", "py", "bash", "bash"]
    env = server_env(home, COLUMNS="200")
    outputs = []
    for block in recipe:
        runs = (
            [[sys.executable, "-c", block.code]]
            if block.lang == "py"
            else [["bash", "-c", c] for c in commands_of(block.code)]
        )
        for argv in runs:
            done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
            outputs.append(done.stdout)
    # c-1's only prediction and c-2's later one carry the outcomes; then the join on customer_id
    # finds the same requests and changes nothing.
    assert stored_labels(home, [*served.first, *served.earlier, *served.later]) == {
        served.first[0]: 1,
        served.later[0]: 0,
    }
    assert "2 labels: 2 new" in outputs[-2]
    assert "2 matched, 0 unmatched, 0 ambiguous" in outputs[-1] and "2 unchanged" in outputs[-1]
