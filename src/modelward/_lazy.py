"""What many modules name but few runs use, imported on first use.

A package ``__init__`` that imports every module of the package makes whoever needs one of them pay
for all: ``modelward versions`` read the registry's types and paid for scipy.stats through the drift
detection that registration uses. :func:`lazy_exports` keeps a package's names (``from
modelward.drift import DriftReport`` works as before; a ``TYPE_CHECKING`` import beside it keeps them
visible to type checkers) and imports each module when one of its names is first read (PEP 562).

:func:`scipy_stats` is SciPy's statistics, which take most of a second to import: the registry, the
controller, the server and the CLI's read commands import modules that name them, and only a process
that computes a statistic pays for them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports", "scipy_stats"]


def lazy_exports(
    package: str, where: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose names ``where`` lists by submodule
    (``{"detect": ("DriftReport", ...)}``); a name read once is kept in the package's namespace."""
    home = {name: f"{package}.{module}" for module, names in where.items() for name in names}
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *home})

    return __getattr__, __dir__


def scipy_stats() -> Any:
    """The ``scipy.stats`` module (imported by the first call)."""
    from scipy import stats

    return stats
