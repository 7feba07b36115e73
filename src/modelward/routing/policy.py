"""Weighted traffic splitting: which arm serves a request. Pure: no I/O, no state.

A routing key is hashed with the policy's salt into one of :data:`BUCKETS` buckets::

    bucket = int.from_bytes(blake2b(len(salt).to_bytes(8, "big") + salt + key, digest_size=8), "big")
             % BUCKETS                                  # salt and key UTF-8 encoded, len in bytes

and a table, computed once per (immutable) policy, names the arm that owns each bucket. Requests
without a key draw a uniformly random bucket instead, so they follow the same shares.

The table, and why it moves as little as possible
-------------------------------------------------

*Quotas.* Arm ``a`` owns ``q_a`` buckets: ``BUCKETS * w_a / sum(w)`` rounded by largest remainder
(exact rational arithmetic; ties go to the alphabetically first name), so the quotas sum to
``BUCKETS`` and ``|q_a / BUCKETS - w_a / sum(w)| < 1 / BUCKETS``. An arm of weight 0 has quota 0
(its remainder is 0, and a spare bucket only ever goes to a positive remainder).

*Layout.* Arms are sorted by name, ``a_1 < ... < a_n``; with boundaries ``c_0 = 0`` and
``c_k = q_1 + ... + q_k``, arm ``a_k`` owns buckets ``[c_(k-1), c_k)``. The table depends only on
the names and the quotas: never on the order of the spec, the process or the Python version.
(The salted hash already scatters keys uniformly over the buckets, so permuting bucket numbers
would change no count below.)

*Movement.* The owner of bucket ``b`` is ``a_k`` with ``k = 1 + #{0 < k' < n : c_k' <= b}``.
Compare two policies with boundaries ``c`` and ``c'``: if ``b`` lies in ``[min(c_k, c'_k),
max(c_k, c'_k))`` for no ``k``, the count is the same and ``b`` keeps its arm. Hence only buckets
in the union of those intervals move (at most ``sum_k |c_k - c'_k|``), and:

1. A policy of two arms, one growing by ``d``, the other shrinking by ``d`` (more generally: only
   two arms change quota, and every arm between them by name has quota 0 before and after): the
   boundaries that move sit together and move together by ``d``; exactly the ``d`` buckets they
   pass move, all from the shrinking arm into the growing one. No scheme can move fewer
   (30/70 -> 40/60 moves exactly 1,000 buckets; 50/50 -> 0/100 exactly the first arm's 5,000).
2. Adding or removing a weight-0 arm changes no quota and no boundary: nothing moves.
3. Reordering the arms in the spec changes nothing: the layout sorts by name.
4. Moving ``d`` buckets between arms ``a_i`` and ``a_j`` (``i < j``), others unchanged, shifts the
   ``j - i - 1`` arms between them by ``d``: at most ``(j - i) * d`` buckets move.

Point 4 cannot be avoided. With three arms A, B, C, suppose every pairwise transfer moved only
buckets between the two arms concerned. Transfers between A and B leave C's set alone and connect
all quota vectors with the same ``q_C``, so C's set is a function of ``q_C`` alone; likewise for A
and B. Quotas (1, 0, N-1) and (0, 1, N-1) then force A's 1-bucket set and B's 1-bucket set both to
be the complement of C's (N-1)-bucket set, yet (1, 1, N-2) needs them disjoint. So no scheme that
gives exact quotas from the weights alone can be minimal for every pair; this one is minimal for
every pair of name-neighbours, for any number of arms (weighted rendezvous hashing is not minimal
for pairs either, and its shares are off by sampling noise).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import chain, repeat

from modelward.errors import (
    RoutingError,  # importable here as before
)

__all__ = ["BUCKETS", "Arm", "RoutingError", "SplitPolicy", "moved_buckets"]

BUCKETS = 10_000
"""Size of the bucket space; a share is a whole number of buckets (0.01 % steps)."""


@dataclass(frozen=True, slots=True)
class Arm:
    """One way a request can go: ``name`` ("champion", "canary", ...), ``target`` ("2", "@champion")
    and a relative ``weight`` (finite, >= 0; stored as a float)."""

    name: str
    target: str
    weight: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RoutingError(f"an arm needs a non-empty name, got {self.name!r}")
        if not isinstance(self.target, str) or not self.target:
            raise RoutingError(f"arm '{self.name}' needs a non-empty target, got {self.target!r}")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise RoutingError(f"arm '{self.name}' has weight {weight!r}; a weight is a number")
        if not math.isfinite(weight) or weight < 0:
            raise RoutingError(f"arm '{self.name}' has weight {weight!r}; weights must be finite and >= 0")
        object.__setattr__(self, "weight", float(weight))


@dataclass(frozen=True, slots=True)
class SplitPolicy:
    """Weighted split of traffic over ``arms``; ``salt`` makes splits of different experiments
    independent (two policies with the same salt put a key in the same bucket)."""

    arms: tuple[Arm, ...]
    salt: str = ""
    _prefix: bytes = field(init=False, repr=False, compare=False)
    _quotas: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _arm_table: tuple[Arm, ...] = field(init=False, repr=False, compare=False)
    _name_table: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        arms = tuple(self.arms)
        if not arms:
            raise RoutingError("a split policy needs at least one arm")
        for arm in arms:
            if not isinstance(arm, Arm):
                raise RoutingError(f"a split policy's arms must be Arm objects, got {arm!r}")
        names = [arm.name for arm in arms]
        duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
        if duplicates:
            raise RoutingError(f"arm names must be unique; repeated: {', '.join(duplicates)}")
        if not isinstance(self.salt, str):
            raise RoutingError(f"the salt must be a string, got {self.salt!r}")
        if all(arm.weight == 0 for arm in arms):
            raise RoutingError(f"every arm has weight 0 ({', '.join(names)}); at least one must be > 0")
        quotas = _quotas(arms)
        ordered = sorted(zip(arms, quotas, strict=True), key=lambda pair: pair[0].name)
        table = tuple(chain.from_iterable(repeat(arm, q) for arm, q in ordered))
        salt = self.salt.encode("utf-8", "surrogatepass")
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "_prefix", len(salt).to_bytes(8, "big") + salt)
        object.__setattr__(self, "_quotas", quotas)
        object.__setattr__(self, "_arm_table", table)
        object.__setattr__(self, "_name_table", tuple(arm.name for arm in table))

    def bucket(self, key: str) -> int:
        """The bucket (``0 .. BUCKETS-1``) of ``key``: the same in every process and release."""
        if not isinstance(key, str):
            raise TypeError(f"a routing key is a str, got {type(key).__name__}")
        data = self._prefix + key.encode("utf-8", "surrogatepass")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % BUCKETS

    def assign(self, key: str | None, *, rng: random.Random | None = None) -> Arm:
        """The arm serving a request: sticky per ``key``; per request (weighted random, from ``rng``
        or the ``random`` module) when ``key`` is None. An empty string is a key like any other."""
        if key is None:
            # Not security-sensitive: picks an arm for a keyless request.
            index = rng.randrange(BUCKETS) if rng is not None else random.randrange(BUCKETS)  # noqa: S311
            return self._arm_table[index]
        return self._arm_table[self.bucket(key)]

    def shares(self) -> dict[str, float]:
        """Each arm's actual share of the buckets (weights normalised, quantised), in spec order."""
        return {arm.name: q / BUCKETS for arm, q in zip(self.arms, self._quotas, strict=True)}

    def table(self) -> tuple[str, ...]:
        """The arm name owning each bucket (``BUCKETS`` entries, computed once per policy)."""
        return self._name_table

    def with_weights(self, weights: Mapping[str, float]) -> SplitPolicy:
        """The same arms and salt with new weights; arms not named in ``weights`` keep theirs."""
        unknown = sorted(set(weights) - {arm.name for arm in self.arms})
        if unknown:
            known = ", ".join(arm.name for arm in self.arms)
            raise RoutingError(f"no arm named {', '.join(unknown)} (arms: {known})")
        arms = tuple(replace(arm, weight=weights.get(arm.name, arm.weight)) for arm in self.arms)
        return SplitPolicy(arms, self.salt)


