"""Prometheus gauges of the controller: whether this process holds the controller lease, and where
each model's canary stands.

``modelward_controller_lease_held`` is 1 in the process whose controller holds the store lease
``controller`` and 0 in the others (``livemax`` over workers: 1 when any worker of a server holds
it), so ``max(modelward_controller_lease_held)`` over the scraped replicas tells whether one of them
acts. A lease attempt that succeeds, taken or not, means the lease has a live holder (this process
or another, such as a ``modelward controller`` process), so
``modelward_controller_lease_checked_timestamp_seconds`` (UNIX time of the last attempt that reached
the store) going stale on every replica means no controller acts: the store is unreachable or no
controller runs. ``modelward_canary_percent{model,version}`` is the canary's share of traffic now
(0 once rolled back) and ``modelward_canary_rolled_back{model,version}`` is 1 when the controller
rolled the canary back; both are set by the lease holder on each tick (``mostrecent``: the value
written last by any worker). The registry is passed in, never the global one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

__all__ = ["ControllerGauges"]


class ControllerGauges:
    """``lease(held)`` after each lease attempt, ``canary(...)`` for each deployment with a canary."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lease = Gauge(
            "modelward_controller_lease_held",
            "1 when this process's controller holds the controller lease (max over live workers).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._checked = Gauge(
            "modelward_controller_lease_checked_timestamp_seconds",
            "UNIX time of this process's last lease attempt that reached the store (the lease had a holder).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._percent = Gauge(
            "modelward_canary_percent",
            "The canary version's share of traffic in percent (0 once rolled back).",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._rolled_back = Gauge(
            "modelward_canary_rolled_back",
            "1 when the controller rolled the canary back, else 0.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def lease(self, held: bool, now: float) -> None:
        """After a lease attempt at ``now`` that reached the store: whether this process holds it."""
        self._lease.set(1 if held else 0)
        self._checked.set(now)

    def canary(self, model: str, version: str, percent: float, rolled_back: bool) -> None:
        self._percent.labels(model, version).set(percent)
        self._rolled_back.labels(model, version).set(1 if rolled_back else 0)
