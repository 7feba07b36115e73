"""What a prediction's answer carries besides the label: ``register(..., response={...})``.

``probability_name`` names a binary classifier's positive-class probability, so that each answer
has it as a member of its own (``{"churn_probability": 0.42}``) beside ``probabilities``.
``positive_class`` says which class is the positive one (by default the second in the model's class
order: ``1`` of 0/1 labels, ``True`` of booleans, the later of two strings).

The options travel as version tags (``modelward.response.*``, so ``--tag`` works as well) and are
checked and copied into the registration record, whose bytes are pinned: what serving reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from modelward.errors import RegistrationError
from modelward.registry.types import TAG_PREFIX

__all__ = ["RESPONSE_TAGS", "positive_probability", "response_tags", "with_response"]

_PREFIX: Final = TAG_PREFIX + "response."
RESPONSE_TAGS: Final = {
    "probability_name": _PREFIX + "probability_name",
    "positive_class": _PREFIX + "positive_class",
}
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Members an answer's row already has.
_TAKEN: Final = frozenset({"request_id", "prediction", "probabilities", "arm", "version"})


def response_tags(response: Mapping[str, Any] | None) -> dict[str, str]:
    """``register(response=...)`` as version tags; unknown options and bad names are refused."""
    if not response:
        return {}
    unknown = sorted(set(response) - set(RESPONSE_TAGS))
    if unknown:
        raise RegistrationError(
            f"unknown response option(s) {', '.join(unknown)}; known: {', '.join(RESPONSE_TAGS)}"
        )
    name = response.get("probability_name")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in _TAKEN:
        raise RegistrationError(
            f"response probability_name must be an identifier of at most 64 characters other than "
            f"{', '.join(sorted(_TAKEN))}; got {name!r}"
        )
    return {RESPONSE_TAGS[k]: str(v) for k, v in response.items()}


def with_response(record: dict[str, Any], tags: Mapping[str, str] | None) -> dict[str, Any]:
    """The record with its response options from ``tags``, checked against the model's classes."""
    options = {k: (tags or {})[t] for k, t in RESPONSE_TAGS.items() if t in (tags or {})}
    if not options:
        return record
    response_tags(options)  # the tags may have come by --tag: the same checks
    classes = [str(c) for c in record.get("classes") or ()]
    if len(classes) != 2:
        raise RegistrationError(
            f"response probability_name needs a binary classifier; this model has {len(classes)} classes"
        )
    positive = options.get("positive_class", classes[1])
    if positive not in classes:
        raise RegistrationError(f"response positive_class {positive!r} is not one of the classes {classes}")
    return {
        **record,
        "response": {"probability_name": options["probability_name"], "positive_class": positive},
    }


def positive_probability(record: Mapping[str, Any], classes: Sequence[Any]) -> tuple[str, int] | None:
    """(member name, probability column) of a served binary classifier's named probability, or None."""
    response = record.get("response")
    if not isinstance(response, dict) or len(classes) != 2:
        return None
    names = [str(c) for c in classes]
    positive = str(response.get("positive_class"))
    return (str(response["probability_name"]), names.index(positive)) if positive in names else None
