"""Redaction by kind of personal data, with keyed tokens, and the key the server uses."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from modelward.config import Settings
from modelward.errors import ConfigError
from modelward.monitoring.redaction import Redactor, redaction_secret


def test_kind_rules_hash_each_occurrence_and_drop_fields_that_hold_a_dropped_kind() -> None:
    r = Redactor.from_spec("email=hash,kind:email=hash,kind:card=drop,kind:iban=hash", secret="k")
    token = r.hash_value("ann@example.com")
    out = r.apply(
        {
            "email": "ann@example.com",
            "note": "write to ann@example.com or bo@example.org",
            "paid": "with 4111 1111 1111 1111",
            "account": {"iban": "DE89370400440532013000", "bank": "x"},
            "tags": ["ok", "ann@example.com"],
            "age": 41,
            "score": 0.5,
        }
    )
    assert out["email"] == token  # a field rule and a kind rule give one token per value
    assert out["note"] == f"write to {token} or {r.hash_value('bo@example.org')}"
    assert "paid" not in out
    assert out["account"] == {"iban": r.hash_value("DE89370400440532013000"), "bank": "x"}
    assert out["tags"] == ["ok", token]
    assert out["age"] == 41 and out["score"] == 0.5
    assert r.apply({"note": "4111 1111 1111 1112"}) == {"note": "4111 1111 1111 1112"}  # not Luhn-valid


def test_numbers_are_read_as_pii_only_where_the_field_name_says_so() -> None:
    r = Redactor.from_spec("kind:ssn=hash,kind:phone=drop", secret="k")
    assert r.apply({"customer_id": 2015550123}) == {"customer_id": 2015550123}
    assert r.apply({"ssn": 123456789})["ssn"] == r.hash_value("123456789")


def test_columns_are_scrubbed_and_untouched_columns_are_returned_as_they_are() -> None:
    r = Redactor.from_spec("kind:email=hash,kind:card=drop", secret="k")
    ages = np.array([40, 50])
    notes = np.array(["ann@example.com", "4111111111111111"], dtype=object)
    plain = np.array(["a", "b"], dtype=object)
    out = r.apply_columns({"age": ages, "note": notes, "plain": plain})
    assert out["age"] is ages and out["plain"] is plain
    assert list(out["note"]) == [r.hash_value("ann@example.com"), None]  # a dropped value in a batch is null


def test_the_server_key_is_made_once_per_home_privately_and_the_setting_wins(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Redactor.from_settings(Settings(log_redact="email=drop")).rules == {"email": "drop"}
    assert not (settings.home / "redact-secret").exists()  # dropping needs no key
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(redaction_secret(settings))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    path = Path(settings.home) / "redact-secret"
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir() if "redact" in p.name] == ["redact-secret"]
    generated = Redactor.from_settings(Settings(log_redact="email=hash")).apply({"email": "a@b.co"})
    assert generated == Redactor({"email": "hash"}, secret=keys[0]).apply({"email": "a@b.co"})
    monkeypatch.setenv("MODELWARD_LOG_REDACT_SECRET", "shared-by-replicas")
    assert redaction_secret(Settings()) == b"shared-by-replicas"
    path.write_text("short")
    monkeypatch.delenv("MODELWARD_LOG_REDACT_SECRET")
    with pytest.raises(ConfigError, match="holds no usable key"):
        redaction_secret(Settings())
