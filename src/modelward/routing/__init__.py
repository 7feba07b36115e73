"""Traffic routing: which arm (a model version or alias) serves a request. Pure: no I/O.

A :class:`SplitPolicy` hashes a routing key with a salt into :data:`BUCKETS` buckets and gives each
arm a whole number of buckets by weight, so a key always lands on the same arm, in every replica
and after restarts, and a weight change moves only the keys it must (docs/routing.md). Requests
without a key are assigned at random with the same shares. A :class:`DeploymentSpec` is what the
store keeps per model: strategy (single, A/B, canary), arms, key, salt, shadow and canary plan.
Shadow traffic is not an arm: the server mirrors it.
"""

from __future__ import annotations

from modelward.routing.policy import BUCKETS, Arm, RoutingError, SplitPolicy, moved_buckets
from modelward.routing.spec import (
    DIRECT_ARM,
    SHADOW_ARM,
    STRATEGIES,
    CanaryPlan,
    CanaryRules,
    DeploymentSpec,
    arm_name_for,
    normalize_target,
    parse_duration,
)

__all__ = [
    "BUCKETS",
    "DIRECT_ARM",
    "SHADOW_ARM",
    "STRATEGIES",
    "Arm",
    "CanaryPlan",
    "CanaryRules",
    "DeploymentSpec",
    "RoutingError",
    "SplitPolicy",
    "arm_name_for",
    "moved_buckets",
    "normalize_target",
    "parse_duration",
]
