"""Calibration is recorded at registration and can be re-measured on held-out data (audit chain)."""

from __future__ import annotations

import copy
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelward.feedback import CalibrationError, calibrate, version_facts
from modelward.feedback.estimate import trust_check
from modelward.registry import Registry, register_model
from modelward.registry.calibration import Calibration, class_index, compute_calibration


@pytest.fixture(scope="module")
def holdout(churn_frame: pd.DataFrame) -> pd.DataFrame:
    generate = sys.modules["churn_generate"].generate  # loaded by the churn_frame fixture
    return generate(3_000, seed=11).drop(columns=["customer_id"])


def test_registration_records_the_calibration_and_calibrate_supersedes_it(
    registry: Registry, churn_models: dict[str, Any], churn_frame: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    facts = version_facts(registry, "churn", "1")
    assert facts is not None and (facts.task, facts.classes) == ("classification", ("0", "1"))
    at_registration = facts.calibration
    assert at_registration is not None and at_registration.source == "registration"
    assert at_registration.n == len(churn_frame)
    assert 0 <= at_registration.ece < 0.05  # a logistic regression is close to calibrated

    run = calibrate(registry, "churn:1", holdout, "churn")

    assert run.calibration.source == "holdout" and run.calibration.n == len(holdout)
    event = registry.audit.events(subject="churn:1", action="calibrate")[-1]
    assert event.seq == run.seq and event.payload["dataset_sha256"] == run.dataset_sha256
    again = version_facts(registry, "churn", "1")
    assert again is not None and again.calibration == run.calibration
    assert registry.audit.verify().ok
    assert version_facts(registry, "churn", "99") is None


def test_calibrate_flags_a_distorted_model_on_held_out_data(
    registry: Registry, churn_models: dict[str, Any], churn_frame: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    distorted = copy.deepcopy(churn_models["logreg"])
    distorted.named_steps["model"].coef_ = distorted.named_steps["model"].coef_ * 6
    register_model(registry, distorted, "churn", train_data=churn_frame, target="churn")
    run = calibrate(registry, "churn", holdout, "churn")
    check = trust_check(run.calibration, ("0", "1"))
    assert run.calibration.ece > 0.05
    assert not check.top_label and not check.classwise


def test_calibrate_refuses_what_it_cannot_measure(
    registry: Registry, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    with pytest.raises(CalibrationError, match="target column 'label' is not in the data"):
        calibrate(registry, "churn:1", churn_frame, "label")


def test_the_reliability_table_and_ece() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    cal = compute_calibration([0, 1, 1, 1], probs, [0, 1], bins=10)
    # confidences 0.9, 0.8, 0.7, 0.6, each alone in its bin, correct for rows 0, 2, 3
    assert cal.ece == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)
    assert cal.accuracy == 0.75 and cal.mean_confidence == pytest.approx(0.75)
    assert [b.n for b in cal.reliability] == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert class_index(1.0, ("0", "1")) == 1 and class_index("x", ("0", "1")) == -1
