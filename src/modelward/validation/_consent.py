"""A request's consent: the header or the top-level body member that carries it; private.

Every prediction path (the server's lane, its one-record hot path, the FastAPI routes, the Open
Inference Protocol route) reads consent through :meth:`ConsentRule.take`, which also removes the
member from the body: it is about the request, not a feature, and never reaches the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from modelward.errors import ConfigError
from modelward.validation._columns import FieldProblem, RequestInvalid, _describe, _preview
from modelward.validation._request import _MEMBERS

__all__ = ["ConsentRule"]

_TEXT: Final = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class ConsentRule:
    """Where a request says whether its inputs may be kept, and what holds when it says nothing.

    ``header`` (``X-Consent: true|false``, any case) or the body member ``field`` (a JSON boolean);
    both given must agree. ``default`` holds when neither is given."""

    header: str = "X-Consent"
    field: str = "consent"
    default: bool = True
    # The header's name as servers hand it over (lower case).
    header_key: bytes = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.field in _MEMBERS:
            raise ConfigError(
                f"the consent member cannot be named {self.field!r}: a prediction body uses that name"
            )
        object.__setattr__(self, "header_key", self.header.lower().encode("latin-1"))

    def from_header(self, value: bytes | str) -> bool:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        found = _TEXT.get(text.strip().lower())
        if found is None:
            raise RequestInvalid(
                [FieldProblem(f"the {self.header} header must be true or false, got {_preview(text)}")],
                title="invalid consent",
                kind="malformed",
            )
        return found

    def take(self, header: bytes | str | None, body: Any) -> bool:
        """The request's consent from its ``header`` value (None: absent) and its parsed ``body``,
        whose consent member (if it is an object with one) is removed here."""
        given = None if header is None else self.from_header(header)
        if type(body) is dict and self.field in body:
            value = body.pop(self.field)
            if type(value) is not bool:
                raise RequestInvalid(
                    [
                        FieldProblem(
                            f"'{self.field}' must be true or false, got {_describe(value)}", self.field
                        )
                    ],
                    title="invalid consent",
                    kind="malformed",
                )
            if given is not None and given != value:
                raise RequestInvalid(
                    [FieldProblem(f"the {self.header} header and '{self.field}' disagree", self.field)],
                    title="invalid consent",
                    kind="malformed",
                )
            given = value
        return self.default if given is None else given
