"""A request's consent, read from its header or its body member by the one rule every path uses."""

from __future__ import annotations

import pytest

from modelward.errors import ConfigError
from modelward.validation import ConsentRule, RequestInvalid


@pytest.mark.parametrize(("header", "expected"), [(b"true", True), (b"False", False), (" TRUE ", True)])
def test_the_header_says_true_or_false_in_any_case(header: bytes | str, expected: bool) -> None:
    assert ConsentRule().take(header, {"features": {}}) is expected


def test_the_member_is_taken_out_of_the_body() -> None:
    body = {"features": {"age": 3}, "consent": False}
    assert ConsentRule().take(None, body) is False
    assert body == {"features": {"age": 3}}


def test_names_and_default_are_configurable() -> None:
    rule = ConsentRule(header="Privacy-Consent", field="gdpr", default=False)
    assert rule.header_key == b"privacy-consent"
    assert rule.take(None, {"features": {}}) is False
    body = {"features": {}, "gdpr": True, "consent": True}
    assert rule.take(None, body) is True
    assert body == {"features": {}, "consent": True}  # another name is left to validation


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (b"maybe", {"features": {}}),
        (b"", {"features": {}}),
        (None, {"features": {}, "consent": "false"}),
        (None, {"features": {}, "consent": 0}),
        (None, {"features": {}, "consent": None}),
        (b"true", {"features": {}, "consent": False}),
    ],
)
def test_anything_else_is_a_malformed_request(header: bytes | None, body: dict[str, object]) -> None:
    with pytest.raises(RequestInvalid, match=r"(?i)consent") as caught:
        ConsentRule().take(header, body)
    assert caught.value.kind == "malformed"


def test_a_body_that_is_not_an_object_is_left_to_validation() -> None:
    assert ConsentRule().take(None, [1, 2]) is True


@pytest.mark.parametrize("name", ["features", "inputs", "request_id", "key"])
def test_a_member_a_prediction_body_uses_cannot_carry_consent(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ConsentRule(field=name)
