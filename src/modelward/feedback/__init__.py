"""Feedback on served models: outcomes joined to predictions, and A/B test statistics on them.

:class:`FeedbackStore` stores labels idempotently by request id (:func:`join_labels` finds the
request ids of labels that carry a logged field instead, such as a customer id);
:func:`performance_report` (or :func:`live_performance` on a bare store) joins them to the
prediction log and returns realized metrics per version and arm beside label-free estimates
(:mod:`modelward.feedback.estimate`) and their calibration check; :func:`calibrate` measures a
version's calibration on held-out data. See docs/feedback.md.

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
from modelward.feedback.calibrate import (
    CalibrationError,
    CalibrationRun,
    VersionFacts,
    calibrate,
    version_facts,
)
from modelward.feedback.estimate import DEFAULT_TRUST_THRESHOLD, EstimatedMetric, expected_metrics
from modelward.feedback.ingest import (
    Conflict,
    FeedbackInvalid,
    FeedbackItem,
    FeedbackResult,
    FeedbackStore,
    parse_items,
)
from modelward.feedback.join import JoinResult, KeyedLabel, Unjoined, join_labels
from modelward.feedback.performance import (
    GroupPerformance,
    Metric,
    PerformanceReport,
    live_performance,
    performance_report,
)

__all__ = [
    "DEFAULT_TRUST_THRESHOLD",
    "ABReport",
    "ABTestError",
    "ArmData",
    "ArmSummary",
    "ArmTraffic",
    "CalibrationError",
    "CalibrationRun",
    "Comparison",
    "Conflict",
    "EstimatedMetric",
    "FeedbackInvalid",
    "FeedbackItem",
    "FeedbackResult",
    "FeedbackStore",
    "GroupPerformance",
    "JoinResult",
    "KeyedLabel",
    "Kind",
    "Metric",
    "NoExperiment",
    "NoFeedback",
    "PerformanceReport",
    "SampleRatioCheck",
    "TrafficReport",
    "Unjoined",
    "UnknownArm",
    "VersionFacts",
    "ab_report",
    "analyze",
    "calibrate",
    "check_sample_ratio",
    "deployment_ab_report",
    "expected_metrics",
    "join_labels",
    "live_performance",
    "parse_items",
    "performance_report",
    "sequential_p_value",
    "traffic_report",
    "version_facts",
]
