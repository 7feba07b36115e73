"""Sticky weighted splits: stable buckets, exact shares, minimal movement on weight changes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import pytest

from modelward.errors import ModelwardError
from modelward.routing import BUCKETS, Arm, RoutingError, SplitPolicy, moved_buckets

KEYS = [f"user-{i}" for i in range(100_000)]


def split(a: float, b: float, salt: str = "exp") -> SplitPolicy:
    return SplitPolicy((Arm("challenger", "3", a), Arm("champion", "@champion", b)), salt=salt)


def fractions(policy: SplitPolicy, keys: list[str]) -> dict[str, float]:
    counts = Counter(policy.assign(key).name for key in keys)
    return {name: n / len(keys) for name, n in counts.items()}


def test_100k_distinct_keys_split_30_70_land_within_one_point_of_the_weights() -> None:
    got = fractions(split(30, 70), KEYS)
    assert got["challenger"] == pytest.approx(0.30, abs=0.01)
    assert got["champion"] == pytest.approx(0.70, abs=0.01)


def test_shares_are_the_weights_quantised_to_whole_buckets() -> None:
    assert split(30, 70).shares() == {"challenger": 0.3, "champion": 0.7}
    assert split(0.3, 0.7).shares() == {"challenger": 0.3, "champion": 0.7}
    thirds = SplitPolicy((Arm("c", "1", 1), Arm("b", "2", 1), Arm("a", "3", 1))).shares()
    assert thirds == {"c": 0.3333, "b": 0.3333, "a": 0.3334}  # the spare bucket: first name wins ties
    with_zero = SplitPolicy((Arm("a", "1", 1), Arm("b", "2", 0))).shares()
    assert with_zero == {"a": 1.0, "b": 0.0}


def test_table_gives_each_arm_exactly_its_quota_and_is_computed_once() -> None:
    policy = split(1, 2)
    table = policy.table()
    assert len(table) == BUCKETS
    assert Counter(table) == {"challenger": 3333, "champion": 6667}
    assert policy.table() is table


def test_same_key_lands_on_the_same_arm_in_separate_processes() -> None:
    code = (
        "import json\n"
        "from modelward.routing import Arm, SplitPolicy\n"
        "p = SplitPolicy((Arm('challenger', '3', 30), Arm('champion', '@champion', 70)), salt='exp')\n"
        "print(json.dumps([[p.bucket(f'user-{i}'), p.assign(f'user-{i}').name] for i in range(1000)]))\n"
    )
    runs = []
    for hashseed in ("1", "2"):  # Python's hash() differs between these two; the split must not
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        runs.append(json.loads(out.stdout))
    here = split(30, 70)
    expected = [[here.bucket(key), here.assign(key).name] for key in KEYS[:1000]]
    assert runs[0] == runs[1] == expected
    assert {name for _, name in expected} == {"challenger", "champion"}


def test_bucket_is_the_documented_salted_blake2b_and_never_changes() -> None:
    def documented(salt: str, key: str) -> int:
        data = len(salt.encode()).to_bytes(8, "big") + salt.encode() + key.encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % BUCKETS

    policy = split(30, 70, salt="exp1")
    for key in ["", "a", "user-1", "ключ", "x" * 1000]:
        assert policy.bucket(key) == documented("exp1", key)
    # Pinned values: if these change, every sticky assignment in production moves.
    assert [policy.bucket(key) for key in ["", "a", "user-1"]] == [9822, 4582, 3212]
    # The salt is length-prefixed: ("ab", "c") and ("a", "bc") are different inputs.
    assert split(1, 1, salt="ab").bucket("c") != split(1, 1, salt="a").bucket("bc")


def test_changing_30_70_to_40_60_moves_about_10_percent_of_keys_all_into_the_grown_arm() -> None:
    old, new = split(30, 70), split(40, 60)
    moves = Counter(
        (a.name, b.name) for a, b in ((old.assign(k), new.assign(k)) for k in KEYS) if a.name != b.name
    )
    assert set(moves) == {("champion", "challenger")}
    assert 0.09 <= moves["champion", "challenger"] / len(KEYS) <= 0.11
    assert moved_buckets(old, new) == {("champion", "challenger"): 1000}
    assert moved_buckets(new, old) == {("challenger", "champion"): 1000}


def test_with_weights_builds_the_same_policy_as_the_new_spec() -> None:
    old = split(30, 70)
    new = old.with_weights({"challenger": 40, "champion": 60})
    assert new == split(40, 60)
    assert new.table() == split(40, 60).table()
    partial = old.with_weights({"challenger": 70})  # unnamed arms keep their weight
    assert partial.shares() == {"challenger": 0.5, "champion": 0.5}
    assert partial.salt == old.salt


def test_with_weights_refuses_unknown_arms() -> None:
    with pytest.raises(RoutingError, match=r"no arm named canary \(arms: challenger, champion\)"):
        split(30, 70).with_weights({"canary": 5})


def test_every_two_arm_weight_change_moves_exactly_the_difference_into_the_grown_arm() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a, b = rng.randint(0, 100), rng.randint(0, 100)
        c, d = rng.randint(0, 100), rng.randint(0, 100)
        if a + b == 0 or c + d == 0:
            continue
        old, new = split(a, b), split(c, d)
        grown = new.shares()["challenger"] - old.shares()["challenger"]
        expected = round(abs(grown) * BUCKETS)
        moves = moved_buckets(old, new)
        if expected == 0:
            assert moves == {}
        elif grown > 0:
            assert moves == {("champion", "challenger"): expected}
        else:
            assert moves == {("challenger", "champion"): expected}


def test_50_50_to_0_100_moves_only_the_first_arms_buckets() -> None:
    old, new = split(50, 50), split(0, 100)
    assert moved_buckets(old, new) == {("challenger", "champion"): 5000}
    assert all(new.assign(k).name == "champion" for k in KEYS[:10_000])


def test_adding_a_third_arm_with_weight_0_moves_nothing() -> None:
    old = split(30, 70)
    for name in ("aaa", "canary", "zzz"):  # before, between and after the others by name
        new = SplitPolicy((*old.arms, Arm(name, "4", 0)), salt=old.salt)
        assert moved_buckets(old, new) == {}
        assert new.shares()[name] == 0.0


def test_reordering_the_arms_in_the_spec_moves_nothing() -> None:
    arms = (Arm("champion", "@champion", 60), Arm("canary", "5", 10), Arm("challenger", "3", 30))
    tables = {SplitPolicy(order, salt="s").table() for order in (arms, arms[::-1], arms[1:] + arms[:1])}
    assert len(tables) == 1


def test_with_three_arms_a_transfer_between_name_neighbours_is_minimal() -> None:
    # By name: canary < challenger < champion.
    def three(canary: float, challenger: float, champion: float) -> SplitPolicy:
        arms = (
            Arm("champion", "2", champion),
            Arm("challenger", "3", challenger),
            Arm("canary", "4", canary),
        )
        return SplitPolicy(arms, salt="s")

    assert moved_buckets(three(10, 30, 60), three(10, 40, 50)) == {("champion", "challenger"): 1000}
    assert moved_buckets(three(10, 30, 60), three(20, 20, 60)) == {("challenger", "canary"): 1000}
    # Non-neighbours: the arm between them shifts, bounded by twice the transfer (see the docstring).
    moves = moved_buckets(three(10, 30, 60), three(20, 30, 50))
    assert moves == {("challenger", "canary"): 1000, ("champion", "challenger"): 1000}
    # ... unless the arm between them has no traffic, before and after.
    assert moved_buckets(three(10, 0, 90), three(20, 0, 80)) == {("champion", "canary"): 1000}


def test_different_salts_give_independent_splits() -> None:
    one = [a.name == "challenger" for a in map(split(50, 50, salt="exp-1").assign, KEYS)]
    two = [a.name == "challenger" for a in map(split(50, 50, salt="exp-2").assign, KEYS)]
    n = len(KEYS)
    p1, p2 = sum(one) / n, sum(two) / n
    both = sum(x and y for x, y in zip(one, two, strict=True)) / n
    correlation = (both - p1 * p2) / math.sqrt(p1 * (1 - p1) * p2 * (1 - p2))
    assert abs(correlation) < 0.02
    assert (
        split(50, 50, salt="exp-1").table() == split(50, 50, salt="exp-2").table()
    )  # keys differ, not layout


def test_keyless_assignment_follows_the_weights() -> None:
    policy = split(30, 70)
    rng = random.Random(42)
    counts = Counter(policy.assign(None, rng=rng).name for _ in range(20_000))
    assert counts["challenger"] / 20_000 == pytest.approx(0.30, abs=0.015)
    assert counts["champion"] / 20_000 == pytest.approx(0.70, abs=0.015)
    again = [policy.assign(None, rng=random.Random(42)).name for _ in range(3)]
    assert len(set(again)) == 1  # the same seed draws the same arm
    assert policy.assign(None).name in {"challenger", "champion"}  # default generator


def test_an_empty_string_is_a_key_not_a_missing_key() -> None:
    policy = split(50, 50)
    assert {policy.assign("").name for _ in range(100)} == {policy.table()[policy.bucket("")]}


def test_a_routing_key_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="a routing key is a str, got int"):
        split(50, 50).assign(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SplitPolicy(()), "at least one arm"),
        (lambda: Arm("a", "1", -1), r"weight -1; weights must be finite and >= 0"),
        (lambda: Arm("a", "1", float("nan")), "weight nan"),
        (lambda: Arm("a", "1", float("inf")), "weight inf"),
        (lambda: Arm("a", "1", "5"), "a weight is a number"),  # type: ignore[arg-type]
        (lambda: Arm("a", "1", True), "a weight is a number"),
        (lambda: Arm("", "1", 1), "non-empty name"),
        (lambda: Arm("a", "", 1), "arm 'a' needs a non-empty target"),
        (lambda: SplitPolicy((Arm("a", "1", 0), Arm("b", "2", 0))), r"every arm has weight 0 \(a, b\)"),
        (lambda: SplitPolicy((Arm("a", "1", 1), Arm("a", "2", 1))), "arm names must be unique; repeated: a"),
        (lambda: SplitPolicy(("a",)), "must be Arm objects"),  # type: ignore[arg-type]
        (lambda: SplitPolicy((Arm("a", "1", 1),), salt=None), "the salt must be a string"),  # type: ignore[arg-type]
        (lambda: moved_buckets(split(1, 1, salt="x"), split(1, 1, salt="y")), "different salts"),
    ],
)
def test_invalid_specs_raise_routing_error(build: Callable[[], object], message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        build()


def test_routing_error_is_a_modelward_error_and_a_value_error() -> None:
    assert issubclass(RoutingError, ModelwardError)
    assert issubclass(RoutingError, ValueError)


def test_a_single_arm_and_an_empty_salt_are_fine() -> None:
    policy = SplitPolicy((Arm("champion", "@champion", 1),))
    assert policy.salt == ""
    assert policy.shares() == {"champion": 1.0}
    assert {policy.assign(k).target for k in KEYS[:100]} == {"@champion"}


def test_policies_are_immutable_values() -> None:
    policy = split(30, 70)
    assert policy == split(30.0, 70.0)
    assert hash(policy) == hash(split(30, 70))
    assert split(30, 70).arms[0].weight == 30.0
    with pytest.raises(AttributeError):
        policy.salt = "other"  # type: ignore[misc]