def moved_buckets(old: SplitPolicy, new: SplitPolicy) -> dict[tuple[str, str], int]:
    """How many buckets change arm from ``old`` to ``new``: ``(from_arm, to_arm) -> count``; buckets
    that stay are not listed. Both policies must share a salt (else buckets mean different keys)."""
    if old.salt != new.salt:
        raise RoutingError(
            f"cannot compare policies with different salts ({old.salt!r} vs {new.salt!r}): "
            "a salt change re-hashes every key"
        )
    moves = Counter((a, b) for a, b in zip(old.table(), new.table(), strict=True) if a != b)
    return dict(sorted(moves.items()))


def _quotas(arms: tuple[Arm, ...]) -> tuple[int, ...]:
    """Buckets per arm (aligned with ``arms``): largest remainder on exact fractions."""
    weights = [Fraction(arm.weight) for arm in arms]
    total = sum(weights, Fraction(0))
    exact = [w * BUCKETS / total for w in weights]
    quotas = [math.floor(e) for e in exact]
    spare = BUCKETS - sum(quotas)
    by_remainder = sorted(range(len(arms)), key=lambda i: (-(exact[i] - quotas[i]), arms[i].name))
    for i in by_remainder[:spare]:
        quotas[i] += 1
    return tuple(quotas)
