"""Canonical JSON of logged values, text a store can hold, and redaction of inputs before they are
logged: per field, and per kind of personal data found in any field (the PII detectors of
:mod:`modelward.governance.pii_detectors`)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from modelward.errors import ConfigError
from modelward.governance.pii_detectors import KINDS, column_hint, find

if TYPE_CHECKING:
    from modelward.config import Settings

__all__ = [
    "JSON_OPTIONS",
    "RedactAction",
    "Redactor",
    "canonical_json",
    "json_fallback",
    "redaction_secret",
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


SECRET_FILE = "redact-secret"  # noqa: S105 - a file name, not a secret
_KIND_PREFIX = "kind:"


def redaction_secret(settings: Settings) -> bytes:
    """The key of hashed redaction: ``MODELWARD_LOG_REDACT_SECRET``, else the older
    ``MODELWARD_LOG_SALT``, else a random key kept in ``<home>/redact-secret`` (created on first use,
    readable by its owner only), so that tokens stay equal across restarts and the workers of one
    home. Replicas on different machines must share ``MODELWARD_LOG_REDACT_SECRET``."""
    if settings.log_redact_secret is not None:
        return settings.log_redact_secret.get_secret_value().encode()
    if settings.log_salt:
        return settings.log_salt.encode()
    path = Path(settings.ensure_home()) / SECRET_FILE
    if not path.exists():
        # Written whole under a private name, then linked into place: link never replaces a file, so
        # the workers of one home that start together all end up reading the one key that won.
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode())
            with contextlib.suppress(FileExistsError):  # another worker's key won
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds no usable key: delete it or set MODELWARD_LOG_REDACT_SECRET")
    return key


class Redactor:
    """Redaction of inputs, applied in :meth:`PredictionLogger.submit` before queueing and to the
    columns live profiles count.

    Field rules (``{"email": "drop"}``) act on a field by name: ``"drop"`` removes it, ``"hash"``
    replaces its value by a token, ``"hmac:"`` and the first 32 hex digits of
    ``HMAC-SHA256(secret, canonical_json(value))``. Kind rules (``{"card": "drop"}``) act on any other
    field whose text holds that kind of personal data: ``"drop"`` removes the field (in a batch of
    rows, whose columns cannot lose rows, the value becomes null), ``"hash"``
    replaces each occurrence in the text by its token (a field that is only an e-mail address becomes
    the token of the address). Equal values get equal tokens, so joins and distinct counts still
    work; without the secret a token cannot be checked against a guess.
    """

    def __init__(
        self,
        rules: Mapping[str, RedactAction],
        *,
        kinds: Mapping[str, RedactAction] | None = None,
        secret: str | bytes = b"",
    ) -> None:
        kinds = dict(kinds or {})
        for where, table in (("field", rules), ("kind", kinds)):
            for name, action in table.items():
                if action not in _ACTIONS:
                    raise ConfigError(
                        f"unknown redaction {action!r} for {where} {name!r}: use 'drop' or 'hash'"
                    )
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ConfigError(
                f"unknown PII kind {unknown[0]!r} in a redaction: use one of {', '.join(KINDS)}"
            )
        self.rules: dict[str, RedactAction] = dict(rules)
        self.kinds: dict[str, RedactAction] = kinds
        self._key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not self._key and "hash" in {*self.rules.values(), *self.kinds.values()}:
            raise ConfigError(
                "hash redaction needs a secret: set MODELWARD_LOG_REDACT_SECRET (the server makes one "
                "under its home when it is unset)"
            )

    @property
    def active(self) -> bool:
        return bool(self.rules or self.kinds)

    @classmethod
    def from_spec(cls, spec: str, *, secret: str | bytes = b"") -> Redactor:
        """Parse ``"email=drop,phone=hash,kind:card=drop"`` (the settings and CLI form); an empty
        string means no rules."""
        rules: dict[str, RedactAction] = {}
        kinds: dict[str, RedactAction] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, action = item.partition("=")
            name, action = name.strip(), action.strip()
            if not sep or not name or name == _KIND_PREFIX.rstrip(":"):
                raise ConfigError(
                    f"invalid redaction {item!r}: expected FIELD=drop|hash or kind:KIND=drop|hash"
                )
            if action not in _ACTIONS:
                raise ConfigError(f"unknown redaction {action!r} for {name!r}: use 'drop' or 'hash'")
            act: RedactAction = "drop" if action == "drop" else "hash"
            if name.startswith(_KIND_PREFIX):
                kinds[name.removeprefix(_KIND_PREFIX).strip()] = act
            else:
                rules[name] = act
        return cls(rules, kinds=kinds, secret=secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        """``MODELWARD_LOG_REDACT`` with the key of :func:`redaction_secret` (made only when a rule
        hashes)."""
        probe = cls.from_spec(settings.log_redact, secret=b"-")
        hashes = "hash" in {*probe.rules.values(), *probe.kinds.values()}
        return cls.from_spec(settings.log_redact, secret=redaction_secret(settings) if hashes else b"")

    def hash_value(self, value: Any) -> str:
        try:
            text = canonical_json(value)
        except TypeError:  # text JSON cannot hold (a lone surrogate): the hash of the escaped form
            text = canonical_json(storable(value))
        return "hmac:" + hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _scrub(self, field: str, value: Any, hint: str | None) -> tuple[bool, Any]:
        """(keep, value) of one value under the kind rules; nested lists and objects are walked."""
        if isinstance(value, str):
            matches = [m for m in find(value, hint=hint) if m.kind in self.kinds]
            if not matches:
                return True, value
            if any(self.kinds[m.kind] == "drop" for m in matches):
                return False, None
            out, last = [], 0
            for m in matches:
                out += [value[last : m.start], self.hash_value(m.text)]
                last = m.end
            out.append(value[last:])
            return True, "".join(out)
        if isinstance(value, int) and not isinstance(value, bool) and hint is not None:
            # A number is read as PII only where the field's name says it may be (as the scanner does).
            keep, scrubbed = self._scrub(field, str(value), hint)
            return keep, value if scrubbed == str(value) else scrubbed
        if isinstance(value, Mapping):
            out_map = {}
            for k, v in value.items():
                keep, v2 = self._scrub(field, v, column_hint(str(k)) or hint)
                if not keep:
                    return False, None
                out_map[k] = v2
            return True, out_map
        if isinstance(value, list | tuple):
            items = []
            for v in value:
                keep, v2 = self._scrub(field, v, hint)
                if not keep:
                    return False, None
                items.append(v2)
            return True, items
        return True, value

    def apply(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``inputs``; the argument is left untouched."""
        if not self.rules and not self.kinds:
            return inputs
        out: dict[str, Any] = {}
        for field, value in inputs.items():
            action = self.rules.get(field)
            if action is None:
                if self.kinds:
                    keep, value = self._scrub(field, value, column_hint(field))
                    if not keep:
                        continue
                out[field] = value
            elif action == "hash":
                out[field] = self.hash_value(value)
        return out

    def apply_columns(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any]]:
        """:meth:`apply` on columns (name -> values): dropped columns go, hashed ones are mapped. A
        kind rule that drops leaves ``None`` in the rows it applies to (a column cannot lose rows)."""
        if not self.rules and not self.kinds:
            return dict(columns)
        out: dict[str, Sequence[Any]] = {}
        for field, values in columns.items():
            action = self.rules.get(field)
            if action is None:
                out[field] = self._scrub_column(field, values) if self.kinds else values
            elif action == "hash":
                out[field] = [self.hash_value(v) for v in values]
        return out

    def _scrub_column(self, field: str, values: Sequence[Any]) -> Sequence[Any]:
        hint = column_hint(field)
        kind = getattr(getattr(values, "dtype", None), "kind", "O")
        if kind in "fbc" or (kind in "iu" and hint is None):  # numbers are read as PII by name only
            return values
        out: list[Any] = []
        changed = False
        for value in values:
            keep, scrubbed = self._scrub(field, value, hint)
            scrubbed = scrubbed if keep else None
            changed = changed or scrubbed is not value
            out.append(scrubbed)
        return out if changed else values

    def __repr__(self) -> str:  # never shows the secret
        return f"Redactor({self.rules!r}, kinds={self.kinds!r})"
