"""Deployment revisions and leases on SQLite and PostgreSQL: versioned, audited, exclusive."""

from __future__ import annotations

import threading

import pytest

from modelward.governance.audit import AuditLog
from modelward.registry import Deployments, StaleDeployment
from modelward.routing import DeploymentSpec
from modelward.store import Lease, Store


def test_each_change_is_a_new_revision_kept_in_history_and_audited(store: Store) -> None:
    deployments = Deployments(store, actor="alice")
    assert deployments.get("churn") is None
    first = deployments.put(DeploymentSpec.single("churn"), reason="start")
    second = deployments.put(DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}), reason="test")
    assert (first.revision, second.revision) == (1, 2)
    current = deployments.get("churn")
    assert current is not None and current.spec.strategy == "ab" and current.reason == "test"
    assert [d.revision for d in deployments.history("churn")] == [1, 2]
    assert deployments.revisions() == {"churn": 2}
    events = AuditLog(store).events()
    assert [(e.action, e.subject, e.actor) for e in events] == [("deploy", "churn", "alice")] * 2
    assert AuditLog(store).verify().ok


def test_a_write_conditional_on_a_stale_revision_is_refused(store: Store) -> None:
    deployments = Deployments(store)
    deployments.put(DeploymentSpec.single("churn"))
    deployments.put(DeploymentSpec.single("churn", "2"), expected_revision=1)
    with pytest.raises(StaleDeployment, match="revision 2, not 1"):
        deployments.put(DeploymentSpec.single("churn", "3"), expected_revision=1)
    current = deployments.get("churn")
    assert current is not None and current.spec.arms[0].target == "2"


def test_storing_a_canary_starts_its_step_clock(store: Store) -> None:
    stored = Deployments(store).put(DeploymentSpec.start_canary("churn", 3))
    assert stored.spec.canary is not None and stored.spec.canary.step_started_at is not None
    again = Deployments(store).get("churn")
    assert again is not None and again.spec == stored.spec


def test_remove_forgets_the_deployment_but_keeps_its_history(store: Store) -> None:
    deployments = Deployments(store)
    deployments.put(DeploymentSpec.single("churn"))
    assert deployments.remove("churn") is True
    assert deployments.get("churn") is None and len(deployments.history("churn")) == 1
    assert deployments.remove("churn") is False
    again = deployments.put(DeploymentSpec.single("churn", "2"))
    assert again.revision == 2 and [d.revision for d in deployments.history("churn")] == [1, 2]


def test_a_lease_has_one_holder_until_it_expires_or_is_released(store: Store) -> None:
    a = Lease(store, "controller", holder="a", ttl=10)
    b = Lease(store, "controller", holder="b", ttl=10)
    assert a.acquire(now=100.0)
    assert not b.acquire(now=105.0)
    assert a.acquire(now=105.0)  # renewal
    assert not b.acquire(now=114.0)
    assert b.acquire(now=115.5)  # a stopped renewing at 105: expired at 115
    info = b.info()
    assert info is not None and info.holder == "b" and info.expires_at == 125.5
    assert not a.acquire(now=116.0)
    b.release()
    assert a.acquire(now=116.0)


def test_concurrent_candidates_never_both_win_a_lease(store: Store, store_url: str) -> None:
    wins: list[str] = []
    barrier = threading.Barrier(6)

    def candidate(name: str) -> None:
        s = Store(store_url).open()
        try:
            barrier.wait()
            if Lease(s, "controller", holder=name, ttl=60).acquire(now=1000.0):
                wins.append(name)
        finally:
            s.close()

    threads = [threading.Thread(target=candidate, args=(f"c{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
