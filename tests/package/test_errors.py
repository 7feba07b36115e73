"""Every public exception of the package lives in modelward.errors (and is importable where it was),
and HTTP statuses are chosen in modelward.serving only."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import modelward.errors as errors

SRC = Path(__file__).resolve().parents[2] / "src" / "modelward"
BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def test_every_public_exception_is_defined_in_errors() -> None:
    exceptions = {name for name in errors.__all__ if isinstance(getattr(errors, name), type)}
    exceptions = {n for n in exceptions if issubclass(getattr(errors, n), BaseException)} | BUILTIN_ERRORS
    outside: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        # A private module's exception that its package does not export is internal control flow.
        exported = (path.parent / "__init__.py").read_text() if path.name.startswith("_") else None
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            if exported is not None and f'"{node.name}"' not in exported:
                continue
            if _base_names(node) & exceptions:
                outside.append(f"{path.relative_to(SRC)}: {node.name}")
    assert outside == [], "define these in modelward/errors.py (import them where they were):\n" + "\n".join(
        outside
    )


def test_moved_exceptions_are_still_importable_from_their_old_modules() -> None:
    from modelward.drift import ProfileError, ProfileMismatch
    from modelward.feedback import ABTestError, FeedbackInvalid
    from modelward.monitoring.prediction_log import WriterProcessError
    from modelward.registry.deployments import StaleDeployment
    from modelward.routing import RoutingError
    from modelward.runtime.batcher import Overloaded
    from modelward.serving.problems import BodyTooLarge, ModelFailed, ModelLoading, ModelNotServed
    from modelward.validation import FieldProblem, RequestInvalid

    moved = [
        ProfileError, ProfileMismatch, ABTestError, FeedbackInvalid, WriterProcessError, StaleDeployment,
        RoutingError, Overloaded, BodyTooLarge, ModelFailed, ModelLoading, ModelNotServed, FieldProblem,
        RequestInvalid,
    ]  # fmt: skip
    for kind in moved:
        assert kind is getattr(errors, kind.__name__)
        if issubclass(kind, BaseException):
            assert issubclass(kind, errors.ModelwardError), kind


def test_a_request_error_says_what_is_wrong_not_which_status_answers() -> None:
    invalid = errors.RequestInvalid([errors.FieldProblem("x")], kind="malformed")
    assert not hasattr(invalid, "status")
    for path in sorted((SRC / "validation").rglob("*.py")):
        assert "status" not in path.read_text(), path
