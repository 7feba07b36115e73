"""Pins live in the store, but the audit chain vouches for them.

Someone who can write the store and the artifact folder can swap a model for a pickle, set
``allow_pickle: true`` in its registration record, and rewrite the sha256 pins to match: the files
then agree with the store. They no longer agree with the ``register`` event in the audit chain,
which recorded the digest of the pins and the load policy when the version was registered. Loading
(and ``show --verify``) must refuse before anything is unpickled, and ``audit verify`` must fail
naming the version.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import delete, update

from modelward.config import Settings
from modelward.errors import IntegrityError
from modelward.governance.audit import GENESIS_HASH, canonical_json, event_hash
from modelward.governance.pins import verify_pins
from modelward.registry import Registry, register_model
from modelward.registry.integrity import hash_tree
from modelward.runtime import load_version
from modelward.store import artifact_files, audit_events


class _Marker:
    """Unpickling this creates a folder: proof that the pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


def _files(settings: Settings) -> tuple[Path, Path]:
    """The model folder and the registration record of the only registered version."""
    root = Path(settings.home, "artifacts")
    (mlmodel,) = root.rglob("MLmodel")
    (record,) = root.rglob("registration.json")
    return mlmodel.parent, record


def _swap_in_a_pickle(registry: Registry, settings: Settings, name: str, version: str, marker: Path) -> None:
    """What an attacker with write access to the artifact folder and the store does."""
    model_dir, record_path = _files(settings)
    (model_dir / "model.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    (model_dir / "model.skops").unlink()
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"].update(serialization_format="cloudpickle", pickled_model="model.pkl")
    mlmodel["flavors"]["python_function"]["model_path"] = "model.pkl"
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    record = json.loads(record_path.read_text())
    record["allow_pickle"] = True
    record_path.write_text(canonical_json(record))
    _repin(registry, name, version, model_dir, record_path)


def _repin(registry: Registry, name: str, version: str, model_dir: Path, record_path: Path) -> None:
    pins = hash_tree(model_dir, prefix="model/")
    pins.update(hash_tree(record_path.parent, prefix="run/"))
    where = (artifact_files.c.model == name) & (artifact_files.c.version == version)
    with registry.store.write() as conn:
        conn.execute(delete(artifact_files).where(where))
        conn.execute(
            artifact_files.insert(),
            [
                {"model": name, "version": version, "path": p.path, "sha256": p.sha256, "size": p.size}
                for p in pins.values()
            ],
        )


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelward", *argv], capture_output=True, text=True, env=dict(os.environ)
    )


@pytest.fixture
def victim(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    register_model(registry, churn_models["logreg"], "victim", train_data=churn_frame, target="churn")
    return registry


def test_a_pickle_swapped_in_with_rewritten_pins_never_runs_and_audit_verify_names_the_version(
    victim: Registry, settings: Settings, tmp_path: Path
) -> None:
    info = victim.version("victim", 1)
    load_version(victim, info)  # intact: loads
    marker = tmp_path / "pickle-ran"
    _swap_in_a_pickle(victim, settings, "victim", "1", marker)

    with pytest.raises(IntegrityError, match="audit chain") as err:
        load_version(victim, info)
    assert not marker.exists()
    assert any("register event" in p for p in err.value.problems)

    shown = _cli("show", "victim:1", "--verify")
    assert shown.returncode == 1
    assert "audit chain" in shown.stderr
    assert not marker.exists()

    verified = _cli("audit", "verify")
    assert verified.returncode == 1
    assert "victim:1" in verified.stderr
    assert "pins" in verified.stderr
    as_json = json.loads(_cli("audit", "verify", "--json").stdout)
    assert as_json["ok"] is False
    assert [p["subject"] for p in as_json["pins"]["problems"]] == ["victim:1"]


def test_rewritten_pins_alone_fail_the_load_and_verify(victim: Registry, settings: Settings) -> None:
    model_dir, record_path = _files(settings)
    (model_dir / "model.skops").write_bytes(b"not the model")
    _repin(victim, "victim", "1", model_dir, record_path)
    with pytest.raises(IntegrityError, match=r"differ from the ones the audit chain recorded"):
        load_version(victim, victim.version("victim", 1))
    result = victim.audit.verify()
    assert result.ok  # the chain itself is intact ...

    problems = verify_pins(victim.store).problems
    assert [p.subject for p in problems] == ["victim:1"]  # ... but it no longer vouches for the pins


def test_an_intact_registry_verifies_with_its_pins(
    victim: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    register_model(victim, churn_models["forest"], "victim", train_data=churn_frame, target="churn")
    verified = _cli("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert report["pins"] == {"ok": True, "versions": 2, "problems": []}
    text = _cli("audit", "verify")
    assert text.returncode == 0
    assert "pins of 2 versions match" in text.stdout


def test_pins_deleted_from_the_store_are_reported_as_removed(victim: Registry) -> None:
    with victim.store.write() as conn:
        conn.execute(delete(artifact_files))
    with pytest.raises(IntegrityError, match="were removed from the store"):
        load_version(victim, victim.version("victim", 1))

    assert [p.subject for p in verify_pins(victim.store).problems] == ["victim:1"]


def test_pins_without_a_register_event_are_refused(victim: Registry) -> None:
    """Pins copied in for a version the chain never saw registered vouch for nothing."""
    with victim.store.write() as conn:
        rows = conn.execute(artifact_files.select()).mappings().all()
        conn.execute(artifact_files.insert(), [{**r, "model": "ghost"} for r in rows])

    problems = verify_pins(victim.store).problems
    assert [(p.subject, "no register event" in p.reason) for p in problems] == [("ghost:1", True)]


def test_a_register_event_without_pins_in_it_is_reported_and_refused(victim: Registry) -> None:
    """An event without the digest (never written by modelward; as if from an older format, the
    chain re-hashed to stay intact) leaves the version unpinned in the chain: verify reports it and
    load refuses."""
    with victim.store.write() as conn:
        rows = conn.execute(audit_events.select().order_by(audit_events.c.seq)).mappings().all()
        prev = GENESIS_HASH
        for row in rows:
            payload = json.loads(row["payload"])
            if row["action"] == "register":
                payload.pop("artifacts_sha256")
            digest = event_hash(
                prev, row["seq"], row["ts"], row["actor"], row["action"], row["subject"], payload
            )
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == row["seq"])
                .values(payload=canonical_json(payload), prev_hash=prev, hash=digest)
            )
            prev = digest
    assert victim.audit.verify().ok

    problems = verify_pins(victim.store).problems
    assert [p.subject for p in problems] == ["victim:1"]
    assert "records no pins" in problems[0].reason
    with pytest.raises(IntegrityError, match="records no pins"):
        load_version(victim, victim.version("victim", 1))


def test_an_edited_register_event_is_refused_at_load_without_a_full_verify(victim: Registry) -> None:
    """Editing the event's digest to match forged pins breaks the event's own hash; load checks it."""
    with victim.store.write() as conn:
        row = conn.execute(audit_events.select().where(audit_events.c.action == "register")).mappings().one()
        payload = json.loads(row["payload"])
        payload["allow_pickle"] = True
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == row["seq"])
            .values(payload=canonical_json(payload))
        )
    with pytest.raises(IntegrityError, match="edited"):
        load_version(victim, victim.version("victim", 1))
