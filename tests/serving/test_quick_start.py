"""A server starts a version from its checked ONNX file in the compiled cache, then settles it.

The start from the cache skips importing scikit-learn and skops (seconds of a server's start-up);
the version it serves is provisional until ModelManager.settle has loaded the native model and
checked the compiled one against it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from modelward.config import Settings
from modelward.errors import IntegrityError
from modelward.monitoring.metrics import ServingMetrics
from modelward.registry import Registry, register_model
from modelward.runtime.compiled import CompiledModel
from modelward.runtime.quickstart import start_from_cache
from modelward.serving.models import BatchSettings, ModelManager
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.test_predict_api import ROW

from .conftest import start_server


@pytest.fixture
def served(home: Path) -> Iterator[Registry]:
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    reg = Registry.from_settings(settings).open()
    yield reg
    reg.close()


def _manager(registry: Registry, cache: Path) -> ModelManager:
    return ModelManager(registry, ["churn"], ServingMetrics(), batching=BatchSettings(cache_dir=cache))


def _columns(manager: ModelManager) -> dict[str, np.ndarray]:
    model = manager.get("churn").model
    frame = model.warm_frame()
    return {name: frame[name].to_numpy() for name in frame.columns}


def test_a_second_start_serves_from_the_cache_and_settles_to_the_native_model(
    served: Registry, tmp_path: Path
) -> None:
    registry = served
    cache = tmp_path / "compiled"
    first = _manager(registry, cache)
    asyncio.run(first.load_all(quick=True))  # nothing cached yet: the long way, which writes the record
    full = first.get("churn")
    assert not full.provisional and not isinstance(full.model.native, CompiledModel)
    assert list(cache.glob("*.start.json"))

    second = _manager(registry, cache)
    asyncio.run(second.load_all(quick=True))
    quick = second.get("churn")
    assert quick.provisional and isinstance(quick.model.native, CompiledModel)
    assert quick.runtime == "onnxruntime" and quick.predictor.describe()["cached"] is True
    assert quick.model.class_values == full.model.class_values
    assert quick.model.runtime == full.model.runtime  # the native model's runtime, from the record
    columns = _columns(first)
    labels, proba = quick.predictor.predict(columns)
    want_labels, want_proba = full.predictor.predict(columns)
    assert labels.tolist() == want_labels.tolist()
    assert proba is not None and want_proba is not None and np.array_equal(proba, want_proba)

    asyncio.run(second.settle())
    settled = second.get("churn")
    assert not settled.provisional and not isinstance(settled.model.native, CompiledModel)
    assert settled.batcher is quick.batcher  # its queue and statistics go on with the loaded predictor
    assert settled.batcher.predict == settled.predictor.predict
    assert settled.runtime == "onnxruntime" and settled.version == quick.version
    first.close()
    second.close()


def test_a_changed_onnx_file_or_a_foreign_record_means_the_long_way(
    served: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = served
    cache = tmp_path / "compiled"
    manager = _manager(registry, cache)
    asyncio.run(manager.load_all())
    manager.close()
    info = registry.resolve("churn")
    (record_path,) = cache.glob("*.start.json")
    record = json.loads(record_path.read_text())
    onnx = cache / f"{record['key']}.onnx"
    assert start_from_cache(registry, info, cache) is not None

    original = onnx.read_bytes()
    onnx.write_bytes(original + b"\0")
    with caplog.at_level(logging.WARNING):
        assert start_from_cache(registry, info, cache) is None
    assert "the file changed" in caplog.text
    onnx.write_bytes(original)

    record_path.write_text(json.dumps(record | {"digest": "0" * 64}))
    assert start_from_cache(registry, info, cache) is None
    record_path.write_text(json.dumps(record | {"format": "modelward.start/0"}))
    assert start_from_cache(registry, info, cache) is None
    record_path.unlink()
    assert start_from_cache(registry, info, cache) is None


def test_a_start_from_the_cache_checks_the_version_files_against_their_pins(
    settings: Settings, churn_models: dict[str, object], churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    cache = tmp_path / "compiled"
    with Registry.from_settings(settings).open() as registry:
        info = register_model(
            registry, churn_models["logreg"], "flip", train_data=churn_frame, target="churn"
        )
        manager = ModelManager(registry, ["flip"], ServingMetrics(), batching=BatchSettings(cache_dir=cache))
        asyncio.run(manager.load_all())
        manager.close()
        assert start_from_cache(registry, info, cache) is not None
        (skops,) = Path(settings.home, "artifacts").rglob("model.skops")
        raw = bytearray(skops.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        skops.write_bytes(bytes(raw))
        with pytest.raises(IntegrityError, match=r"model/model\.skops sha256"):
            start_from_cache(registry, info, cache)


def test_a_served_model_restarted_answers_ready_then_logs_that_it_checked_the_compiled_model(
    home: Path,
) -> None:
    first = start_server(home, "churn", "--reload-interval", "0")
    first.stop()
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        with server.client() as client:
            answer = client.post("/models/churn/predict", json={"features": ROW})
            assert answer.status_code == 200, answer.text
        wait_until(lambda: "checked the compiled one against it" in server.log(), timeout=60)
        wait_until(lambda: not httpx.get(server.url + "/ready").json()["models"]["churn"]["provisional"])
    finally:
        server.stop()


def test_explanations_of_a_version_started_from_the_cache_wait_for_its_native_model(
    home: Path, served: Registry
) -> None:
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    first = _manager(served, settings.home / "compiled")
    asyncio.run(first.load_all())  # the long way: writes the start record
    first.close()

    from modelward.serving import create_app

    app = create_app(settings, ["churn"], registry=served)
    app.state.draining = False
    manager: ModelManager = app.state.manager

    async def explain() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/models/churn/explain", json={"features": ROW})

    asyncio.run(manager.load_all(quick=True))
    assert manager.get("churn").provisional
    early = asyncio.run(explain())
    assert early.status_code == 503 and early.headers["retry-after"]
    assert early.headers["content-type"].startswith("application/problem+json")
    asyncio.run(manager.settle())
    answer = asyncio.run(explain())
    assert answer.status_code == 200, answer.text
    body = answer.json()  # churn:1 is a logistic regression: explained by its coefficients, not the ONNX file
    assert (body["method"], body["output_space"]) == ("linear", "log_odds")
    manager.close()
