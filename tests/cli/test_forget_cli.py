"""`modelward forget` as a user meets it: it asks before erasing unless told --yes, and says what it did."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from modelward.cli import main
from modelward.config import Settings
from modelward.governance.audit import AuditLog
from modelward.store import Store
from modelward.store.tables import predictions


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    settings.ensure_home()
    s = Store(settings.resolved_database_url).open()
    s.migrate()
    with s.write() as conn:
        conn.execute(
            predictions.insert(),
            [
                {
                    "request_id": f"req-{i}",
                    "ts": 1_700_000_000.0 + i,
                    "model": "churn",
                    "version": "1",
                    "inputs": json.dumps({"customer_id": 7 if i < 2 else 8}),
                    "outputs": "{}",
                    "latency_ms": 1.0,
                }
                for i in range(3)
            ],
        )
    yield s
    s.close()


def _left(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())


def test_forget_asks_first_and_a_no_erases_nothing(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code = main(["forget", "--key", "customer_id=7"])
    err = capsys.readouterr().err
    assert code != 0 and "erase 2 logged predictions and 0 labels of 2 requests?" in err
    assert _left(store) == 3 and AuditLog(store).events(action="forget") == []


def test_forget_with_yes_erases_and_says_so(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forget", "--key", "customer_id=7", "--yes", "--reason", "ticket 9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("erased 2 logged predictions and 0 labels of 2 requests (audit event ")
    assert _left(store) == 1
    (event,) = AuditLog(store).events(action="forget")
    assert event.actor == "tester" and event.payload["reason"] == "ticket 9"
