"""Text from users, models and install hints reaches the terminal as written.

Rich reads ``[word]`` as markup and drops it: ``show`` printed ``pip install 'modelward'`` for the
hint ``pip install 'modelward[onnx]'``, and a description, a reason or a name with brackets lost them.
"""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from modelward.cli import main
from modelward.registry import Registry, register_model

MARKUP = "[bold]fast[/bold] with [onnx]"


@pytest.fixture
def churn(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    register_model(
        registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn", description=MARKUP
    )
    return registry


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row: the assertions read whole cells


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_the_onnx_install_hint_with_its_extra(
    churn: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    code, out, err = run(capsys, "show", "churn:1")
    assert code == 0, err
    assert "native: onnxruntime is not installed: pip install 'modelward[onnx]'" in out


def test_descriptions_and_reasons_keep_their_brackets(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "promote", "churn", "1", "--reason", MARKUP)[0] == 0
    for argv in (("versions", "churn"), ("show", "churn", "--quick"), ("audit", "log")):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        assert MARKUP in out, argv


def test_an_error_naming_bracketed_input_repeats_it_whole(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "show", "churn[onnx]")
    assert code == 1
    assert err.startswith("error: invalid model reference 'churn[onnx]'")
    assert out == ""
