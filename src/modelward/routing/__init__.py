"""Traffic routing: which arm (a model version or alias) serves a request. Pure: no I/O.

A :class:`SplitPolicy` hashes a routing key with a salt into :data:`BUCKETS` buckets and gives each
arm a whole number of buckets by weight, so a key always lands on the same arm, in every replica
and after restarts, and a weight change moves only the keys it must (docs/routing.md). Requests
without a key are assigned at random with the same shares. Shadow traffic is not an arm: the
caller mirrors it.
"""

from __future__ import annotations

from modelward.routing.policy import BUCKETS, Arm, RoutingError, SplitPolicy, moved_buckets

__all__ = ["BUCKETS", "Arm", "RoutingError", "SplitPolicy", "moved_buckets"]
