"""Reports, policies and notes kept with a version in modelward's store."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelward.governance import VersionReports
from modelward.store import Store


@pytest.fixture
def reports(tmp_path: Path) -> VersionReports:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}").open()
    store.migrate()
    return VersionReports(store)


def test_the_newest_report_of_a_kind_is_returned_and_older_ones_stay_in_the_history(
    reports: VersionReports,
) -> None:
    reports.save("churn", "1", "fairness", {"dp": 0.1}, actor="a")
    reports.save("churn", "1", "fairness", {"dp": 0.2}, actor="b")
    reports.save("churn", "2", "fairness", {"dp": 0.3}, actor="a")
    reports.save("churn", "1", "validation", {"ok": True}, actor="a")
    latest = reports.latest("churn", "1", "fairness")
    assert latest is not None and latest.body == {"dp": 0.2} and latest.actor == "b"
    assert [r.body for r in reports.history("churn", "1", "fairness")] == [{"dp": 0.1}, {"dp": 0.2}]
    assert len(reports.history("churn")) == 4
    assert reports.latest("churn", "3", "fairness") is None


def test_a_policy_is_replaced_by_the_next_one_and_can_be_deleted(reports: VersionReports) -> None:
    assert reports.policy("churn") is None
    reports.set_policy("churn", "gates: []\n", actor="a")
    reports.set_policy("churn", "gates: [x]\n", actor="b")
    stored = reports.policy("churn")
    assert stored is not None and stored.body == "gates: [x]\n" and stored.actor == "b"
    assert reports.delete_policy("churn") is True
    assert reports.policy("churn") is None and reports.delete_policy("churn") is False


def test_notes_keep_the_text_not_given_in_a_later_edit(reports: VersionReports) -> None:
    reports.set_notes("churn", "1", actor="a", intended_use="retention offers", limitations="EU only")
    reports.set_notes("churn", "1", actor="b", limitations="EU customers only")
    notes = reports.notes("churn", "1")
    assert notes is not None
    assert (notes.intended_use, notes.limitations, notes.actor) == (
        "retention offers",
        "EU customers only",
        "b",
    )
    assert reports.notes("churn", "2") is None
