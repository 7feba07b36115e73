"""Model references: ``name``, ``name@alias``, ``name:version`` (and MLflow's ``models:/...`` forms)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelward.errors import InvalidReference

__all__ = ["ModelRef", "parse_ref", "validate_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/ ]{0,255}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,255}$")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed reference: exactly one of ``version`` and ``alias`` is set, or neither (default)."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def validate_name(name: str) -> str:
    if not _NAME.match(name) or name.strip() != name:
        raise InvalidReference(
            name, "a model name is 1-256 letters, digits, '_', '-', '.', '/' or spaces, not starting with one"
        )
    return name


def validate_alias(ref: str, alias: str) -> str:
    if not _ALIAS.match(alias):
        raise InvalidReference(ref, f"alias '{alias}' must be letters, digits, '_' or '-'")
    if alias.lower() == "latest" or (alias[0] in "vV" and alias[1:].isdigit()):
        # MLflow reserves these spellings.
        raise InvalidReference(ref, f"alias '{alias}' is reserved")
    return alias


def parse_ref(ref: str) -> ModelRef:
    text = ref.strip()
    if not text:
        raise InvalidReference(ref, "it is empty")
    if text.startswith("models:/"):
        text = text.removeprefix("models:/")
        if "@" not in text and "/" in text:
            name, _, version = text.rpartition("/")
            text = f"{name}:{version}"
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(validate_name(name), alias=validate_alias(ref, alias))
    if ":" in text:
        name, _, version = text.rpartition(":")
        if not version.isdigit() or int(version) < 1:
            raise InvalidReference(ref, f"version '{version}' is not a positive integer")
        return ModelRef(validate_name(name), version=str(int(version)))
    return ModelRef(validate_name(text))
