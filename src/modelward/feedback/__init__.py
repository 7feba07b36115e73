"""Feedback on served models: outcomes joined to predictions, and A/B test statistics on them.

:func:`analyze` compares the arms of an experiment (model versions sharing traffic) from per-arm
counts or sums and returns an :class:`ABReport` with fixed-horizon and always-valid (sequential)
p-values, minimum detectable effects, a sample ratio check and a plain-language verdict. Pure
numbers in and out; see docs/ab-testing.md. :func:`deployment_ab_report` (and :func:`ab_report`)
gathers those counts per arm from the prediction log and feedback of a model's deployment.
"""

from __future__ import annotations

from modelward.feedback.abreport import (
    ArmTraffic,
    NoExperiment,
    NoFeedback,
    TrafficReport,
    UnknownArm,
    ab_report,
    deployment_ab_report,
    traffic_report,
)
from modelward.feedback.abtest import (
    ABReport,
    ABTestError,
    ArmData,
    ArmSummary,
    Comparison,
    Kind,
    SampleRatioCheck,
    analyze,
    check_sample_ratio,
    sequential_p_value,
)

__all__ = [
    "ABReport",
    "ABTestError",
    "ArmData",
    "ArmSummary",
    "ArmTraffic",
    "Comparison",
    "Kind",
    "NoExperiment",
    "NoFeedback",
    "SampleRatioCheck",
    "TrafficReport",
    "UnknownArm",
    "ab_report",
    "analyze",
    "check_sample_ratio",
    "deployment_ab_report",
    "sequential_p_value",
    "traffic_report",
]
