"""`modelward feedback import` as a user meets it: counts, conflicts listed with exit 1, bad rows named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelward.cli import feedback_cmds, main
from modelward.config import Settings
from modelward.feedback import FeedbackStore
from modelward.store import Store


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    settings.ensure_home()
    s = Store(settings.resolved_database_url).open()
    s.migrate()
    yield s
    s.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_csv_then_again_stores_each_label_once(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedback_cmds, "CHUNK_ROWS", 40)  # several chunks
    path = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": [f"00{i}" for i in range(100)], "label": [i % 2 for i in range(100)]}).to_csv(
        path, index=False
    )
    code, out, _ = run(capsys, "feedback", "import", str(path))
    assert code == 0
    assert "100 labels: 100 new, 0 unchanged" in out and "100 without a logged prediction" in out
    code, out, _ = run(capsys, "feedback", "import", str(path), "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["inserted"], summary["unchanged"], summary["conflicts"]) == (0, 100, 0)
    assert FeedbackStore(store).get(["007"]) == {"007": 1}  # ids stay text: leading zeros kept


def test_conflicts_are_listed_and_exit_1_unless_overwrite(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    FeedbackStore(store).record([{"request_id": "a", "label": "yes"}, {"request_id": "b", "label": "no"}])
    path = tmp_path / "labels.parquet"
    pd.DataFrame({"rid": ["a", "b", "c"], "churned": ["no", "no", "yes"]}).to_parquet(path)
    argv = ["feedback", "import", str(path), "--id-column", "rid", "--label-column", "churned"]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert "1 refused" in out and "a: stored 'yes', sent 'no'" in err
    assert FeedbackStore(store).get(["a", "c"]) == {"a": "yes", "c": "yes"}
    code, out, _ = run(capsys, *argv, "--overwrite", "--json")
    assert code == 0 and json.loads(out)["overwritten"] == 1
    assert FeedbackStore(store).get(["a"]) == {"a": "no"}


def test_bad_rows_are_named_and_nothing_is_imported(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nr1,1\nr2,\nr3,0\n")
    code, _, err = run(capsys, "feedback", "import", str(path))
    assert code == 1
    assert "row 2: label is null" in err and "nothing imported" in err
    assert FeedbackStore(store).count() == 0
    code, _, err = run(capsys, "feedback", "import", str(path), "--label-column", "outcome")
    assert code == 1 and "has no column 'outcome'" in err
