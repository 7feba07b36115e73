"""Code blocks of a Markdown page, and the shell commands in them, for the tests that run them."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
MARKER = re.compile(r"<!--\s*(run only|not run|in the background):\s*(.*?)\s*-->\s*$", re.DOTALL)


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: str | None  # "run only", "not run" or "in the background", from the line before
    note: str  # what follows the marker's colon


def blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order, with the marker comment on the line before it."""
    out = []
    for match in FENCE.finditer(text):
        last = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(last)
        kind, note = (marker.group(1), marker.group(2)) if marker else (None, "")
        line = text.count("\n", 0, match.start()) + 1
        out.append(Block(line, match.group(1), match.group(2), kind, note))
    return out


def section(text: str, heading: str) -> str:
    """The part of ``text`` from the line ``heading`` to the next heading of the same level."""
    start = text.index(f"\n{heading}\n") + 1
    level = heading.split(" ", 1)[0]
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start : end + 1 if end >= 0 else len(text)]


def commands_of(code: str) -> list[str]:
    """A shell block's commands: a command goes on over lines while a quote is open or a line ends
    in a backslash; blank and comment-only lines are not commands."""
    out: list[str] = []
    pending = ""
    for line in code.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append(pending)
        pending = ""
    if pending:
        raise ValueError(f"unterminated command: {pending}")
    return out
