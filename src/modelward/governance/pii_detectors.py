"""Detectors of personal data in one text value, column-name hints and masked examples.

Each detector finds candidates with a pattern and keeps only those a checksum or a parser accepts:
phone numbers through ``phonenumbers`` (its matcher, at the ``VALID`` leniency), payment cards by the
Luhn check, IBANs by their country's length and format and the mod-97 check, US social security
numbers without the never-issued ranges (all three through ``python-stdnum``), IP addresses through
:mod:`ipaddress`. Dates of birth are only reported where something says the date is one: a column
whose name hints at it, or a label before the date in the text ("born", "DOB", "date of birth"), so
that every date in a data set is not flagged.

Presidio's pattern recognizers do the same checks but come with spaCy as a hard dependency (the
analyzer package imports it) and tldextract (which fetches the public suffix list on first use), so
they are not used here: docs/privacy.md says more.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

__all__ = ["KINDS", "Kind", "Match", "column_hint", "find", "mask"]

Kind = Literal["email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "dob"]
KINDS: Final[tuple[Kind, ...]] = ("email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "dob")


@dataclass(frozen=True, slots=True)
class Match:
    kind: Kind
    start: int
    end: int
    text: str


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_SSN_PLAIN = re.compile(r"^\d{9}$")
# A run of digits and separators standing on its own: what the phone matcher could take (it costs
# tens of microseconds a value, so an id such as "C69427896" is not handed to it).
_PHONE_RUN = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d[\d\s().\-/]{5,}\d(?![A-Za-z0-9])")
_DECIMAL = re.compile(r"^\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*$")  # an amount, never PII on its own
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_DATE = re.compile(
    r"(?<!\d)(?:(?P<iso>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4}))(?!\d)"
)
_DOB_LABEL = re.compile(
    r"(?:\bborn\b|\bdob\b|date of birth|birth ?date|\bbirthday\b|\bd\.o\.b\b)", re.IGNORECASE
)

# Column names that say what a column holds, by the words in them (snake, kebab, camel or spaced).
_HINTS: Final[dict[str, str]] = {
    "email": "email",
    "e_mail": "email",
    "mail": "email",
    "phone": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "tel": "phone",
    "msisdn": "phone",
    "ssn": "ssn",
    "social_security": "ssn",
    "dob": "dob",
    "birthdate": "dob",
    "birth_date": "dob",
    "date_of_birth": "dob",
    "birthday": "dob",
    "iban": "iban",
    "card_number": "card",
    "credit_card": "card",
    "cc_number": "card",
    "pan": "card",
    "ip": "ipv4",
    "ip_address": "ipv4",
    "first_name": "name",
    "last_name": "name",
    "full_name": "name",
    "surname": "name",
    "passport": "passport",
    "address": "address",
    "street": "address",
    "postcode": "address",
    "zip_code": "address",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def column_hint(name: str) -> str | None:
    """What a column's name says it holds (``"email"``, ``"ssn"``, ``"dob"``, ``"name"``, ...), or None.

    The name is split into words; a hint is a word or a run of adjacent words in :data:`_HINTS`
    (``customer_email`` -> email, ``DateOfBirth`` -> dob; ``mailbox_size`` -> none)."""
    words = [w for w in re.split(r"[^a-z0-9]+", _CAMEL.sub("_", str(name)).lower()) if w]
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            hint = _HINTS.get("_".join(words[i : i + size]))
            if hint is not None:
                return hint
    return None


def _luhn(digits: str) -> bool:
    from stdnum import luhn

    return bool(luhn.is_valid(digits))


def _dob(m: re.Match[str]) -> bool:
    if m.group("iso"):
        y, mo, d = int(m.group("iso")), int(m.group("im")), int(m.group("id"))
        candidates = [(y, mo, d)]
    else:
        y, a, b = int(m.group("y")), int(m.group("a")), int(m.group("b"))
        candidates = [(y, b, a), (y, a, b)]  # day first (most of the world) or month first (US)
    for year, month, day in candidates:
        try:
            born = date(year, month, day)
        except ValueError:
            continue
        if born.year >= 1900 and born <= date.today():
            return True
    return False


def _phones(text: str, region: str, found: list[Match]) -> None:
    import phonenumbers

    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    for pm in matcher:
        found.append(Match("phone", pm.start, pm.end, pm.raw_string))


def find(text: str, *, hint: str | None = None, region: str = "US") -> list[Match]:
    """The personal data in ``text``, in order, without overlaps (the first kind of :data:`KINDS`
    wins). ``hint`` is the column's :func:`column_hint`: ``"dob"`` lets bare dates count, ``"ssn"``
    undashed nine-digit numbers. ``region`` is where phone numbers without a ``+`` country code are
    read as national numbers."""
    if len(text) < 6 or _DECIMAL.match(text):
        return []
    digits = sum(c.isdigit() for c in text)
    found: list[Match] = []
    if "@" in text:
        found.extend(Match("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text))
    if digits >= 9:
        from stdnum import iban
        from stdnum.us import ssn

        for m in _IBAN.finditer(text):
            if iban.is_valid(m.group()):
                found.append(Match("iban", m.start(), m.end(), m.group()))
        for m in _CARD.finditer(text):
            plain = re.sub(r"[ -]", "", m.group())
            if len(set(plain)) > 1 and _luhn(plain):
                found.append(Match("card", m.start(), m.end(), m.group()))
        for m in _SSN.finditer(text):
            if ssn.is_valid(m.group()):
                found.append(Match("ssn", m.start(), m.end(), m.group()))
        if hint == "ssn" and _SSN_PLAIN.match(text.strip()) and ssn.is_valid(text.strip()):
            found.append(Match("ssn", 0, len(text), text))
    if digits >= 4 and "." in text:
        for m in _IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            found.append(Match("ipv4", m.start(), m.end(), m.group()))
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            found.append(Match("ipv6", m.start(), m.end(), m.group()))
    if digits >= 6 and (hint == "dob" or _DOB_LABEL.search(text)):
        for m in _DATE.finditer(text):
            if _dob(m) and (hint == "dob" or _DOB_LABEL.search(text, max(0, m.start() - 40), m.start())):
                found.append(Match("dob", m.start(), m.end(), m.group()))
    if digits >= 7 and _PHONE_RUN.search(text):
        _phones(text, region, found)
    return _without_overlaps(found)


def _without_overlaps(found: list[Match]) -> list[Match]:
    if len(found) < 2:
        return found
    rank = {kind: i for i, kind in enumerate(KINDS)}
    kept: list[Match] = []
    for m in sorted(found, key=lambda m: (rank[m.kind], m.start)):
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


def _stars(text: str, keep_last: int) -> str:
    """Every letter and digit of ``text`` but the last ``keep_last`` as ``*``; separators stay."""
    total = sum(c.isalnum() for c in text)
    out, seen = [], 0
    for c in text:
        if c.isalnum():
            seen += 1
            out.append(c if seen > total - keep_last else "*")
        else:
            out.append(c)
    return "".join(out)


def mask(kind: str, text: str) -> str:
    """An example safe to print: ``j***@e***.com``, ``**** **** **** 1234``, ``***-**-6789``."""
    if kind == "email":
        local, _, domain = text.partition("@")
        labels = domain.split(".")
        head = ".".join(f"{label[:1]}***" for label in labels[:-1])
        return f"{local[:1]}***@{head}.{labels[-1]}"
    if kind in ("card", "ssn"):
        return _stars(text, 4)
    if kind == "iban":
        compact = text.replace(" ", "")
        return compact[:4] + " " + "*" * (len(compact) - 6) + compact[-2:]
    if kind == "phone":
        return _stars(text, 2)
    if kind == "ipv4":
        return text.split(".")[0] + ".*.*.*"
    if kind == "ipv6":
        return text.split(":")[0] + ":*:*"
    if kind == "dob":
        return re.sub(r"\d", "*", text)
    return "*" * min(len(text), 8)
