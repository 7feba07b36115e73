"""Canonical JSON of logged values, text a store can hold, and per-field redaction of inputs before
they are logged."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

from modelward.errors import ConfigError

__all__ = [
    "JSON_OPTIONS",
    "RedactAction",
    "Redactor",
    "canonical_json",
    "json_fallback",
    "storable",
    "storable_text",
]

RedactAction = Literal["drop", "hash"]
_ACTIONS: frozenset[str] = frozenset({"drop", "hash"})
JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def json_fallback(value: Any) -> Any:
    if getattr(value, "ndim", 0):  # an array (a list or tensor per row): .item() takes one value only
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars orjson does not know (float16)
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities become null, unknown types their str()."""
    return orjson.dumps(value, default=json_fallback, option=JSON_OPTIONS).decode()


def storable_text(text: str, limit: int | None = None) -> str:
    """``text`` as every store can hold it: lone UTF-16 surrogates (which no UTF-8 holds; JSON's
    ``"\\ud800"`` escape decodes to one) written as the escape ``\\ud800``, NUL (PostgreSQL refuses
    it in text) as ``\\x00``, and cut to ``limit`` characters (a VARCHAR's length)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


def storable(value: Any) -> Any:
    """``value`` with every string in it (keys included) made :func:`storable_text`: what a logged
    value whose JSON cannot be written becomes."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, Mapping):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [storable(v) for v in sorted(value, key=repr)]
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


class Redactor:
    """Per-field redaction of inputs, applied in :meth:`PredictionLogger.submit` before queueing.

    ``"drop"`` removes the field; ``"hash"`` replaces its value by ``"sha256:"`` and the first 16 hex
    digits of ``sha256(salt + canonical_json(value))``: equal values stay equal (joins, counts still
    work) but cannot be read back without guessing them. Use a secret salt for guessable values.
    """

    def __init__(self, rules: Mapping[str, RedactAction], *, salt: str = "") -> None:
        unknown = {field: action for field, action in rules.items() if action not in _ACTIONS}
        if unknown:
            field, action = next(iter(unknown.items()))
            raise ConfigError(f"unknown redaction {action!r} for field {field!r}: use 'drop' or 'hash'")
        self.rules: dict[str, RedactAction] = dict(rules)
        self._salt = salt

    @classmethod
    def from_spec(cls, spec: str, *, salt: str = "") -> Redactor:
        """Parse ``"email=drop,phone=hash"`` (the settings and CLI form); an empty string means no rules."""
        rules: dict[str, RedactAction] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            field, sep, action = item.partition("=")
            field, action = field.strip(), action.strip()
            if not sep or not field:
                raise ConfigError(f"invalid redaction {item!r}: expected FIELD=drop or FIELD=hash")
            if action not in _ACTIONS:
                raise ConfigError(f"unknown redaction {action!r} for field {field!r}: use 'drop' or 'hash'")
            rules[field] = "drop" if action == "drop" else "hash"
        return cls(rules, salt=salt)

    def hash_value(self, value: Any) -> str:
        try:
            text = canonical_json(value)
        except TypeError:  # text JSON cannot hold (a lone surrogate): the hash of the escaped form
            text = canonical_json(storable(value))
        digest = hashlib.sha256((self._salt + text).encode()).hexdigest()
        return "sha256:" + digest[:16]

    def apply(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``inputs``; the argument is left untouched."""
        if not self.rules:
            return inputs
        out: dict[str, Any] = {}
        for field, value in inputs.items():
            action = self.rules.get(field)
            if action is None:
                out[field] = value
            elif action == "hash":
                out[field] = self.hash_value(value)
        return out

    def apply_columns(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any]]:
        """:meth:`apply` on columns (name -> values): dropped columns go, hashed ones are mapped."""
        if not self.rules:
            return dict(columns)
        out: dict[str, Sequence[Any]] = {}
        for field, values in columns.items():
            action = self.rules.get(field)
            if action is None:
                out[field] = values
            elif action == "hash":
                out[field] = [self.hash_value(v) for v in values]
        return out

    def __repr__(self) -> str:  # never shows the salt
        return f"Redactor({self.rules!r})"
